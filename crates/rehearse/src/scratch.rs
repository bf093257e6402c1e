//! Where a rehearsal runs: a throwaway server started from the local binaries, or a server the
//! caller names (`--scratch-url`) on which a database is created for the rehearsal and dropped
//! afterwards.

use std::time::Instant;

use safeshift_driver::DatabaseUrl;
use safeshift_pgserver::{Layout, PgBinaries, PgServer, ServerOptions};

use crate::apply::milliseconds;
use crate::connection::{Connection, identifier};
use crate::error::RehearseError;
use crate::report::ServerReport;

/// Overrides where throwaway servers keep their files (default: `/dev/shm/safeshift-<uid>`,
/// or the temp directory).
pub const SERVER_DIR_ENV: &str = "SAFESHIFT_SERVER_DIR";

/// Shown in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "safeshift rehearse";

/// Settings for a throwaway rehearsal server: few connections, and room for many locks in one
/// transaction (a schema dump is loaded in one).
const THROWAWAY_SETTINGS: &[&str] = &["max_connections=20", "max_locks_per_transaction=1024"];

/// Which server to rehearse on.
#[derive(Debug, Clone)]
pub enum ServerChoice {
    /// Start one from the local binaries, preferring this major version.
    Throwaway { preferred_major: Option<u32> },
    /// A server where databases may be created and dropped; the URL names a database to
    /// connect to for that.
    Existing(DatabaseUrl),
}

/// The rehearsal's database and the server it lives on.
pub struct Scratch {
    server: Option<PgServer>,
    /// The maintenance connection's URL, to drop the database afterwards.
    admin: Option<DatabaseUrl>,
    url: DatabaseUrl,
    database: String,
    report: ServerReport,
}

impl Scratch {
    /// Starts the server (or connects to it) and creates an empty database.
    pub fn start(choice: &ServerChoice) -> Result<Scratch, RehearseError> {
        let started = Instant::now();
        match choice {
            ServerChoice::Throwaway { preferred_major } => {
                let layout = Layout::from_env_or_default("safeshift", SERVER_DIR_ENV)?;
                let binaries = PgBinaries::find(*preferred_major)?;
                let mut options = ServerOptions::new(layout, binaries);
                options.settings = THROWAWAY_SETTINGS.iter().map(|s| (*s).to_owned()).collect();
                let server = PgServer::start(&options)?;
                let database = "rehearsal".to_owned();
                let admin = parse(&server.admin_url())?;
                let mut connection = Connection::open(&admin, APPLICATION_NAME)?;
                connection
                    .execute(&format!("CREATE DATABASE {}", identifier(&database)))
                    .map_err(|error| {
                        RehearseError::database("creating the rehearsal database", error)
                    })?;
                let url = parse(&server.url(&database))?;
                let report = ServerReport {
                    kind: "throwaway".to_owned(),
                    location: server.bin_dir().display().to_string(),
                    version: connection.server_version().to_owned(),
                    database: database.clone(),
                    start_ms: milliseconds(started),
                };
                Ok(Scratch {
                    server: Some(server),
                    admin: None,
                    url,
                    database,
                    report,
                })
            }
            ServerChoice::Existing(admin) => {
                let mut connection = Connection::open(admin, APPLICATION_NAME)?;
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let database = format!("safeshift_rehearsal_{}_{nanos}", std::process::id());
                connection
                    .execute(&format!("CREATE DATABASE {}", identifier(&database)))
                    .map_err(|error| {
                        RehearseError::database(
                            format!("creating database {database} on {}", admin.redacted()),
                            error,
                        )
                    })?;
                let url = parse(&with_database(admin.expose_secret(), &database))?;
                let report = ServerReport {
                    kind: "scratch".to_owned(),
                    location: admin.redacted().to_owned(),
                    version: connection.server_version().to_owned(),
                    database: database.clone(),
                    start_ms: milliseconds(started),
                };
                Ok(Scratch {
                    server: None,
                    admin: Some(admin.clone()),
                    url,
                    database,
                    report,
                })
            }
        }
    }

    /// The rehearsal database's URL.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Whether the server was started here (so roles may be created on it freely).
    pub fn is_throwaway(&self) -> bool {
        self.server.is_some()
    }

    /// The directory of the throwaway server's binaries.
    pub fn bin_dir(&self) -> Option<&std::path::Path> {
        self.server.as_ref().map(PgServer::bin_dir)
    }

    /// Where and what the server is.
    pub fn report(&self) -> &ServerReport {
        &self.report
    }

    /// Drops the rehearsal database and creates it again, empty; every connection to it ends
    /// (`--keep-going` rebuilds a known state from there).
    pub fn recreate(&self) -> Result<(), RehearseError> {
        let admin = match (&self.admin, &self.server) {
            (Some(admin), _) => admin.clone(),
            (None, Some(server)) => parse(&server.admin_url())?,
            (None, None) => unreachable!("a scratch database has a server or an admin URL"),
        };
        let mut connection = Connection::open(&admin, APPLICATION_NAME)?;
        let database = identifier(&self.database);
        for sql in [
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            format!("CREATE DATABASE {database}"),
        ] {
            connection.execute(&sql).map_err(|error| {
                RehearseError::database(
                    format!("creating the rehearsal database {} again", self.database),
                    error,
                )
            })?;
        }
        Ok(())
    }

    /// Drops the database from a scratch server, or stops the throwaway server.
    pub fn finish(self) {
        if let Some(admin) = &self.admin
            && let Ok(mut connection) = Connection::open(admin, APPLICATION_NAME)
        {
            let _ = connection.execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                identifier(&self.database)
            ));
        }
        drop(self.server);
    }
}

fn parse(url: &str) -> Result<DatabaseUrl, RehearseError> {
    DatabaseUrl::parse(url).map_err(|error| RehearseError::database("reading a server URL", error))
}

/// The URL with its database (the path) replaced.
fn with_database(url: &str, database: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |p| p + 3);
    let path_start = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |p| scheme_end + p);
    let query_start = url[path_start..]
        .find('?')
        .map_or(url.len(), |p| path_start + p);
    format!("{}/{database}{}", &url[..path_start], &url[query_start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=require", "r1"),
            "postgres://u:p@h:5432/r1?sslmode=require"
        );
        assert_eq!(with_database("postgres://u@h", "r1"), "postgres://u@h/r1");
    }
}
