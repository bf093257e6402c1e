//! Connecting to MySQL or MariaDB: the URL as the `mysql` crate reads it (`mariadb://` is the
//! same URL), a connect timeout, and second connections with the same settings.

use mysql::consts::CapabilityFlags;
use mysql::{Conn, Opts, OptsBuilder};

use super::run_lock::lock_name;
use super::{MysqlDriver, MysqlFlavor, quote_identifier, rows};
use crate::error::{DriverError, ErrorKind};
use crate::history_sql::HistorySql;
use crate::url::DatabaseUrl;
use crate::{ConnectOptions, Dialect, Engine, ServerInfo};

impl MysqlDriver {
    /// Connects to the database the URL names.
    pub fn connect(
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<MysqlDriver, DriverError> {
        let opts = parse_opts(url, options)?;
        let mut conn = open(&opts, url.redacted())?;
        let row = rows(
            &mut conn,
            "SELECT VERSION(), DATABASE(), SUBSTRING_INDEX(CURRENT_USER(), '@', 1), CONNECTION_ID()",
        )?
        .into_iter()
        .next()
        .unwrap_or_default();
        let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let version = field(0);
        let database = field(1);
        let table = format!("{}_{}", options.history.schema, options.history.table);
        Ok(MysqlDriver {
            redacted_url: url.redacted().to_owned(),
            flavor: if version.to_ascii_lowercase().contains("mariadb") {
                MysqlFlavor::Mariadb
            } else {
                MysqlFlavor::Mysql
            },
            server: ServerInfo {
                engine: Engine::Mysql,
                version_number: version_number(&version),
                version,
                database: database.clone(),
                user: field(2),
            },
            sql: HistorySql::new(Dialect::Mysql, quote_identifier(&table)),
            lock_name: lock_name(&database, &table),
            table,
            named_lock: None,
            lease: None,
            attempt: None,
            connection_id: field(3).parse().unwrap_or_default(),
            conn,
            opts,
        })
    }
}

/// The `mysql` crate's options for a URL, with the connect timeout. `CLIENT_FOUND_ROWS` makes
/// an `UPDATE` report the rows it matched rather than those it changed, so renewing a lease
/// within the same microsecond still reads as renewed.
fn parse_opts(url: &DatabaseUrl, options: &ConnectOptions) -> Result<Opts, DriverError> {
    let raw = url.expose_secret();
    let raw = match raw.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => raw.to_owned(),
    };
    let opts = Opts::from_url(&raw).map_err(|error| {
        DriverError::new(
            ErrorKind::InvalidUrl,
            format!("`{}` is not a valid MySQL URL: {error}", url.redacted()),
        )
        .with_hint("write it as mysql://user:password@host:3306/database (parameters are those of the `mysql` Rust crate, such as ?prefer_socket=false)")
    })?;
    Ok(OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(Some(options.connect_timeout))
        .additional_capabilities(CapabilityFlags::CLIENT_FOUND_ROWS)
        .into())
}

/// Opens a connection; `redacted` names the server in errors.
pub(super) fn open(opts: &Opts, redacted: &str) -> Result<Conn, DriverError> {
    Conn::new(opts.clone()).map_err(|error| {
        let reason = match &error {
            mysql::Error::MySqlError(server) => format!("ERROR {}: {}", server.code, server.message),
            other => other.to_string(),
        };
        DriverError::new(
            ErrorKind::Connect,
            format!("could not connect to {redacted}: {reason}"),
        )
        .with_hint("check that the server is running and that the URL's host, port, user, password and database are right")
    })
}

/// `10.11.14-MariaDB-0+deb12u2` → 101114; `8.0.36` → 80036.
fn version_number(version: &str) -> u32 {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    major * 10_000 + minor * 100 + patch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_become_numbers() {
        assert_eq!(version_number("10.11.14-MariaDB-0+deb12u2"), 101114);
        assert_eq!(version_number("8.0.36"), 80036);
        assert_eq!(version_number("8.4.0-log"), 80400);
    }
}
