//! Comparing two snapshots: every object only on one side, and every property that differs,
//! named so a reader knows what to look at (`index users_email_idx on table public.users`).
//! Differences only in column order are kept apart, because a column dropped and re-added
//! lands at the end and nothing but `SELECT *` notices.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Snapshot;
use super::catalog::ordered_columns;

/// The kinds of top-level objects, as the snapshot's fields name them, with singular names.
const KINDS: [(&str, &str); 7] = [
    ("schemas", "schema"),
    ("extensions", "extension"),
    ("types", "type"),
    ("sequences", "sequence"),
    ("tables", "table"),
    ("views", "view"),
    ("functions", "function"),
];

/// Sub-objects of tables and views.
const MEMBER_KINDS: [(&str, &str); 5] = [
    ("columns", "column"),
    ("constraints", "constraint"),
    ("indexes", "index"),
    ("triggers", "trigger"),
    ("policies", "policy"),
];

/// How two schemas differ: `left` is the first snapshot, `right` the second.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaDiff {
    pub differences: Vec<Difference>,
    /// Tables and views whose shared columns come in another order.
    pub column_order: Vec<ColumnOrderDifference>,
}

impl SchemaDiff {
    /// No difference at all, column order included.
    pub fn is_empty(&self) -> bool {
        self.differences.is_empty() && self.column_order.is_empty()
    }
}

/// One object only on one side, or one property of an object that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `table`, `column`, `index`, `constraint`, `view`, `function`, ...
    pub kind: String,
    /// The object's name (schema-qualified for top-level objects).
    pub name: String,
    /// The object it belongs to, such as `table public.users`, for columns, indexes,
    /// constraints, triggers and policies.
    pub parent: Option<String>,
    /// The property that differs; `None` when the whole object exists on one side only.
    pub property: Option<String>,
    /// The value on the left (`None`: absent there).
    pub left: Option<String>,
    /// The value on the right (`None`: absent there).
    pub right: Option<String>,
}

