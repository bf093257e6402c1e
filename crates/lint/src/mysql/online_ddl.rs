//! What MySQL's and MariaDB's online DDL does with each `ALTER TABLE` operation: the cheapest
//! algorithm the server can use (INSTANT, INPLACE, INPLACE with a table rebuild, or COPY) and
//! whether writes to the table may go on meanwhile, per server and version, from the servers'
//! online DDL documentation. Facts that depend on the column being changed (a type change or
//! only a new default) come from the [`Schema`] the earlier migrations built.

use serde::Serialize;
use sqlparser::ast::{
    AlterColumnOperation, AlterTableAlgorithm, AlterTableLock, AlterTableOperation, ColumnDef,
    ColumnOption, DataType, GeneratedExpressionMode, TableConstraint,
};
use sqlparser::tokenizer::Token;

use super::schema::Schema;
use super::target::{MysqlTarget, Server};

/// How the server carries out an operation, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Changes only the data dictionary.
    Instant,
    /// In place without rebuilding the table (an index build, a metadata change).
    Inplace,
    /// In place, rebuilding the whole table.
    InplaceRebuild,
    /// Copies every row into a new table.
    Copy,
}

impl Algorithm {
    /// The `ALGORITHM=` value that asks for it.
    pub fn clause(self) -> &'static str {
        match self {
            Algorithm::Instant => "INSTANT",
            Algorithm::Inplace | Algorithm::InplaceRebuild => "INPLACE",
            Algorithm::Copy => "COPY",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Algorithm::Instant => "INSTANT (metadata only)",
            Algorithm::Inplace => "INPLACE (no table rebuild)",
            Algorithm::InplaceRebuild => "INPLACE with a table rebuild",
            Algorithm::Copy => "COPY (every row copied into a new table)",
        }
    }
}

/// One operation of an `ALTER TABLE`, as the server carries it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// `ADD COLUMN note`, `MODIFY COLUMN email`.
    pub what: String,
    pub algorithm: Algorithm,
    /// Whether writes to the table wait while it runs (a COPY, a FULLTEXT or SPATIAL index, an
    /// AUTO_INCREMENT column): `LOCK=SHARED` at best.
    pub blocks_writes: bool,
    /// Why, when it is not obvious.
    pub note: Option<String>,
    /// It loses data (a dropped column).
    pub destructive: bool,
    /// It renames something running code uses.
    pub renames: bool,
}

impl Operation {
    fn new(what: String, algorithm: Algorithm) -> Operation {
        Operation {
            what,
            blocks_writes: algorithm == Algorithm::Copy,
            algorithm,
            note: None,
            destructive: false,
            renames: false,
        }
    }

    fn note(mut self, note: impl Into<String>) -> Operation {
        self.note = Some(note.into());
        self
    }

    fn blocking_writes(mut self) -> Operation {
        self.blocks_writes = true;
        self
    }
}

/// The `ALGORITHM=` and `LOCK=` clauses of an `ALTER TABLE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clauses {
    pub algorithm: Option<AlterTableAlgorithm>,
    pub lock: Option<AlterTableLock>,
}

