//! A canonical, diffable description of a database's schema, built from catalog queries (one
//! round trip, no `pg_dump`): every object is keyed by its quoted, schema-qualified name, maps
//! are sorted, and nothing physical (OIDs, file nodes, attribute numbers) is kept, so two
//! databases with the same schema have equal snapshots.

mod catalog;
mod diff;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use diff::{ColumnOrderDifference, Difference, SchemaDiff, diff};

use crate::connection::Connection;
use crate::error::RehearseError;

/// The schemas never described: PostgreSQL's own, and safeshift's history (by default).
pub const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema"];

/// A database's schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub schemas: BTreeMap<String, Schema>,
    pub tables: BTreeMap<String, Table>,
    pub views: BTreeMap<String, View>,
    pub sequences: BTreeMap<String, Sequence>,
    pub functions: BTreeMap<String, Function>,
    pub types: BTreeMap<String, Type>,
    pub extensions: BTreeMap<String, Extension>,
}

/// A schema (namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub owner: String,
    pub grants: Vec<String>,
    pub comment: String,
}

/// A table (ordinary, partitioned or foreign).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// `table`, `partitioned table` or `foreign table`.
    pub kind: String,
    /// `logged`, `unlogged`.
    pub persistence: String,
    pub owner: String,
    pub grants: Vec<String>,
    pub comment: String,
    /// Storage parameters (`fillfactor=70`).
    pub options: Vec<String>,
    /// Parent tables (inheritance or partitioning) and the partition bound.
    pub parents: Vec<String>,
    pub partition_bound: String,
    pub partition_key: String,
    pub row_level_security: bool,
    pub force_row_level_security: bool,
    pub columns: BTreeMap<String, Column>,
    pub constraints: BTreeMap<String, Constraint>,
    pub indexes: BTreeMap<String, Index>,
    pub triggers: BTreeMap<String, Trigger>,
    pub policies: BTreeMap<String, Policy>,
}

/// A column of a table or view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// 1-based position among the columns that exist (dropped ones are not counted).
    pub position: u32,
    /// As `format_type` prints it (`character varying(20)`).
    #[serde(rename = "type")]
    pub data_type: String,
    pub not_null: bool,
    pub default: String,
    /// `always` or `by default` for identity columns, else empty.
    pub identity: String,
    /// The expression of a generated column, else empty.
    pub generated: String,
    /// A collation other than the type's default, else empty.
    pub collation: String,
    pub grants: Vec<String>,
    pub comment: String,
}

/// A table constraint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    /// `primary key`, `unique`, `check`, `foreign key`, `exclusion`, `not null`, `trigger`.
    pub kind: String,
    /// As `pg_get_constraintdef` prints it.
    pub definition: String,
    /// False for a constraint added `NOT VALID` and not validated yet.
    pub validated: bool,
    pub comment: String,
}

/// An index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// As `pg_get_indexdef` prints it.
    pub definition: String,
    pub unique: bool,
    pub primary: bool,
    /// False when a failed `CREATE INDEX CONCURRENTLY` left it INVALID.
    pub valid: bool,
    pub comment: String,
}

/// A trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// As `pg_get_triggerdef` prints it.
    pub definition: String,
    /// `origin`, `disabled`, `replica` or `always` (`pg_trigger.tgenabled`).
    pub enabled: String,
    pub comment: String,
}

/// A row-level security policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub command: String,
    pub permissive: bool,
    pub roles: Vec<String>,
    pub using: String,
    pub with_check: String,
}

/// A view or materialized view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub materialized: bool,
    /// The query, as `pg_get_viewdef` prints it.
    pub definition: String,
    pub owner: String,
    pub grants: Vec<String>,
    pub comment: String,
    pub options: Vec<String>,
    pub columns: BTreeMap<String, Column>,
    pub indexes: BTreeMap<String, Index>,
    pub triggers: BTreeMap<String, Trigger>,
}

/// A sequence (identity columns' sequences are part of their column instead).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    #[serde(rename = "type")]
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub minimum: i64,
    pub maximum: i64,
    pub cache: i64,
    pub cycle: bool,
    /// `table.column` for a sequence `OWNED BY` a column (serial), else empty.
    pub owned_by: String,
    pub owner: String,
    pub grants: Vec<String>,
    pub comment: String,
}

