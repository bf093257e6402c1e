//! `safeshift rehearse`: proves the pending migrations on a throwaway PostgreSQL (locks,
//! rewrites, rollback, re-run) and prints the report; exits 11 when any migration fails.

use std::collections::{BTreeMap, BTreeSet};

use safeshift_driver::{ConnectOptions, DatabaseUrl, Driver, Engine, PostgresDriver};
use safeshift_lint::{AppliedMigrations, LintOptions, Linter, PgVersion, Scope};
use safeshift_rehearse::{
    Expectations, GradingThresholds, Predictions, Progress, RehearsalOptions, RehearseError,
    ServerChoice, SnapshotScope, StatementPrediction,
};
use safeshift_runner::HistoryState;
use safeshift_source::MigrationSet;

use crate::commands::print_json;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::{err, out};
use crate::rehearse::{
    COMMENT_LIMIT, Format, MarkdownOptions, RehearseArgs, render_human, render_markdown,
};

/// Rehearses the pending migrations and prints the report in the chosen format.
pub fn run(context: &Context, args: &RehearseArgs) -> Result<Exit, CliError> {
    let set = context.migrations()?;
    let from_database = args
        .from_database
        .as_deref()
        .map(postgres_url)
        .transpose()?;
    let applied = applied_versions(context, args, &set, from_database.as_ref())?;
    let server = match &args.scratch_url {
        Some(url) => ServerChoice::Existing(postgres_url(url)?),
        None => ServerChoice::Throwaway {
            preferred_major: None,
        },
    };
    let expectations = args
        .expect
        .as_deref()
        .map(Expectations::read)
        .transpose()
        .map_err(from_rehearse)?;
    if let Some(expectations) = &expectations {
        let versions: Vec<&str> = set.migrations.iter().map(|m| m.version.as_str()).collect();
        for unknown in expectations.unknown_versions(&versions) {
            err(format!(
                "warning: --expect names version {unknown}, which is not a migration"
            ));
        }
    }
    let options = RehearsalOptions {
        server,
        from_database,
        predictions: lint_predictions(&set, &applied),
        applied,
        rows: args.rows,
        expectations,
        strict: args.strict,
        scope: SnapshotScope {
            excluded_schemas: vec![context.project.history.schema.clone()],
        },
        keep_going: args.keep_going,
        // The project's `[lint]` risk policy, as `lint`, `plan` and `up` grade with.
        thresholds: GradingThresholds::from(context.project.risk_policy),
    };
    let quiet = context.quiet;
    let mut progress = |event: Progress<'_>| {
        if quiet {
            return;
        }
        match event {
            Progress::ServerReady { ms } => err(format!("server ready in {:.2} s", ms / 1000.0)),
            Progress::StartingPointReady { .. } => {}
            Progress::Migration {
                position,
                total,
                version,
                name,
            } => err(format!("[{position}/{total}] rehearsing {version} {name}")),
            Progress::Rebuilding { version, replaying } => err(format!(
                "--keep-going: rebuilding the state after {version}'s up ({replaying} up{} to replay)",
                if replaying == 1 { "" } else { "s" }
            )),
        }
    };
    let report =
        safeshift_rehearse::rehearse(&set, &options, &mut progress).map_err(from_rehearse)?;
    let full_report = args
        .full_report
        .as_deref()
        .map(|path| path.display().to_string());
    if let Some(path) = &args.full_report {
        let whole = match args.format {
            Format::Human => render_human(&report, true),
            Format::Markdown => render_markdown(
                &report,
                &MarkdownOptions {
                    limit: None,
                    every_migration: true,
                    full_report: None,
                },
            ),
            Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default(),
        };
        let plain = anstream::adapter::strip_str(&whole).to_string();
        std::fs::write(path, plain + "\n").map_err(|error| {
            CliError::usage(format!("--full-report {}: {error}", path.display()))
        })?;
    }
    match args.format {
        Format::Human => out(render_human(&report, args.details)),
        Format::Markdown => out(render_markdown(
            &report,
            &MarkdownOptions {
                limit: Some(COMMENT_LIMIT),
                every_migration: args.details,
                full_report: full_report.as_deref(),
            },
        )),
        Format::Json => print_json(&report),
    }
    Ok(if report.failed() {
        Exit::RehearsalFailed
    } else {
        Exit::Success
    })
}

