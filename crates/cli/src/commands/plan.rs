//! `safeshift plan`: the migration plan for review, as Markdown or JSON.

use safeshift_deploy::plan;

use crate::cli::{PlanArgs, PlanFormat};
use crate::commands::parse_version;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::{YELLOW, err, out, styled};
use crate::production::render;

/// Builds the plan for the pending migrations and writes it to stdout or a file.
pub fn run(context: &Context, args: &PlanArgs) -> Result<Exit, CliError> {
    let target = args.to.as_deref().map(parse_version).transpose()?;
    let migrator = context.migrator(false)?;
    let database = context.database()?;
    let mut db = database.connect(false)?;
    let plan = plan::build(
        &migrator,
        db.as_mut(),
        &database,
        context.project.risk_policy,
        target.as_ref(),
    )?;
    if plan.sizes_unavailable {
        err(format!(
            "{} could not read the table sizes in time (a lock is queued on one of them); risks are graded without sizes",
            styled(YELLOW, "warning:")
        ));
    }
    let text = match args.format {
        PlanFormat::Markdown => render::plan_markdown(&plan),
        PlanFormat::Json => serde_json::to_string_pretty(&plan)
            .map_err(|e| CliError::usage(format!("cannot encode JSON: {e}")))?,
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, format!("{}\n", text.trim_end()))
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))?;
            err(format!(
                "Wrote the plan for {} migration(s) to {}.",
                plan.migrations.len(),
                path.display()
            ));
        }
        None => out(text.trim_end()),
    }
    Ok(Exit::Success)
}
