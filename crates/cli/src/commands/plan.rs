//! `safeshift plan`: the migration plan for review, as Markdown or JSON.

use crate::cli::{PlanArgs, PlanFormat};
use crate::commands::parse_version;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::{err, out};
use crate::production::{plan, render};

/// Builds the plan for the pending migrations and writes it to stdout or a file.
pub fn run(context: &Context, args: &PlanArgs) -> Result<Exit, CliError> {
    let target = args.to.as_deref().map(parse_version).transpose()?;
    let migrator = context.migrator(false)?;
    let mut db = context.connect(false)?;
    let plan = plan::build(context, &migrator, db.as_mut(), target.as_ref())?;
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