/// The operations of an `ALTER TABLE` on `table`, and its clauses.
pub fn operations(
    table: &str,
    alterations: &[AlterTableOperation],
    target: &MysqlTarget,
    schema: &Schema,
) -> (Vec<Operation>, Clauses) {
    let mut clauses = Clauses::default();
    let mut found = Vec::new();
    let drops_primary_key = alterations
        .iter()
        .any(|op| matches!(op, AlterTableOperation::DropPrimaryKey { .. }));
    let adds_primary_key = alterations.iter().any(|op| {
        matches!(
            op,
            AlterTableOperation::AddConstraint {
                constraint: TableConstraint::PrimaryKey(_),
                ..
            }
        )
    });
    for alteration in alterations {
        let operation = match alteration {
            AlterTableOperation::Algorithm { algorithm, .. } => {
                clauses.algorithm = Some(*algorithm);
                continue;
            }
            AlterTableOperation::Lock { lock, .. } => {
                clauses.lock = Some(*lock);
                continue;
            }
            AlterTableOperation::AddColumn {
                column_def,
                column_position,
                ..
            } => add_column(column_def, column_position.is_some(), target),
            AlterTableOperation::DropColumn { column_names, .. } => {
                let names = join_names(column_names.iter().map(|n| n.value.as_str()));
                let mut operation = if target.instant_add_anywhere_and_drop() {
                    Operation::new(format!("DROP COLUMN {names}"), Algorithm::Instant)
                } else {
                    Operation::new(format!("DROP COLUMN {names}"), Algorithm::InplaceRebuild)
                };
                operation.destructive = true;
                operation
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let algorithm = if target.instant_rename_column() {
                    Algorithm::Instant
                } else {
                    Algorithm::Inplace
                };
                let mut operation = Operation::new(
                    format!("RENAME COLUMN {old_column_name} TO {new_column_name}"),
                    algorithm,
                );
                operation.renames = true;
                operation
            }
            AlterTableOperation::ChangeColumn {
                old_name,
                new_name,
                data_type,
                options,
                column_position,
            } => {
                let mut operation = change_column(
                    table,
                    &old_name.value,
                    data_type,
                    options,
                    column_position.is_some(),
                    target,
                    schema,
                );
                operation.what = format!("CHANGE COLUMN {old_name} {new_name}");
                operation.renames = old_name.value != new_name.value;
                operation
            }
            AlterTableOperation::ModifyColumn {
                col_name,
                data_type,
                options,
                column_position,
            } => change_column(
                table,
                &col_name.value,
                data_type,
                options,
                column_position.is_some(),
                target,
                schema,
            ),
            AlterTableOperation::AlterColumn { column_name, op } => match op {
                AlterColumnOperation::SetDefault { .. } | AlterColumnOperation::DropDefault => {
                    Operation::new(
                        format!("ALTER COLUMN {column_name} default"),
                        Algorithm::Instant,
                    )
                }
                other => Operation::new(
                    format!("ALTER COLUMN {column_name} {other}"),
                    Algorithm::Copy,
                ),
            },
            AlterTableOperation::AddConstraint { constraint, .. } => {
                add_constraint(constraint, drops_primary_key)
            }
            AlterTableOperation::DropPrimaryKey { .. } if adds_primary_key => continue,
            AlterTableOperation::DropPrimaryKey { .. } => {
                Operation::new("DROP PRIMARY KEY".into(), Algorithm::Copy)
                    .note("a table without a new primary key is copied")
            }
            AlterTableOperation::DropIndex { name } => {
                Operation::new(format!("DROP INDEX {name}"), Algorithm::Inplace)
            }
            AlterTableOperation::DropForeignKey { name, .. } => {
                Operation::new(format!("DROP FOREIGN KEY {name}"), Algorithm::Inplace)
            }
            AlterTableOperation::DropConstraint { name, .. } => {
                Operation::new(format!("DROP CONSTRAINT {name}"), Algorithm::Inplace)
            }
            AlterTableOperation::RenameTable { table_name } => {
                let mut operation =
                    Operation::new(format!("RENAME TO {table_name}"), Algorithm::Instant);
                operation.renames = true;
                operation
            }
            AlterTableOperation::AutoIncrement { .. } => {
                Operation::new("AUTO_INCREMENT =".into(), Algorithm::Inplace)
            }
            other => Operation::new(other.to_string(), Algorithm::Copy).note(
                "safeshift does not know this operation's online behaviour; assumed a table copy",
            ),
        };
        found.push(operation);
    }
    (found, clauses)
}