/// A PostgreSQL URL from the command line.
fn postgres_url(text: &str) -> Result<DatabaseUrl, CliError> {
    let url = DatabaseUrl::parse(text)?;
    if url.engine() != Engine::Postgres {
        return Err(CliError::usage_with_help(
            format!("`{}` is not a PostgreSQL URL", url.redacted()),
            "rehearsals run on PostgreSQL: give postgres://user@host/database",
        ));
    }
    Ok(url)
}

/// The versions already applied: from `--from-database`'s history, else from the project's
/// PostgreSQL database; none with `--all` or when the project has no PostgreSQL database.
fn applied_versions(
    context: &Context,
    args: &RehearseArgs,
    set: &MigrationSet,
    from_database: Option<&DatabaseUrl>,
) -> Result<BTreeSet<String>, CliError> {
    if args.all {
        return Ok(BTreeSet::new());
    }
    let url = match from_database {
        Some(url) => url.clone(),
        None => match &context.project.url {
            Some((url, _)) => match DatabaseUrl::parse(url) {
                Ok(url) if url.engine() == Engine::Postgres => url,
                _ => return Ok(BTreeSet::new()),
            },
            None => return Ok(BTreeSet::new()),
        },
    };
    let options = ConnectOptions {
        base_dir: context.project.root.clone(),
        history: context.project.history.clone(),
        create: false,
        ..ConnectOptions::default()
    };
    let mut driver = PostgresDriver::connect(&url, &options).map_err(|error| {
        CliError::Database(error.with_hint(
            "rehearse reads the database's history to know which migrations are pending; \
             pass --all to rehearse every migration without asking it",
        ))
    })?;
    let state = HistoryState::from_records(&driver.read_history()?);
    Ok(set
        .migrations
        .iter()
        .filter(|m| state.is_applied(&m.version))
        .map(|m| m.version.as_str().to_owned())
        .collect())
}

/// What the lock model predicts for each statement of the pending migrations: the lock it
/// takes on each table in use (not the locks a finding is about, which may be held from an
/// earlier statement) and the rewrites.
fn lint_predictions(set: &MigrationSet, applied: &BTreeSet<String>) -> Predictions {
    let Ok(linter) = Linter::new(LintOptions {
        pg_version: PgVersion::DEFAULT,
        ..LintOptions::default()
    }) else {
        return Predictions::default();
    };
    let applied = AppliedMigrations {
        versions: applied.iter().map(|v| (v.clone(), None)).collect(),
    };
    let mut predictions = Predictions::default();
    for (version, statements) in linter.predict(set, Some(&applied), &Scope::Pending) {
        let migration: &mut BTreeMap<usize, StatementPrediction> =
            predictions.migrations.entry(version).or_default();
        for statement in statements {
            let prediction = StatementPrediction {
                locks: statement
                    .locks
                    .iter()
                    .map(|lock| (lock.table.clone(), lock.mode))
                    .collect(),
                rewrites: statement.rewrites.clone(),
            };
            if prediction != StatementPrediction::default() {
                migration.insert(statement.index, prediction);
            }
        }
    }
    predictions
}

/// The CLI's error for a rehearsal that could not be carried out.
pub fn from_rehearse(error: RehearseError) -> CliError {
    match error {
        RehearseError::Database { error, .. } => CliError::Database(*error),
        RehearseError::Source(errors) => CliError::Source(errors),
        RehearseError::Server(error) => CliError::usage_with_help(
            error.to_string(),
            "or give --scratch-url postgres://… for a server where safeshift may create and drop a database",
        ),
        other => CliError::usage(other.to_string()),
    }
}
