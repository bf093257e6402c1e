//! What the linter is told about the target: PostgreSQL version, rules turned off.

use std::fmt;
use std::str::FromStr;

/// A PostgreSQL major version (`15`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct PgVersion(pub u32);

impl PgVersion {
    /// The version assumed when neither a flag nor a server says otherwise.
    pub const DEFAULT: PgVersion = PgVersion(15);

    /// From `server_version_num` (`150004` → 15).
    pub fn from_server_version_num(number: u32) -> PgVersion {
        PgVersion(number / 10_000)
    }
}

impl Default for PgVersion {
    fn default() -> Self {
        PgVersion::DEFAULT
    }
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for PgVersion {
    type Err = String;

    /// Accepts `15`, `15.4` or `9.6` (which is 9).
    fn from_str(text: &str) -> Result<PgVersion, String> {
        let major = text.trim().split('.').next().unwrap_or("");
        match major.parse::<u32>() {
            Ok(major) if (9..=30).contains(&major) => Ok(PgVersion(major)),
            _ => Err(format!(
                "`{text}` is not a PostgreSQL version; write e.g. 15 or 16.2"
            )),
        }
    }
}

/// Options for a [`crate::Linter`].
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// The PostgreSQL version the migrations will run on.
    pub pg_version: PgVersion,
    /// Rule ids not to run.
    pub disabled_rules: Vec<String>,
    /// How table sizes raise or lower risk, and what no size makes harmless.
    pub policy: crate::policy::RiskPolicy,
    /// The time zone a migration's session starts with, when known (the database's setting):
    /// in UTC, converting between `timestamp` and `timestamptz` rewrites nothing.
    pub time_zone: Option<String>,
    /// The database's column types, for tables the migrations do not create, so a type change
    /// of such a column is judged against its real type.
    pub database_columns: Option<std::sync::Arc<crate::schema::DatabaseColumns>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!("16.2".parse(), Ok(PgVersion(16)));
        assert_eq!("10".parse(), Ok(PgVersion(10)));
        assert!("sixteen".parse::<PgVersion>().is_err());
        assert_eq!(PgVersion::from_server_version_num(150004), PgVersion(15));
    }
}
