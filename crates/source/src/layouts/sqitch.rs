//! sqitch: `sqitch.plan` lists the changes in deploy order, each with its dependencies
//! (`[requires !conflicts]`); `deploy/<change>.sql`, `revert/<change>.sql` and
//! `verify/<change>.sql` hold its scripts (`sqitch.conf` may move them, under `[core]` or
//! `[engine "pg"]`). A change reworked after a tag keeps its earlier scripts as
//! `deploy/<change>@<tag>.sql`.
//!
//! A change's version is its position in the plan (1, 2, …): sqitch deploys in plan order and
//! its plans only grow at the end. Scripts that sqitch's templates wrap in `BEGIN;` … `COMMIT;`
//! run in one transaction (the wrapper itself is left out); scripts without the wrapper run as
//! psql runs them, one statement at a time, each committed on its own. The verify script runs
//! right after the deploy script, inside its transaction, its `BEGIN` … `ROLLBACK` turned into
//! a savepoint, so a failed verification rolls the change back as sqitch reverts it.
//!
//! Required changes must come earlier in the plan and conflicting ones must not; both are
//! checked when the plan is read, naming the plan's line. Dependencies on other projects'
//! changes (`project:change`) cannot be checked here and are reported as warnings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha1::{Digest, Sha1};

use crate::error::{SourceError, SourceErrorKind, SourceErrors};
use crate::format::{LoadOptions, SQITCH_PLAN};
use crate::layouts::{empty_file_error, read_file, refuse_psql_meta_commands};
use crate::load::{Loaded, SourceWarning};
use crate::migration::{Layout, Migration, Section, SectionParts};
use crate::options::{Direction, SectionOptions};
use crate::statements::{Dialect, Transactionality, split};
use crate::template::FileText;
use crate::version::Version;

use crate::format::SQITCH_CONF;

/// A change of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqitchChange {
    /// 1-based position in the plan: the change's version in safeshift.
    pub position: usize,
    pub name: String,
    /// Changes this one requires, as written (`users`, `users@v1.0`, `other:users`).
    pub requires: Vec<String>,
    /// Changes this one conflicts with, without the `!`.
    pub conflicts: Vec<String>,
    /// When it was planned, as written (`2024-01-15T09:30:00Z`).
    pub planned_at: String,
    pub planner_name: String,
    pub planner_email: String,
    pub note: String,
    /// Tags that follow the change in the plan.
    pub tags: Vec<String>,
    /// The plan's line.
    pub line: u32,
    /// The deploy script.
    pub deploy: PathBuf,
    pub revert: PathBuf,
    pub verify: PathBuf,
}

/// A sqitch plan and where its scripts are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqitchPlan {
    /// `%project=` of the plan.
    pub project: String,
    pub path: PathBuf,
    pub changes: Vec<SqitchChange>,
}

impl SqitchChange {
    /// SHA-1 of the deploy script's bytes, as sqitch records it in `sqitch.changes.script_hash`.
    pub fn script_hash(&self) -> Option<String> {
        Some(sqitch_script_hash(&std::fs::read(&self.deploy).ok()?))
    }
}

