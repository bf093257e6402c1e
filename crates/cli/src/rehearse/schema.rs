//! A schema snapshot as an indented outline.

use safeshift_rehearse::{Column, Snapshot, Table};

use crate::output::{BOLD, DIM, styled};

/// Every object of the snapshot, tables with their columns, constraints, indexes and triggers.
pub fn render(snapshot: &Snapshot) -> String {
    let mut lines = Vec::new();
    let counts: Vec<String> = snapshot
        .counts()
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(kind, count)| format!("{count} {kind}"))
        .collect();
    lines.push(styled(DIM, counts.join(", ")));
    for (name, extension) in &snapshot.extensions {
        lines.push(format!(
            "extension {name} {} (schema {})",
            extension.version, extension.schema
        ));
    }
    for (name, schema) in &snapshot.schemas {
        lines.push(format!("schema {name} owner {}", schema.owner));
    }
    for (name, kind) in &snapshot.types {
        lines.push(format!("type {name} {} {}", kind.kind, kind.definition));
    }
    for (name, sequence) in &snapshot.sequences {
        let owned = if sequence.owned_by.is_empty() {
            String::new()
        } else {
            format!(" owned by {}", sequence.owned_by)
        };
        lines.push(format!("sequence {name} {}{owned}", sequence.data_type));
    }
    for (name, table) in &snapshot.tables {
        table_lines(name, table, &mut lines);
    }
    for (name, view) in &snapshot.views {
        let kind = if view.materialized {
            "materialized view"
        } else {
            "view"
        };
        lines.push(styled(BOLD, format!("{kind} {name}")));
        for (column, details) in ordered(&view.columns) {
            lines.push(format!("  {column} {}", details.data_type));
        }
        lines.push(format!(
            "  AS {}",
            view.definition
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        ));
        for index in view.indexes.values() {
            lines.push(format!("  {}", index.definition));
        }
    }
    for (signature, function) in &snapshot.functions {
        lines.push(format!(
            "{} {signature} returns {} language {} {}",
            function.kind, function.returns, function.language, function.volatility
        ));
    }
    lines.join("\n")
}

fn table_lines(name: &str, table: &Table, lines: &mut Vec<String>) {
    let mut heading = format!("{} {name}", table.kind);
    if table.persistence == "unlogged" {
        heading.push_str(" (unlogged)");
    }
    lines.push(styled(BOLD, heading));
    for (column, details) in ordered(&table.columns) {
        let mut line = format!("  {column} {}", details.data_type);
        if details.not_null {
            line.push_str(" NOT NULL");
        }
        if !details.default.is_empty() {
            line.push_str(&format!(" DEFAULT {}", details.default));
        }
        if !details.identity.is_empty() {
            line.push_str(&format!(
                " GENERATED {} AS IDENTITY",
                details.identity.to_uppercase()
            ));
        }
        if !details.generated.is_empty() {
            line.push_str(&format!(
                " GENERATED ALWAYS AS ({}) STORED",
                details.generated
            ));
        }
        lines.push(line);
    }
    for (constraint, details) in &table.constraints {
        let validity = if details.validated {
            ""
        } else {
            " (not validated)"
        };
        lines.push(format!(
            "  constraint {constraint} {}{validity}",
            details.definition
        ));
    }
    for index in table.indexes.values() {
        let validity = if index.valid { "" } else { " (INVALID)" };
        lines.push(format!("  {}{validity}", index.definition));
    }
    for trigger in table.triggers.values() {
        lines.push(format!("  {}", trigger.definition));
    }
    for (policy, details) in &table.policies {
        lines.push(format!(
            "  policy {policy} for {} using {}",
            details.command, details.using
        ));
    }
}

fn ordered(columns: &std::collections::BTreeMap<String, Column>) -> Vec<(&String, &Column)> {
    let mut ordered: Vec<(&String, &Column)> = columns.iter().collect();
    ordered.sort_by_key(|(_, column)| column.position);
    ordered
}
