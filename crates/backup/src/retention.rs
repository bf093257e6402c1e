//! Which backups `prune` deletes: those beyond the newest `keep` or older than `max_age` (each
//! only when given), per database — but never the newest backup whose last verification passed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Backup;

/// How many backups to keep, and for how long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many of each database's newest backups.
    pub keep: Option<usize>,
    /// Delete backups older than this.
    pub max_age: Option<Duration>,
}

/// Why a backup stays or goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneDecision {
    pub file: String,
    pub database: String,
    pub created_at: DateTime<Utc>,
    pub delete: bool,
    pub reason: String,
}

/// Decides, for backups of any databases, which to delete.
pub fn decide(backups: &[Backup], retention: Retention, now: DateTime<Utc>) -> Vec<PruneDecision> {
    let mut sorted: Vec<&Backup> = backups.iter().collect();
    sorted.sort_by(|a, b| {
        (a.metadata.engine.as_str(), a.metadata.database.as_str())
            .cmp(&(b.metadata.engine.as_str(), b.metadata.database.as_str()))
            .then(b.metadata.created_at.cmp(&a.metadata.created_at))
    });
    let mut decisions = Vec::with_capacity(sorted.len());
    let mut position_in_database = 0usize;
    let mut current: Option<(&str, &str)> = None;
    let mut verified_seen = false;
    for backup in sorted {
        let key = (
            backup.metadata.engine.as_str(),
            backup.metadata.database.as_str(),
        );
        if current != Some(key) {
            current = Some(key);
            position_in_database = 0;
            verified_seen = false;
        }
        let verified_ok = backup.metadata.verified.as_ref().is_some_and(|v| v.ok);
        let newest_verified = verified_ok && !verified_seen;
        verified_seen |= verified_ok;
        let age = (now - backup.metadata.created_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        let beyond_count = retention
            .keep
            .is_some_and(|keep| position_in_database >= keep);
        let too_old = retention.max_age.is_some_and(|max| age > max);
        position_in_database += 1;
        let (delete, reason) = match (newest_verified, beyond_count, too_old) {
            (true, true, _) | (true, _, true) => (
                false,
                "kept: the newest backup of this database that passed verification".to_owned(),
            ),
            (false, true, _) => (
                true,
                format!(
                    "beyond the newest {} of this database",
                    retention.keep.unwrap_or_default()
                ),
            ),
            (false, false, true) => (
                true,
                format!(
                    "older than {}",
                    humanize(retention.max_age.unwrap_or_default())
                ),
            ),
            _ => (false, "kept: within the retention limits".to_owned()),
        };
        decisions.push(PruneDecision {
            file: backup.reference(),
            database: backup.metadata.database.clone(),
            created_at: backup.metadata.created_at,
            delete,
            reason,
        });
    }
    decisions
}

fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(86_400) && seconds > 0 {
        format!("{} day(s)", seconds / 86_400)
    } else if seconds.is_multiple_of(3600) && seconds > 0 {
        format!("{} hour(s)", seconds / 3600)
    } else {
        format!("{seconds} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{Metadata, VerificationRecord};

    fn backup(database: &str, hours_ago: i64, verified: Option<bool>) -> Backup {
        let now = DateTime::parse_from_rfc3339("2025-01-10T00:00:00Z")
            .unwrap()
            .to_utc();
        let created_at = now - chrono::Duration::hours(hours_ago);
        Backup {
            path: format!("/b/{database}-{hours_ago}.dump").into(),
            metadata: Metadata {
                format: 1,
                engine: "postgres".into(),
                database: database.into(),
                source: String::new(),
                server_version: "15".into(),
                schema_version: None,
                created_at,
                created_by: "me".into(),
                tool_version: "safeshift".into(),
                dump_tool: "pg_dump".into(),
                size_bytes: 1,
                sha256: "sha256:0".into(),
                tables: Vec::new(),
                verified: verified.map(|ok| VerificationRecord {
                    at: created_at,
                    deep: false,
                    ok,
                    summary: String::new(),
                }),
            },
        }
    }

    fn deleted(decisions: &[PruneDecision]) -> Vec<&str> {
        decisions
            .iter()
            .filter(|d| d.delete)
            .map(|d| d.file.as_str())
            .collect()
    }

    #[test]
    fn keeps_the_newest_n_per_database() {
        let now = DateTime::parse_from_rfc3339("2025-01-10T00:00:00Z")
            .unwrap()
            .to_utc();
        let backups = vec![
            backup("shop", 1, None),
            backup("shop", 2, None),
            backup("shop", 3, None),
            backup("crm", 5, None),
        ];
        let decisions = decide(
            &backups,
            Retention {
                keep: Some(2),
                max_age: None,
            },
            now,
        );
        assert_eq!(deleted(&decisions), ["shop-3.dump"]);
    }

    #[test]
    fn never_deletes_the_newest_verified_backup() {
        let now = DateTime::parse_from_rfc3339("2025-01-10T00:00:00Z")
            .unwrap()
            .to_utc();
        let backups = vec![
            backup("shop", 1, Some(false)),
            backup("shop", 50, Some(true)),
            backup("shop", 60, Some(true)),
        ];
        let retention = Retention {
            keep: Some(1),
            max_age: Some(Duration::from_secs(24 * 3600)),
        };
        let decisions = decide(&backups, retention, now);
        assert_eq!(deleted(&decisions), ["shop-60.dump"]);
        assert!(decisions[1].reason.contains("passed verification"));
    }

    #[test]
    fn without_limits_nothing_goes() {
        let now = DateTime::parse_from_rfc3339("2025-01-10T00:00:00Z")
            .unwrap()
            .to_utc();
        let backups = vec![backup("shop", 1000, None)];
        assert!(deleted(&decide(&backups, Retention::default(), now)).is_empty());
    }
}
