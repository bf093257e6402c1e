//! `safeshift activity`: what the server is doing, once or refreshed.

use std::time::Duration;

use safeshift_driver::{Engine, MysqlDriver, PostgresDriver};
use safeshift_watch::Activity;
use safeshift_watch::mysql::MysqlSampler;

use crate::cli::ActivityArgs;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::production::render;

/// Where the activity is read.
enum Source {
    Postgres(Box<PostgresDriver>),
    Mysql(Box<MysqlSampler>),
}

/// Prints the server's activity; with `--watch`, again every few seconds until interrupted
/// (or `--count` pictures).
pub fn run(context: &Context, args: &ActivityArgs) -> Result<Exit, CliError> {
    let url = context.database_url()?;
    let mut source = match url.engine() {
        Engine::Postgres => Source::Postgres(Box::new(PostgresDriver::connect(
            &url,
            &context.connect_options()?,
        )?)),
        Engine::Mysql => Source::Mysql(Box::new(MysqlSampler::new(MysqlDriver::connect(
            &url,
            &context.connect_options()?,
        )?)?)),
        Engine::Sqlite => {
            return Err(CliError::usage(
                "safeshift activity reads the server's sessions and locks; this project's database is SQLite",
            ));
        }
    };
    let interval = args
        .watch
        .map(|seconds| Duration::from_secs_f64(seconds.max(0.2)));
    let mut shown = 0u64;
    loop {
        let activity = match &mut source {
            Source::Postgres(connection) => Activity::sample(connection.client(), args.tables)?,
            Source::Mysql(sampler) => safeshift_watch::mysql::activity(sampler, args.tables)?,
        };
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
