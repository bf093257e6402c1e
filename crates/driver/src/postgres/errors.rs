//! PostgreSQL's errors, classified the way the runner cares about (retry, resume, stop).

use crate::error::{DriverError, ErrorKind};

/// A readable message for a `postgres` error: the server's message when there is one.
pub(super) fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let text = error.to_string();
            match std::error::Error::source(error) {
                Some(source) if !text.contains(&source.to_string()) => format!("{text}: {source}"),
                _ => text,
            }
        }
    }
}

/// Classifies an error from a `postgres::Client` (from [`PostgresDriver::client`] or
/// [`PostgresDriver::connect_again`]) the way the driver classifies its own.
pub fn classify_postgres_error(error: &postgres::Error) -> DriverError {
    from_postgres(error)
}

/// Classifies a `postgres` error.
pub(crate) fn from_postgres(error: &postgres::Error) -> DriverError {
    let Some(db) = error.as_db_error() else {
        let kind = if error.is_closed()
            || std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>())
        {
            ErrorKind::ConnectionLost
        } else {
            ErrorKind::Statement
        };
        return DriverError::new(kind, describe(error));
    };
    let code = db.code().code();
    let kind = match code {
        "55P03" => ErrorKind::LockTimeout,
        "40P01" => ErrorKind::Deadlock,
        "57014" => ErrorKind::Canceled,
        "57P01" | "57P02" | "57P03" | "08006" | "08003" => ErrorKind::ConnectionLost,
        _ => ErrorKind::Statement,
    };
    let mut driver_error = DriverError::new(kind, db.message()).with_sqlstate(code);
    driver_error.detail = db.detail().map(str::to_owned);
    driver_error.hint = db.hint().map(str::to_owned);
    driver_error.position = match db.position() {
        Some(postgres::error::ErrorPosition::Original(position)) => Some(*position),
        _ => None,
    };
    driver_error
}
