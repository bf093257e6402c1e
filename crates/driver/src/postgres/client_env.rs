//! Pointing PostgreSQL's own client programs (`pg_dump`, `pg_restore`, `psql`) at the database a
//! URL names through libpq's environment variables, so that no secret is ever on a command line
//! (where `ps` shows it to every user of the machine).

use std::fmt;
use std::process::Command;

use postgres::config::Host;

use super::connect::apply_environment_defaults;
use super::tls;
use crate::error::{DriverError, ErrorKind};
use crate::url::DatabaseUrl;

/// Variables that would otherwise steer a child program somewhere else than the URL says.
const CLEARED: [&str; 4] = ["PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGREQUIRESSL"];

/// The libpq environment for one database. `Debug` hides the password.
#[derive(Clone)]
pub struct ClientEnvironment {
    variables: Vec<(&'static str, String)>,
    database: String,
}

impl ClientEnvironment {
    /// The environment for the database `url` names (filled in from `PGHOST`, `PGUSER`… as the
    /// driver does when the URL leaves something out).
    pub fn for_url(url: &DatabaseUrl) -> Result<ClientEnvironment, DriverError> {
        let (connection, tls_parameters) = tls::split_tls_parameters(url.expose_secret());
        let mut config: postgres::Config = connection.parse().map_err(|error| {
            DriverError::new(
                ErrorKind::InvalidUrl,
                format!(
                    "`{}` is not a valid PostgreSQL URL: {error}",
                    url.redacted()
                ),
            )
        })?;
        apply_environment_defaults(&mut config);
        let mut variables: Vec<(&'static str, String)> = Vec::new();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        if !hosts.is_empty() {
            variables.push(("PGHOST", hosts.join(",")));
        }
        let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
        if !ports.is_empty() {
            variables.push(("PGPORT", ports.join(",")));
        }
        if let Some(user) = config.get_user() {
            variables.push(("PGUSER", user.to_owned()));
        }
        if let Some(password) = config.get_password() {
            variables.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
        }
        let database = config
            .get_dbname()
            .map(str::to_owned)
            .or_else(|| config.get_user().map(str::to_owned))
            .unwrap_or_default();
        if let Some(timeout) = config.get_connect_timeout() {
            variables.push(("PGCONNECT_TIMEOUT", timeout.as_secs().max(1).to_string()));
        }
        for (name, value) in tls_parameters.as_environment() {
            variables.push((name, value));
        }
        Ok(ClientEnvironment {
            variables,
            database,
        })
    }

    /// The database name the programs connect to.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The same server and credentials, another database (a scratch copy, a `--to` target).
    pub fn with_database(&self, database: &str) -> ClientEnvironment {
        ClientEnvironment {
            variables: self.variables.clone(),
            database: database.to_owned(),
        }
    }

    /// Sets the variables (and `PGDATABASE`) on a command, clearing those that would redirect it.
    pub fn apply(&self, command: &mut Command) {
        for name in CLEARED {
            command.env_remove(name);
        }
        for (name, value) in &self.variables {
            command.env(name, value);
        }
        command.env("PGDATABASE", &self.database);
    }
}

impl fmt::Debug for ClientEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .variables
            .iter()
            .map(|(name, value)| {
                if *name == "PGPASSWORD" {
                    format!("{name}=***")
                } else {
                    format!("{name}={value}")
                }
            })
            .collect();
        write!(
            f,
            "ClientEnvironment({} PGDATABASE={})",
            shown.join(" "),
            self.database
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_a_url_to_libpq_variables_and_hides_the_password() {
        let url = DatabaseUrl::parse(
            "postgres://app:s3cret@db.internal:6543/shop?sslmode=require&application_name=x",
        )
        .unwrap();
        let environment = ClientEnvironment::for_url(&url).unwrap();
        let variables: std::collections::HashMap<_, _> =
            environment.variables.iter().cloned().collect();
        assert_eq!(variables["PGHOST"], "db.internal");
        assert_eq!(variables["PGPORT"], "6543");
        assert_eq!(variables["PGUSER"], "app");
        assert_eq!(variables["PGPASSWORD"], "s3cret");
        assert_eq!(variables["PGSSLMODE"], "require");
        assert_eq!(environment.database(), "shop");
        assert!(!format!("{environment:?}").contains("s3cret"));
        assert_eq!(environment.with_database("scratch").database(), "scratch");
    }
}
