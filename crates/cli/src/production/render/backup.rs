//! Backups: the list, a verification, a restore's preview and a prune.

use safeshift_backup::{Backup, PruneReport, RestorePreview, Verification, human_bytes};

use crate::output::{BOLD, DIM, GREEN, RED, YELLOW, out, styled, table};

/// One backup, for `backup create` and `backup list`.
pub fn backup_rows(backups: &[Backup]) -> Vec<String> {
    let mut rows = vec![
        [
            "FILE",
            "DATABASE",
            "VERSION",
            "SIZE",
            "TAKEN (UTC)",
            "BY",
            "VERIFIED",
        ]
        .iter()
        .map(|h| styled(DIM, h))
        .collect::<Vec<_>>(),
    ];
    for backup in backups {
        let metadata = &backup.metadata;
        rows.push(vec![
            backup.reference(),
            metadata.database.clone(),
            metadata
                .schema_version
                .clone()
                .unwrap_or_else(|| "-".into()),
            human_bytes(metadata.size_bytes),
            metadata.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            metadata.created_by.clone(),
            match &metadata.verified {
                Some(v) if v.ok => styled(GREEN, if v.deep { "deep ok" } else { "ok" }),
                Some(_) => styled(RED, "FAILED"),
                None => "-".to_owned(),
            },
        ]);
    }
    table(&rows)
}

pub fn verification(result: &Verification, say: &dyn Fn(String)) {
    say(format!(
        "  checksum   {} {}",
        if result.checksum_ok {
            styled(GREEN, "ok")
        } else {
            styled(RED, "MISMATCH")
        },
        result.actual_sha256
    ));
    if let Some(contents) = &result.contents {
        say(format!(
            "  contents   {} entries, {} tables, data for {} (pg_restore --list){}",
            contents.entries,
            contents.tables.len(),
            contents.table_data,
            contents
                .dumped_from
                .as_ref()
                .map(|v| format!("; dumped from PostgreSQL {v}"))
                .unwrap_or_default()
        ));
    }
    if let Some(integrity) = &result.integrity {
        say(format!("  integrity  {integrity}"));
    }
    if let Some(deep) = &result.deep {
        say(format!(
            "  deep       restored into {}: {} table(s) compared, {} differ",
            deep.scratch,
            deep.tables_compared,
            deep.mismatches.len()
        ));
    }
    for problem in &result.problems {
        say(format!("  {} {problem}", styled(RED, "problem:")));
    }
}

pub fn restore_preview(preview: &RestorePreview, backup: &Backup, say: &dyn Fn(String)) {
    let metadata = &backup.metadata;
    say(format!(
        "{} {} → {}{}",
        styled(BOLD, "Restore"),
        backup.reference(),
        preview.database,
        if preview.into_new_database {
            " (a new database)"
        } else {
            ""
        }
    ));
    say(format!(
        "  taken {} UTC by {} from {} (server {}), schema version {}",
        metadata.created_at.format("%Y-%m-%d %H:%M:%S"),
        metadata.created_by,
        metadata.source,
        metadata.server_version,
        metadata.schema_version.as_deref().unwrap_or("none")
    ));
    if !preview.into_new_database {
        let bytes: u64 = preview.replaced.iter().map(|t| t.bytes).sum();
        let estimated = preview.replaced.iter().filter(|t| !t.exact).count();
        say(format!(
            "  replaces {} table(s) now holding {}{} with the backup's {} table(s)",
            preview.replaced.len(),
            if estimated > 0 { "about " } else { "" },
            human_bytes(bytes),
            preview.backup_tables.len()
        ));
        for table in preview.replaced.iter().take(20) {
            if table.exact {
                say(format!(
                    "    {} ({})",
                    table.table,
                    human_bytes(table.bytes)
                ));
            } else {
                say(format!(
                    "    {} (about {}: an estimate from the catalog, whose page counts are as old as the \
                     last VACUUM or ANALYZE; the table's lock was not free to read its files)",
                    table.table,
                    human_bytes(table.bytes)
                ));
            }
        }
        if !preview.kept.is_empty() {
            say(format!(
                "  {} not in the backup, left as they are: {}",
                styled(YELLOW, "note:"),
                preview.kept.join(", ")
            ));
        }
    }
}

pub fn prune(report: &PruneReport) {
    for decision in &report.decisions {
        out(format!(
            "{} {} ({})",
            if decision.delete {
                styled(
                    RED,
                    if report.dry_run {
                        "would delete"
                    } else {
                        "deleted"
                    },
                )
            } else {
                styled(GREEN, "kept")
            },
            decision.file,
            decision.reason
        ));
    }
    let deleted = report.decisions.iter().filter(|d| d.delete).count();
    out(format!(
        "{} {deleted} backup(s), {}.",
        if report.dry_run {
            "Would delete"
        } else {
            "Deleted"
        },
        human_bytes(report.freed_bytes)
    ));
}
