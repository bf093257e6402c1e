//! The PostgreSQL session an online operation talks to: the runner's own connection (so a
//! backfill inside a migration runs in the session that holds the run lock), or a client of its
//! own (a standalone backfill, a progress monitor). Everything goes through the simple query
//! protocol, so it also works through PgBouncer.

use safeshift_driver::{DriverError, PostgresDriver, simple_query_rows};

/// Rows as text, `None` for NULL.
pub type Rows = Vec<Vec<Option<String>>>;

/// Something that runs SQL and returns rows as text.
pub trait Session {
    /// Runs `sql` (one or more statements) and returns the rows of those that return rows.
    fn rows(&mut self, sql: &str) -> Result<Rows, DriverError>;

    /// Runs `sql`, ignoring any rows.
    fn run(&mut self, sql: &str) -> Result<(), DriverError> {
        self.rows(sql).map(|_| ())
    }

    /// The first column of the first row, if any.
    fn value(&mut self, sql: &str) -> Result<Option<String>, DriverError> {
        Ok(self
            .rows(sql)?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten()))
    }
}

impl Session for PostgresDriver {
    fn rows(&mut self, sql: &str) -> Result<Rows, DriverError> {
        self.query_rows(sql)
    }
}

impl Session for postgres::Client {
    fn rows(&mut self, sql: &str) -> Result<Rows, DriverError> {
        simple_query_rows(self, sql)
    }
}

/// A name quoted for SQL: `"accounts"`.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal: `'it''s'`.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A duration as a PostgreSQL setting value in milliseconds (`'250ms'`); zero disables.
pub fn setting_ms(duration: std::time::Duration) -> String {
    format!("'{}ms'", duration.as_millis())
}

/// Parses an integer column, treating NULL or garbage as an error that names the query.
pub(crate) fn parse_number<T: std::str::FromStr>(
    value: Option<&str>,
    what: &str,
) -> Result<T, DriverError> {
    value.and_then(|v| v.parse().ok()).ok_or_else(|| {
        DriverError::new(
            safeshift_driver::ErrorKind::Statement,
            format!("unexpected {what} from the server: {value:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_names_and_literals() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(setting_ms(std::time::Duration::from_millis(250)), "'250ms'");
    }
}