fn join_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// Whether a column definition has `AUTO_INCREMENT` (which the MySQL dialect keeps as a
/// dialect-specific option).
pub fn is_auto_increment(options: &[ColumnOption]) -> bool {
    options.iter().any(|option| {
        matches!(option, ColumnOption::DialectSpecific(tokens)
            if tokens.iter().any(|t| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("AUTO_INCREMENT"))))
    })
}

fn is_stored_generated(options: &[ColumnOption]) -> bool {
    options.iter().any(|option| {
        matches!(
            option,
            ColumnOption::Generated {
                generation_expr_mode: Some(GeneratedExpressionMode::Stored),
                ..
            }
        )
    })
}

fn add_column(column: &ColumnDef, positioned: bool, target: &MysqlTarget) -> Operation {
    let what = format!("ADD COLUMN {}", column.name);
    let options: Vec<ColumnOption> = column.options.iter().map(|o| o.option.clone()).collect();
    if is_auto_increment(&options) {
        return Operation::new(what, Algorithm::InplaceRebuild)
            .blocking_writes()
            .note("an AUTO_INCREMENT column is numbered while writes wait (LOCK=SHARED)");
    }
    if is_stored_generated(&options) {
        return Operation::new(what, Algorithm::Copy)
            .note("a STORED generated column is computed for every row in a copy");
    }
    if target.instant_add_anywhere_and_drop() || (target.instant_add_last() && !positioned) {
        Operation::new(what, Algorithm::Instant)
    } else if target.instant_add_last() {
        Operation::new(what, Algorithm::InplaceRebuild).note(format!(
            "{} adds a column instantly only as the last column (no FIRST or AFTER)",
            target.describe()
        ))
    } else {
        Operation::new(what, Algorithm::InplaceRebuild)
    }
}

/// `MODIFY` or `CHANGE` of a column: what changes decides. Unknown columns (created outside the
/// migrations) are assumed to change type.
fn change_column(
    table: &str,
    column: &str,
    data_type: &DataType,
    options: &[ColumnOption],
    positioned: bool,
    target: &MysqlTarget,
    schema: &Schema,
) -> Operation {
    let what = format!("MODIFY COLUMN {column}");
    let nullable = !options.iter().any(|o| matches!(o, ColumnOption::NotNull));
    let Some(before) = schema.column(table, column) else {
        return Operation::new(what, Algorithm::Copy).note(
            "the column's current definition is unknown (not created by these migrations); a type change copies the table",
        );
    };
    let new_type = data_type.to_string().to_ascii_lowercase();
    if new_type != before.data_type {
        if let Some(algorithm) = cheap_type_change(&before.data_type, &new_type, target) {
            return Operation::new(what, algorithm).note(format!(
                "{} to {new_type} keeps the stored format",
                before.data_type
            ));
        }
        return Operation::new(what, Algorithm::Copy).note(format!(
            "changing the type from {} to {new_type} copies the table",
            before.data_type
        ));
    }
    if nullable != before.nullable {
        return Operation::new(what, Algorithm::InplaceRebuild).note(if nullable {
            "allowing NULL rebuilds the table"
        } else {
            "NOT NULL rebuilds the table, checking every row"
        });
    }
    if positioned && !target.instant_reorder() {
        return Operation::new(what, Algorithm::InplaceRebuild)
            .note("moving a column (FIRST, AFTER) rebuilds the table");
    }
    Operation::new(what, Algorithm::Instant).note("only the default, comment or position changes")
}

