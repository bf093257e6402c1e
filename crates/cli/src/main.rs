//! The `safeshift` command. `main` parses arguments, runs one command, and maps the outcome to
//! a documented exit code (see `cli::EXIT_CODES`).

// `CliError` carries the runner's error (the failed statement and the database's error) so it
// can be rendered in full; it is returned once per command, never in a loop, so its size costs
// nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod cli;
mod commands;
mod context;
mod diagnostics;
mod exit;
mod lint;
mod online;
mod output;
mod production;
mod rehearse;
mod render;
mod signals;

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::from_process();
    let json = cli.wants_json();
    if let Some(directory) = &cli.global.chdir
        && let Err(error) = std::env::set_current_dir(directory)
    {
        let error = exit::CliError::usage(format!("-C {}: {error}", directory.display()));
        return failed(&error, json);
    }
    match commands::run(cli) {
        Ok(exit) => exit.into(),
        Err(error) => failed(&error, json),
    }
}

/// Reports a failure on stderr, and, for a command asked for JSON that printed nothing yet,
/// as `{"ok": false, "error": …}` on stdout, whatever the failure.
fn failed(error: &exit::CliError, json: bool) -> ExitCode {
    if json && !output::stdout_written() {
        commands::print_json(&serde_json::json!({
            "ok": false,
            "error": commands::error_json(error),
        }));
    }
    diagnostics::report(error);
    error.exit().into()
}
