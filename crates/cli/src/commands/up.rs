//! `safeshift up`: apply pending migrations, under the environment's policy.

use serde_json::json;

use safeshift::{DeployError, DeployFailure, Deployed, Policy, Stage};
use safeshift_driver::Direction;

use crate::cli::UpArgs;
use crate::commands::{error_json, parse_version, print_json};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::{err, out};
use crate::production::frontend::{Terminal, TypedConfirmation};
use crate::render;

pub fn run(context: &Context, args: &UpArgs) -> Result<Exit, CliError> {
    let target = args.to.as_deref().map(parse_version).transpose()?;
    let policy = policy(context, args)?;
    let guarded = policy.guards_the_run();
    let mut deployment = context.deployment(args.allow_out_of_order, policy)?;
    if args.dry_run {
        let plan = deployment.dry_run_up(target.as_ref())?;
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
    match deployment.up(target.as_ref(), &mut confirmation, &mut terminal) {
        Ok(done) => {
            if args.json {
                print_json(&success_json(&done, guarded));
            } else {
                render::run_summary(&done.report, Direction::Up, &database);
            }
            Ok(Exit::Success)
        }
        Err(failure) => Err(failed(failure, guarded, args.json)),
    }
}

/// The environment's policy with the flags over it. `--abort-on` and `--rollback-on-failure`
/// guard a run outside any environment too (with the watchdog, unless `--no-watch`).
fn policy(context: &Context, args: &UpArgs) -> Result<Policy, CliError> {
    let mut policy = context.project.policy();
    if let Some(risk) = args.allow_risk {
        policy.max_risk = risk;
    }
    policy.rollback_on_failure |= args.rollback_on_failure;
    if args.abort_on.is_some() || args.rollback_on_failure {
        policy.watch.get_or_insert_with(Default::default);
    }
    if let (Some(abort_on), Some(watch)) = (&args.abort_on, policy.watch.as_mut()) {
        watch
            .apply_abort_on(abort_on)
            .map_err(|m| CliError::usage(format!("--abort-on: {m}")))?;
    }
    if args.no_watch {
        policy.watch = None;
    }
    Ok(policy)
}

/// `--json` after a run that applied what it had to.
fn success_json(done: &Deployed, guarded: bool) -> serde_json::Value {
    if guarded && !done.up_to_date {
        json!({ "ok": true, "direction": "up", "report": done.report, "watchdog": done.watchdog,
            "backup": done.backup, "health": done.health })
    } else {
        json!({ "ok": true, "direction": "up", "report": done.report })
    }
}

/// What is shown of a run that stopped, and the error it ends with. A run stopped before its
/// migrations prints nothing but the error (and the lint gate's findings).
fn failed(failure: DeployFailure, guarded: bool, json: bool) -> CliError {
    let DeployFailure { done, stage, error } = failure;
    if let DeployError::Blocked { blocked, .. } = &error
        && !json
    {
        err(crate::lint::render_gate(blocked).trim_end());
    }
    let error = CliError::from(error);
    match stage {
        Stage::BeforeMigrations | Stage::Rollback => {}
        Stage::Migrations if json => {
            let mut value = json!({ "ok": false, "direction": "up", "report": done.report,
                "error": error_json(&error) });
            if guarded {
                value["watchdog"] = json!(done.watchdog);
                value["backup"] = json!(done.backup);
            }
            print_json(&value);
        }
        Stage::Migrations if !done.report.migrations.is_empty() => out(format!(
            "Applied {} migration(s) before the failure.",
            done.report.migrations.len()
        )),
        Stage::Migrations => {}
        Stage::HealthChecks if json => print_json(
            &json!({ "ok": false, "direction": "up", "report": done.report, "watchdog": done.watchdog,
                "backup": done.backup, "health": done.health, "rolled_back": done.rolled_back }),
        ),
        Stage::HealthChecks => {}
    }
    error
}
