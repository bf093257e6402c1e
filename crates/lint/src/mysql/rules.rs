//! The MySQL rules: what each statement costs a server serving traffic, graded, with the safe
//! form. The metadata (id, risk, why, what to do) is data, listed in [`MYSQL_RULES`] for
//! `safeshift explain`; the checks are below it.

use sqlparser::ast::{AlterTableAlgorithm, AlterTableLock, ObjectType, Statement as Ast};

use safeshift_source::Statement;

use super::MysqlFinding;
use super::online_ddl::{self, Algorithm, Clauses, Operation};
use super::schema::{Schema, table_key};
use super::target::MysqlTarget;
use crate::risk::Risk;

/// A MySQL rule's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MysqlRule {
    pub id: &'static str,
    pub risk: Risk,
    /// Why it matters.
    pub why: &'static str,
    /// What to do instead.
    pub help: &'static str,
}

/// The findings an online schema change answers (it copies in chunks while writes go on).
pub(super) const ONLINE_SCHEMA_CHANGE_SOLVES: &[&str] =
    &[COPIES.id, BLOCKS_WRITES.id, REBUILDS.id, NOT_STATED.id];

const COPIES: MysqlRule = MysqlRule {
    id: "mysql-alter-copies-table",
    risk: Risk::High,
    why: "the server copies every row into a new table under a metadata lock that lets reads through \
          and makes every write wait until the copy ends",
    help: "run it as an online schema change: put `-- safeshift:online-schema-change` above the statement \
           (pt-online-schema-change copies in throttled chunks while writes go on), or find a form the \
           server can do in place",
};
const BLOCKS_WRITES: MysqlRule = MysqlRule {
    id: "mysql-alter-blocks-writes",
    risk: Risk::High,
    why: "the server changes the table in place, but writes to it wait until it is done (LOCK=SHARED)",
    help: "run it as an online schema change (`-- safeshift:online-schema-change` above the statement), \
           or at a quiet time",
};
const REBUILDS: MysqlRule = MysqlRule {
    id: "mysql-alter-rebuilds-table",
    risk: Risk::Medium,
    why: "the server rebuilds the table in place: writes go on, but it reads and rewrites every row \
          (time, disk, replica lag), and takes an exclusive metadata lock at its start and end",
    help: "state `ALGORITHM=INPLACE, LOCK=NONE` so the server refuses rather than locks; on a large table \
           prefer an online schema change (`-- safeshift:online-schema-change`), which throttles on replica lag",
};
const NOT_AVAILABLE: MysqlRule = MysqlRule {
    id: "mysql-algorithm-not-available",
    risk: Risk::High,
    why: "the statement asks for an ALGORITHM or LOCK the server cannot give this change, so it fails",
    help: "ask for what the server can do (see the algorithm shown), or run an online schema change",
};
const NOT_STATED: MysqlRule = MysqlRule {
    id: "mysql-algorithm-not-stated",
    risk: Risk::Low,
    why: "without ALGORITHM and LOCK the server silently falls back to a slower algorithm or a stronger \
          lock when the fast one is not possible (an older server, a FULLTEXT index, a compressed table)",
    help: "state the algorithm you expect (`ALGORITHM=INSTANT`, or `ALGORITHM=INPLACE, LOCK=NONE`): the \
           server then refuses instead of blocking",
};
const DROPS: MysqlRule = MysqlRule {
    id: "mysql-dropping-data",
    risk: Risk::Medium,
    why: "the data is gone for good, and code still running that reads it fails",
    help: "stop using it in the application first (expand/contract), take a backup, then drop it in a \
           later release",
};
const RENAMES: MysqlRule = MysqlRule {
    id: "mysql-renaming",
    risk: Risk::Medium,
    why: "code still running uses the old name and fails from the moment the rename commits",
    help: "add the new name beside the old one, move the application over, then drop the old one \
           (expand/contract)",
};
const UNBATCHED: MysqlRule = MysqlRule {
    id: "mysql-unbatched-data-change",
    risk: Risk::Medium,
    why: "an UPDATE or DELETE of every row locks every row it touches until it commits, grows the undo \
          log, and replicas apply it as one long event",
    help: "change the rows in batches outside the migration (or a `-- safeshift:backfill`), pausing between them",
};

/// Every MySQL rule.
pub const MYSQL_RULES: &[MysqlRule] = &[
    COPIES,
    BLOCKS_WRITES,
    REBUILDS,
    NOT_AVAILABLE,
    NOT_STATED,
    DROPS,
    RENAMES,
    UNBATCHED,
];

