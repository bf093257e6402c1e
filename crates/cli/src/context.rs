//! What every command starts from: the resolved project (through the `safeshift` crate, as an
//! embedding application would), and who runs.

use safeshift::{Database, Deployment, Policy, Project, RunOptions};
use safeshift_driver::{ConnectOptions, DatabaseUrl, Driver};
use safeshift_runner::{Identity, Migrator, Settings};
use safeshift_source::{LoadOptions, MigrationSet};

use crate::cli::GlobalArgs;
use crate::exit::CliError;

/// The resolved configuration plus output options.
pub struct Context {
    pub project: Project,
    pub quiet: bool,
    pub identity: Identity,
}

impl Context {
    pub fn new(args: &GlobalArgs) -> Result<Context, CliError> {
        Ok(Context {
            project: Project::load(&args.overrides())?,
            quiet: args.quiet,
            identity: Identity::current(),
        })
    }

    /// Every migration in the project's directory; any malformed file is an error.
    pub fn migrations(&self) -> Result<MigrationSet, CliError> {
        Ok(self.project.migrations()?)
    }

    /// How to read migration directories (`--migration-format`, `--var`).
    pub fn load_options(&self) -> LoadOptions {
        self.project.load_options()
    }

    /// The migrations directory as shown to the user.
    pub fn migrations_dir_display(&self) -> String {
        self.project.migrations_dir.display().to_string()
    }

    /// The database URL, or an error that says how to give one.
    pub fn database_url(&self) -> Result<DatabaseUrl, CliError> {
        Ok(self.project.database_url()?)
    }

    /// The project's database, for a command's connections.
    pub fn database(&self) -> Result<Database, CliError> {
        Ok(self.project.database(&self.identity)?)
    }

    /// Connects. `create` allows creating a missing SQLite file (commands that only read pass
    /// false, so `status` on a fresh project creates nothing).
    pub fn connect(&self, create: bool) -> Result<Box<dyn Driver>, CliError> {
        Ok(self.project.connect(&self.identity, create)?)
    }

    /// The same project pointed at another database (a restore's `--to` target).
    pub fn with_url(&self, url: &DatabaseUrl) -> Context {
        let mut project = self.project.clone();
        project.url = Some((url.expose_secret().to_owned(), safeshift::UrlSource::Flag));
        Context {
            project,
            quiet: self.quiet,
            identity: self.identity.clone(),
        }
    }

    /// Options for a command's second connections (the watchdog, size lookups, probes).
    pub fn connect_options(&self) -> Result<ConnectOptions, CliError> {
        Ok(self.database()?.other_options())
    }

    pub fn settings(&self, allow_out_of_order: bool) -> Settings {
        self.project.settings(&self.identity, allow_out_of_order)
    }

    /// How the command runs migrations: who runs, and the online operations' progress drawn on
    /// stderr unless quiet.
    pub fn run_options(&self, allow_out_of_order: bool) -> RunOptions {
        RunOptions {
            identity: self.identity.clone(),
            allow_out_of_order,
            online_events: crate::online::Renderer::sink(self.quiet),
        }
    }

    /// A migrator with the online hooks installed, so statements run lock-safe and
    /// `-- safeshift:backfill` statements run as batched backfills.
    pub fn migrator(&self, allow_out_of_order: bool) -> Result<Migrator, CliError> {
        Ok(self
            .project
            .migrator(&self.run_options(allow_out_of_order))?)
    }

    /// The project's migrations on its database under `policy`, as `up` and `down` run them.
    pub fn deployment(
        &self,
        allow_out_of_order: bool,
        policy: Policy,
    ) -> Result<Deployment, CliError> {
        Ok(self
            .project
            .deployment(&self.run_options(allow_out_of_order), policy)?)
    }
}
