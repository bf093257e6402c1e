//! PostgreSQL's table-level lock modes and their conflict matrix, as data.
//!
//! The matrix is the one in the PostgreSQL manual ("Conflicting Lock Modes"); what a mode blocks
//! for an application follows from it: reads take ACCESS SHARE, `SELECT … FOR UPDATE/SHARE` takes
//! ROW SHARE, writes take ROW EXCLUSIVE, and maintenance and most schema changes take SHARE UPDATE
//! EXCLUSIVE or stronger.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

/// A table-level lock mode, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

/// Per mode: its SQL name, its `pg_locks.mode` name, and the modes it conflicts with (as a bit
/// set: bit `i` stands for `LockMode::ALL[i]`).
const MODES: [(LockMode, &str, &str, u8); 8] = [
    (
        LockMode::AccessShare,
        "ACCESS SHARE",
        "AccessShareLock",
        0b1000_0000,
    ),
    (LockMode::RowShare, "ROW SHARE", "RowShareLock", 0b1100_0000),
    (
        LockMode::RowExclusive,
        "ROW EXCLUSIVE",
        "RowExclusiveLock",
        0b1111_0000,
    ),
    (
        LockMode::ShareUpdateExclusive,
        "SHARE UPDATE EXCLUSIVE",
        "ShareUpdateExclusiveLock",
        0b1111_1000,
    ),
    (LockMode::Share, "SHARE", "ShareLock", 0b1110_1100),
    (
        LockMode::ShareRowExclusive,
        "SHARE ROW EXCLUSIVE",
        "ShareRowExclusiveLock",
        0b1111_1100,
    ),
    (
        LockMode::Exclusive,
        "EXCLUSIVE",
        "ExclusiveLock",
        0b1111_1110,
    ),
    (
        LockMode::AccessExclusive,
        "ACCESS EXCLUSIVE",
        "AccessExclusiveLock",
        0b1111_1111,
    ),
];

/// Everyday commands and the mode each takes, weakest first: a lock blocks a command when it
/// conflicts with the command's mode.
const COMMANDS: [(&str, LockMode); 6] = [
    ("SELECT", LockMode::AccessShare),
    ("SELECT FOR UPDATE/SHARE", LockMode::RowShare),
    ("INSERT/UPDATE/DELETE", LockMode::RowExclusive),
    (
        "VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY",
        LockMode::ShareUpdateExclusive,
    ),
    ("CREATE INDEX", LockMode::Share),
    ("ALTER TABLE, DROP, TRUNCATE", LockMode::AccessExclusive),
];

/// What an application would be kept from doing on a table while a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Blocks {
    /// `SELECT` (ACCESS SHARE).
    pub reads: bool,
    /// `SELECT … FOR UPDATE / FOR SHARE` (ROW SHARE).
    pub locking_reads: bool,
    /// `INSERT`, `UPDATE`, `DELETE`, `MERGE` (ROW EXCLUSIVE).
    pub writes: bool,
    /// Other schema changes, `VACUUM`, `ANALYZE`, `CREATE INDEX CONCURRENTLY` (SHARE UPDATE EXCLUSIVE).
    pub ddl: bool,
}

impl Blocks {
    /// "reads, writes and schema changes", for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.reads {
            parts.push("reads");
        }
        if self.writes {
            parts.push("writes");
        } else if self.locking_reads {
            parts.push("SELECT FOR UPDATE");
        }
        if self.ddl {
            parts.push("schema changes");
        }
        match parts.as_slice() {
            [] => "nothing an application does".to_owned(),
            [one] => (*one).to_owned(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }
}

impl LockMode {
    pub const ALL: [LockMode; 8] = [
        LockMode::AccessShare,
        LockMode::RowShare,
        LockMode::RowExclusive,
        LockMode::ShareUpdateExclusive,
        LockMode::Share,
        LockMode::ShareRowExclusive,
        LockMode::Exclusive,
        LockMode::AccessExclusive,
    ];

