//! Running a section's statements the way the runner does (one transaction, or one statement
//! at a time for `transaction:false`), for the parts of a rehearsal that are not traced: the
//! replay of applied migrations, `down`, and `up` again.

use std::time::Instant;

use safeshift_driver::DriverError;
use safeshift_source::{Dialect, Section, Statement};

use crate::connection::Connection;
use crate::error::RehearseError;
use crate::report::StatementFailure;

/// The statements of a section, checked against its transaction mode.
pub fn statements(section: &Section) -> Result<Vec<Statement>, RehearseError> {
    section
        .executable_statements(Dialect::Postgres)
        .map_err(|error| RehearseError::Source(safeshift_source::SourceErrors(vec![error])))
}

/// Runs a section; returns how long it took, or the statement that failed (a transactional
/// section is then rolled back).
pub fn run_section(
    connection: &mut Connection,
    section: &Section,
) -> Result<Result<f64, StatementFailure>, RehearseError> {
    let statements = statements(section)?;
    let started = Instant::now();
    let transactional = section.options.transaction;
    if transactional {
        connection
            .execute("BEGIN")
            .map_err(|error| RehearseError::database("starting a transaction", error))?;
    }
    for statement in &statements {
        if let Err(error) = connection.execute(&statement.sql) {
            if transactional {
                let _ = connection.execute("ROLLBACK");
            }
            return Ok(Err(failure(statement, &error)));
        }
    }
    if transactional {
        connection
            .execute("COMMIT")
            .map_err(|error| RehearseError::database("committing", error))?;
    }
    Ok(Ok(milliseconds(started)))
}

/// A failed statement and the database's error, in one line.
pub fn failure(statement: &Statement, error: &DriverError) -> StatementFailure {
    let mut text = match &error.sqlstate {
        Some(code) => format!("ERROR {code}: {}", error.message),
        None => error.message.clone(),
    };
    if let Some(detail) = &error.detail {
        text.push_str(&format!(" ({detail})"));
    }
    StatementFailure {
        index: statement.index,
        line: statement.line,
        sql: statement.sql.clone(),
        error: text,
    }
}

/// Milliseconds since `started`, with microsecond precision.
pub fn milliseconds(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}
