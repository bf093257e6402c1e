//! `safeshift schema`: prints the canonical description of a database's schema.

use safeshift_driver::{DatabaseUrl, Engine};
use safeshift_rehearse::SnapshotScope;

use crate::commands::print_json;
use crate::commands::rehearse::from_rehearse;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::rehearse::{SchemaArgs, render_schema};

/// Snapshots the given (or the project's) PostgreSQL database and prints it.
pub fn run(context: &Context, args: &SchemaArgs) -> Result<Exit, CliError> {
    let url = match &args.url {
        Some(url) => DatabaseUrl::parse(url)?,
        None => context.database_url()?,
    };
    if url.engine() != Engine::Postgres {
        return Err(CliError::usage(
            "`safeshift schema` describes PostgreSQL databases",
        ));
    }
    let scope = SnapshotScope {
        excluded_schemas: vec![context.project.history.schema.clone()],
    };
    let snapshot = safeshift_rehearse::snapshot_of(&url, &scope).map_err(from_rehearse)?;
    if args.json {
        print_json(&snapshot);
    } else {
        out(render_schema(&snapshot));
    }
    Ok(Exit::Success)
}
