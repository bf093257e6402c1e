//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// safeshift: change production database schemas safely.
///
/// Versioned SQL migrations with up and down sections, an append-only history with checksums, a
/// run lock, and correct transaction handling, on PostgreSQL and SQLite.
#[derive(Debug, Parser)]
#[command(name = "safeshift", version, about, long_about, after_help = EXIT_CODES, args_override_self = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments. `--help` names the environment variables without
    /// their values (a URL's password must not show, and an unset variable shows nothing).
    pub fn from_process() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        fn hide_env_values(command: clap::Command) -> clap::Command {
            command
                .mut_args(|arg| arg.hide_env_values(true))
                .mut_subcommands(hide_env_values)
        }
        let matches = hide_env_values(Cli::command()).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }

    /// Whether the command prints its result as JSON on stdout, so that a failure is printed as
    /// JSON there too.
    pub fn wants_json(&self) -> bool {
        use crate::rehearse::Format as RehearseFormat;
        match &self.command {
            Command::Status(args) => args.json,
            Command::Up(args) => args.json,
            Command::Down(args) => args.json,
            Command::History(args) => args.json,
            Command::Adopt(args) => args.json,
            Command::Baseline(args) => args.json,
            Command::Preflight(args) => args.json,
            Command::Activity(args) => args.json,
            Command::Backfill(args) => args.json,
            Command::Schema(args) => args.json,
            Command::Diff(args) => args.json,
            Command::Plan(args) => args.format == PlanFormat::Json && args.output.is_none(),
            Command::Lint(args) => matches!(
                args.format,
                crate::lint::Format::Json | crate::lint::Format::JsonReport
            ),
            Command::Rehearse(args) => args.format == RehearseFormat::Json,
            Command::Backup(command) => match command {
                BackupCommand::Create(args) => args.json,
                BackupCommand::List(args) => args.json,
                BackupCommand::Verify(args) => args.json,
                BackupCommand::Restore(args) => args.json,
                BackupCommand::Prune(args) => args.json,
            },
            Command::Init(_)
            | Command::New(_)
            | Command::Repair(_)
            | Command::Resolve(_)
            | Command::Explain(_) => false,
        }
    }
}