/// The metadata lock a change of `algorithm` takes, and for how long.
fn metadata_lock(algorithm: Algorithm, blocks_writes: bool) -> String {
    match (algorithm, blocks_writes) {
        (Algorithm::Copy, _) | (_, true) => "SHARED_NO_WRITE for the whole change (reads go on, writes wait), \
             then EXCLUSIVE to finish it"
            .to_owned(),
        (Algorithm::Instant, false) => {
            "EXCLUSIVE for a moment: it waits for open transactions that used the table, and everything \
             queues behind it meanwhile"
                .to_owned()
        }
        (_, false) => "EXCLUSIVE at the start and the end only (it waits for open transactions that used \
             the table, and everything queues behind it meanwhile); SHARED_UPGRADABLE between, while \
             reads and writes go on"
            .to_owned(),
    }
}

/// The findings on one parsed statement.
pub(super) fn check(
    ast: &Ast,
    statement: &Statement,
    target: &MysqlTarget,
    schema: &Schema,
) -> Vec<MysqlFinding> {
    let finding = |rule: MysqlRule, message: String| MysqlFinding {
        rule: rule.id,
        risk: rule.risk,
        message,
        table: None,
        algorithm: None,
        blocks_writes: false,
        metadata_lock: "EXCLUSIVE for a moment".to_owned(),
        help: rule.help.to_owned(),
        safe_alternative: None,
        line: statement.line,
        column: statement.column,
        span: statement.span.clone(),
        statement: statement.index,
        suppressed: None,
    };
    let mut findings = Vec::new();
    match ast {
        Ast::AlterTable(alter) => {
            let table = table_key(&alter.name);
            if schema.table(&table).is_some_and(|t| t.new) {
                // Created by this migration: nobody uses it yet.
                return findings;
            }
            let (operations, clauses) =
                online_ddl::operations(&table, &alter.operations, target, schema);
            findings.extend(alter_findings(
                &alter.name.to_string(),
                &operations,
                clauses,
                &statement.sql,
                target,
                finding,
            ));
            for operation in &operations {
                if operation.destructive {
                    let mut dropped = finding(
                        DROPS,
                        format!("{} on `{}` deletes data", operation.what, alter.name),
                    );
                    dropped.table = Some(alter.name.to_string());
                    findings.push(dropped);
                }
                if operation.renames {
                    let mut renamed = finding(
                        RENAMES,
                        format!(
                            "{} on `{}` breaks code that uses the old name",
                            operation.what, alter.name
                        ),
                    );
                    renamed.table = Some(alter.name.to_string());
                    findings.push(renamed);
                }
            }
        }
        Ast::CreateIndex(index) => {
            let table = table_key(&index.table_name);
            if schema.table(&table).is_some_and(|t| t.new) {
                return findings;
            }
            let operation = Operation {
                what: "CREATE INDEX".into(),
                algorithm: Algorithm::Inplace,
                blocks_writes: false,
                note: None,
                destructive: false,
                renames: false,
            };
            findings.extend(alter_findings(
                &index.table_name.to_string(),
                &[operation],
                Clauses::default(),
                &statement.sql,
                target,
                finding,
            ));
        }
        Ast::Drop {
            object_type: ObjectType::Table,
            names,
            temporary: false,
            ..
        } => {
            for name in names {
                if schema.table(&table_key(name)).is_some_and(|t| t.new) {
                    continue;
                }
                let mut dropped = finding(
                    DROPS,
                    format!("DROP TABLE `{name}` deletes the table and its data"),
                );
                dropped.table = Some(name.to_string());
                findings.push(dropped);
            }
        }
        Ast::Truncate(truncate) => {
            for target_table in &truncate.table_names {
                let mut dropped = finding(
                    DROPS,
                    format!("TRUNCATE `{}` deletes every row", target_table.name),
                );
                dropped.table = Some(target_table.name.to_string());
                findings.push(dropped);
            }
        }
        Ast::RenameTable(renames) => {
            for rename in renames {
                let mut renamed = finding(
                    RENAMES,
                    format!(
                        "RENAME TABLE `{}` TO `{}` breaks code that uses the old name",
                        rename.old_name, rename.new_name
                    ),
                );
                renamed.table = Some(rename.old_name.to_string());
                findings.push(renamed);
            }
        }
        Ast::Update(update) if update.selection.is_none() => {
            findings.push(finding(
                UNBATCHED,
                format!("UPDATE without WHERE changes every row of {}", update.table),
            ));
        }
        Ast::Delete(delete) if delete.selection.is_none() => {
            findings.push(finding(
                UNBATCHED,
                "DELETE without WHERE removes every row in one transaction".into(),
            ));
        }
        _ => {}
    }
    findings
}

