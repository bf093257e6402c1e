//! `safeshift down`: roll back applied migrations, newest first.

use serde_json::json;

use safeshift::{DeployFailure, Policy, Stage};
use safeshift_driver::Direction;
use safeshift_runner::DownTarget;

use crate::cli::DownArgs;
use crate::commands::{error_json, parse_version, print_json};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::production::frontend::{Terminal, TypedConfirmation};
use crate::render;

pub fn run(context: &Context, args: &DownArgs) -> Result<Exit, CliError> {
    let target = match (&args.to, args.steps) {
        (Some(to), _) => DownTarget::To(parse_version(to)?),
        (None, Some(0)) => return Err(CliError::usage("--steps must be at least 1")),
        (None, Some(steps)) => DownTarget::Steps(steps),
        (None, None) => DownTarget::Steps(1),
    };
    // An environment's confirmation is all of its policy that applies to `down`.
    let environment = context.project.policy();
    let policy = Policy {
        confirm: environment.confirm && !args.dry_run,
        environment: environment.environment,
        ..Policy::default()
    };
    let mut deployment = context.deployment(false, policy)?;
    if args.dry_run {
        let plan = deployment.dry_run_down(&target)?;
        if args.json {
            print_json(&plan);
        } else {
            render::dry_run(&plan, deployment.database().url.redacted());
        }
        return Ok(Exit::Success);
    }
    let mut terminal = Terminal::new(context, args.json);
    let mut confirmation = TypedConfirmation { yes: args.yes };
    let database = deployment.database().url.redacted().to_owned();
    match deployment.down(&target, &mut confirmation, &mut terminal) {
        Ok(done) => {
            if args.json {
                print_json(&json!({ "ok": true, "direction": "down", "report": done.report }));
            } else {
                render::run_summary(&done.report, Direction::Down, &database);
            }
            Ok(Exit::Success)
        }
        Err(DeployFailure { done, stage, error }) => {
            let error = CliError::from(error);
            if stage == Stage::Migrations {
                if args.json {
                    print_json(
                        &json!({ "ok": false, "direction": "down", "report": done.report, "error": error_json(&error) }),
                    );
                } else if !done.report.migrations.is_empty() {
                    out(format!(
                        "Rolled back {} migration(s) before the failure.",
                        done.report.migrations.len()
                    ));
                }
            }
            Err(error)
        }
    }
}
