//! Tools whose migrations are code (Alembic's Python revisions, Knex and Sequelize JavaScript,
//! TypeORM TypeScript, Rails Ruby): safeshift cannot run them, so it adopts such a project at
//! the point where every one of them is applied, through a baseline of the live schema. Before
//! that, the history must agree with the tool's own migration files: every file applied, every
//! applied migration still a file, no run in progress.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::history::{ForeignHistory, ForeignKey};
use crate::plan::{Disagreement, DisagreementKind};
use crate::tool::Tool;

/// How a code-based tool's history compares with its migration files.
#[derive(Debug, Clone, Serialize)]
pub struct CodeToolCheck {
    pub tool: Tool,
    pub table: String,
    /// How many migrations the history records.
    pub applied: usize,
    /// The newest one, as the history names it.
    pub newest: Option<String>,
    /// The tool's migration directory that was compared, if one was found.
    pub directory: Option<PathBuf>,
    pub disagreements: Vec<Disagreement>,
    pub notes: Vec<String>,
}

impl CodeToolCheck {
    pub fn agrees(&self) -> bool {
        self.disagreements.is_empty()
    }

    /// The audit note of the baseline that adopts the project.
    pub fn summary(&self) -> String {
        format!(
            "{} {} migration(s) recorded in {}{}",
            self.applied,
            self.tool,
            self.table,
            self.newest
                .as_ref()
                .map(|newest| format!(", the newest {newest}"))
                .unwrap_or_default()
        )
    }
}

/// Where a code-based tool keeps its migration files by default, if that exists under `root`.
pub fn default_tool_directory(root: &Path, tool: Tool) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match tool {
        Tool::Knex | Tool::Sequelize => vec![root.join("migrations")],
        Tool::Typeorm => ["src/migrations", "src/migration", "migrations"]
            .iter()
            .map(|dir| root.join(dir))
            .collect(),
        Tool::Rails => vec![root.join("db/migrate")],
        Tool::Alembic => {
            let configured = std::fs::read_to_string(root.join("alembic.ini"))
                .ok()
                .and_then(|text| {
                    text.lines().find_map(|line| {
                        let (key, value) = line.split_once('=')?;
                        (key.trim() == "script_location").then(|| {
                            root.join(value.trim().replace("%(here)s", "."))
                                .join("versions")
                        })
                    })
                });
            configured
                .into_iter()
                .chain(["alembic/versions", "migrations/versions"].map(|dir| root.join(dir)))
                .collect()
        }
        _ => Vec::new(),
    };
    candidates
        .into_iter()
        .find(|dir| !migration_files(tool, dir).is_empty())
}

/// The tool's migration files in `directory`, by the names its history uses.
fn migration_files(tool: Tool, directory: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Vec::new();
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let path = entry.path();
            if name.starts_with('.') || !path.is_file() {
                return None;
            }
            let (stem, extension) = name.rsplit_once('.')?;
            let key = match tool {
                Tool::Knex | Tool::Sequelize
                    if matches!(extension, "js" | "ts" | "cjs" | "mjs")
                        && !name.ends_with(".d.ts") =>
                {
                    name.clone()
                }
                // TypeORM names a row by the class, whose name ends with the file's timestamp.
                Tool::Typeorm if matches!(extension, "ts" | "js") && !name.ends_with(".d.ts") => {
                    stem.split(['-', '_']).next()?.to_owned()
                }
                Tool::Rails if extension == "rb" => stem.split('_').next()?.to_owned(),
                Tool::Alembic if extension == "py" => return Some((name, path)),
                _ => return None,
            };
            Some((key, path))
        })
        .collect();
    files.sort();
    files
}

