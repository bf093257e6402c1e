//! Matching another tool's history to the migration files: which migrations to record as
//! applied, which stay pending, and every way the two disagree (a migration applied in the
//! database with no file, a failed or half-done migration, a file changed since it was applied).
//! Adoption goes ahead only when they agree.

use std::collections::BTreeMap;

use serde::Serialize;

use safeshift_runner::{AppliedElsewhere, HistoryState};
use safeshift_source::{
    Layout, Migration, MigrationSet, SqitchPlan, Version, flyway_checksum, prisma_checksum_matches,
    sqitch_script_hash,
};

use crate::history::{ForeignApplied, ForeignChecksum, ForeignHistory, ForeignKey};
use crate::tool::Tool;

/// How to treat what does not match.
#[derive(Debug, Clone, Default)]
pub struct AdoptOptions {
    /// Record migrations the other tool applied even when their file is gone (as applied,
    /// with no file), instead of refusing.
    pub allow_missing_files: bool,
    /// Record migrations whose file changed since the other tool applied them, with the file's
    /// checksum now, instead of refusing.
    pub accept_changed: bool,
    /// Why (added to every audit note).
    pub reason: Option<String>,
}

/// What adopting would do.
#[derive(Debug, Clone, Serialize)]
pub struct AdoptionPlan {
    pub tool: Tool,
    /// The other tool's table.
    pub table: String,
    /// Migrations to record as applied.
    pub adopted: Vec<Adopted>,
    /// Versions safeshift's history already covers (safeshift's record wins).
    pub already_recorded: Vec<String>,
    /// Migrations the other tool has not applied: `up` applies them.
    pub pending: Vec<Pending>,
    pub disagreements: Vec<Disagreement>,
    /// Things worth knowing that do not stop adoption.
    pub notes: Vec<String>,
}

/// A migration recorded as applied by adoption.
#[derive(Debug, Clone, Serialize)]
pub struct Adopted {
    pub version: String,
    pub name: String,
    /// The file, relative to the migrations directory (empty when it is gone).
    pub file: String,
    /// The audit note written with it.
    pub note: String,
    #[serde(skip)]
    pub checksum: Option<String>,
    #[serde(skip)]
    pub transactional: bool,
}

/// A migration the other tool has not applied.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    pub version: String,
    pub file: String,
    /// Why it is pending when that is not simply "never applied".
    pub reason: Option<String>,
}

/// A way the other tool's history and the files disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    pub kind: DisagreementKind,
    /// The migration, as the history names it.
    pub what: String,
    pub detail: String,
    /// What to do about it.
    pub help: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisagreementKind {
    /// Applied in the database, but no file has it.
    NoFile,
    /// A failed or half-done migration.
    Failed,
    /// The file changed since the other tool applied it.
    Changed,
    /// Applied in the database as something safeshift cannot run (a Java migration).
    NotSql,
    /// A migration of the other tool's that it has not applied, and safeshift cannot run.
    NotApplied,
}

impl AdoptionPlan {
    /// Whether adoption may go ahead.
    pub fn agrees(&self) -> bool {
        self.disagreements.is_empty()
    }

    /// The history rows adoption writes.
    pub fn records(&self) -> Vec<AppliedElsewhere> {
        self.adopted
            .iter()
            .map(|adopted| AppliedElsewhere {
                version: adopted.version.clone(),
                name: adopted.name.clone(),
                file: adopted.file.clone(),
                checksum: adopted.checksum.clone(),
                transactional: adopted.transactional,
                note: adopted.note.clone(),
            })
            .collect()
    }
}