/// Type changes that keep the stored format: a `VARCHAR` lengthened (MariaDB 10.4 and newer,
/// instantly, with the default `ROW_FORMAT=DYNAMIC`; MySQL in place, only within the same length
/// prefix, up to 255 bytes or above), and `ENUM`/`SET` members added at the end.
fn cheap_type_change(before: &str, after: &str, target: &MysqlTarget) -> Option<Algorithm> {
    let length = |text: &str, prefix: &str| -> Option<u64> {
        text.strip_prefix(prefix)?
            .strip_prefix('(')?
            .strip_suffix(')')?
            .trim()
            .parse()
            .ok()
    };
    if let (Some(old), Some(new)) = (length(before, "varchar"), length(after, "varchar")) {
        if new < old {
            return None;
        }
        if target.is_at_least(Server::Mariadb, (10, 4, 3)) {
            return Some(Algorithm::Instant);
        }
        // utf8mb4 stores up to 4 bytes per character; the prefix grows past 255 bytes.
        let same_prefix = (old * 4 <= 255) == (new * 4 <= 255);
        return same_prefix.then_some(Algorithm::Inplace);
    }
    for kind in ["enum(", "set("] {
        if let (Some(old), Some(new)) = (
            before.strip_prefix(kind).and_then(|t| t.strip_suffix(')')),
            after.strip_prefix(kind).and_then(|t| t.strip_suffix(')')),
        ) && new.starts_with(old)
            && new.len() > old.len()
        {
            return Some(Algorithm::Instant);
        }
    }
    None
}

fn add_constraint(constraint: &TableConstraint, replaces_primary_key: bool) -> Operation {
    match constraint {
        TableConstraint::Index(index) => Operation::new(
            format!(
                "ADD INDEX {}",
                index.name.as_ref().map(|n| n.to_string()).unwrap_or_default()
            )
            .trim_end()
            .to_owned(),
            Algorithm::Inplace,
        ),
        TableConstraint::Unique(_) => Operation::new("ADD UNIQUE".into(), Algorithm::Inplace)
            .note("the build fails if existing rows hold duplicates"),
        TableConstraint::FulltextOrSpatial(index) if index.fulltext => {
            Operation::new("ADD FULLTEXT INDEX".into(), Algorithm::InplaceRebuild)
                .blocking_writes()
                .note("a FULLTEXT index is built while writes wait (LOCK=SHARED)")
        }
        TableConstraint::FulltextOrSpatial(_) => {
            Operation::new("ADD SPATIAL INDEX".into(), Algorithm::Inplace)
                .blocking_writes()
                .note("a SPATIAL index is built while writes wait (LOCK=SHARED)")
        }
        TableConstraint::PrimaryKey(_) => {
            Operation::new("ADD PRIMARY KEY".into(), Algorithm::InplaceRebuild).note(
                if replaces_primary_key {
                    "replacing the primary key rebuilds the table"
                } else {
                    "a new primary key rebuilds the table"
                },
            )
        }
        TableConstraint::ForeignKey(_) => {
            Operation::new("ADD FOREIGN KEY".into(), Algorithm::Copy).note(
                "with foreign_key_checks on, adding a foreign key copies the table to check every row",
            )
        }
        TableConstraint::Check(_) => Operation::new("ADD CHECK".into(), Algorithm::Copy)
            .note("a CHECK constraint is checked against every row in a copy"),
        other => Operation::new(format!("ADD {other}"), Algorithm::Copy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varchar_growth_is_cheap_where_the_server_keeps_its_format() {
        let mysql = MysqlTarget::default_for(Server::Mysql);
        let mariadb = MysqlTarget::default_for(Server::Mariadb);
        assert_eq!(
            cheap_type_change("varchar(20)", "varchar(60)", &mysql),
            Some(Algorithm::Inplace)
        );
        assert_eq!(
            cheap_type_change("varchar(20)", "varchar(100)", &mysql),
            None
        );
        assert_eq!(
            cheap_type_change("varchar(20)", "varchar(300)", &mariadb),
            Some(Algorithm::Instant)
        );
        assert_eq!(
            cheap_type_change("varchar(60)", "varchar(20)", &mariadb),
            None
        );
        assert_eq!(
            cheap_type_change("enum('a','b')", "enum('a','b','c')", &mysql),
            Some(Algorithm::Instant)
        );
        assert_eq!(
            cheap_type_change("enum('a','b')", "enum('c','a','b')", &mysql),
            None
        );
        assert_eq!(cheap_type_change("int", "bigint", &mariadb), None);
    }
}