/// The hash sqitch records for a deploy script: the SHA-1 of its bytes, in hex.
pub fn sqitch_script_hash(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where `sqitch.conf` puts the plan and the scripts.
struct Directories {
    plan: PathBuf,
    deploy: PathBuf,
    revert: PathBuf,
    verify: PathBuf,
    extension: String,
}

impl Directories {
    fn read(directory: &Path) -> Result<Directories, SourceError> {
        let conf = directory.join(SQITCH_CONF);
        let settings = if conf.is_file() {
            let text = std::fs::read_to_string(&conf).map_err(|error| {
                SourceError::config(&conf, format!("cannot read the file: {error}"))
            })?;
            git_config(&text)
        } else {
            BTreeMap::new()
        };
        let get = |key: &str| {
            settings
                .get(&format!("engine.pg.{key}"))
                .or_else(|| settings.get(&format!("core.{key}")))
                .cloned()
        };
        let top = match get("top_dir") {
            Some(top) if top != "." => directory.join(top),
            _ => directory.to_path_buf(),
        };
        let dir = |key: &str, default: &str| {
            get(key).map_or_else(|| top.join(default), |value| directory.join(value))
        };
        Ok(Directories {
            plan: dir("plan_file", SQITCH_PLAN),
            deploy: dir("deploy_dir", "deploy"),
            revert: dir("revert_dir", "revert"),
            verify: dir("verify_dir", "verify"),
            extension: get("extension").unwrap_or_else(|| "sql".into()),
        })
    }
}

/// `section.subsection.key` → value, from git-style configuration text.
fn git_config(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = match header.split_once(char::is_whitespace) {
                Some((name, sub)) => format!("{}.{}", name.trim(), sub.trim().trim_matches('"')),
                None => header.trim().to_owned(),
            };
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            values.insert(
                format!("{section}.{}", key.trim()),
                value.trim().trim_matches('"').to_owned(),
            );
        }
    }
    values
}

impl SqitchPlan {
    /// Reads the plan of the sqitch project in `directory` (following `sqitch.conf`).
    pub fn read(directory: &Path) -> Result<SqitchPlan, SourceError> {
        let directories = Directories::read(directory)?;
        read_plan(&directories)
    }
}

fn read_plan(directories: &Directories) -> Result<SqitchPlan, SourceError> {
    let path = &directories.plan;
    let text = std::fs::read_to_string(path)
        .map_err(|error| SourceError::config(path, format!("cannot read the plan: {error}")))?;
    let mut project = String::new();
    let mut changes: Vec<SqitchChange> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index as u32 + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |message: String| {
            SourceError::config(path, message)
                .at_line(line_number)
                .help("plan lines read `name [dependencies] 2024-01-15T09:30:00Z Planner Name <planner@example.com> # note`")
        };
        if let Some(pragma) = line.strip_prefix('%') {
            if let Some((key, value)) = pragma.split_once('=')
                && key.trim() == "project"
            {
                project = value.trim().to_owned();
            }
            continue;
        }
        let line = line
            .strip_prefix(['+', '-'])
            .map(str::trim_start)
            .unwrap_or(line);
        if let Some(tag) = line.strip_prefix('@') {
            let name = tag.split_whitespace().next().unwrap_or("").to_owned();
            match changes.last_mut() {
                Some(change) => change.tags.push(name),
                None => return Err(error(format!("tag @{name} comes before any change"))),
            }
            continue;
        }
        let name_end = line
            .find(|c: char| c.is_whitespace() || c == '[')
            .unwrap_or(line.len());
        let name = line[..name_end].to_owned();
        let mut rest = line[name_end..].trim_start();
        let mut requires = Vec::new();
        let mut conflicts = Vec::new();
        if let Some(after) = rest.strip_prefix('[') {
            let Some(close) = after.find(']') else {
                return Err(error(format!(
                    "the dependencies of `{name}` have no closing `]`"
                )));
            };
            for dependency in after[..close].split_whitespace() {
                match dependency.strip_prefix('!') {
                    Some(conflict) => conflicts.push(conflict.to_owned()),
                    None => requires.push(dependency.to_owned()),
                }
            }
            rest = after[close + 1..].trim_start();
        }
        let Some((planned_at, after)) = rest.split_once(char::is_whitespace) else {
            return Err(error(format!("`{name}` has no planner after its date")));
        };
        let (Some(open), Some(close)) = (after.find('<'), after.find('>')) else {
            return Err(error(format!("`{name}` has no planner email in <…>")));
        };
        if close < open {
            return Err(error(format!("`{name}` has no planner email in <…>")));
        }
        let note = after[close + 1..]
            .trim()
            .strip_prefix('#')
            .unwrap_or("")
            .trim()
            .to_owned();
        changes.push(SqitchChange {
            position: changes.len() + 1,
            name,
            requires,
            conflicts,
            planned_at: planned_at.to_owned(),
            planner_name: after[..open].trim().to_owned(),
            planner_email: after[open + 1..close].to_owned(),
            note,
            tags: Vec::new(),
            line: line_number,
            deploy: PathBuf::new(),
            revert: PathBuf::new(),
            verify: PathBuf::new(),
        });
    }
    if project.is_empty() {
        return Err(
            SourceError::config(path, "the plan has no `%project=` line")
                .help("sqitch plans start with `%syntax-version=1.0.0` and `%project=<name>`"),
        );
    }
    // A change that appears again later (reworked) keeps its earlier scripts under the name of
    // the first tag after it for which a script exists.
    let script_names: Vec<String> = changes
        .iter()
        .enumerate()
        .map(|(index, change)| {
            let next = changes[index + 1..]
                .iter()
                .position(|later| later.name == change.name)
                .map(|offset| index + 1 + offset);
            let Some(next) = next else {
                return change.name.clone();
            };
            let tags: Vec<&String> = changes[index..next].iter().flat_map(|c| &c.tags).collect();
            tags.iter()
                .map(|tag| format!("{}@{tag}", change.name))
                .find(|name| {
                    directories
                        .deploy
                        .join(format!("{name}.{}", directories.extension))
                        .is_file()
                })
                .or_else(|| tags.first().map(|tag| format!("{}@{tag}", change.name)))
                .unwrap_or_else(|| change.name.clone())
        })
        .collect();
    for (change, script) in changes.iter_mut().zip(script_names) {
        let file = format!("{script}.{}", directories.extension);
        change.deploy = directories.deploy.join(&file);
        change.revert = directories.revert.join(&file);
        change.verify = directories.verify.join(&file);
    }
    Ok(SqitchPlan {
        project,
        path: path.clone(),
        changes,
    })
}

