//! `safeshift down`: roll back applied migrations, newest first.

use serde_json::json;

use safeshift_driver::Direction;
use safeshift_runner::DownTarget;

use crate::cli::DownArgs;
use crate::commands::{error_json, parse_version, print_json};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::render::{self, Progress};
use crate::signals::Interrupts;

pub fn run(context: &Context, args: &DownArgs) -> Result<Exit, CliError> {
    let target = match (&args.to, args.steps) {
        (Some(to), _) => DownTarget::To(parse_version(to)?),
        (None, Some(0)) => return Err(CliError::usage("--steps must be at least 1")),
        (None, Some(steps)) => DownTarget::Steps(steps),
        (None, None) => DownTarget::Steps(1),
    };
    let confirm = !args.dry_run
        && context
            .project
            .environment
            .as_ref()
            .is_some_and(|e| e.confirm);
    if let Some(environment) = context.project.environment.as_ref().filter(|_| confirm) {
        crate::production::confirm::require_possible("`down`", &environment.name, args.yes)?;
    }
    let migrator = context.migrator(false)?;
    let mut db = context.connect(false)?;
    if confirm {
        let plan = migrator.dry_run_down(db.as_mut(), &target)?;
        let versions: Vec<&str> = plan.steps.iter().map(|s| s.version.as_str()).collect();
        crate::output::err(format!(
            "Rolling back {} migration(s) on {}: {}",
            versions.len(),
            db.redacted_url(),
            versions.join(", ")
        ));
        let database = db.server().database.clone();
        crate::production::confirm::ask(&database, "roll them back", args.yes)?;
    }
    if args.dry_run {
        let plan = migrator.dry_run_down(db.as_mut(), &target)?;
        if args.json {
            print_json(&plan);
        } else {
            render::dry_run(&plan, db.redacted_url());
        }
        return Ok(Exit::Success);
    }
    let interrupts = Interrupts::install(migrator.interrupt());
    interrupts.cancel_with(db.canceller());
    let mut progress = Progress::new(context.quiet, args.json, context.project.lock.wait);
    match migrator.down(db.as_mut(), &target, &mut progress) {
        Ok(report) => {
            if args.json {
                print_json(&json!({ "ok": true, "direction": "down", "report": report }));
            } else {
                render::run_summary(&report, Direction::Down, db.redacted_url());
            }
            Ok(Exit::Success)
        }
        Err(failure) => {
            let error = CliError::from(failure.error);
            if args.json {
                print_json(
                    &json!({ "ok": false, "direction": "down", "report": failure.completed, "error": error_json(&error) }),
                );
            } else if !failure.completed.migrations.is_empty() {
                out(format!(
                    "Rolled back {} migration(s) before the failure.",
                    failure.completed.migrations.len()
                ));
            }
            Err(error)
        }
    }
}
