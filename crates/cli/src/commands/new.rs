//! `safeshift new`: write the next migration file.

use safeshift_source::{
    Layout, VersionScheme, existing_versions, plan_new_migration, write_new_migration,
};

use crate::cli::{LayoutArg, NewArgs};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;

pub fn run(context: &Context, args: &NewArgs) -> Result<Exit, CliError> {
    if args.rename_column.is_some() || args.change_type.is_some() {
        return crate::commands::expand::run(context, args);
    }
    let directory = &context.project.migrations_dir;
    if !directory.exists() {
        std::fs::create_dir_all(directory)
            .map_err(|e| CliError::usage(format!("cannot create {}: {e}", directory.display())))?;
    }
    let existing = existing_versions(directory).map_err(|e| CliError::Source(e.into()))?;
    let scheme = if args.timestamp {
        Some(VersionScheme::Timestamp)
    } else if args.sequence {
        Some(VersionScheme::Sequence)
    } else {
        context.project.version_scheme
    };
    let layout = args.layout.map(|layout| match layout {
        LayoutArg::Sections => Layout::Sections,
        LayoutArg::Pair => Layout::Pair,
        LayoutArg::RollbackDirectory => Layout::RollbackDirectory,
    });
    let description = args.description.join(" ");
    let planned = plan_new_migration(
        directory,
        &existing,
        &description,
        scheme,
        layout,
        chrono::Utc::now(),
    )
    .map_err(CliError::usage)?;
    write_new_migration(&planned)
        .map_err(|e| CliError::usage(format!("cannot write the migration: {e}")))?;
    for (path, _) in &planned.files {
        out(format!("created {}", path.display()));
    }
    Ok(Exit::Success)
}
