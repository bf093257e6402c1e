//! Database URLs: which engine they name, and a redacted form that is safe to print.
//!
//! [`DatabaseUrl`] never shows its password: `Display` and `Debug` print the redacted form, and
//! the raw text is only reachable through [`DatabaseUrl::expose_secret`], which drivers call to
//! connect.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{DriverError, ErrorKind};

/// The database engines safeshift drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Postgres,
    Sqlite,
    /// MySQL or MariaDB (the server's version says which).
    Mysql,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Sqlite => "sqlite",
            Engine::Mysql => "mysql",
        }
    }
}

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    redacted: String,
    target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Postgres,
    SqliteFile(PathBuf),
    SqliteMemory,
    Mysql,
}

/// Where a SQLite URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteTarget {
    /// A database file (relative paths are relative to the project directory).
    File(PathBuf),
    /// A private in-memory database.
    Memory,
}

const ACCEPTED: &str = "postgres://user:password@host:5432/database, a libpq key=value string (host=… dbname=…), \
     mysql://user:password@host:3306/database (or mariadb://…), sqlite://relative/path.db, sqlite:///absolute/path.db \
     or sqlite::memory:";

impl DatabaseUrl {
    /// Parses a URL. PostgreSQL: `postgres://` or `postgresql://` URLs and libpq `key=value`
    /// strings. MySQL and MariaDB: `mysql://` or `mariadb://` URLs naming a database. SQLite: `sqlite://path` (relative), `sqlite:///path` (absolute), `sqlite:path`,
    /// `sqlite::memory:`.
    pub fn parse(text: &str) -> Result<DatabaseUrl, DriverError> {
        let text = text.trim();
        let redacted = redact(text);
        let invalid = |message: String| {
            DriverError::new(ErrorKind::InvalidUrl, message)
                .with_hint(format!("accepted forms: {ACCEPTED}"))
        };
        if text.is_empty() {
            return Err(invalid("the database URL is empty".into()));
        }
        let target = if let Some(rest) = text.strip_prefix("sqlite:") {
            let (path, query) = match rest.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (rest, None),
            };
            if let Some(query) = query {
                return Err(invalid(format!(
                    "`{redacted}`: SQLite URLs take no parameters (found `?{query}`)"
                )));
            }
            if path == ":memory:" || path == "//:memory:" {
                Target::SqliteMemory
            } else {
                // sqlite:///abs → /abs ; sqlite://rel → rel ; sqlite:rel → rel
                let path = path.strip_prefix("//").unwrap_or(path);
                if path.is_empty() {
                    return Err(invalid(format!("`{redacted}` names no database file")));
                }
                Target::SqliteFile(PathBuf::from(path))
            }
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Target::Postgres
        } else if let Some(rest) = ["mysql://", "mariadb://"]
            .iter()
            .find_map(|scheme| text.strip_prefix(scheme))
        {
            let path = rest.split_once('?').map_or(rest, |(path, _)| path);
            let database = path.split_once('/').map_or("", |(_, database)| database);
            if database.is_empty() {
                return Err(invalid(format!(
                    "`{redacted}` names no database: MySQL keeps the history in the database the URL names"
                )));
            }
            Target::Mysql
        } else if let Some((scheme, _)) = text.split_once("://") {
            return Err(invalid(format!(
                "unsupported database URL scheme `{scheme}://`"
            )));
        } else if text.contains('=') {
            Target::Postgres
        } else {
            return Err(invalid(format!("`{redacted}` is not a database URL")));
        };
        Ok(DatabaseUrl {
            raw: text.to_owned(),
            redacted,
            target,
        })
    }

    pub fn engine(&self) -> Engine {
        match self.target {
            Target::Postgres => Engine::Postgres,
            Target::SqliteFile(_) | Target::SqliteMemory => Engine::Sqlite,
            Target::Mysql => Engine::Mysql,
        }
    }

    /// The URL with any password replaced by `***`; safe to print and log.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The URL as given, password included. Only for handing to a connection.
    pub fn expose_secret(&self) -> &str {
        &self.raw
    }

    /// The same server and credentials, another database: PostgreSQL replaces the database name
    /// (the URL's path, or `dbname=`); SQLite points at another file (relative to the project).
    pub fn with_database(&self, database: &str) -> Result<DatabaseUrl, DriverError> {
        let raw = match self.target {
            Target::SqliteFile(_) | Target::SqliteMemory => format!("sqlite://{database}"),
            Target::Postgres | Target::Mysql if self.raw.contains("://") => {
                let (base, query) = match self.raw.split_once('?') {
                    Some((base, query)) => (base, Some(query)),
                    None => (self.raw.as_str(), None),
                };
                let authority_start = base.find("://").map_or(0, |i| i + 3);
                let path_start = base[authority_start..]
                    .find('/')
                    .map_or(base.len(), |i| authority_start + i);
                let encoded: String = database
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                let mut url = format!("{}/{encoded}", &base[..path_start]);
                if let Some(query) = query {
                    url.push('?');
                    url.push_str(query);
                }
                url
            }
            Target::Postgres | Target::Mysql => {
                let kept: Vec<&str> = self
                    .raw
                    .split_whitespace()
                    .filter(|pair| !pair.starts_with("dbname="))
                    .collect();
                format!(
                    "{} dbname='{}'",
                    kept.join(" "),
                    database.replace('\\', "\\\\").replace('\'', "\\'")
                )
            }
        };
        DatabaseUrl::parse(&raw)
    }

    /// For SQLite URLs, the database file (resolved against `base` when relative) or memory.
    pub fn sqlite_target(&self, base: &Path) -> Option<SqliteTarget> {
        match &self.target {
            Target::SqliteFile(path) if path.is_absolute() => {
                Some(SqliteTarget::File(path.clone()))
            }
            Target::SqliteFile(path) => Some(SqliteTarget::File(base.join(path))),
            Target::SqliteMemory => Some(SqliteTarget::Memory),
            Target::Postgres | Target::Mysql => None,
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted)
    }
}

