//! `safeshift repair`: accept changed files of applied migrations, with an audit row each.

use crate::cli::RepairArgs;
use crate::commands::parse_version;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::render::Progress;

pub fn run(context: &Context, args: &RepairArgs) -> Result<Exit, CliError> {
    let versions = args
        .versions
        .iter()
        .map(|v| parse_version(v))
        .collect::<Result<Vec<_>, _>>()?;
    let migrator = context.migrator(false)?;
    let mut db = context.connect(false)?;
    let mut progress = Progress::new(context.quiet, false, context.project.lock.wait);
    let report = migrator.repair(
        db.as_mut(),
        &versions,
        args.reason.as_deref(),
        &mut progress,
    )?;
    if report.repaired.is_empty() {
        out("Nothing to repair: every applied migration matches its file.");
    }
    for repaired in &report.repaired {
        out(format!(
            "accepted {} (version {}): {} -> {}",
            repaired.file.display(),
            repaired.version,
            repaired.recorded,
            repaired.current
        ));
    }
    Ok(Exit::Success)
}
