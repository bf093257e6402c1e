//! Where the database is: the migration's own connection, and the run's other connections
//! (table sizes for the plan, pre-flight probes, the watchdog, health checks, backups).

use safeshift_driver::{ConnectOptions, DatabaseUrl, Driver, DriverError, PostgresDriver};

/// The database a run works on.
#[derive(Debug, Clone)]
pub struct Database {
    pub url: DatabaseUrl,
    /// Options for the migration's connection (relative SQLite paths resolve against
    /// `base_dir`; `create` is decided per command).
    pub options: ConnectOptions,
    /// The application name of the run's other connections, so `pg_stat_activity` tells them
    /// from the migration's.
    pub others_application_name: String,
}

impl Database {
    /// A database with default options, its other connections named after safeshift.
    pub fn new(url: DatabaseUrl, options: ConnectOptions) -> Database {
        Database {
            url,
            others_application_name: format!("safeshift {} watch", env!("CARGO_PKG_VERSION")),
            options,
        }
    }

    /// The migration's connection. `create` allows creating a missing SQLite file.
    pub fn connect(&self, create: bool) -> Result<Box<dyn Driver>, DriverError> {
        let options = ConnectOptions {
            create,
            ..self.options.clone()
        };
        safeshift_driver::connect(&self.url, &options)
    }

    /// Options for the run's other connections (they never create a SQLite file).
    pub fn other_options(&self) -> ConnectOptions {
        ConnectOptions {
            application_name: self.others_application_name.clone(),
            create: false,
            ..self.options.clone()
        }
    }

    /// Another PostgreSQL connection, beside the migration's.
    pub fn connect_postgres(&self) -> Result<PostgresDriver, DriverError> {
        PostgresDriver::connect(&self.url, &self.other_options())
    }

    /// The database as the backup library names it.
    pub fn for_backup(&self) -> safeshift_backup::Database<'_> {
        safeshift_backup::Database {
            url: &self.url,
            base_dir: &self.options.base_dir,
        }
    }
}