/// Replaces passwords in a URL or libpq key=value string with `***`. Used on everything
/// safeshift prints that could hold a connection string, including error messages from drivers.
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    // user:password@ in every URL the text holds.
    let mut search_from = 0;
    while let Some(found) = out[search_from..].find("://") {
        let authority_start = search_from + found + 3;
        let authority_end = out[authority_start..]
            .find(['/', '?', ' ', '\n', '\'', '"'])
            .map_or(out.len(), |i| authority_start + i);
        let authority = &out[authority_start..authority_end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            let password_start = authority_start + colon + 1;
            let password_end = authority_start + at;
            out.replace_range(password_start..password_end, "***");
        }
        search_from = authority_start.min(out.len());
    }
    // password=… as a URL query parameter or a key=value pair.
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(index) = find_password_key(rest) {
        let value_start = index + rest[index..].find('=').map_or(0, |i| i + 1);
        result.push_str(&rest[..value_start]);
        let after = &rest[value_start..];
        let after = after.trim_start();
        let value_len = if let Some(quoted) = after.strip_prefix('\'') {
            // libpq quoting: backslash escapes, closing quote ends the value.
            let mut escaped = false;
            let mut end = quoted.len();
            for (i, c) in quoted.char_indices() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '\'' {
                    end = i + 1;
                    break;
                }
            }
            1 + end
        } else {
            after.find(['&', ' ', '\n', '\t']).unwrap_or(after.len())
        };
        result.push_str("***");
        rest = &after[value_len..];
    }
    result.push_str(rest);
    result
}

