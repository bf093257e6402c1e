//! MySQL's and MariaDB's errors, classified the way the runner cares about (retry, resume, stop).

use crate::error::{DriverError, ErrorKind};

/// `ER_LOCK_WAIT_TIMEOUT`: `lock_wait_timeout` (metadata locks) or `innodb_lock_wait_timeout`
/// (row locks) expired.
const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// `ER_LOCK_DEADLOCK`.
const DEADLOCK: u16 = 1213;
/// `ER_QUERY_INTERRUPTED`: `KILL QUERY` (an interrupt, or the statement timeout).
const QUERY_INTERRUPTED: u16 = 1317;
/// MySQL's `ER_QUERY_TIMEOUT` (`max_execution_time`).
const QUERY_TIMEOUT: u16 = 3024;
/// MariaDB's `ER_STATEMENT_TIMEOUT` (`max_statement_time`).
const STATEMENT_TIMEOUT: u16 = 1969;
/// `ER_SERVER_SHUTDOWN`, MariaDB's `ER_CONNECTION_KILLED`, and the client's "server has gone
/// away" and "lost connection" codes.
const CONNECTION_ENDED: [u16; 4] = [1053, 1927, 2006, 2013];
/// `ER_PARSE_ERROR`: its message says `near '…' at line N`.
const PARSE_ERROR: u16 = 1064;

/// Classifies an error from the `mysql` crate. `sql` is the statement that was sent, to place
/// a syntax error in it.
pub(crate) fn from_mysql(error: &mysql::Error, sql: Option<&str>) -> DriverError {
    match error {
        mysql::Error::MySqlError(server) => {
            let kind = match server.code {
                LOCK_WAIT_TIMEOUT => ErrorKind::LockTimeout,
                DEADLOCK => ErrorKind::Deadlock,
                QUERY_INTERRUPTED | QUERY_TIMEOUT | STATEMENT_TIMEOUT => ErrorKind::Canceled,
                code if CONNECTION_ENDED.contains(&code) => ErrorKind::ConnectionLost,
                _ => ErrorKind::Statement,
            };
            let mut driver_error = DriverError::new(kind, server.message.clone())
                .with_sqlstate(format!("MySQL {}", server.code));
            if server.code == PARSE_ERROR {
                driver_error.position =
                    sql.and_then(|sql| syntax_error_position(sql, &server.message));
            }
            driver_error
        }
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_) => {
            DriverError::new(ErrorKind::ConnectionLost, error.to_string())
        }
        other => DriverError::new(ErrorKind::Statement, other.to_string()),
    }
}

/// The 1-based character position in `sql` of a syntax error reported as
/// `… near '<rest of the statement>' at line N`: the server quotes the statement from the
/// offending token on (cut to 80 characters), on the statement's line N.
fn syntax_error_position(sql: &str, message: &str) -> Option<u32> {
    let near_start = message.find("near '")? + "near '".len();
    let line_marker = message.rfind("' at line ")?;
    let fragment = message.get(near_start..line_marker)?;
    let line: usize = message[line_marker + "' at line ".len()..]
        .trim()
        .parse()
        .ok()?;
    let line_start: usize = sql
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let offset = if fragment.is_empty() {
        // `near '' at line N`: the statement ended too early.
        sql.len()
    } else {
        line_start + sql.get(line_start..)?.find(fragment)?
    };
    Some(sql[..offset].chars().count() as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_is_placed_on_its_line() {
        let sql = "ALTER TABLE t\n  ADD COLUMN c int,\n  ADD COLUM d int";
        let message = "You have an error in your SQL syntax; check the manual that corresponds to your \
                       MariaDB server version for the right syntax to use near 'd int' at line 3";
        let position = syntax_error_position(sql, message).unwrap() as usize;
        assert_eq!(&sql[position - 1..], "d int");
    }

    #[test]
    fn codes_decide_retries_and_cancellation() {
        let server = |code: u16| {
            mysql::Error::MySqlError(mysql::MySqlError {
                state: "HY000".into(),
                message: "m".into(),
                code,
            })
        };
        assert_eq!(from_mysql(&server(1205), None).kind, ErrorKind::LockTimeout);
        assert_eq!(from_mysql(&server(1213), None).kind, ErrorKind::Deadlock);
        assert_eq!(from_mysql(&server(1317), None).kind, ErrorKind::Canceled);
        assert_eq!(
            from_mysql(&server(2013), None).kind,
            ErrorKind::ConnectionLost
        );
        let other = from_mysql(&server(1054), None);
        assert_eq!(
            (other.kind, other.sqlstate.as_deref()),
            (ErrorKind::Statement, Some("MySQL 1054"))
        );
    }
}
