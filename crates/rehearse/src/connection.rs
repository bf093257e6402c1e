//! One connection to a PostgreSQL database, spoken through the simple query protocol (so it
//! also works through a transaction pooler), with rows returned as text.

use postgres::SimpleQueryMessage;
use safeshift_driver::{ConnectOptions, DatabaseUrl, Driver, DriverError, PostgresDriver};

use crate::error::RehearseError;

/// The rows of one result set, every value as text (`None` for NULL).
pub type Rows = Vec<Vec<Option<String>>>;

/// A connection: the driver for statements (so errors are classified and redacted the same
/// way as when migrations are applied), its client for catalog queries.
pub struct Connection {
    driver: PostgresDriver,
}

impl Connection {
    /// Connects as `application_name`.
    pub fn open(url: &DatabaseUrl, application_name: &str) -> Result<Connection, RehearseError> {
        let options = ConnectOptions {
            application_name: application_name.to_owned(),
            create: false,
            ..ConnectOptions::default()
        };
        let driver = PostgresDriver::connect(url, &options)
            .map_err(|error| RehearseError::database("connecting", error))?;
        Ok(Connection { driver })
    }

    /// A second connection to the same database with the same settings.
    pub fn another(&self) -> Result<postgres::Client, RehearseError> {
        self.driver
            .connect_again()
            .map_err(|error| RehearseError::database("opening a second connection", error))
    }

    /// The server's `server_version_num` (150018).
    pub fn server_version_number(&self) -> u32 {
        self.driver.server().version_number
    }

    /// The server's version as it reports it (`15.18`).
    pub fn server_version(&self) -> &str {
        &self.driver.server().version
    }

    /// Runs SQL the way a migration statement runs.
    pub fn execute(&mut self, sql: &str) -> Result<(), DriverError> {
        self.driver.execute(sql)
    }

    /// Runs one or more queries and returns each result set's rows.
    pub fn result_sets(
        &mut self,
        what: &'static str,
        sql: &str,
    ) -> Result<Vec<Rows>, RehearseError> {
        let messages = self
            .driver
            .client()
            .simple_query(sql)
            .map_err(|error| catalog_error(what, &error))?;
        Ok(result_sets(messages))
    }

    /// Runs one query and returns its rows.
    pub fn rows(&mut self, what: &'static str, sql: &str) -> Result<Rows, RehearseError> {
        Ok(self
            .result_sets(what, sql)?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// The client, for work on the connection itself (such as handing its pid to a watcher).
    pub fn client(&mut self) -> &mut postgres::Client {
        self.driver.client()
    }
}

/// Splits simple-query messages into result sets of text rows.
pub fn result_sets(messages: Vec<SimpleQueryMessage>) -> Vec<Rows> {
    let mut sets = Vec::new();
    let mut current: Rows = Vec::new();
    let mut in_set = false;
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(_) => in_set = true,
            SimpleQueryMessage::Row(row) => {
                in_set = true;
                current.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                );
            }
            SimpleQueryMessage::CommandComplete(_) => {
                if in_set {
                    sets.push(std::mem::take(&mut current));
                }
                in_set = false;
            }
            _ => {}
        }
    }
    sets
}

/// The server's message for a failed catalog query.
pub fn catalog_error(what: &'static str, error: &postgres::Error) -> RehearseError {
    let message = match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    };
    RehearseError::Catalog { what, message }
}

/// A text value, or "" for NULL.
pub fn text(row: &[Option<String>], index: usize) -> String {
    row.get(index).cloned().flatten().unwrap_or_default()
}

/// A boolean value (`t`).
pub fn flag(row: &[Option<String>], index: usize) -> bool {
    row.get(index).and_then(Option::as_deref) == Some("t")
}

/// A number, or 0.
pub fn number(row: &[Option<String>], index: usize) -> i64 {
    row.get(index)
        .and_then(Option::as_deref)
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(0, |value| value as i64)
}

/// Quotes a string as a SQL literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Quotes an identifier.
pub fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Splits a dotted name, honouring double quotes.
pub fn split_name(name: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut characters = name.trim().chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '"' if quoted && characters.peek() == Some(&'"') => {
                characters.next();
                parts.last_mut().expect("non-empty").push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(String::new()),
            other => parts.last_mut().expect("non-empty").push(other),
        }
    }
    parts
}
