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

/// What to do about a failed connection, by what failed: a missing database (with the command
/// that creates it), a missing role, a refused or missing password, a server without TLS when
/// TLS is required, nothing listening, a host name that does not resolve.
pub(super) fn connection_hint(error: &postgres::Error, config: &postgres::Config) -> String {
    let user = config.get_user().unwrap_or("postgres");
    let database = config.get_dbname().unwrap_or(user);
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let quoted = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    if let Some(db) = error.as_db_error() {
        match db.code().code() {
            "3D000" => {
                return format!(
                    "the server has no database {database}: create it with `createdb -h {host} -p {port} -U {user} {database}` \
                     (or `CREATE DATABASE {};` as a role allowed to), or fix the database name in the URL",
                    quoted(database)
                );
            }
            "28000" if db.message().contains("role") => {
                return format!(
                    "the server has no role {user}: connect as an existing role (the URL's user, or PGUSER), \
                     or create it with `CREATE ROLE {} LOGIN PASSWORD '…';`",
                    quoted(user)
                );
            }
            "28000" => {
                return format!(
                    "the server's pg_hba.conf lets no role {user} connect to {database} from here: add an entry for this host, or connect from an allowed one"
                );
            }
            "28P01" => {
                return format!(
                    "the password for role {user} was refused: check the password in the URL (or PGPASSWORD); safeshift never prints it"
                );
            }
            _ => {}
        }
    }
    let text = describe(error).to_lowercase();
    if text.contains("password missing") {
        return format!(
            "the server asks role {user} for a password and none was given: put it in the URL (postgres://{user}:PASSWORD@…) or in PGPASSWORD"
        );
    }
    if text.contains("server does not support tls") {
        return "the server does not accept TLS connections, and the URL's sslmode insists on TLS: turn `ssl` on in the server's \
                configuration, or, on a network you trust, use sslmode=prefer (TLS when the server offers it)"
            .to_owned();
    }
    let io = std::error::Error::source(error).and_then(|e| e.downcast_ref::<std::io::Error>());
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            return format!(
                "nothing is listening on {host}:{port}: start the server, or fix the host and port in the URL (or PGHOST and PGPORT)"
            );
        }
        Some(std::io::ErrorKind::TimedOut) => {
            return format!(
                "{host}:{port} did not answer in time: check the host, the port and any firewall between here and the server"
            );
        }
        _ => {}
    }
    if text.contains("lookup address") || text.contains("name or service not known") {
        return format!(
            "the host name {host} does not resolve: check the host in the URL (or PGHOST)"
        );
    }
    "check that the server is running and that the URL's host, port, user, password and database are right".to_owned()
}

/// Classifies an error from a `postgres::Client` (from [`PostgresDriver::client`](crate::PostgresDriver::client) or
/// [`PostgresDriver::connect_again`](crate::PostgresDriver::connect_again)) the way the driver classifies its own.
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
