//! `safeshift up`: apply pending migrations.

use serde_json::json;

use safeshift_driver::Direction;

use crate::cli::UpArgs;
use crate::commands::{error_json, parse_version, print_json};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::render::{self, Progress};
use crate::signals::Interrupts;

pub fn run(context: &Context, args: &UpArgs) -> Result<Exit, CliError> {
    let target = args.to.as_deref().map(parse_version).transpose()?;
    let migrator = context.migrator(args.allow_out_of_order)?;
    let mut db = context.connect(!args.dry_run)?;
    if args.dry_run {
        let plan = migrator.dry_run_up(db.as_mut(), target.as_ref())?;
        if args.json {
            print_json(&plan);
        } else {
            render::dry_run(&plan, db.redacted_url());
        }
        return Ok(Exit::Success);
    }
    let accepted = args
        .allow_risk
        .or(context
            .project
            .environment
            .as_ref()
            .and_then(|e| e.max_risk))
        .unwrap_or(safeshift_lint::Risk::Medium);
    if context.project.environment.is_some() || args.abort_on.is_some() || args.rollback_on_failure
    {
        drop(db);
        return crate::production::up::run(context, args, target.as_ref(), accepted);
    }
    crate::commands::lint::gate_pending_up_to(
        context,
        &migrator,
        db.as_mut(),
        accepted,
        args.json,
        target.as_ref(),
    )?;
    let interrupts = Interrupts::install(migrator.interrupt());
    interrupts.cancel_with(db.canceller());
    let mut progress = Progress::new(context.quiet, args.json, context.project.lock.wait);
    match migrator.up(db.as_mut(), target.as_ref(), &mut progress) {
        Ok(report) => {
            if args.json {
                print_json(&json!({ "ok": true, "direction": "up", "report": report }));
            } else {
                render::run_summary(&report, Direction::Up, db.redacted_url());
            }
            Ok(Exit::Success)
        }
        Err(failure) => {
            let error = CliError::from(failure.error);
            if args.json {
                print_json(
                    &json!({ "ok": false, "direction": "up", "report": failure.completed, "error": error_json(&error) }),
                );
            } else if !failure.completed.migrations.is_empty() {
                out(format!(
                    "Applied {} migration(s) before the failure.",
                    failure.completed.migrations.len()
                ));
            }
            Err(error)
        }
    }
}