/// The findings on an `ALTER TABLE` (or `CREATE INDEX`) from what the server does with its
/// operations and what its clauses ask for.
fn alter_findings(
    table: &str,
    operations: &[Operation],
    clauses: Clauses,
    sql: &str,
    target: &MysqlTarget,
    finding: impl Fn(MysqlRule, String) -> MysqlFinding,
) -> Vec<MysqlFinding> {
    let Some(algorithm) = operations.iter().map(|o| o.algorithm).max() else {
        return Vec::new();
    };
    let blocks_writes = operations.iter().any(|o| o.blocks_writes);
    // What decides: the operation that needs the most.
    let deciding = operations
        .iter()
        .find(|o| o.algorithm == algorithm && (o.blocks_writes || !blocks_writes))
        .or_else(|| operations.iter().find(|o| o.algorithm == algorithm))
        .expect("the maximum is one of them");
    let reason = deciding
        .note
        .as_ref()
        .map(|note| format!(" ({note})"))
        .unwrap_or_default();
    let on = format!("on {} ({})", target.describe(), algorithm.describe());
    let with = |mut finding: MysqlFinding| {
        finding.table = Some(table.to_owned());
        finding.algorithm = Some(algorithm);
        finding.blocks_writes = blocks_writes;
        finding.metadata_lock = metadata_lock(algorithm, blocks_writes);
        finding
    };
    let mut findings = Vec::new();
    // A clause asking for less than the change needs makes the statement fail.
    let asked_algorithm = match clauses.algorithm {
        Some(AlterTableAlgorithm::Instant) => Some(Algorithm::Instant),
        Some(AlterTableAlgorithm::Inplace) => Some(Algorithm::InplaceRebuild),
        _ => None,
    };
    let refused = match (asked_algorithm, clauses.lock) {
        (Some(asked), _) if asked < algorithm => Some(format!(
            "ALGORITHM={} cannot do `{}` {on}{reason}: the statement fails",
            asked.clause(),
            deciding.what
        )),
        (_, Some(AlterTableLock::None)) if blocks_writes => Some(format!(
            "LOCK=NONE cannot be given to `{}` {on}{reason}: the statement fails",
            deciding.what
        )),
        _ => None,
    };
    if let Some(message) = refused {
        findings.push(with(finding(NOT_AVAILABLE, message)));
        return findings;
    }
    let copy_forced = clauses.algorithm == Some(AlterTableAlgorithm::Copy);
    if algorithm == Algorithm::Copy || copy_forced {
        let mut found = with(finding(
            COPIES,
            format!(
                "`{}` copies {table} {on}{reason}: writes to {table} wait until the copy ends",
                deciding.what
            ),
        ));
        found.safe_alternative = Some(format!("-- safeshift:online-schema-change\n{sql}"));
        findings.push(found);
    } else if blocks_writes {
        let mut found = with(finding(
            BLOCKS_WRITES,
            format!(
                "`{}` on {table} {on}{reason}: writes wait until it is done",
                deciding.what
            ),
        ));
        found.safe_alternative = Some(format!("-- safeshift:online-schema-change\n{sql}"));
        findings.push(found);
    } else if algorithm == Algorithm::InplaceRebuild {
        let mut found = with(finding(
            REBUILDS,
            format!("`{}` rebuilds {table} {on}{reason}", deciding.what),
        ));
        if clauses.algorithm.is_none() || clauses.lock.is_none() {
            found.safe_alternative = Some(with_clauses(sql, algorithm, clauses));
        }
        findings.push(found);
    } else if clauses.algorithm.is_none() && clauses.lock.is_none() {
        let mut found = with(finding(
            NOT_STATED,
            format!(
                "`{}` on {table} can run {} on {}; say so, or the server falls back silently where it cannot",
                deciding.what,
                algorithm.describe(),
                target.describe()
            ),
        ));
        found.safe_alternative = Some(with_clauses(sql, algorithm, clauses));
        findings.push(found);
    }
    findings
}

/// The statement with the `ALGORITHM` and `LOCK` clauses that make the server refuse rather
/// than fall back: `ALTER TABLE` takes them as comma-separated options, `CREATE INDEX` without
/// commas.
fn with_clauses(sql: &str, algorithm: Algorithm, clauses: Clauses) -> String {
    let create_index = sql.trim_start().to_ascii_uppercase().starts_with("CREATE");
    let separator = if create_index { " " } else { ", " };
    let mut text = sql.trim_end().to_owned();
    if clauses.algorithm.is_none() {
        text.push_str(&format!("{separator}ALGORITHM={}", algorithm.clause()));
    }
    if clauses.lock.is_none() && algorithm != Algorithm::Instant {
        text.push_str(&format!("{separator}LOCK=NONE"));
    }
    text
}
