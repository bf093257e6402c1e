//! What every command starts from: the resolved project, and helpers to load its migrations and
//! connect to its database.

use safeshift_driver::{ConnectOptions, DatabaseUrl, Driver};
use safeshift_runner::{Identity, Migrator, Settings};
use safeshift_source::MigrationSet;

use crate::cli::GlobalArgs;
use crate::exit::CliError;
use safeshift::Project;

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
        Ok(MigrationSet::load(&self.project.migrations_dir)?)
    }

    /// The migrations directory as shown to the user.
    pub fn migrations_dir_display(&self) -> String {
        self.project.migrations_dir.display().to_string()
    }

    /// The database URL, or an error that says how to give one.
    pub fn database_url(&self) -> Result<DatabaseUrl, CliError> {
        let Some((url, _)) = &self.project.url else {
            return Err(CliError::usage_with_help(
                "no database URL",
                "set `url` under [database] in safeshift.toml, pass --database-url, or set DATABASE_URL \
                 (e.g. sqlite://app.db or postgres://user@host/db)",
            ));
        };
        Ok(DatabaseUrl::parse(url)?)
    }

    /// Connects. `create` allows creating a missing SQLite file (commands that only read pass
    /// false, so `status` on a fresh project creates nothing).
    pub fn connect(&self, create: bool) -> Result<Box<dyn Driver>, CliError> {
        let url = self.database_url()?;
        let options = ConnectOptions {
            base_dir: self.project.root.clone(),
            application_name: application_name(&self.identity),
            history: self.project.history.clone(),
            create,
            lock_mode: self.project.lock.mode,
            ..ConnectOptions::default()
        };
        Ok(safeshift_driver::connect(&url, &options)?)
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
    pub fn connect_options(&self, create: bool) -> ConnectOptions {
        ConnectOptions {
            base_dir: self.project.root.clone(),
            application_name: format!("safeshift {} watch", env!("CARGO_PKG_VERSION")),
            history: self.project.history.clone(),
            create,
            lock_mode: self.project.lock.mode,
            ..ConnectOptions::default()
        }
    }

    pub fn settings(&self, allow_out_of_order: bool) -> Settings {
        Settings {
            timeouts: self.project.timeouts,
            retry: self.project.retry,
            lock: self.project.lock,
            allow_out_of_order: allow_out_of_order || self.project.allow_out_of_order,
            identity: self.identity.clone(),
            backup_ref: None,
        }
    }

    /// A migrator with the online hooks installed, so statements run lock-safe and
    /// `-- safeshift:backfill` statements run as batched backfills.
    pub fn migrator(&self, allow_out_of_order: bool) -> Result<Migrator, CliError> {
        let mut migrator = Migrator::new(self.migrations()?, self.settings(allow_out_of_order));
        migrator.set_hooks(Box::new(self.online_hooks()));
        Ok(migrator)
    }

    /// The runner hooks of the online operations, for any migrator that applies migrations.
    pub fn online_hooks(&self) -> safeshift_online::OnlineHooks {
        crate::online::hooks(&self.project.online, self.quiet)
    }
}

/// `safeshift 0.1.0 pid 4242 deploy@ci-7`, cut to PostgreSQL's 63-byte limit (the pid first,
/// so a long host name cannot push it out); a waiting runner shows it to say who holds the lock.
fn application_name(identity: &Identity) -> String {
    let mut name = format!(
        "safeshift {} pid {} {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        identity.installed_by
    );
    while name.len() > 63 {
        name.pop();
    }
    name
}