/// Compares a code-based tool's history with its migration files in `directory` (when given).
pub fn code_tool_check(foreign: &ForeignHistory, directory: Option<&Path>) -> CodeToolCheck {
    let tool = foreign.table.tool;
    let table = foreign.table.display_name();
    let names: Vec<String> = foreign
        .applied
        .iter()
        .map(|entry| match &entry.key {
            ForeignKey::Name { name, .. } => name.clone(),
            ForeignKey::Version { version } => version.clone(),
            ForeignKey::Repeatable { description } => description.clone(),
        })
        .collect();
    let mut check = CodeToolCheck {
        tool,
        table: table.clone(),
        applied: names.len(),
        newest: names.last().cloned(),
        directory: directory.map(Path::to_path_buf),
        disagreements: foreign
            .failures
            .iter()
            .map(|failure| Disagreement {
                kind: DisagreementKind::Failed,
                what: failure.what.clone(),
                detail: failure.detail.clone(),
                help: failure.help.clone(),
            })
            .collect(),
        notes: foreign.notes.clone(),
    };
    let Some(directory) = directory else {
        check.notes.push(format!(
            "{tool}'s migration files were not found, so the history was not compared with them (pass --tool-dir)"
        ));
        return check;
    };
    if tool == Tool::Alembic {
        compare_alembic(&mut check, &names, directory);
        return check;
    }
    let files = migration_files(tool, directory);
    let key_of = |name: &String| match tool {
        Tool::Typeorm => trailing_digits(name).to_owned(),
        _ => name.clone(),
    };
    let applied_keys: BTreeSet<String> = names.iter().map(key_of).collect();
    let file_keys: BTreeSet<&String> = files.iter().map(|(key, _)| key).collect();
    let upgrade = match tool {
        Tool::Knex => "knex migrate:latest",
        Tool::Sequelize => "npx sequelize-cli db:migrate",
        Tool::Typeorm => "typeorm migration:run",
        Tool::Rails => "bin/rails db:migrate",
        _ => "the tool's migrate command",
    };
    for (key, path) in &files {
        if !applied_keys.contains(key) {
            check.disagreements.push(Disagreement {
                kind: DisagreementKind::NotApplied,
                what: path.display().to_string(),
                detail: format!("{tool} has not applied it, and safeshift cannot run {tool} migrations"),
                help: format!("apply it with {tool} first (`{upgrade}`), or remove it if it is abandoned, then adopt"),
            });
        }
    }
    for name in &names {
        if !file_keys.contains(&key_of(name)) {
            check.disagreements.push(Disagreement {
                kind: DisagreementKind::NoFile,
                what: name.clone(),
                detail: format!(
                    "applied in the database ({table}), but {} has no file for it",
                    directory.display()
                ),
                help: "restore the file, or pass the directory that holds them with --tool-dir"
                    .into(),
            });
        }
    }
    check
}

fn trailing_digits(name: &str) -> &str {
    let start = name
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    &name[start..]
}

/// Alembic: the database's heads must be the newest revisions of the version files.
fn compare_alembic(check: &mut CodeToolCheck, heads_in_database: &[String], directory: &Path) {
    let mut revisions = BTreeSet::new();
    let mut parents = BTreeSet::new();
    for (_, path) in migration_files(Tool::Alembic, directory) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let Some((left, right)) = line.split_once('=') else {
                continue;
            };
            let name = left.split(':').next().unwrap_or("").trim();
            let quoted = quoted_strings(right);
            match name {
                "revision" => revisions.extend(quoted),
                "down_revision" => parents.extend(quoted),
                _ => {}
            }
        }
    }
    let heads: BTreeSet<&String> = revisions.difference(&parents).collect();
    for head in heads_in_database {
        if !revisions.contains(head) {
            check.disagreements.push(Disagreement {
                kind: DisagreementKind::NoFile,
                what: head.clone(),
                detail: format!(
                    "the database is at revision {head}, which no file in {} defines",
                    directory.display()
                ),
                help: "restore the revision file, or pass the versions directory with --tool-dir"
                    .into(),
            });
        }
    }
    for head in heads {
        if !heads_in_database.contains(head) {
            check.disagreements.push(Disagreement {
                kind: DisagreementKind::NotApplied,
                what: head.clone(),
                detail: format!("revision {head} is the newest in {}, and the database is not at it", directory.display()),
                help: "run `alembic upgrade head` first (safeshift cannot run Python revisions), then adopt".into(),
            });
        }
    }
}

fn quoted_strings(text: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(['\'', '"']) {
        let quote = rest.as_bytes()[start] as char;
        let after = &rest[start + 1..];
        let Some(end) = after.find(quote) else { break };
        strings.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    strings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_assignments() {
        assert_eq!(quoted_strings(" 'ae1027a6acf'"), ["ae1027a6acf"]);
        assert_eq!(quoted_strings(" ('a', \"b\")"), ["a", "b"]);
        assert!(quoted_strings(" None").is_empty());
        assert_eq!(trailing_digits("CreateUsers1700000000000"), "1700000000000");
    }
}
