//! PostgreSQL's table-level lock modes as `pg_locks` names them, and what each keeps other
//! sessions from doing (the "Conflicting Lock Modes" table of the manual).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A table-level lock mode, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockMode {
    AccessShareLock,
    RowShareLock,
    RowExclusiveLock,
    ShareUpdateExclusiveLock,
    ShareLock,
    ShareRowExclusiveLock,
    ExclusiveLock,
    AccessExclusiveLock,
}

/// What everyday commands take, strongest last: a lock blocks a command when it conflicts with
/// the mode the command needs.
const COMMANDS: [(&str, LockMode); 6] = [
    ("SELECT", LockMode::AccessShareLock),
    ("SELECT FOR UPDATE/SHARE", LockMode::RowShareLock),
    ("INSERT/UPDATE/DELETE", LockMode::RowExclusiveLock),
    (
        "VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY",
        LockMode::ShareUpdateExclusiveLock,
    ),
    ("CREATE INDEX", LockMode::ShareLock),
    ("ALTER TABLE, DROP, TRUNCATE", LockMode::AccessExclusiveLock),
];

impl LockMode {
    /// The mode named as in `pg_locks.mode` (`AccessExclusiveLock`).
    pub fn from_pg_locks(name: &str) -> Option<LockMode> {
        use LockMode::*;
        Some(match name {
            "AccessShareLock" => AccessShareLock,
            "RowShareLock" => RowShareLock,
            "RowExclusiveLock" => RowExclusiveLock,
            "ShareUpdateExclusiveLock" => ShareUpdateExclusiveLock,
            "ShareLock" => ShareLock,
            "ShareRowExclusiveLock" => ShareRowExclusiveLock,
            "ExclusiveLock" => ExclusiveLock,
            "AccessExclusiveLock" => AccessExclusiveLock,
            _ => return None,
        })
    }

    /// The SQL name (`ACCESS EXCLUSIVE`).
    pub fn sql_name(self) -> &'static str {
        use LockMode::*;
        match self {
            AccessShareLock => "ACCESS SHARE",
            RowShareLock => "ROW SHARE",
            RowExclusiveLock => "ROW EXCLUSIVE",
            ShareUpdateExclusiveLock => "SHARE UPDATE EXCLUSIVE",
            ShareLock => "SHARE",
            ShareRowExclusiveLock => "SHARE ROW EXCLUSIVE",
            ExclusiveLock => "EXCLUSIVE",
            AccessExclusiveLock => "ACCESS EXCLUSIVE",
        }
    }

    /// The modes this one cannot be held together with, by another transaction.
    fn conflicting(self) -> &'static [LockMode] {
        use LockMode::*;
        match self {
            AccessShareLock => &[AccessExclusiveLock],
            RowShareLock => &[ExclusiveLock, AccessExclusiveLock],
            RowExclusiveLock => &[
                ShareLock,
                ShareRowExclusiveLock,
                ExclusiveLock,
                AccessExclusiveLock,
            ],
            ShareUpdateExclusiveLock => &[
                ShareUpdateExclusiveLock,
                ShareLock,
                ShareRowExclusiveLock,
                ExclusiveLock,
                AccessExclusiveLock,
            ],
            ShareLock => &[
                RowExclusiveLock,
                ShareUpdateExclusiveLock,
                ShareRowExclusiveLock,
                ExclusiveLock,
                AccessExclusiveLock,
            ],
            ShareRowExclusiveLock => &[
                RowExclusiveLock,
                ShareUpdateExclusiveLock,
                ShareLock,
                ShareRowExclusiveLock,
                ExclusiveLock,
                AccessExclusiveLock,
            ],
            ExclusiveLock => &[
                RowShareLock,
                RowExclusiveLock,
                ShareUpdateExclusiveLock,
                ShareLock,
                ShareRowExclusiveLock,
                ExclusiveLock,
                AccessExclusiveLock,
            ],
            AccessExclusiveLock => &[
                AccessShareLock,
                RowShareLock,
                RowExclusiveLock,
                ShareUpdateExclusiveLock,
                ShareLock,
                ShareRowExclusiveLock,
                ExclusiveLock,
                AccessExclusiveLock,
            ],
        }
    }

    /// Whether another transaction holding `other` and this one exclude each other.
    pub fn conflicts_with(self, other: LockMode) -> bool {
        self.conflicting().contains(&other)
    }

    /// The everyday commands this lock blocks on its relation while held.
    pub fn blocks(self) -> Vec<&'static str> {
        COMMANDS
            .iter()
            .filter(|(_, needs)| self.conflicts_with(*needs))
            .map(|(command, _)| *command)
            .collect()
    }

    /// In a few words: `reads and writes`, `writes`, `schema changes`.
    pub fn blocks_summary(self) -> &'static str {
        if self.conflicts_with(LockMode::AccessShareLock) {
            "reads and writes"
        } else if self.conflicts_with(LockMode::RowExclusiveLock) {
            "writes"
        } else if self.conflicts_with(LockMode::ShareUpdateExclusiveLock) {
            "schema changes"
        } else if self.conflicts_with(LockMode::AccessExclusiveLock) {
            "ALTER/DROP"
        } else {
            "nothing"
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.sql_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_symmetric() {
        use LockMode::*;
        let all = [
            AccessShareLock,
            RowShareLock,
            RowExclusiveLock,
            ShareUpdateExclusiveLock,
            ShareLock,
            ShareRowExclusiveLock,
            ExclusiveLock,
            AccessExclusiveLock,
        ];
        for a in all {
            for b in all {
                assert_eq!(a.conflicts_with(b), b.conflicts_with(a), "{a:?} / {b:?}");
            }
        }
    }

    #[test]
    fn what_each_mode_blocks() {
        assert_eq!(
            LockMode::AccessExclusiveLock.blocks_summary(),
            "reads and writes"
        );
        assert_eq!(LockMode::ShareLock.blocks_summary(), "writes");
        assert_eq!(LockMode::ShareRowExclusiveLock.blocks_summary(), "writes");
        assert_eq!(
            LockMode::ShareUpdateExclusiveLock.blocks_summary(),
            "schema changes"
        );
        assert_eq!(LockMode::AccessShareLock.blocks_summary(), "ALTER/DROP");
        assert!(
            LockMode::ShareLock
                .blocks()
                .contains(&"INSERT/UPDATE/DELETE")
        );
        assert!(!LockMode::ShareLock.blocks().contains(&"SELECT"));
    }
}
