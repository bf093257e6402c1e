//! The server (and PgBouncer) shared by all tests of a process, or of a whole test run.

use std::env;
use std::sync::OnceLock;

use crate::database;
use crate::error::TestkitError;
use crate::pgbouncer::{PgBouncer, PoolMode};
use crate::server::PgServer;

/// A server started outside the test process (by `scripts/test`), used instead of starting one
/// per process. Example: `postgres://postgres@127.0.0.1:PORT/postgres`.
pub const PG_URL_ENV: &str = "SAFESHIFT_TEST_PG_URL";
/// A transaction-pooling PgBouncer in front of the `SAFESHIFT_TEST_PG_URL` server.
pub const PGBOUNCER_URL_ENV: &str = "SAFESHIFT_TEST_PGBOUNCER_URL";

/// The server the tests of this process share: the one named by `SAFESHIFT_TEST_PG_URL`, or
/// one started on first use and stopped when the process exits.
///
/// # Panics
///
/// Panics with the reason if the environment variable is invalid or no server can be started;
/// every later call panics with the same reason.
pub fn shared_server() -> &'static SharedServer {
    static SHARED: OnceLock<Result<SharedServer, String>> = OnceLock::new();
    let shared =
        SHARED.get_or_init(|| SharedServer::from_env_or_start().map_err(|e| e.to_string()));
    match shared {
        Ok(server) => server,
        Err(reason) => {
            panic!("safeshift-testkit has no PostgreSQL server to test against: {reason}")
        }
    }
}

/// The server shared by the tests of a process. See [`shared_server`].
#[derive(Debug)]
pub struct SharedServer {
    address: ServerAddress,
    // Kept only so it lives as long as the process; the exit hook stops it.
    _own_server: Option<PgServer>,
    pgbouncer: OnceLock<Result<SharedPgBouncer, String>>,
}

#[derive(Debug)]
struct SharedPgBouncer {
    address: ServerAddress,
    _own_pgbouncer: Option<PgBouncer>,
}

impl SharedServer {
    fn from_env_or_start() -> Result<SharedServer, TestkitError> {
        if let Some(url) = non_empty_env(PG_URL_ENV) {
            let address = ServerAddress::parse(&url)?;
            database::ensure_template_database(&address.url("postgres"))?;
            return Ok(SharedServer {
                address,
                _own_server: None,
                pgbouncer: OnceLock::new(),
            });
        }
        let server = PgServer::start()?;
        Ok(SharedServer {
            address: ServerAddress::parse(&server.admin_url())?,
            _own_server: Some(server),
            pgbouncer: OnceLock::new(),
        })
    }

    /// A URL for `database` on the server, as the superuser.
    pub fn url(&self, database: &str) -> String {
        self.address.url(database)
    }

    /// A URL for the `postgres` maintenance database, for creating and dropping databases.
    pub fn admin_url(&self) -> String {
        self.address.url("postgres")
    }

    /// The server's host.
    pub fn host(&self) -> &str {
        &self.address.host
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.address.port
    }

    /// Whether the server was provided through `SAFESHIFT_TEST_PG_URL` rather than started by
    /// this process.
    pub fn is_external(&self) -> bool {
        self._own_server.is_none()
    }

    /// A URL for `database` through the shared transaction-pooling PgBouncer:
    /// `SAFESHIFT_TEST_PGBOUNCER_URL`, or one started in front of this server on first use.
    ///
    /// # Panics
    ///
    /// Panics with the reason if the environment variable is invalid or no PgBouncer can be
    /// started.
    pub fn pgbouncer_url(&self, database: &str) -> String {
        let pgbouncer = self.pgbouncer.get_or_init(|| {
            self.start_or_find_pgbouncer()
                .map_err(|error| error.to_string())
        });
        match pgbouncer {
            Ok(pgbouncer) => pgbouncer.address.url(database),
            Err(reason) => panic!("safeshift-testkit has no PgBouncer to test against: {reason}"),
        }
    }

    fn start_or_find_pgbouncer(&self) -> Result<SharedPgBouncer, TestkitError> {
        if let Some(url) = non_empty_env(PGBOUNCER_URL_ENV) {
            return Ok(SharedPgBouncer {
                address: ServerAddress::parse(&url)?,
                _own_pgbouncer: None,
            });
        }
        let pgbouncer =
            PgBouncer::start_in_front_of(self.host(), self.port(), PoolMode::Transaction)?;
        Ok(SharedPgBouncer {
            address: ServerAddress::parse(&pgbouncer.url("postgres"))?,
            _own_pgbouncer: Some(pgbouncer),
        })
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// A PostgreSQL URL split so the database name can be swapped:
/// `<prefix>/<database><query>`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ServerAddress {
    /// `postgres://user@host:port`, without the path.
    prefix: String,
    /// `?...` or empty.
    query: String,
    host: String,
    port: u16,
}

impl ServerAddress {
    fn parse(url: &str) -> Result<ServerAddress, TestkitError> {
        let invalid = |reason: &str| TestkitError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = ["postgres://", "postgresql://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(|| invalid("it must start with postgres:// or postgresql://"))?;
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let after_authority = &rest[authority_end..];
        let query = after_authority
            .find('?')
            .map(|start| after_authority[start..].to_owned())
            .unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = match host_port.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| invalid("the IPv6 host has no closing ]"))?;
                (host, after.strip_prefix(':'))
            }
            None => match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            },
        };
        let port = match port {
            Some(port) => port
                .parse()
                .map_err(|_| invalid("the port is not a number"))?,
            None => 5432,
        };
        if host.is_empty() {
            return Err(invalid("it names no host"));
        }
        Ok(ServerAddress {
            prefix: format!("{}{authority}", &url[..url.len() - rest.len()]),
            query,
            host: host.to_owned(),
            port,
        })
    }

    fn url(&self, database: &str) -> String {
        format!("{}/{database}{}", self.prefix, self.query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_swapped_and_the_rest_kept() {
        let address = ServerAddress::parse(
            "postgres://postgres:secret@127.0.0.1:6543/postgres?sslmode=disable",
        )
        .unwrap();
        assert_eq!(address.host, "127.0.0.1");
        assert_eq!(address.port, 6543);
        assert_eq!(
            address.url("t_1"),
            "postgres://postgres:secret@127.0.0.1:6543/t_1?sslmode=disable"
        );
    }

    #[test]
    fn the_port_defaults_to_5432_and_the_path_may_be_missing() {
        let address = ServerAddress::parse("postgresql://u@db.example").unwrap();
        assert_eq!((address.host.as_str(), address.port), ("db.example", 5432));
        assert_eq!(address.url("x"), "postgresql://u@db.example/x");
    }

    #[test]
    fn bracketed_ipv6_hosts_are_understood() {
        let address = ServerAddress::parse("postgres://u@[::1]:7000/db").unwrap();
        assert_eq!((address.host.as_str(), address.port), ("::1", 7000));
        let address = ServerAddress::parse("postgres://u@[::1]/db").unwrap();
        assert_eq!((address.host.as_str(), address.port), ("::1", 5432));
    }

    #[test]
    fn other_schemes_and_bad_ports_are_rejected() {
        assert!(ServerAddress::parse("mysql://u@h/db").is_err());
        assert!(ServerAddress::parse("postgres://u@h:port/db").is_err());
    }
}