/// Exit codes, shown in `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    a migration failed (the history records the failure)
  2    usage or configuration error (bad flag, config file or database URL)
  3    invalid migration files
  4    refused by a safety check (changed applied file, out-of-order version, missing down
       section, partially applied migration, an adoption whose history and files disagree)
  5    the run lock could not be taken in time, or was lost
  6    could not connect to the database, or lost the connection
  7    `status --exit-code`: migrations are pending (3 when a file is invalid)
  8    `lint`: a finding at or above --fail-on remains, or a file does not parse
  9    stopped by a production guard before applying more: a failed pre-flight check,
       backup, hook or confirmation, or a watchdog abort (the history records it)
  10   migrations applied, but a health check failed afterwards (rolled back with
       --rollback-on-failure)
  11   `rehearse`: a rollback is not exact, a re-run fails, an expectation is not met,
       a lock policy is violated, or a migration fails on the scratch database;
       `baseline`: the baseline does not rebuild the live schema
  12   `diff --exit-code`: the schemas differ
  130  interrupted (Ctrl-C or SIGTERM)";

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Run as if started in DIR.
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub chdir: Option<PathBuf>,

    /// The configuration file [default: safeshift.toml, searched upwards from the current directory].
    #[arg(long, value_name = "FILE", env = "SAFESHIFT_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Database URL: postgres://user:password@host/db or sqlite://path.db
    /// [default: `url` in safeshift.toml, else DATABASE_URL].
    #[arg(
        short = 'u',
        long,
        value_name = "URL",
        env = "SAFESHIFT_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,

    /// The migrations directory [default: `directory` in safeshift.toml, else migrations/, else
    /// where another tool keeps its migrations (flyway.conf's, sqitch.plan's,
    /// prisma/migrations, db/migrations…)].
    #[arg(
        short = 'd',
        long = "dir",
        value_name = "DIR",
        env = "SAFESHIFT_MIGRATIONS_DIR",
        global = true
    )]
    pub migrations_dir: Option<PathBuf>,

    /// The layout of the migrations directory: safeshift (also dbmate, golang-migrate, sqlx),
    /// goose, flyway, diesel, prisma, sqitch or plain [default: `format` in safeshift.toml, else
    /// detected from the directory].
    #[arg(
        long = "migration-format",
        value_name = "FORMAT",
        env = "SAFESHIFT_MIGRATION_FORMAT",
        global = true,
        value_parser = parse_format
    )]
    pub migration_format: Option<safeshift_source::Format>,

    /// A value for a template placeholder in the migration files (`{{ .NAME }}`, goose's
    /// `${NAME}`, Flyway's `${NAME}`), as NAME=VALUE; repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", global = true, value_parser = parse_variable)]
    pub variables: Vec<(String, String)>,

    /// Schema that holds the history tables (PostgreSQL; a table-name prefix on SQLite) [default: safeshift].
    #[arg(
        long,
        value_name = "NAME",
        env = "SAFESHIFT_HISTORY_SCHEMA",
        global = true
    )]
    pub history_schema: Option<String>,

    /// History table name [default: history].
    #[arg(
        long,
        value_name = "NAME",
        env = "SAFESHIFT_HISTORY_TABLE",
        global = true
    )]
    pub history_table: Option<String>,

    /// How the run lock is held: `advisory` (a session advisory lock; the default) or `lease`
    /// (a lease row with expiry, for PgBouncer transaction pooling).
    #[arg(long, value_name = "MODE", env = "SAFESHIFT_LOCK_MODE", global = true)]
    pub lock_mode: Option<LockModeArg>,

    /// How long to wait for another run to release the lock [default: 60s].
    #[arg(
        long,
        value_name = "DURATION",
        env = "SAFESHIFT_LOCK_WAIT",
        global = true
    )]
    pub lock_wait: Option<String>,

    /// lock_timeout for every migration statement [default: 5s]. A migration's own
    /// `lock_timeout:` option wins.
    #[arg(
        long,
        value_name = "DURATION",
        env = "SAFESHIFT_LOCK_TIMEOUT",
        global = true
    )]
    pub lock_timeout: Option<String>,

    /// statement_timeout for every migration statement [default: 0, no limit]. A migration's own
    /// `statement_timeout:` option wins.
    #[arg(
        long,
        value_name = "DURATION",
        env = "SAFESHIFT_STATEMENT_TIMEOUT",
        global = true
    )]
    pub statement_timeout: Option<String>,

    /// Retries of a migration that failed on a lock timeout or deadlock [default: 3].
    #[arg(long, value_name = "N", env = "SAFESHIFT_RETRIES", global = true)]
    pub retries: Option<u32>,

    /// The environment from safeshift.toml's [environments.<name>]: its URL, confirmation,
    /// backup, risk, hooks, watchdog and health checks.
    #[arg(
        short = 'e',
        long = "env",
        value_name = "NAME",
        env = "SAFESHIFT_ENV",
        global = true
    )]
    pub environment: Option<String>,

    /// Print less: only errors and results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

fn parse_format(text: &str) -> Result<safeshift_source::Format, String> {
    safeshift_source::Format::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is not a format; choose one of {} (dbmate, golang-migrate and sqlx are safeshift)",
            safeshift_source::Format::ALL.map(|f| f.as_str()).join(", ")
        )
    })
}