    fn row(self) -> &'static (LockMode, &'static str, &'static str, u8) {
        &MODES[self as usize]
    }

    /// The name used in SQL and in the manual: `ACCESS EXCLUSIVE`.
    pub fn sql_name(self) -> &'static str {
        self.row().1
    }

    /// The name `pg_locks.mode` shows: `AccessExclusiveLock`.
    pub fn pg_locks_name(self) -> &'static str {
        self.row().2
    }

    /// Whether a lock in this mode and one in `other` cannot be held at once by two transactions.
    pub fn conflicts_with(self, other: LockMode) -> bool {
        self.row().3 & (1 << other as u8) != 0
    }

    /// What this lock keeps other sessions from doing on the table.
    pub fn blocks(self) -> Blocks {
        Blocks {
            reads: self.conflicts_with(LockMode::AccessShare),
            locking_reads: self.conflicts_with(LockMode::RowShare),
            writes: self.conflicts_with(LockMode::RowExclusive),
            ddl: self.conflicts_with(LockMode::ShareUpdateExclusive),
        }
    }

    /// Whether the lock stops the ordinary traffic of an application (writes or reads), so that
    /// waiting for it, or holding it long, is an outage.
    pub fn blocks_traffic(self) -> bool {
        self.blocks().writes
    }

    /// The everyday commands this lock blocks on its table while held (`SELECT`,
    /// `INSERT/UPDATE/DELETE`, ...), as a rehearsal reports them.
    pub fn blocked_commands(self) -> Vec<&'static str> {
        COMMANDS
            .iter()
            .filter(|(_, needs)| self.conflicts_with(*needs))
            .map(|(command, _)| *command)
            .collect()
    }

    /// What this lock blocks, in the fewest words, for a table cell: `reads and writes`,
    /// `writes`, `schema changes`, `ALTER/DROP` or `nothing`.
    pub fn blocks_summary(self) -> &'static str {
        if self.conflicts_with(LockMode::AccessShare) {
            "reads and writes"
        } else if self.conflicts_with(LockMode::RowExclusive) {
            "writes"
        } else if self.conflicts_with(LockMode::ShareUpdateExclusive) {
            "schema changes"
        } else if self.conflicts_with(LockMode::AccessExclusive) {
            "ALTER/DROP"
        } else {
            "nothing"
        }
    }

    /// The mode for a `pg_locks.mode` name.
    pub fn from_pg_locks_name(name: &str) -> Option<LockMode> {
        MODES.iter().find(|row| row.2 == name).map(|row| row.0)
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_name())
    }
}

impl FromStr for LockMode {
    type Err = String;

    /// Accepts the SQL name in any case, with spaces, dashes or underscores, or the `pg_locks` name.
    fn from_str(text: &str) -> Result<LockMode, String> {
        let wanted: String = text
            .chars()
            .map(|c| {
                if c == '-' || c == '_' {
                    ' '
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        MODES
            .iter()
            .find(|row| row.1 == wanted.trim() || row.2 == text)
            .map(|row| row.0)
            .ok_or_else(|| format!("`{text}` is not a PostgreSQL lock mode"))
    }
}

impl TryFrom<String> for LockMode {
    type Error = String;

    fn try_from(text: String) -> Result<LockMode, String> {
        text.parse()
    }
}

impl Serialize for LockMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.sql_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_is_symmetric() {
        for a in LockMode::ALL {
            for b in LockMode::ALL {
                assert_eq!(a.conflicts_with(b), b.conflicts_with(a), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn matches_the_manual() {
        use LockMode::*;
        assert!(!AccessShare.conflicts_with(Exclusive));
        assert!(AccessShare.conflicts_with(AccessExclusive));
        assert!(!ShareUpdateExclusive.conflicts_with(RowExclusive));
        assert!(ShareUpdateExclusive.conflicts_with(ShareUpdateExclusive));
        assert!(!Share.conflicts_with(Share));
        assert!(Share.conflicts_with(RowExclusive));
        assert!(ShareRowExclusive.conflicts_with(ShareRowExclusive));
        assert!(!RowExclusive.conflicts_with(RowExclusive));
    }

    #[test]
    fn says_what_each_mode_blocks() {
        assert_eq!(
            LockMode::AccessExclusive.blocks().describe(),
            "reads, writes and schema changes"
        );
        assert_eq!(
            LockMode::Share.blocks().describe(),
            "writes and schema changes"
        );
        assert_eq!(
            LockMode::Exclusive.blocks().describe(),
            "writes and schema changes"
        );
        assert_eq!(
            LockMode::ShareUpdateExclusive.blocks().describe(),
            "schema changes"
        );
        assert_eq!(
            LockMode::AccessShare.blocks().describe(),
            "nothing an application does"
        );
        assert!(!LockMode::ShareUpdateExclusive.blocks_traffic());
        assert!(LockMode::ShareRowExclusive.blocks_traffic());
    }

    #[test]
    fn names_what_each_mode_blocks_in_few_words() {
        assert_eq!(
            LockMode::AccessExclusive.blocks_summary(),
            "reads and writes"
        );
        assert_eq!(LockMode::Share.blocks_summary(), "writes");
        assert_eq!(LockMode::ShareRowExclusive.blocks_summary(), "writes");
        assert_eq!(
            LockMode::ShareUpdateExclusive.blocks_summary(),
            "schema changes"
        );
        assert_eq!(LockMode::AccessShare.blocks_summary(), "ALTER/DROP");
        assert!(
            LockMode::Share
                .blocked_commands()
                .contains(&"INSERT/UPDATE/DELETE")
        );
        assert!(!LockMode::Share.blocked_commands().contains(&"SELECT"));
    }

    #[test]
    fn parses_names() {
        assert_eq!(
            "share row exclusive".parse(),
            Ok(LockMode::ShareRowExclusive)
        );
        assert_eq!("ACCESS_EXCLUSIVE".parse(), Ok(LockMode::AccessExclusive));
        assert_eq!(
            LockMode::from_pg_locks_name("ShareLock"),
            Some(LockMode::Share)
        );
        assert!("SHARED".parse::<LockMode>().is_err());
    }
}
