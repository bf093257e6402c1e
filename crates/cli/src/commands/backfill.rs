//! `safeshift backfill`: run an UPDATE as a resumable, throttled, batched backfill, outside any
//! migration; or list the backfill checkpoints.

use serde_json::json;

use safeshift_driver::PostgresDriver;
use safeshift_online::backfill::{self, BackfillRequest, Existing, checkpoint, directive};
use safeshift_online::{OnlineEvent, Probe};
use safeshift_runner::Interrupt;

use crate::cli::BackfillArgs;
use crate::commands::print_json;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::online::{Renderer, count, summary_line};
use crate::output::{DIM, err, out, styled, table};
use crate::signals::Interrupts;

pub fn run(context: &Context, args: &BackfillArgs) -> Result<Exit, CliError> {
    let mut db = context.connect(true)?;
    let Some(driver) = PostgresDriver::of_mut(db.as_mut()) else {
        return Err(CliError::usage_with_help(
            "safeshift backfill runs on PostgreSQL",
            "on SQLite, run the UPDATE as it is: one writer at a time leaves nothing to batch around",
        ));
    };
    let schema = context.project.online.checkpoint_schema.clone();
    if args.status {
        return status(driver, &schema, args.json);
    }
    let sql = match (&args.sql, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?,
        (None, None) => unreachable!("clap requires SQL or --file"),
    };
    let sql = sql.trim().trim_end_matches(';').trim().to_owned();
    let mut options = context.project.online.backfill.clone();
    let mut arguments = Vec::new();
    if let Some(batch) = args.batch {
        arguments.push(format!("batch={batch}"));
    }
    for (key, value) in [
        ("target", &args.target),
        ("pause", &args.pause),
        ("max-lag", &args.max_lag),
    ] {
        if let Some(value) = value {
            arguments.push(format!("{key}={value}"));
        }
    }
    if let Some(waiters) = args.max_waiters {
        arguments.push(format!("max-waiters={waiters}"));
    }
    directive::apply(&arguments.join(" "), &mut options).map_err(CliError::usage)?;
    if let Some(probe) = &args.probe {
        options.probe = Some(Probe::parse(probe));
    }
    let name = match &args.name {
        Some(name) => name.clone(),
        None => backfill::default_name(&sql)
            .map_err(|e| CliError::usage(e.message.trim_start_matches("backfill: ").to_owned()))?,
    };
    let interrupt = std::sync::Arc::new(Interrupt::default());
    let interrupts = Interrupts::install(std::sync::Arc::clone(&interrupt));
    interrupts.cancel_with(safeshift_driver::Driver::canceller(&*driver));
    let request = BackfillRequest {
        name,
        sql: &sql,
        options,
        checkpoint_schema: &schema,
        existing: if args.restart {
            Existing::Restart
        } else {
            Existing::Continue
        },
    };
    let renderer = Renderer::sink(context.quiet || args.json);
    let sink: safeshift_online::EventSink = std::sync::Arc::new(move |event: &OnlineEvent| {
        // The summary is printed once, below, on stdout.
        if !matches!(event, OnlineEvent::BackfillFinished(_)) {
            renderer(event);
        }
    });
    match backfill::run(driver, &request, &interrupt, &sink) {
        Ok(summary) => {
            if args.json {
                print_json(&json!({ "ok": true, "backfill": summary }));
            } else {
                out(summary_line(&summary));
                if summary.already_finished {
                    out("run with --restart to run it again (rows done are updated again)");
                }
            }
            Ok(Exit::Success)
        }
        Err(error) if interrupt.is_requested() => {
            err(format!("{}: {}", interrupt.reason(), error.message));
            Ok(Exit::Interrupted)
        }
        Err(error) => Err(CliError::Database(error)),
    }
}

/// `safeshift backfill --status`.
fn status(
    session: &mut dyn safeshift_online::Session,
    schema: &str,
    json: bool,
) -> Result<Exit, CliError> {
    checkpoint::ensure_table(session, schema)?;
    let checkpoints = checkpoint::list(session, schema)?;
    if json {
        print_json(&json!({ "backfills": checkpoints }));
        return Ok(Exit::Success);
    }
    if checkpoints.is_empty() {
        out("No backfills recorded.");
        return Ok(Exit::Success);
    }
    let mut rows = vec![
        [
            "NAME",
            "TABLE",
            "STATE",
            "VISITED",
            "UPDATED",
            "BATCHES",
            "UPDATED AT",
        ]
        .iter()
        .map(|h| styled(DIM, h))
        .collect::<Vec<_>>(),
    ];
    for checkpoint in &checkpoints {
        let state = if checkpoint.finished {
            "finished".to_owned()
        } else {
            let percent = (checkpoint.rows_scanned * 100)
                .checked_div(checkpoint.rows_total)
                .unwrap_or(0)
                .min(99);
            format!("stopped at {percent}%")
        };
        rows.push(vec![
            checkpoint.name.clone(),
            checkpoint.table.clone(),
            state,
            format!(
                "{}/{}",
                count(checkpoint.rows_scanned),
                count(checkpoint.rows_total)
            ),
            count(checkpoint.rows_updated),
            count(checkpoint.batches),
            checkpoint.updated_at.chars().take(19).collect(),
        ]);
    }
    for line in table(&rows) {
        out(line);
    }
    Ok(Exit::Success)
}