/// Checks that required changes come earlier in the plan and conflicting ones do not.
fn check_dependencies(plan: &SqitchPlan, loaded: &mut Loaded) {
    for (index, change) in plan.changes.iter().enumerate() {
        let earlier = &plan.changes[..index];
        let error = |message: String, help: &str| {
            SourceError::config(&plan.path, message)
                .at_line(change.line)
                .help(help.to_owned())
        };
        for required in &change.requires {
            let (project, reference) = match required.split_once(':') {
                Some((project, reference)) => (Some(project), reference),
                None => (None, required.as_str()),
            };
            if project.is_some_and(|p| p != plan.project) {
                loaded.warnings.push(SourceWarning {
                    path: plan.path.clone(),
                    message: format!(
                        "line {}: `{}` requires `{required}` from another sqitch project, which safeshift cannot check",
                        change.line, change.name
                    ),
                });
                continue;
            }
            let (name, tag) = reference.split_once('@').unwrap_or((reference, ""));
            let name_found = name.is_empty() || earlier.iter().any(|c| c.name == name);
            let tag_found =
                tag.is_empty() || earlier.iter().any(|c| c.tags.iter().any(|t| t == tag));
            let found = name_found && tag_found;
            if !found {
                loaded.errors.push(error(
                    format!("`{}` requires `{required}`, which does not come earlier in the plan", change.name),
                    "sqitch deploys in plan order: move the required change above this one, or fix the name",
                ));
            }
        }
        for conflict in &change.conflicts {
            let name = conflict
                .split_once('@')
                .map_or(conflict.as_str(), |(n, _)| n);
            if let Some(earlier_change) = earlier.iter().rev().find(|c| c.name == name) {
                loaded.errors.push(error(
                    format!(
                        "`{}` conflicts with `{conflict}`, which comes earlier in the plan (line {}) and so is deployed before it",
                        change.name, earlier_change.line
                    ),
                    "sqitch refuses to deploy a change while a change it conflicts with is deployed; rework the plan",
                ));
            }
        }
    }
}

