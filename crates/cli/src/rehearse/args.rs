//! The arguments of `rehearse`, `schema` and `diff`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// `rehearse --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table per migration, for a terminal.
    Human,
    /// The whole report as JSON.
    Json,
    /// A Markdown report for a pull request.
    Markdown,
}

#[derive(Debug, Args)]
pub struct RehearseArgs {
    /// A server where safeshift may create and drop a database, instead of starting a
    /// throwaway one from the local PostgreSQL binaries.
    #[arg(
        long,
        value_name = "URL",
        env = "SAFESHIFT_SCRATCH_URL",
        hide_env_values = true
    )]
    pub scratch_url: Option<String>,
    /// Start from this database's schema (`pg_dump --schema-only`) and table sizes, never its
    /// data; durations are also scaled to its table sizes. Its history says what is pending.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub from_database: Option<String>,
    /// Fill the tables each migration touches with N synthetic rows first.
    #[arg(long, value_name = "N")]
    pub rows: Option<u64>,
    /// A YAML file listing the tables, columns, indexes and constraints each migration should
    /// add, change or remove.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// Fail on a rollback that only changes column order, and on a migration without down.
    #[arg(long)]
    pub strict: bool,
    /// After a migration whose down or re-run fails, go on: the scratch database is rebuilt to
    /// the state after its up (starting point, then every up so far replayed) and the next
    /// migration starts from there. A failed first up still stops the rehearsal; the exit code
    /// still says a migration failed.
    #[arg(long)]
    pub keep_going: bool,
    /// Rehearse every migration, as if none were applied (the database is not asked).
    #[arg(long, conflicts_with = "from_database")]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Show the statements of the migrations that passed too (by default the report gives them
    /// a summary line; the details are for the ones that did not pass).
    #[arg(long)]
    pub details: bool,
    /// Also write the whole report, every migration in detail, to FILE (in --format's format);
    /// the Markdown comment, cut to fit a pull request, points at it.
    #[arg(long, value_name = "FILE")]
    pub full_report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The database [default: the project's database, see --database-url].
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first database.
    #[arg(value_name = "URL_A")]
    pub left: String,
    /// The second database.
    #[arg(value_name = "URL_B")]
    pub right: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit with code 12 when the schemas differ.
    #[arg(long)]
    pub exit_code: bool,
}