fn find_password_key(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let index = from + found;
        let before_ok = index == 0
            || matches!(
                lower.as_bytes()[index - 1],
                b'?' | b'&' | b' ' | b'\t' | b'\n'
            );
        let after = lower[index + "password".len()..].trim_start();
        if before_ok && after.starts_with('=') {
            return Some(index);
        }
        from = index + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_everywhere() {
        assert_eq!(
            redact("postgres://app:s3cr%40t@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(redact("postgres://app@db/shop"), "postgres://app@db/shop");
        assert_eq!(
            redact("postgres://db/shop?password=hunter2&sslmode=require"),
            "postgres://db/shop?password=***&sslmode=require"
        );
        assert_eq!(
            redact("host=db password='a b\\'c' dbname=shop"),
            "host=db password=*** dbname=shop"
        );
        assert_eq!(
            redact("host=db password=plain dbname=shop"),
            "host=db password=*** dbname=shop"
        );
        assert_eq!(
            redact("could not connect to postgres://u:pw@h/d and postgresql://v:pw2@h/e"),
            "could not connect to postgres://u:***@h/d and postgresql://v:***@h/e"
        );
        assert_eq!(
            redact("user:pass@host without scheme"),
            "user:pass@host without scheme"
        );
    }

    #[test]
    fn parses_engines() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@h/d").unwrap().engine(),
            Engine::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("host=h dbname=d").unwrap().engine(),
            Engine::Postgres
        );
        let sqlite = DatabaseUrl::parse("sqlite://shop.db").unwrap();
        assert_eq!(
            sqlite.sqlite_target(Path::new("/p")),
            Some(SqliteTarget::File(PathBuf::from("/p/shop.db")))
        );
        let absolute = DatabaseUrl::parse("sqlite:///var/db/shop.db").unwrap();
        assert_eq!(
            absolute.sqlite_target(Path::new("/p")),
            Some(SqliteTarget::File(PathBuf::from("/var/db/shop.db")))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:")
                .unwrap()
                .sqlite_target(Path::new("/")),
            Some(SqliteTarget::Memory)
        );
    }

    #[test]
    fn mysql_and_mariadb_urls_name_a_database() {
        for url in [
            "mysql://root:pw@h:3306/shop",
            "mariadb://root@h/shop?prefer_socket=false",
        ] {
            assert_eq!(DatabaseUrl::parse(url).unwrap().engine(), Engine::Mysql);
        }
        let error = DatabaseUrl::parse("mysql://root:topsecret@h:3306/").unwrap_err();
        assert!(
            error.message.contains("names no database"),
            "{}",
            error.message
        );
        assert!(!error.to_string().contains("topsecret"));
        assert_eq!(
            DatabaseUrl::parse("mysql://u:pw@h/shop")
                .unwrap()
                .with_database("scratch")
                .unwrap()
                .expose_secret(),
            "mysql://u:pw@h/scratch"
        );
    }

    #[test]
    fn bad_urls_say_what_is_accepted_without_the_password() {
        let error = DatabaseUrl::parse("redis://u:topsecret@h").unwrap_err();
        assert!(!error.to_string().contains("topsecret"));
        assert!(DatabaseUrl::parse("").is_err());
        assert!(DatabaseUrl::parse("shop.db").is_err());
        assert!(DatabaseUrl::parse("sqlite://x.db?mode=rwc").is_err());
    }

    #[test]
    fn another_database_on_the_same_server() {
        let url = DatabaseUrl::parse("postgres://u:pw@h:5/shop?sslmode=disable").unwrap();
        assert_eq!(
            url.with_database("shop copy").unwrap().expose_secret(),
            "postgres://u:pw@h:5/shop%20copy?sslmode=disable"
        );
        let bare = DatabaseUrl::parse("postgres://u@h").unwrap();
        assert_eq!(
            bare.with_database("x").unwrap().expose_secret(),
            "postgres://u@h/x"
        );
        let pairs = DatabaseUrl::parse("host=h dbname=shop user=u").unwrap();
        assert_eq!(
            pairs.with_database("x").unwrap().expose_secret(),
            "host=h user=u dbname='x'"
        );
    }

    #[test]
    fn display_and_debug_are_redacted() {
        let url = DatabaseUrl::parse("postgres://u:topsecret@h/d").unwrap();
        assert!(!format!("{url} {url:?}").contains("topsecret"));
        assert!(url.expose_secret().contains("topsecret"));
    }
}
