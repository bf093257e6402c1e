//! `--expect FILE`: the tables, columns, indexes and constraints each migration should add,
//! change or remove. Anything else the migration does to those kinds of objects, and anything
//! listed that it does not do, is a mismatch.
//!
//! ```yaml
//! migrations:
//!   "0002":                      # the version (quote it: YAML reads 0002 as the number 2)
//!     add:
//!       tables: [invoices]               # public is assumed when no schema is given
//!       columns: [customers.email_verified]
//!       indexes: [invoices.invoices_customer_id_idx]
//!       constraints: [invoices.invoices_customer_fk]
//!     change:
//!       columns: [customers.phone]
//!     remove:
//!       indexes: [customers.customers_legacy_idx]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::connection::split_name;
use crate::error::RehearseError;
use crate::snapshot::SchemaDiff;

/// The expectations file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    migrations: BTreeMap<VersionKey, MigrationExpectation>,
}

/// A version as written in the file: YAML reads an unquoted `0002` as the number 2.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(untagged)]
enum VersionKey {
    Number(u64),
    Text(String),
}

impl VersionKey {
    fn text(&self) -> String {
        match self {
            VersionKey::Number(number) => number.to_string(),
            VersionKey::Text(text) => text.clone(),
        }
    }
}

/// What one migration should do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationExpectation {
    #[serde(default)]
    pub add: ObjectLists,
    #[serde(default)]
    pub change: ObjectLists,
    #[serde(default)]
    pub remove: ObjectLists,
}

/// Objects by kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectLists {
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub indexes: Vec<String>,
    #[serde(default)]
    pub constraints: Vec<String>,
}

const KINDS: [(&str, &str); 4] = [
    ("tables", "table"),
    ("columns", "column"),
    ("indexes", "index"),
    ("constraints", "constraint"),
];
const ACTIONS: [&str; 3] = ["add", "change", "remove"];

impl Expectations {
    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<Expectations, RehearseError> {
        let text = std::fs::read_to_string(path).map_err(|error| RehearseError::Expectations {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
        Expectations::parse(&text).map_err(|message| RehearseError::Expectations {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses YAML text.
    pub fn parse(text: &str) -> Result<Expectations, String> {
        serde_norway::from_str(text).map_err(|error| error.to_string())
    }

    /// The expectation for `version`, if the file has one (keys match as text, or as numbers,
    /// so `0002` and `2` both name version 0002).
    pub fn for_version(&self, version: &str) -> Option<&MigrationExpectation> {
        self.migrations.iter().find_map(|(key, expectation)| {
            same_version(&key.text(), version).then_some(expectation)
        })
    }

    /// Versions named in the file that are not among `versions`: probably a typo.
    pub fn unknown_versions(&self, versions: &[&str]) -> Vec<String> {
        self.migrations
            .keys()
            .map(VersionKey::text)
            .filter(|key| !versions.iter().any(|version| same_version(key, version)))
            .collect()
    }
}

fn same_version(key: &str, version: &str) -> bool {
    key == version
        || matches!((key.parse::<u128>(), version.parse::<u128>()), (Ok(a), Ok(b)) if a == b)
}

impl MigrationExpectation {
    fn list(&self, action: &str, kind: &str) -> &[String] {
        let lists = match action {
            "add" => &self.add,
            "change" => &self.change,
            _ => &self.remove,
        };
        match kind {
            "tables" => &lists.tables,
            "columns" => &lists.columns,
            "indexes" => &lists.indexes,
            _ => &lists.constraints,
        }
    }

    /// The mismatches between this expectation and `changes` (the diff from before `up` to
    /// after it), one sentence each.
    pub fn mismatches(&self, changes: &SchemaDiff) -> Vec<String> {
        let mut actual: BTreeMap<(&str, &str), BTreeSet<String>> = BTreeMap::new();
        for difference in &changes.differences {
            let Some((field, _)) = KINDS.iter().find(|(_, kind)| *kind == difference.kind) else {
                continue;
            };
            let action = match (&difference.property, &difference.left, &difference.right) {
                (None, None, Some(_)) => "add",
                (None, Some(_), None) => "remove",
                _ => "change",
            };
            actual
                .entry((action, field))
                .or_default()
                .insert(normalise(&difference.qualified_name()));
        }
        let mut found = Vec::new();
        for action in ACTIONS {
            for (field, kind) in KINDS {
                let expected: BTreeSet<String> = self
                    .list(action, field)
                    .iter()
                    .map(|name| qualify(name, kind))
                    .collect();
                let empty = BTreeSet::new();
                let observed = actual.get(&(action, field)).unwrap_or(&empty);
                let verb = match action {
                    "add" => "added",
                    "change" => "changed",
                    _ => "removed",
                };
                for name in expected.difference(observed) {
                    found.push(format!(
                        "expected {kind} {name} to be {verb}, but it was not"
                    ));
                }
                for name in observed.difference(&expected) {
                    found.push(format!(
                        "{kind} {name} was {verb}, which the expectations do not list"
                    ));
                }
            }
        }
        found
    }
}

/// A name without identifier quotes.
fn normalise(name: &str) -> String {
    split_name(name).join(".")
}

/// `users.email` → `public.users.email`: the schema is assumed public when missing.
fn qualify(name: &str, kind: &str) -> String {
    let parts = split_name(name);
    let wanted = if kind == "table" { 2 } else { 3 };
    if parts.len() + 1 == wanted {
        format!("public.{}", parts.join("."))
    } else {
        parts.join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Difference;

    fn added(kind: &str, name: &str, parent: Option<&str>) -> Difference {
        Difference {
            kind: kind.to_owned(),
            name: name.to_owned(),
            parent: parent.map(str::to_owned),
            property: None,
            left: None,
            right: Some("x".to_owned()),
        }
    }

    #[test]
    fn a_file_is_parsed_and_matched_by_version() {
        let expectations = Expectations::parse(
            "migrations:\n  \"0002\":\n    add:\n      tables: [invoices]\n  3:\n    remove:\n      columns: [t.c]\n",
        )
        .unwrap();
        assert!(expectations.for_version("0002").is_some());
        assert!(expectations.for_version("0003").is_some());
        assert!(expectations.for_version("0004").is_none());
        assert!(Expectations::parse("migrations:\n  \"1\":\n    ad: {}\n").is_err());
    }

    #[test]
    fn missing_and_unexpected_changes_are_both_mismatches() {
        let expectation: MigrationExpectation =
            serde_norway::from_str("add:\n  tables: [invoices]\n  columns: [customers.phone]\n")
                .unwrap();
        let changes = SchemaDiff {
            differences: vec![
                added("table", "public.invoices", None),
                added("index", "invoices_idx", Some("table public.invoices")),
            ],
            column_order: Vec::new(),
        };
        assert_eq!(
            expectation.mismatches(&changes),
            vec![
                "expected column public.customers.phone to be added, but it was not",
                "index public.invoices.invoices_idx was added, which the expectations do not list",
            ]
        );
    }

    #[test]
    fn quoted_names_are_compared_without_quotes() {
        assert_eq!(normalise("public.\"Order\".\"a.b\""), "public.Order.a.b");
        assert_eq!(qualify("users", "table"), "public.users");
        assert_eq!(qualify("app.users.email", "column"), "app.users.email");
    }
}