impl Difference {
    /// `index users_email_idx on table public.users`.
    pub fn object(&self) -> String {
        match &self.parent {
            Some(parent) => format!("{} {} on {parent}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// `public.users.email` for members, the name for top-level objects.
    pub fn qualified_name(&self) -> String {
        match &self.parent {
            Some(parent) => {
                let parent_name = parent.split_once(' ').map_or(parent.as_str(), |(_, n)| n);
                format!("{parent_name}.{}", self.name)
            }
            None => self.name.clone(),
        }
    }
}

/// A table or view whose columns come in another order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnOrderDifference {
    /// `table public.users`.
    pub object: String,
    /// The shared columns in the left snapshot's order.
    pub left: Vec<String>,
    /// The same columns in the right snapshot's order.
    pub right: Vec<String>,
}

/// Compares two snapshots.
pub fn diff(left: &Snapshot, right: &Snapshot) -> SchemaDiff {
    let mut result = SchemaDiff::default();
    let (left_value, right_value) = (to_object(left), to_object(right));
    for (field, kind) in KINDS {
        compare_collection(
            kind,
            None,
            left_value.get(field),
            right_value.get(field),
            &mut result.differences,
        );
    }
    for (name, left_table) in &left.tables {
        if let Some(right_table) = right.tables.get(name) {
            column_order(
                format!("table {name}"),
                ordered_columns(&left_table.columns),
                ordered_columns(&right_table.columns),
                &mut result.column_order,
            );
        }
    }
    for (name, left_view) in &left.views {
        if let Some(right_view) = right.views.get(name) {
            column_order(
                format!("view {name}"),
                ordered_columns(&left_view.columns),
                ordered_columns(&right_view.columns),
                &mut result.column_order,
            );
        }
    }
    result
}

fn to_object(snapshot: &Snapshot) -> Map<String, Value> {
    match serde_json::to_value(snapshot) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn compare_collection(
    kind: &str,
    parent: Option<&str>,
    left: Option<&Value>,
    right: Option<&Value>,
    out: &mut Vec<Difference>,
) {
    let empty = Map::new();
    let left = left.and_then(Value::as_object).unwrap_or(&empty);
    let right = right.and_then(Value::as_object).unwrap_or(&empty);
    let mut names: Vec<&String> = left.keys().chain(right.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        match (left.get(name), right.get(name)) {
            (Some(left), Some(right)) => compare_object(kind, name, parent, left, right, out),
            (left, right) => out.push(Difference {
                kind: kind.to_owned(),
                name: name.clone(),
                parent: parent.map(str::to_owned),
                property: None,
                left: left.map(|value| summary(kind, value)),
                right: right.map(|value| summary(kind, value)),
            }),
        }
    }
}

fn compare_object(
    kind: &str,
    name: &str,
    parent: Option<&str>,
    left: &Value,
    right: &Value,
    out: &mut Vec<Difference>,
) {
    let (Some(left), Some(right)) = (left.as_object(), right.as_object()) else {
        return;
    };
    let this = format!("{kind} {name}");
    for (property, left_value) in left {
        let right_value = right.get(property).unwrap_or(&Value::Null);
        if let Some((_, member_kind)) = MEMBER_KINDS.iter().find(|(field, _)| field == property) {
            compare_collection(
                member_kind,
                Some(&this),
                Some(left_value),
                Some(right_value),
                out,
            );
            continue;
        }
        // Column positions are compared as a whole, per table (see `column_order`).
        if property == "position" || left_value == right_value {
            continue;
        }
        out.push(Difference {
            kind: kind.to_owned(),
            name: name.to_owned(),
            parent: parent.map(str::to_owned),
            property: Some(property.replace('_', " ")),
            left: Some(plain(left_value)),
            right: Some(plain(right_value)),
        });
    }
}

fn column_order(
    object: String,
    left: Vec<&str>,
    right: Vec<&str>,
    out: &mut Vec<ColumnOrderDifference>,
) {
    let shared_left: Vec<String> = left
        .iter()
        .filter(|name| right.contains(name))
        .map(|name| (*name).to_owned())
        .collect();
    let shared_right: Vec<String> = right
        .iter()
        .filter(|name| left.contains(name))
        .map(|name| (*name).to_owned())
        .collect();
    if shared_left != shared_right {
        out.push(ColumnOrderDifference {
            object,
            left: shared_left,
            right: shared_right,
        });
    }
}

/// A value as text: strings as they are, lists joined, the rest as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) if text.is_empty() => "(none)".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "(none)".to_owned(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// What an object is, in one line, for an object that exists on one side only.
fn summary(kind: &str, value: &Value) -> String {
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default();
    match kind {
        "column" => {
            let mut text = field("type").to_owned();
            if value.get("not_null") == Some(&Value::Bool(true)) {
                text.push_str(" NOT NULL");
            }
            if !field("default").is_empty() {
                text.push_str(" DEFAULT ");
                text.push_str(field("default"));
            }
            text
        }
        "function" => format!("{} returning {}", field("kind"), field("returns")),
        "table" => format!(
            "{} with {} columns",
            field("kind"),
            value
                .get("columns")
                .and_then(Value::as_object)
                .map_or(0, Map::len)
        ),
        "sequence" => format!("sequence of {}", field("type")),
        "extension" => format!("version {}", field("version")),
        "schema" => format!("owned by {}", field("owner")),
        _ if !field("definition").is_empty() => field("definition").to_owned(),
        _ => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Column, Index, Table};

    fn table(columns: &[(&str, u32, bool)]) -> Table {
        let mut table = Table {
            kind: "table".to_owned(),
            ..Table::default()
        };
        for (name, position, not_null) in columns {
            table.columns.insert(
                (*name).to_owned(),
                Column {
                    position: *position,
                    data_type: "integer".to_owned(),
                    not_null: *not_null,
                    ..Column::default()
                },
            );
        }
        table
    }

    #[test]
    fn equal_snapshots_have_no_difference() {
        let mut snapshot = Snapshot::default();
        snapshot
            .tables
            .insert("public.t".to_owned(), table(&[("a", 1, true)]));
        assert!(diff(&snapshot, &snapshot.clone()).is_empty());
    }

    #[test]
    fn a_lost_not_null_and_a_leftover_index_are_named() {
        let mut before = Snapshot::default();
        before
            .tables
            .insert("public.t".to_owned(), table(&[("a", 1, true)]));
        let mut after = before.clone();
        let t = after.tables.get_mut("public.t").unwrap();
        t.columns.get_mut("a").unwrap().not_null = false;
        t.indexes.insert(
            "t_a_idx".to_owned(),
            Index {
                definition: "CREATE INDEX t_a_idx ON public.t USING btree (a)".to_owned(),
                valid: true,
                ..Index::default()
            },
        );
        let found = diff(&before, &after);
        assert_eq!(found.differences.len(), 2, "{found:#?}");
        let index = &found.differences[1];
        assert_eq!(index.object(), "index t_a_idx on table public.t");
        assert_eq!(index.left, None);
        assert!(index.right.as_deref().unwrap().starts_with("CREATE INDEX"));
        let column = &found.differences[0];
        assert_eq!(column.object(), "column a on table public.t");
        assert_eq!(column.property.as_deref(), Some("not null"));
        assert_eq!(column.qualified_name(), "public.t.a");
        assert_eq!(
            (column.left.as_deref(), column.right.as_deref()),
            (Some("true"), Some("false"))
        );
    }

    #[test]
    fn column_order_alone_is_reported_apart() {
        let mut before = Snapshot::default();
        before.tables.insert(
            "public.t".to_owned(),
            table(&[("a", 1, false), ("b", 2, false)]),
        );
        let mut after = Snapshot::default();
        after.tables.insert(
            "public.t".to_owned(),
            table(&[("b", 1, false), ("a", 2, false)]),
        );
        let found = diff(&before, &after);
        assert!(found.differences.is_empty(), "{found:#?}");
        assert_eq!(found.column_order.len(), 1);
        assert_eq!(found.column_order[0].left, vec!["a", "b"]);
        assert_eq!(found.column_order[0].right, vec!["b", "a"]);
    }
}
