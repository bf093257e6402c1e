//! The relations that existed before a migration: the only ones whose locks and rewrites other
//! sessions feel (objects the migration creates are invisible to them until it commits).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use safeshift_lint::TableName;

use crate::connection::{Connection, text};
use crate::error::RehearseError;

/// What kind of relation a lock or rewrite is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelationKind {
    Table,
    PartitionedTable,
    Index,
    Sequence,
    View,
    MaterializedView,
    ForeignTable,
}

impl RelationKind {
    fn from_relkind(relkind: &str) -> Option<RelationKind> {
        Some(match relkind {
            "r" => RelationKind::Table,
            "p" => RelationKind::PartitionedTable,
            "i" | "I" => RelationKind::Index,
            "S" => RelationKind::Sequence,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            "f" => RelationKind::ForeignTable,
            _ => return None,
        })
    }

    /// `table`, `index`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::Table => "table",
            RelationKind::PartitionedTable => "partitioned table",
            RelationKind::Index => "index",
            RelationKind::Sequence => "sequence",
            RelationKind::View => "view",
            RelationKind::MaterializedView => "materialized view",
            RelationKind::ForeignTable => "foreign table",
        }
    }

    /// Whether rows live in it (so it can be scanned and has statistics).
    pub fn holds_rows(self) -> bool {
        matches!(self, RelationKind::Table | RelationKind::MaterializedView)
    }
}

/// A pre-existing relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// `public.users`, quoted where needed.
    pub name: String,
    /// Its schema and name as the catalog holds them (unquoted), to compare with names a
    /// migration writes.
    pub qualified: TableName,
    pub kind: RelationKind,
    /// For an index, the table it belongs to.
    pub table: Option<String>,
}

/// The relations of a database at one moment, with their file nodes.
#[derive(Debug, Clone, Default)]
pub struct Relations {
    pub by_oid: HashMap<u32, Relation>,
    /// `pg_relation_filenode` per relation with storage.
    pub filenodes: HashMap<u32, u32>,
}

const RELATIONS: &str = r#"
SELECT c.oid, format('%I.%I', n.nspname, c.relname), c.relkind,
       coalesce(pg_relation_filenode(c.oid)::text, ''),
       CASE WHEN t.oid IS NULL THEN '' ELSE format('%I.%I', tn.nspname, t.relname) END,
       n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE c.relkind IN ('r', 'p', 'i', 'I', 'S', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
"#;

impl Relations {
    /// Every user relation of the connected database.
    pub fn read(connection: &mut Connection) -> Result<Relations, RehearseError> {
        let mut relations = Relations::default();
        for row in connection.rows("relations", RELATIONS)? {
            let (Ok(oid), Some(kind)) = (
                text(&row, 0).parse::<u32>(),
                RelationKind::from_relkind(&text(&row, 2)),
            ) else {
                continue;
            };
            if let Ok(filenode) = text(&row, 3).parse::<u32>() {
                relations.filenodes.insert(oid, filenode);
            }
            let table = Some(text(&row, 4)).filter(|table| !table.is_empty());
            relations.by_oid.insert(
                oid,
                Relation {
                    name: text(&row, 1),
                    qualified: TableName::new(Some(&text(&row, 5)), &text(&row, 6)),
                    kind,
                    table,
                },
            );
        }
        Ok(relations)
    }

    /// The OIDs as a SQL array literal, for `= ANY(...)`.
    pub fn oid_array(&self) -> String {
        let oids: Vec<String> = self.by_oid.keys().map(u32::to_string).collect();
        format!("'{{{}}}'::oid[]", oids.join(","))
    }

    /// The OIDs of tables (the relations with scan statistics).
    pub fn table_oids(&self) -> HashSet<u32> {
        self.by_oid
            .iter()
            .filter(|(_, relation)| relation.kind.holds_rows())
            .map(|(oid, _)| *oid)
            .collect()
    }
}
