//! `safeshift status`: every migration and where it stands. Takes no lock, writes nothing.

use crate::cli::StatusArgs;
use crate::commands::print_json;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::render;

pub fn run(context: &Context, args: &StatusArgs) -> Result<Exit, CliError> {
    let migrator = context.migrator(false)?;
    let mut db = context.connect(false)?;
    let report = migrator.status(db.as_mut())?;
    if args.json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        value["counts"] = serde_json::json!(report.counts());
        print_json(&value);
    } else {
        render::status(&report, &context.migrations_dir_display());
    }
    Ok(if args.exit_code && !report.problems.is_empty() {
        Exit::InvalidFiles
    } else if args.exit_code && report.pending > 0 {
        Exit::Pending
    } else {
        Exit::Success
    })
}
