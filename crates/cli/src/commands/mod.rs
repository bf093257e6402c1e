//! One module per command; each turns its arguments into calls on the `safeshift` crate (and the
//! libraries it gathers) and renders the result.

mod activity;
mod adopt;
mod backfill;
mod backup;
mod baseline;
mod diff;
mod down;
mod expand;
mod explain;
mod history;
mod init;
pub mod lint;
mod new;
mod plan;
mod preflight;
mod rehearse;
mod repair;
mod resolve;
mod schema;
mod status;
mod up;

use serde_json::json;

use safeshift_source::Version;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> Result<Exit, CliError> {
    if let Command::Init(args) = &cli.command {
        return init::run(&cli.global, args);
    }
    if let Command::Explain(args) = &cli.command {
        return explain::run(args);
    }
    let context = Context::new(&cli.global)?;
    match &cli.command {
        Command::Init(_) => unreachable!("handled above"),
        Command::New(args) => new::run(&context, args),
        Command::Status(args) => status::run(&context, args),
        Command::Up(args) => up::run(&context, args),
        Command::Down(args) => down::run(&context, args),
        Command::History(args) => history::run(&context, args),
        Command::Repair(args) => repair::run(&context, args),
        Command::Resolve(args) => resolve::run(&context, args),
        Command::Adopt(args) => adopt::run(&context, args),
        Command::Baseline(args) => baseline::run(&context, args),
        Command::Lint(args) => lint::run(&context, args),
        Command::Rehearse(args) => rehearse::run(&context, args),
        Command::Schema(args) => schema::run(&context, args),
        Command::Diff(args) => diff::run(&context, args),
        Command::Explain(_) => unreachable!("handled above"),
        Command::Backup(command) => backup::run(&context, command),
        Command::Preflight(args) => preflight::run(&context, args),
        Command::Activity(args) => activity::run(&context, args),
        Command::Plan(args) => plan::run(&context, args),
        Command::Backfill(args) => backfill::run(&context, args),
    }
}

/// Parses a version given on the command line.
pub fn parse_version(text: &str) -> Result<Version, CliError> {
    Version::parse(text).ok_or_else(|| {
        CliError::usage_with_help(
            format!("`{text}` is not a version"),
            "versions are the digits a migration file name starts with, e.g. 0004 or 20240101120000",
        )
    })
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => out(text),
        Err(error) => crate::output::err(format!("error: cannot encode JSON: {error}")),
    }
}

/// The JSON form of an error, for `--json` output.
pub fn error_json(error: &CliError) -> serde_json::Value {
    let (kind, message, help) = match error {
        CliError::Usage { message, help } => ("usage", message.clone(), help.clone()),
        CliError::Source(errors) => (
            "invalid-migration-files",
            errors.to_string(),
            errors.iter().find_map(|e| e.help.clone()),
        ),
        CliError::Database(error) => ("database", error.to_string(), error.hint.clone()),
        CliError::Run(error) => (run_error_kind(error), error.to_string(), error.help()),
        CliError::Guard(guard) => (
            if guard.exit == Exit::HealthCheck {
                "health-check-failed"
            } else {
                "refused-by-guard"
            },
            guard.message.clone(),
            guard.help.clone(),
        ),
    };
    let mut value = json!({
        "kind": kind,
        "message": message,
        "help": help,
        "exit_code": error.exit() as u8,
    });
    match error {
        CliError::Source(errors) => value["problems"] = json!(errors.0),
        CliError::Run(safeshift_runner::RunError::MigrationFailed {
            version,
            file,
            direction,
            statement,
            error,
            attempts,
            recorded,
            applied_statements,
            transactional,
        }) => {
            value["migration"] = json!({
                "version": version,
                "file": file,
                "direction": direction,
                "statement": statement,
                "error": error,
                "attempts": attempts,
                "recorded": recorded,
                "applied_statements": applied_statements,
                "transactional": transactional,
            });
        }
        CliError::Run(safeshift_runner::RunError::ChecksumMismatch(mismatches)) => {
            value["mismatches"] = json!(mismatches)
        }
        _ => {}
    }
    value
}

fn run_error_kind(error: &safeshift_runner::RunError) -> &'static str {
    use safeshift_runner::RunError::*;
    match error {
        Source(_) | Statements(_) => "invalid-migration-files",
        Database(_) => "database",
        LockTimeout { .. } => "lock-timeout",
        LockLost(_) => "lock-lost",
        ChecksumMismatch(_) => "checksum-mismatch",
        OutOfOrder { .. } => "out-of-order",
        MissingDown(_) => "missing-down",
        Blocked { .. } => "blocked",
        MigrationFailed { .. } => "migration-failed",
        Interrupted { .. } => "interrupted",
        Usage(_) => "usage",
    }
}
