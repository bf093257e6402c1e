//! `safeshift preflight`: is the database ready for `up`?

use safeshift_deploy::preflight::{self, Outcome, PreflightInputs};

use crate::cli::PreflightArgs;
use crate::commands::{parse_version, print_json};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::production::render;

/// Runs every pre-flight check and prints the verdicts; exits 9 when one fails.
pub fn run(context: &Context, args: &PreflightArgs) -> Result<Exit, CliError> {
    let target = args.to.as_deref().map(parse_version).transpose()?;
    let migrator = context.migrator(false)?;
    let policy = context.project.policy();
    let inputs = PreflightInputs {
        target: target.as_ref(),
        accepted: policy.max_risk,
        risk_policy: policy.risk_policy,
        backup_dir: &policy.backups.dir,
        plan: None,
    };
    let report = preflight::run(&context.database()?, &migrator, &inputs)?;
    if args.json {
        print_json(&serde_json::json!({
            "ok": report.outcome() != Outcome::Fail,
            "outcome": report.outcome(),
            "report": report,
        }));
    } else {
        render::preflight(&report, &|line| out(line));
    }
    if report.outcome() == Outcome::Fail {
        Err(CliError::guard(
            "pre-flight checks failed",
            Some("fix what the failed checks report before running `safeshift up`".into()),
        ))
    } else {
        Ok(Exit::Success)
    }
}