pub(crate) fn load(directory: &Path, options: &LoadOptions) -> Result<Loaded, SourceErrors> {
    let directories = Directories::read(directory)?;
    let plan = read_plan(&directories)?;
    let mut loaded = Loaded::default();
    check_dependencies(&plan, &mut loaded);
    for change in &plan.changes {
        match read_change(directory, change, options) {
            Ok(migration) => loaded.migrations.push(migration),
            Err(error) => loaded.errors.push(error),
        }
    }
    Ok(loaded)
}

fn read_change(
    directory: &Path,
    change: &SqitchChange,
    options: &LoadOptions,
) -> Result<Migration, SourceError> {
    if !change.deploy.is_file() {
        return Err(SourceError::new(
            SourceErrorKind::MissingUp,
            &change.deploy,
            format!("the deploy script of `{}` does not exist", change.name),
        )
        .help("add the script, or remove the change from sqitch.plan"));
    }
    let read = |path: &Path| -> Result<FileText, SourceError> {
        let file = read_file(path, &options.variables)?;
        if file.text.as_str().trim().is_empty() {
            return Err(empty_file_error(path));
        }
        refuse_psql_meta_commands(path, &file)?;
        Ok(file)
    };
    let relative = |path: &Path| path.strip_prefix(directory).unwrap_or(path).to_path_buf();
    let up = wrapped_section(
        &change.deploy,
        &relative(&change.deploy),
        read(&change.deploy)?,
        Direction::Up,
        "COMMIT",
    )?;
    let down = change
        .revert
        .is_file()
        .then(|| {
            wrapped_section(
                &change.revert,
                &relative(&change.revert),
                read(&change.revert)?,
                Direction::Down,
                "COMMIT",
            )
        })
        .transpose()?;
    let verify = change
        .verify
        .is_file()
        .then(|| -> Result<Section, SourceError> {
            let file = read(&change.verify)?;
            let end = file.text.as_str().len();
            Section::build(SectionParts {
                direction: Direction::Up,
                path: &change.verify,
                relative_path: &relative(&change.verify),
                file: &file,
                marker_line: None,
                options: SectionOptions::default(),
                range: 0..end,
                body: 0..end,
                no_transaction_help: None,
            })
        })
        .transpose()?;
    Ok(Migration {
        version: Version::parse(&change.position.to_string())
            .ok_or_else(|| SourceError::config(&change.deploy, "bad plan position"))?,
        name: change.name.clone(),
        layout: Layout::Sqitch,
        up,
        down,
        verify,
    })
}