fn parse_variable(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

impl GlobalArgs {
    /// What the flags (and their `SAFESHIFT_*` variables) set over safeshift.toml.
    pub fn overrides(&self) -> safeshift::Overrides {
        safeshift::Overrides {
            config: self.config.clone(),
            database_url: self.database_url.clone(),
            migrations_dir: self.migrations_dir.clone(),
            history_schema: self.history_schema.clone(),
            history_table: self.history_table.clone(),
            lock_mode: self.lock_mode.map(|mode| match mode {
                LockModeArg::Advisory => safeshift::RunLockMode::Advisory,
                LockModeArg::Lease => safeshift::RunLockMode::Lease,
            }),
            lock_wait: self.lock_wait.clone(),
            lock_timeout: self.lock_timeout.clone(),
            statement_timeout: self.statement_timeout.clone(),
            retries: self.retries,
            environment: self.environment.clone(),
            migration_format: self.migration_format,
            variables: self.variables.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockModeArg {
    Advisory,
    Lease,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create safeshift.toml and the migrations directory, and the history table if a database is configured.
    Init(InitArgs),
    /// Write the next migration file, with up and down sections.
    New(NewArgs),
    /// Show every migration and where it stands. Takes no lock and changes nothing.
    Status(StatusArgs),
    /// Apply pending migrations.
    Up(UpArgs),
    /// Roll back applied migrations (the newest one by default).
    Down(DownArgs),
    /// Show the history log: every attempt, success or failure.
    History(HistoryArgs),
    /// Accept the new checksum of applied migrations whose files changed, with an audit row.
    Repair(RepairArgs),
    /// Record by hand that a migration was applied or rolled back, with an audit row.
    Resolve(ResolveArgs),
    /// Take over from the tool the project uses today: read its history table, match it to the
    /// files, and record what it applied, with an audit note each. Its table is left as it is.
    Adopt(AdoptArgs),
    /// Start the history of a database migrated without one: its live schema becomes the first
    /// migration, proven to rebuild the same schema on a throwaway server, and recorded applied.
    Baseline(BaselineArgs),
    /// Check migrations for dangerous patterns (locks, rewrites, data loss) before they run.
    ///
    /// The database is the one `up` and `plan` use: --database-url, else the `url` of the
    /// environment chosen with --env, else `url` under [database] in safeshift.toml, else
    /// DATABASE_URL. With a PostgreSQL database, lint reports the pending migrations (--all: every
    /// one) and grades each finding by the size of the tables it locks, exactly as `plan` and the
    /// check `up` runs first do; --no-database lints the files alone. Exit code 8 when a finding
    /// at or above --fail-on remains.
    Lint(LintArgs),
    /// Explain a lint rule: its lock, what it blocks, why it matters, the safe alternative.
    Explain(ExplainArgs),
    /// Rehearse pending migrations on a throwaway PostgreSQL: locks and rewrites per statement,
    /// rollback proven exact, re-run proven to work.
    Rehearse(crate::rehearse::RehearseArgs),
    /// Print the canonical description of a PostgreSQL database's schema.
    Schema(crate::rehearse::SchemaArgs),
    /// Compare the schemas of two PostgreSQL databases.
    Diff(crate::rehearse::DiffArgs),
    /// Take, list, verify, restore and prune backups.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Check that the database is ready for `up`: reachable, privileges, history, pending
    /// migrations and their risk, disk space, blocking sessions, replication lag.
    Preflight(PreflightArgs),
    /// Show what the server is doing: active queries, the blocking tree, lock waits, index
    /// builds, table sizes and dead tuples.
    Activity(ActivityArgs),
    /// Write the migration plan for the pending migrations (Markdown or JSON) for review.
    Plan(PlanArgs),
    /// Run an UPDATE as a resumable backfill: keyset batches with a checkpoint, sized to a
    /// target duration, paused on replication lag, lock waiters or a probe (PostgreSQL).
    Backfill(BackfillArgs),
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The UPDATE statement, e.g. "UPDATE accounts SET balance_cents = balance * 100".
    #[arg(value_name = "SQL", required_unless_present_any = ["file", "status"])]
    pub sql: Option<String>,
    /// Read the UPDATE statement from this file.
    #[arg(short, long, value_name = "FILE", conflicts_with = "sql")]
    pub file: Option<PathBuf>,
    /// The checkpoint's name; running the same name again continues it [default: the table and
    /// the statement's checksum].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Discard an earlier checkpoint of this name and start over (rows done are updated again).
    #[arg(long)]
    pub restart: bool,
    /// List the backfill checkpoints and where each stands, and run nothing.
    #[arg(long, conflicts_with_all = ["sql", "file", "restart"])]
    pub status: bool,
    /// Rows in the first batch [default: [online] backfill_batch, else 1000].
    #[arg(long, value_name = "ROWS")]
    pub batch: Option<u64>,
    /// The batch duration the batch size adapts to [default: [online] backfill_target, else 100ms].
    #[arg(long, value_name = "DURATION")]
    pub target: Option<String>,
    /// Sleep between batches [default: 0].
    #[arg(long, value_name = "DURATION")]
    pub pause: Option<String>,
    /// Pause while a standby replays further behind than this, or `off` [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub max_lag: Option<String>,
    /// Pause while more sessions than this wait for a lock on the table [default: 0].
    #[arg(long, value_name = "N")]
    pub max_waiters: Option<u32>,
    /// Pause while this query returns true or a positive number, or while this http(s) URL
    /// answers anything but 2xx.
    #[arg(long, value_name = "SQL|URL")]
    pub probe: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a backup now (pg_dump -Fc, or SQLite's online backup) and check it.
    Create(BackupCreateArgs),
    /// List the backups in the backup directory, newest first.
    List(BackupListArgs),
    /// Verify a backup: checksum, contents, and with --deep a restored copy table by table.
    Verify(BackupVerifyArgs),
    /// Restore a backup over the database (or into a new one with --to).
    Restore(BackupRestoreArgs),
    /// Delete old backups by count and age, never the newest verified one.
    Prune(BackupPruneArgs),
}

#[derive(Debug, Args)]
pub struct BackupCreateArgs {
    /// Where to write the backup [default: [backup] dir in safeshift.toml, else backups].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// The file name's first part [default: [backup] prefix, else safeshift].
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Skip the per-table row counts and hashes (faster; `verify --deep` then has nothing to compare).
    #[arg(long)]
    pub no_fingerprints: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupListArgs {
    /// The backup directory [default: [backup] dir, else backups].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupVerifyArgs {
    /// The backup file (a path, or a name in the backup directory).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Also restore it into a scratch database on the configured server and compare every
    /// table's row count and content hash with those recorded when it was taken.
    #[arg(long)]
    pub deep: bool,
    /// The backup directory for bare names [default: [backup] dir, else backups].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupRestoreArgs {
    /// The backup file (a path, or a name in the backup directory).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Restore into this new database (PostgreSQL) or file (SQLite) instead of over the
    /// configured one.
    #[arg(long, value_name = "NAME")]
    pub to: Option<String>,
    /// Do not ask: restore over the database without typing its name.
    #[arg(short, long)]
    pub yes: bool,
    /// How long the restore may wait for a lock held by another session before giving up.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub restore_lock_timeout: String,
    /// The backup directory for bare names [default: [backup] dir, else backups].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupPruneArgs {
    /// Keep this many of each database's newest backups [default: [backup] keep].
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Delete backups older than this, e.g. 30d [default: [backup] max_age].
    #[arg(long, value_name = "DURATION")]
    pub max_age: Option<String>,
    /// Show what would be deleted, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The backup directory [default: [backup] dir, else backups].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// Treat the pending migrations up to this version only.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ActivityArgs {
    /// Refresh every SECONDS until interrupted.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<f64>,
    /// With --watch, stop after this many pictures.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// How many of the largest tables to show.
    #[arg(long, value_name = "N", default_value = "10")]
    pub tables: usize,
    /// Print JSON (one object per picture).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan the pending migrations up to this version only.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: PlanFormat,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Migration directories or SQL files [default: the project's migrations directory].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: crate::lint::Format,
    /// Exit with code 8 when a finding at or above this risk remains.
    #[arg(long, value_name = "RISK", default_value = "high")]
    pub fail_on: safeshift_lint::Risk,
    /// The PostgreSQL version the migrations will run on [default: the connected server's, else 15].
    #[arg(long, value_name = "VERSION", env = "SAFESHIFT_PG_VERSION")]
    pub pg_version: Option<String>,
    /// Lint as MySQL or MariaDB migrations for this server version (`8.0.36`, `10.11-MariaDB`)
    /// [default, on a MySQL project: the connected server's, else MySQL 8.0.36, or MariaDB
    /// 10.11 for a mariadb:// URL].
    #[arg(long, value_name = "VERSION", env = "SAFESHIFT_MYSQL_VERSION")]
    pub mysql_version: Option<String>,
    /// Rules not to run (repeatable).
    #[arg(long, value_name = "RULE")]
    pub disable: Vec<String>,
    /// With a database, also report migrations already applied (by default only pending ones).
    #[arg(long)]
    pub all: bool,
    /// Do not connect to the database even when one is configured: lint the files alone, with
    /// each finding at its rule's risk (no table sizes, no applied history).
    #[arg(long)]
    pub no_database: bool,
    /// Rewrite the dangerous statements that have a safe form (concurrent index builds, NOT VALID
    /// then VALIDATE, NOT NULL through a CHECK, batched backfills…) in the files, then lint again.
    #[arg(long)]
    pub fix: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The rule id [default: list every rule].
    #[arg(value_name = "RULE")]
    pub rule: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The database URL to write into safeshift.toml [default: sqlite://app.db].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Only write files; do not create the history table.
    #[arg(long)]
    pub no_database: bool,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// What the migration does, e.g. `add idempotency tables` [default with --rename-column or
    /// --change-type: derived from the change].
    #[arg(
        required_unless_present_any = ["rename_column", "change_type"],
        num_args = 1..,
        value_name = "DESCRIPTION"
    )]
    pub description: Vec<String>,
    /// Write the expand and contract migrations that rename a column without breaking running
    /// code: TABLE.OLD NEW (reads the column's definition from the database).
    #[arg(long, num_args = 2, value_names = ["TABLE.OLD", "NEW"], conflicts_with = "change_type")]
    pub rename_column: Option<Vec<String>>,
    /// Write the expand and contract migrations that change a column's type through a new column
    /// kept in sync: TABLE.COLUMN TYPE.
    #[arg(long, num_args = 2, value_names = ["TABLE.COLUMN", "TYPE"])]
    pub change_type: Option<Vec<String>>,
    /// With --change-type: the new column's name [default: COLUMN_new].
    #[arg(long = "as", value_name = "NAME", requires = "change_type")]
    pub new_column: Option<String>,
    /// With --change-type: the expression that converts the old column's value (`{}` stands
    /// for it) [default: a cast].
    #[arg(long, value_name = "EXPR", requires = "change_type")]
    pub using: Option<String>,
    /// With --change-type: the expression that converts back, for writes by old code [default: a cast].
    #[arg(long, value_name = "EXPR", requires = "change_type")]
    pub reverse: Option<String>,
    /// Number the file with a UTC timestamp (YYYYMMDDHHMMSS).
    #[arg(long, conflicts_with = "sequence")]
    pub timestamp: bool,
    /// Number the file with the next sequence number (0001, 0002, …).
    #[arg(long)]
    pub sequence: bool,
    /// File layout [default: the one the directory already uses, else sections].
    #[arg(long, value_name = "LAYOUT")]
    pub layout: Option<LayoutArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// One file with `-- migrate:up` and `-- migrate:down` sections.
    Sections,
    /// `.up.sql` and `.down.sql` files.
    Pair,
    /// A file, with its rollback in rollback/.
    RollbackDirectory,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit with code 7 when migrations are pending, 3 when a migration file is invalid.
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Apply up to and including this version.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Print the SQL and transaction boundaries that would run, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply pending migrations older than the newest applied one.
    #[arg(long, env = "SAFESHIFT_ALLOW_OUT_OF_ORDER")]
    pub allow_out_of_order: bool,
    /// Apply even if the linter finds risks up to this level in pending migrations
    /// [default: the environment's max_risk, else medium; HIGH-risk findings stop `up` unless
    /// acknowledged in the file].
    #[arg(long, value_name = "RISK")]
    pub allow_risk: Option<safeshift_lint::Risk>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Proceed without typing the database name in an environment that asks for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// When a health check fails after applying, roll back the migrations this run applied
    /// (newest first) [default: the environment's rollback_on_failure].
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// Abort the run cleanly (cancel, roll back, record) when a watchdog threshold is crossed:
    /// lock-wait[=5s], long-query[=10s], connections[=80%], duration[=D], comma-separated.
    #[arg(long, value_name = "THRESHOLDS", num_args = 0..=1, default_missing_value = "lock-wait")]
    pub abort_on: Option<String>,
    /// Do not run the watchdog.
    #[arg(long)]
    pub no_watch: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Roll back every applied migration newer than this version (0 for all).
    #[arg(long, value_name = "VERSION", conflicts_with = "steps")]
    pub to: Option<String>,
    /// Roll back this many migrations, newest first [default: 1].
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Proceed without typing the database name in an environment that asks for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Print the SQL and transaction boundaries that would run, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse to roll back a migration whose down section or file holds no statements, instead
    /// of recording it as rolled back without running anything.
    #[arg(long)]
    pub strict: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only rows for this version.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Only the newest N rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Show the run events instead: backups, restores, hooks, health checks, rollbacks,
    /// pre-flight outcomes and watchdog aborts.
    #[arg(long, conflicts_with = "version")]
    pub events: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Versions to repair [default: every applied migration whose file changed].
    #[arg(value_name = "VERSION")]
    pub versions: Vec<String>,
    /// Why the change is accepted (recorded in the history).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// The tool to adopt from: dbmate, golang-migrate, rails, goose, flyway, diesel, prisma,
    /// sqitch, alembic, knex, typeorm or sequelize [default: the one whose history table is in
    /// the database].
    #[arg(long = "from", value_name = "TOOL", value_parser = parse_tool)]
    pub from: Option<safeshift_adopt::Tool>,
    /// The tool's history table, as [SCHEMA.]TABLE, when it is not the tool's default name.
    #[arg(long, value_name = "TABLE", requires = "from")]
    pub table: Option<String>,
    /// Show what would be recorded and what disagrees, and record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Record migrations the tool applied whose file is gone (as applied without a file)
    /// instead of refusing.
    #[arg(long)]
    pub allow_missing_files: bool,
    /// Record migrations whose file changed since the tool applied them (Flyway, Prisma and
    /// sqitch keep checksums) instead of refusing.
    #[arg(long)]
    pub accept_changed: bool,
    /// For tools whose migrations are code (Alembic, Knex, TypeORM, Sequelize, Rails): the
    /// directory of their migration files [default: where the tool keeps them].
    #[arg(long, value_name = "DIR")]
    pub tool_dir: Option<PathBuf>,
    /// Where to prove a baseline (for tools whose migrations are code) instead of a throwaway
    /// server: a server where safeshift may create and drop a database.
    #[arg(long, value_name = "URL")]
    pub scratch_url: Option<String>,
    /// Why (recorded in every row's note).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_tool(text: &str) -> Result<safeshift_adopt::Tool, String> {
    safeshift_adopt::Tool::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is not a tool safeshift adopts from; choose one of {}",
            safeshift_adopt::Tool::ALL.map(|t| t.as_str()).join(", ")
        )
    })
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// The baseline migration's version [default: one that sorts before every migration in the
    /// directory].
    #[arg(long, value_name = "VERSION", conflicts_with = "through")]
    pub version: Option<String>,
    /// The migrations up to this version were applied by hand: record them as applied (proven
    /// to rebuild the live schema) instead of writing a baseline migration.
    #[arg(long, value_name = "VERSION")]
    pub through: Option<String>,
    /// Record without proving the rebuild on a throwaway server (the note says so).
    #[arg(long)]
    pub no_proof: bool,
    /// Prove on this server instead of a throwaway one (a database is created and dropped).
    #[arg(long, value_name = "URL")]
    pub scratch_url: Option<String>,
    /// Show what would be written and whether it rebuilds the schema, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Why (recorded in the history).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("resolution")
        .required(true)
        .args(["applied", "rolled_back"])
))]
pub struct ResolveArgs {
    /// The migration's version.
    #[arg(value_name = "VERSION")]
    pub version: String,
    /// The migration was finished by hand: record it as applied.
    #[arg(long)]
    pub applied: bool,
    /// The migration was undone by hand: record it as not applied.
    #[arg(long)]
    pub rolled_back: bool,
    /// Why (recorded in the history).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}
