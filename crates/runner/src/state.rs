//! What the history log says about each version. The log is the single source of truth: the
//! applied set, partial progress and failures are all derived from it, row by row, oldest first.

use std::collections::BTreeMap;

use safeshift_driver::{Direction, HistoryRecord, RecordKind, Status};
use safeshift_source::Version;

/// A non-transactional attempt that stopped part-way, so the next run resumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    pub direction: Direction,
    /// Statements applied (committed) so far.
    pub applied: i64,
    pub total: Option<i64>,
    /// Checksum of the applied statements, to check the file still starts with them.
    pub applied_checksum: Option<String>,
    /// The attempt that stopped.
    pub record: HistoryRecord,
}

/// One version's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionState {
    /// The version as recorded.
    pub version: String,
    pub name: String,
    pub file: String,
    /// Whether the up migration counts as applied (a partially rolled-back one still does).
    pub applied: bool,
    /// The checksum accepted for the applied version (from the apply, or a later repair).
    pub checksum: Option<String>,
    /// The row that applied it (or marked it applied).
    pub applied_record: Option<HistoryRecord>,
    pub partial: Option<Partial>,
    /// The newest failed or interrupted attempt, if it came after the last success.
    pub last_failure: Option<HistoryRecord>,
}

/// The history, folded per version.
#[derive(Debug, Clone, Default)]
pub struct HistoryState {
    pub versions: BTreeMap<Version, VersionState>,
    /// Rows still marked running: an attempt in progress, or one whose runner died.
    pub running: Vec<HistoryRecord>,
    /// Rows whose version is not a version safeshift writes (edited by hand); set aside.
    pub unreadable: Vec<HistoryRecord>,
}

impl HistoryState {
    pub fn from_records(records: &[HistoryRecord]) -> HistoryState {
        let mut state = HistoryState::default();
        for record in records {
            let Some(key) = Version::parse(&record.version) else {
                state.unreadable.push(record.clone());
                continue;
            };
            let entry = state.versions.entry(key).or_insert_with(|| VersionState {
                version: record.version.clone(),
                name: record.name.clone(),
                file: record.file.clone(),
                applied: false,
                checksum: None,
                applied_record: None,
                partial: None,
                last_failure: None,
            });
            entry.name = record.name.clone();
            entry.file = record.file.clone();
            if record.status == Status::Running {
                state.running.push(record.clone());
            }
            match (record.kind, record.status, record.direction) {
                (RecordKind::Migrate | RecordKind::Resolve, Status::Succeeded, Direction::Up) => {
                    entry.applied = true;
                    entry.checksum = record.checksum.clone();
                    entry.applied_record = Some(record.clone());
                    entry.partial = None;
                    entry.last_failure = None;
                }
                (RecordKind::Migrate | RecordKind::Resolve, Status::Succeeded, Direction::Down) => {
                    entry.applied = false;
                    entry.checksum = None;
                    entry.applied_record = None;
                    entry.partial = None;
                    entry.last_failure = None;
                }
                (RecordKind::Repair, Status::Succeeded, _) => {
                    entry.checksum = record.checksum.clone();
                }
                (RecordKind::Migrate, Status::Failed | Status::Running, direction) => {
                    entry.last_failure = Some(record.clone());
                    entry.partial =
                        (!record.transactional && record.statements_applied > 0).then(|| Partial {
                            direction,
                            applied: record.statements_applied,
                            total: record.statements_total,
                            applied_checksum: record.applied_checksum.clone(),
                            record: record.clone(),
                        });
                }
                _ => {}
            }
        }
        state
    }

    pub fn get(&self, version: &Version) -> Option<&VersionState> {
        self.versions.get(version)
    }

    pub fn is_applied(&self, version: &Version) -> bool {
        self.get(version).is_some_and(|v| v.applied)
    }

    /// The newest applied version (repeatable migrations have none).
    pub fn newest_applied(&self) -> Option<&Version> {
        self.applied_newest_first()
            .map(|(version, _)| version)
            .next()
    }