/// A deploy or revert script: between a leading `BEGIN` and a trailing `COMMIT`, the statements
/// run in one transaction; a script without that wrapper runs one statement at a time, as psql
/// runs it.
fn wrapped_section(
    path: &Path,
    relative_path: &Path,
    file: FileText,
    direction: Direction,
    closing: &str,
) -> Result<Section, SourceError> {
    let end = file.text.as_str().len();
    let statements = split(path, &file.text, 0..end, Dialect::Postgres)?;
    let control = |index: usize, what: &str| {
        statements.get(index).is_some_and(|statement| {
            matches!(&statement.transactionality, Transactionality::TransactionControl { what: w } if w == what)
        })
    };
    let wrapped =
        statements.len() >= 2 && control(0, "BEGIN") && control(statements.len() - 1, closing);
    let body = if wrapped {
        statements[0].span.end..statements[statements.len() - 1].span.start
    } else {
        0..end
    };
    Section::build(SectionParts {
        direction,
        path,
        relative_path,
        file: &file,
        marker_line: None,
        options: SectionOptions {
            transaction: wrapped,
            ..SectionOptions::default()
        },
        range: 0..end,
        body,
        no_transaction_help: Some(
            "sqitch scripts wrapped in `BEGIN;` … `COMMIT;` run in one transaction; leave the wrapper out to run the script one statement at a time".to_owned(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(plan: &str, scripts: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SQITCH_PLAN), plan).unwrap();
        for (path, text) in scripts {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    const PLAN: &str = "%syntax-version=1.0.0\n%project=flipr\n\nappschema 2024-01-01T00:00:00Z Marge <marge@example.com> # App schema.\nusers [appschema] 2024-01-02T00:00:00Z Marge N. O'Vera <marge@example.com> # Users.\n@v1.0 2024-01-03T00:00:00Z Marge <marge@example.com> # Tag.\nusers [users@v1.0] 2024-01-04T00:00:00Z Marge <marge@example.com> # Reworked.\n";

    #[test]
    fn plans_changes_tags_and_reworks() {
        let dir = project(PLAN, &[("deploy/users@v1.0.sql", "SELECT 1;")]);
        let plan = SqitchPlan::read(dir.path()).unwrap();
        assert_eq!(plan.project, "flipr");
        assert_eq!(plan.changes.len(), 3);
        assert_eq!(plan.changes[1].requires, ["appschema"]);
        assert_eq!(plan.changes[1].planner_name, "Marge N. O'Vera");
        assert_eq!(plan.changes[1].tags, ["v1.0"]);
        assert_eq!(plan.changes[1].note, "Users.");
        assert!(plan.changes[1].deploy.ends_with("deploy/users@v1.0.sql"));
        assert!(plan.changes[2].deploy.ends_with("deploy/users.sql"));
    }

    #[test]
    fn wrapped_scripts_run_in_one_transaction() {
        let dir = project(
            "%project=p\na 2024-01-01T00:00:00Z M <m@x>\nb 2024-01-01T00:00:00Z M <m@x>\n",
            &[
                (
                    "deploy/a.sql",
                    "-- Deploy p:a to pg\n\nBEGIN;\n\nCREATE TABLE a (id int);\n\nCOMMIT;\n",
                ),
                ("revert/a.sql", "BEGIN;\nDROP TABLE a;\nCOMMIT;\n"),
                (
                    "verify/a.sql",
                    "BEGIN;\nSELECT id FROM a WHERE false;\nROLLBACK;\n",
                ),
                ("deploy/b.sql", "CREATE INDEX CONCURRENTLY b ON a (id);\n"),
            ],
        );
        let loaded = load(dir.path(), &LoadOptions::default()).unwrap();
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let a = &loaded.migrations[0];
        assert!(a.up.options.transaction);
        let statements = a
            .executable_statements(Direction::Up, Dialect::Postgres)
            .unwrap();
        let sql: Vec<&str> = statements.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "CREATE TABLE a (id int)",
                "SAVEPOINT safeshift_verify",
                "SELECT id FROM a WHERE false",
                "ROLLBACK TO SAVEPOINT safeshift_verify"
            ]
        );
        assert_eq!(statements[0].line, 5);
        let b = &loaded.migrations[1];
        assert_eq!(b.version.as_str(), "2");
        assert!(!b.up.options.transaction);
        assert!(b.down.is_none());
    }

    #[test]
    fn dependencies_must_come_earlier() {
        let dir = project(
            "%project=p\na [b] 2024-01-01T00:00:00Z M <m@x>\nb [!a] 2024-01-01T00:00:00Z M <m@x>\n",
            &[("deploy/a.sql", "SELECT 1;"), ("deploy/b.sql", "SELECT 1;")],
        );
        let loaded = load(dir.path(), &LoadOptions::default()).unwrap();
        let lines: Vec<Option<u32>> = loaded.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [Some(2), Some(3)]);
        assert!(loaded.errors[0].message.contains("requires `b`"));
        assert!(loaded.errors[1].message.contains("conflicts with `a`"));
    }

    #[test]
    fn psql_meta_commands_are_refused() {
        let dir = project(
            "%project=p\na 2024-01-01T00:00:00Z M <m@x>\n",
            &[("deploy/a.sql", "BEGIN;\n\\i other.sql\nCOMMIT;\n")],
        );
        let loaded = load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(loaded.errors[0].kind, SourceErrorKind::Layout);
        assert_eq!(loaded.errors[0].line, Some(2));
    }
}
