//! Connecting to PostgreSQL: the URL and libpq's environment defaults, TLS, and second
//! connections with the same settings.

use postgres::Client;

use super::PostgresDriver;
use super::errors::describe;
use super::run_lock::advisory_key;
use super::tls;
use crate::error::{DriverError, ErrorKind};
use crate::history_sql::HistorySql;
use crate::lock::RunLockMode;
use crate::url::DatabaseUrl;
use crate::{ConnectOptions, Dialect, Engine, ServerInfo};
use postgres_protocol::escape::escape_identifier;

impl PostgresDriver {
    /// Connects. `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and `PGDATABASE` fill in what the
    /// URL leaves out, as with libpq.
    pub fn connect(
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<PostgresDriver, DriverError> {
        let (connection, tls_parameters) = tls::split_tls_parameters(url.expose_secret());
        let mut config: postgres::Config = connection.parse().map_err(|error| {
            DriverError::new(
                ErrorKind::InvalidUrl,
                format!(
                    "`{}` is not a valid PostgreSQL URL: {error}",
                    url.redacted()
                ),
            )
            .with_hint("write it as postgres://user:password@host:5432/database?sslmode=require")
        })?;
        apply_environment_defaults(&mut config);
        if config.get_application_name().is_none() {
            config.application_name(&options.application_name);
        }
        config.connect_timeout(options.connect_timeout);
        let (ssl_mode, tls) = tls::connector(&tls_parameters)?;
        config.ssl_mode(ssl_mode);
        let connecting = std::time::Instant::now();
        let client = tls.connect(&config).map_err(|error| {
            DriverError::new(ErrorKind::Connect, format!("could not connect to {}: {}", url.redacted(), describe(&error)))
                .with_hint("check that the server is running and that the URL's host, port, user, password and database are right")
        })?;
        let location = options.history.clone();
        let quoted_schema = escape_identifier(&location.schema);
        let quoted_table = format!("{quoted_schema}.{}", escape_identifier(&location.table));
        let mut driver = PostgresDriver {
            client,
            config,
            tls,
            redacted_url: url.redacted().to_owned(),
            server: ServerInfo {
                engine: Engine::Postgres,
                version: String::new(),
                version_number: 0,
                database: String::new(),
                user: String::new(),
            },
            sql: HistorySql::new(Dialect::Postgres, quoted_table.clone()),
            lock_key: advisory_key(&location),
            location,
            quoted_schema,
            quoted_table,
            advisory_owner: None,
            lease: None,
            session_state: options.lock_mode == RunLockMode::Advisory,
            attempt: None,
            pending_prelude: None,
            prelude_error: None,
            lock_checked_up_front: false,
            backend_pid: None,
            pooler_checked: false,
            connecting,
        };
        let row = driver.first_row(
            "SELECT current_setting('server_version'), current_setting('server_version_num'), current_database(), current_user, pg_backend_pid()",
        )?;
        driver.server.version = row[0].clone().unwrap_or_default();
        driver.server.version_number = row[1].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
        driver.server.database = row[2].clone().unwrap_or_default();
        driver.server.user = row[3].clone().unwrap_or_default();
        driver.backend_pid = row[4].as_deref().and_then(|pid| pid.parse().ok());
        if driver.session_state && driver.server.version_number >= 140000 {
            // A killed runner's backend notices within a second and rolls back, instead of
            // finishing a long statement while holding its locks.
            driver.run("SET client_connection_check_interval = 1000")?;
        }
        Ok(driver)
    }

    /// A second connection with the same settings (for heartbeats and watchers).
    pub fn connect_again(&self) -> Result<Client, DriverError> {
        self.tls.connect(&self.config).map_err(|error| {
            DriverError::new(
                ErrorKind::Connect,
                format!(
                    "could not connect to {}: {}",
                    self.redacted_url,
                    describe(&error)
                ),
            )
        })
    }

    /// A connection to another database on the same server, with the same credentials and TLS
    /// (a scratch copy for verifying a backup, the target of a restore).
    pub fn connect_to_database(&self, database: &str) -> Result<Client, DriverError> {
        let mut config = self.config.clone();
        config.dbname(database);
        self.tls.connect(&config).map_err(|error| {
            DriverError::new(
                ErrorKind::Connect,
                format!(
                    "could not connect to database {database} on the server of {}: {}",
                    self.redacted_url,
                    describe(&error)
                ),
            )
        })
    }
}

/// libpq's environment defaults for what the URL leaves out.
pub(super) fn apply_environment_defaults(config: &mut postgres::Config) {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() {
        config.host(&env("PGHOST").unwrap_or_else(|| "localhost".to_owned()));
    }
    if config.get_ports().is_empty()
        && let Some(port) = env("PGPORT").and_then(|p| p.parse().ok())
    {
        config.port(port);
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .unwrap_or_else(|| whoami::username().unwrap_or_else(|_| "postgres".to_owned()));
        config.user(&user);
    }
    if config.get_password().is_none()
        && let Some(password) = env("PGPASSWORD")
    {
        config.password(password);
    }
    if config.get_dbname().is_none()
        && let Some(database) = env("PGDATABASE")
    {
        config.dbname(&database);
    }
}
