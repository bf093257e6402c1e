//! `safeshift activity`: what the server is doing, once or refreshed.

use std::time::Duration;

use safeshift_driver::{Engine, PostgresDriver};
use safeshift_watch::Activity;

use crate::cli::ActivityArgs;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::production::render;

/// Prints the server's activity; with `--watch`, again every few seconds until interrupted
/// (or `--count` pictures).
pub fn run(context: &Context, args: &ActivityArgs) -> Result<Exit, CliError> {
    let url = context.database_url()?;
    if url.engine() != Engine::Postgres {
        return Err(CliError::usage(
            "safeshift activity reads PostgreSQL's statistics views; this project's database is SQLite",
        ));
    }
    let mut connection = PostgresDriver::connect(&url, &context.connect_options()?)?;
    let interval = args
        .watch
        .map(|seconds| Duration::from_secs_f64(seconds.max(0.2)));
    let mut shown = 0u64;
    loop {
        let activity = Activity::sample(connection.client(), args.tables)?;
        if args.json {
            match serde_json::to_string(&activity) {
                Ok(line) => out(line),
                Err(error) => return Err(CliError::usage(format!("cannot encode JSON: {error}"))),
            }
        } else {
            if interval.is_some() && shown > 0 {
                out("");
                out(format!("— {} —", chrono::Utc::now().format("%H:%M:%S UTC")));
            }
            render::activity(&activity);
        }
        shown += 1;
        let Some(interval) = interval else { break };
        if args.count.is_some_and(|count| shown >= count) {
            break;
        }
        std::thread::sleep(interval);
    }
    Ok(Exit::Success)
}