/// A function, procedure or aggregate, keyed by its signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// `function`, `procedure`, `aggregate`, `window`.
    pub kind: String,
    /// The arguments with names and defaults.
    pub arguments: String,
    pub returns: String,
    pub language: String,
    /// MD5 of the body, so a changed body shows without carrying every body around.
    pub body_md5: String,
    pub volatility: String,
    pub strict: bool,
    pub security_definer: bool,
    pub parallel: String,
    pub leakproof: bool,
    /// `SET` clauses (`search_path=public`).
    pub settings: Vec<String>,
    pub owner: String,
    pub grants: Vec<String>,
    pub comment: String,
}

/// A user-defined type: enum, domain, composite or range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Type {
    /// `enum`, `domain`, `composite`, `range`.
    pub kind: String,
    /// Enum labels in order, a domain's base type, a composite's attributes, a range's subtype.
    pub definition: String,
    pub not_null: bool,
    pub default: String,
    /// A domain's constraints, `name definition`.
    pub constraints: Vec<String>,
    pub owner: String,
    pub grants: Vec<String>,
    pub comment: String,
}

/// An installed extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub version: String,
    pub schema: String,
}

/// Which schemas a snapshot leaves out, besides PostgreSQL's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotScope {
    pub excluded_schemas: Vec<String>,
}

impl Default for SnapshotScope {
    /// Leaves out safeshift's history schema.
    fn default() -> SnapshotScope {
        SnapshotScope {
            excluded_schemas: vec!["safeshift".to_owned()],
        }
    }
}

impl Snapshot {
    /// Describes the schema of the database `connection` is connected to, in one round trip.
    pub fn capture(
        connection: &mut Connection,
        scope: &SnapshotScope,
    ) -> Result<Snapshot, RehearseError> {
        catalog::capture(connection, scope)
    }

    /// The snapshot without these tables (`schema.table`, as `format('%I.%I')` writes it) and
    /// the sequences they own: another tool's history tables, left out of a baseline.
    pub fn without_tables(mut self, tables: &[String]) -> Snapshot {
        for table in tables {
            self.tables.remove(table);
            let owned = format!("{table}.");
            self.sequences
                .retain(|_, sequence| !sequence.owned_by.starts_with(&owned));
        }
        self
    }

    /// The snapshot without owners and grants, for comparing a database with a copy built by
    /// another role (a baseline leaves them out).
    pub fn without_ownership(mut self) -> Snapshot {
        for schema in self.schemas.values_mut() {
            schema.owner.clear();
            schema.grants.clear();
        }
        let clear_columns = |columns: &mut BTreeMap<String, Column>| {
            for column in columns.values_mut() {
                column.grants.clear();
            }
        };
        for table in self.tables.values_mut() {
            table.owner.clear();
            table.grants.clear();
            clear_columns(&mut table.columns);
        }
        for view in self.views.values_mut() {
            view.owner.clear();
            view.grants.clear();
            clear_columns(&mut view.columns);
        }
        for sequence in self.sequences.values_mut() {
            sequence.owner.clear();
            sequence.grants.clear();
        }
        for function in self.functions.values_mut() {
            function.owner.clear();
            function.grants.clear();
        }
        for data_type in self.types.values_mut() {
            data_type.owner.clear();
            data_type.grants.clear();
        }
        self
    }

    /// How many objects of each kind, for a one-line summary.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let sum = |count: fn(&Table) -> usize| self.tables.values().map(count).sum::<usize>();
        vec![
            ("schemas", self.schemas.len()),
            ("tables", self.tables.len()),
            ("columns", sum(|t| t.columns.len())),
            ("constraints", sum(|t| t.constraints.len())),
            (
                "indexes",
                sum(|t| t.indexes.len())
                    + self.views.values().map(|v| v.indexes.len()).sum::<usize>(),
            ),
            ("triggers", sum(|t| t.triggers.len())),
            ("views", self.views.len()),
            ("sequences", self.sequences.len()),
            ("functions", self.functions.len()),
            ("types", self.types.len()),
            ("extensions", self.extensions.len()),
        ]
    }
}