/// Matches the other tool's history to the migrations of `set`, given safeshift's own history.
pub fn plan_adoption(
    set: &MigrationSet,
    foreign: &ForeignHistory,
    state: &HistoryState,
    options: &AdoptOptions,
) -> AdoptionPlan {
    let tool = foreign.table.tool;
    let table = foreign.table.display_name();
    let mut plan = AdoptionPlan {
        tool,
        table: table.clone(),
        adopted: Vec::new(),
        already_recorded: Vec::new(),
        pending: Vec::new(),
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
    let reason = options
        .reason
        .as_ref()
        .map(|r| format!("; reason: {r}"))
        .unwrap_or_default();
    let sqitch_plan = (tool == Tool::Sqitch)
        .then(|| SqitchPlan::read(&set.directory).ok())
        .flatten();
    // Versions the other tool applied, each with the row that says so.
    let mut applied: BTreeMap<Version, (&Migration, Option<&ForeignApplied>)> = BTreeMap::new();
    let mut repeatable_changed: Vec<&Migration> = Vec::new();
    for entry in &foreign.applied {
        let Some(migration) = find(set, entry, sqitch_plan.as_ref()) else {
            let what = entry.key.describe();
            let (kind, detail, help) = match &entry.not_sql {
                Some(kind) => (
                    DisagreementKind::NotSql,
                    format!("{table} records {kind} ({}), which has no SQL file safeshift can run", entry.row),
                    "if it is applied everywhere, adopt with --allow-missing-files to record it as applied without a file; otherwise write it as a SQL migration first".to_owned(),
                ),
                None => (
                    DisagreementKind::NoFile,
                    format!("applied in the database ({}), but no migration file has it", entry.row),
                    match (tool, &entry.key) {
                        (Tool::Sqitch, ForeignKey::Name { position: Some(position), .. }) => format!(
                            "sqitch deploys in plan order, so change {position} of sqitch.plan should be it: restore the plan (from version control), or adopt with --allow-missing-files"
                        ),
                        _ => "restore the file (from version control), or, if it was removed on purpose, adopt with --allow-missing-files to record it as applied without a file".to_owned(),
                    },
                ),
            };
            let version = missing_version(&entry.key);
            if Version::parse(&version).is_some_and(|v| state.get(&v).is_some()) {
                plan.already_recorded.push(version);
            } else if options.allow_missing_files {
                plan.adopted.push(Adopted {
                    version,
                    name: match &entry.key {
                        ForeignKey::Name { name, .. } => name.clone(),
                        _ => String::new(),
                    },
                    file: String::new(),
                    note: format!(
                        "adopted from {tool} ({}{}), without a file (--allow-missing-files){reason}",
                        entry.row,
                        applied_at(entry)
                    ),
                    checksum: None,
                    transactional: true,
                });
            } else {
                plan.disagreements.push(Disagreement {
                    kind,
                    what,
                    detail,
                    help,
                });
            }
            continue;
        };
        if let Some(recorded) = &entry.checksum
            && !checksum_matches(migration, recorded)
        {
            if migration.version.is_repeatable() {
                repeatable_changed.push(migration);
                continue;
            }
            if !options.accept_changed {
                plan.disagreements.push(Disagreement {
                    kind: DisagreementKind::Changed,
                    what: format!("version {}", migration.version),
                    detail: format!(
                        "{} changed since {tool} applied it ({}: {})",
                        migration.file().display(),
                        entry.row,
                        describe_checksum(recorded)
                    ),
                    help: "restore the file as it was applied (from version control), or adopt with --accept-changed if the change does not matter to databases that already ran it".to_owned(),
                });
                continue;
            }
        }
        applied.insert(migration.version.clone(), (migration, Some(entry)));
    }
    // golang-migrate's one version, and Flyway's baseline, stand for every version up to them.
    for (through, source) in [
        (
            &foreign.applied_through,
            "holds one row, the newest version applied:",
        ),
        (&foreign.baseline, "has a baseline at version"),
    ] {
        let Some(through) = through else { continue };
        let mut counted = 0;
        for migration in set
            .migrations
            .iter()
            .filter(|m| !m.version.is_repeatable() && m.version <= *through)
        {
            applied.entry(migration.version.clone()).or_insert_with(|| {
                counted += 1;
                (migration, None)
            });
        }
        if counted > 0 {
            plan.notes.push(format!(
                "{counted} migration(s) up to {through} count as applied: {table} {source} {through}"
            ));
        }
    }
    for (version, (migration, entry)) in &applied {
        if state.get(version).is_some() {
            plan.already_recorded.push(version.to_string());
            continue;
        }
        let from = match entry {
            Some(entry) => format!("{}{}", entry.row, applied_at(entry)),
            None => table.clone(),
        };
        plan.adopted.push(Adopted {
            version: version.to_string(),
            name: migration.name.clone(),
            file: migration.file().display().to_string(),
            note: format!("adopted from {tool} ({from}){reason}"),
            checksum: Some(migration.up.checksum.to_string()),
            transactional: migration.up.options.transaction,
        });
    }
    plan.adopted.sort_by(
        |a, b| match (Version::parse(&a.version), Version::parse(&b.version)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => a.version.cmp(&b.version),
        },
    );
    let newest_adopted = applied.keys().filter(|v| !v.is_repeatable()).max().cloned();
    for migration in &set.migrations {
        if applied.contains_key(&migration.version) {
            continue;
        }
        let changed = repeatable_changed
            .iter()
            .any(|m| m.version == migration.version);
        let reason = if changed {
            Some(format!(
                "its file changed since {tool} last applied it: `up` applies it again"
            ))
        } else if newest_adopted
            .as_ref()
            .is_some_and(|newest| migration.version < *newest && !migration.version.is_repeatable())
        {
            Some("older than the newest adopted version: `up` applies it only with --allow-out-of-order".to_owned())
        } else {
            None
        };
        if state.is_applied(&migration.version) && !changed {
            continue;
        }
        plan.pending.push(Pending {
            version: migration.version.to_string(),
            file: migration.file().display().to_string(),
            reason,
        });
    }
    plan
}

/// The migration a history row names.
fn find<'a>(
    set: &'a MigrationSet,
    entry: &ForeignApplied,
    sqitch_plan: Option<&SqitchPlan>,
) -> Option<&'a Migration> {
    match &entry.key {
        ForeignKey::Version { version } => set.get(&Version::parse(version)?),
        ForeignKey::Repeatable { description } => set.get(&Version::repeatable(description)),
        ForeignKey::Name { name, position } => match position {
            // sqitch: the change at that position of the plan, if it has that name.
            Some(position) => {
                let change = sqitch_plan?.changes.get(position.checked_sub(1)?)?;
                (change.name == *name)
                    .then(|| set.get(&Version::parse(&change.position.to_string())?))
                    .flatten()
            }
            // Prisma: the migration whose directory has that name.
            None => set.migrations.iter().find(|m| {
                m.layout == Layout::Prisma
                    && m.file()
                        .parent()
                        .and_then(|dir| dir.file_name())
                        .is_some_and(|dir| dir == name.as_str())
            }),
        },
    }
}

