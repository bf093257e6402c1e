//! `safeshift resolve`: record that a migration was applied or rolled back by hand.

use safeshift_runner::Resolution;

use crate::cli::ResolveArgs;
use crate::commands::parse_version;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::render::Progress;

pub fn run(context: &Context, args: &ResolveArgs) -> Result<Exit, CliError> {
    let version = parse_version(&args.version)?;
    let resolution = if args.rolled_back {
        Resolution::RolledBack
    } else {
        Resolution::Applied
    };
    let migrator = context.migrator(false)?;
    let mut db = context.connect(false)?;
    let mut progress = Progress::new(context.quiet, false, context.project.lock.wait);
    let report = migrator.resolve(
        db.as_mut(),
        &version,
        resolution,
        args.reason.as_deref(),
        &mut progress,
    )?;
    let what = match resolution {
        Resolution::Applied => "applied",
        Resolution::RolledBack => "rolled back",
    };
    out(format!(
        "recorded {} as {what} by hand (history row {}, by {})",
        report.record.version, report.record.id, report.record.installed_by
    ));
    Ok(Exit::Success)
}