    /// Applied versions, newest first, without repeatable migrations (which are never rolled
    /// back: they are applied again when they change).
    pub fn applied_newest_first(&self) -> impl Iterator<Item = (&Version, &VersionState)> {
        self.versions
            .iter()
            .rev()
            .filter(|(version, v)| v.applied && !version.is_repeatable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn record(
        id: i64,
        version: &str,
        kind: RecordKind,
        direction: Direction,
        status: Status,
    ) -> HistoryRecord {
        HistoryRecord {
            id,
            run_id: "r".into(),
            kind,
            version: version.into(),
            name: "n".into(),
            file: format!("{version}_n.sql"),
            direction,
            status,
            checksum: Some(format!("sha256:{id}")),
            transactional: true,
            statements_total: Some(3),
            statements_applied: 0,
            applied_checksum: None,
            attempt: 1,
            error_sqlstate: None,
            error_message: None,
            error_statement: None,
            error_line: None,
            started_at: Utc::now(),
            finished_at: None,
            duration_ms: None,
            installed_by: "u@h".into(),
            db_user: "db".into(),
            tool_version: "t".into(),
            note: None,
            backup_ref: None,
        }
    }

    #[test]
    fn applied_set_follows_the_log() {
        use Direction::*;
        use RecordKind::*;
        use Status::*;
        let records = vec![
            record(1, "0001", Migrate, Up, Succeeded),
            record(2, "0002", Migrate, Up, Failed),
            record(3, "0002", Migrate, Up, Succeeded),
            record(4, "0003", Migrate, Up, Succeeded),
            record(5, "0003", Migrate, Down, Succeeded),
            record(6, "0001", Repair, Up, Succeeded),
            record(7, "0004", Resolve, Up, Succeeded),
        ];
        let state = HistoryState::from_records(&records);
        let v = |t: &str| Version::parse(t).unwrap();
        assert!(state.is_applied(&v("0001")));
        assert_eq!(
            state.get(&v("0001")).unwrap().checksum.as_deref(),
            Some("sha256:6")
        );
        assert!(state.is_applied(&v("0002")));
        assert!(state.get(&v("0002")).unwrap().last_failure.is_none());
        assert!(!state.is_applied(&v("0003")));
        assert!(state.is_applied(&v("0004")));
        assert_eq!(state.newest_applied(), Some(&v("0004")));
    }

    #[test]
    fn repeatable_migrations_are_never_the_newest_applied_nor_rolled_back() {
        use Direction::*;
        use RecordKind::*;
        use Status::*;
        let records = vec![
            record(1, "0001", Migrate, Up, Succeeded),
            record(2, "R__views", Migrate, Up, Succeeded),
        ];
        let state = HistoryState::from_records(&records);
        assert!(state.is_applied(&Version::repeatable("views")));
        assert_eq!(state.newest_applied(), Version::parse("0001").as_ref());
        let rollback_order: Vec<&str> = state
            .applied_newest_first()
            .map(|(version, _)| version.as_str())
            .collect();
        assert_eq!(rollback_order, ["0001"]);
    }

    #[test]
    fn a_stopped_non_transactional_attempt_is_partial() {
        let mut failed = record(
            1,
            "0001",
            RecordKind::Migrate,
            Direction::Up,
            Status::Failed,
        );
        failed.transactional = false;
        failed.statements_applied = 1;
        let mut running = record(
            2,
            "0002",
            RecordKind::Migrate,
            Direction::Up,
            Status::Running,
        );
        running.transactional = true;
        let state = HistoryState::from_records(&[failed, running]);
        let partial = state
            .get(&Version::parse("0001").unwrap())
            .unwrap()
            .partial
            .clone()
            .unwrap();
        assert_eq!(partial.applied, 1);
        assert!(!state.is_applied(&Version::parse("0001").unwrap()));
        // A transactional attempt that died applied nothing.
        let second = state.get(&Version::parse("0002").unwrap()).unwrap();
        assert!(second.partial.is_none());
        assert!(second.last_failure.is_some());
        assert_eq!(state.running.len(), 1);
    }
}