/// Whether the file is as the other tool's checksum says it was when applied.
fn checksum_matches(migration: &Migration, recorded: &ForeignChecksum) -> bool {
    let Ok(bytes) = std::fs::read(&migration.up.path) else {
        return false;
    };
    match recorded {
        ForeignChecksum::Flyway(checksum) => flyway_checksum(&bytes) == *checksum,
        ForeignChecksum::Prisma(checksum) => prisma_checksum_matches(&bytes, checksum),
        ForeignChecksum::Sqitch(hash) => sqitch_script_hash(&bytes) == *hash,
    }
}

fn describe_checksum(checksum: &ForeignChecksum) -> String {
    match checksum {
        ForeignChecksum::Flyway(value) => format!("recorded CRC-32 {value}"),
        ForeignChecksum::Prisma(value) => format!("recorded SHA-256 {value}"),
        ForeignChecksum::Sqitch(value) => format!("recorded script SHA-1 {value}"),
    }
}

fn applied_at(entry: &ForeignApplied) -> String {
    entry
        .applied_at
        .as_ref()
        .map(|at| format!(", applied {at}"))
        .unwrap_or_default()
}

/// The version to record for a migration whose file is gone.
fn missing_version(key: &ForeignKey) -> String {
    match key {
        ForeignKey::Version { version } => version.clone(),
        ForeignKey::Repeatable { description } => Version::repeatable(description).to_string(),
        ForeignKey::Name { name, position } => match position {
            Some(position) => position.to_string(),
            None => name
                .split_once('_')
                .map_or(name.as_str(), |(version, _)| version)
                .to_owned(),
        },
    }
}
