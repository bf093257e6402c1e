//! `safeshift diff URL_A URL_B`: compares the schemas of two databases.

use safeshift_driver::{DatabaseUrl, Engine};
use safeshift_rehearse::SnapshotScope;

use crate::commands::print_json;
use crate::commands::rehearse::from_rehearse;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::rehearse::{DiffArgs, render_diff};

/// Snapshots both databases and prints what differs; with `--exit-code`, exits 12 when
/// anything does.
pub fn run(context: &Context, args: &DiffArgs) -> Result<Exit, CliError> {
    let scope = SnapshotScope {
        excluded_schemas: vec![context.project.history.schema.clone()],
    };
    let mut snapshots = Vec::with_capacity(2);
    for text in [&args.left, &args.right] {
        let url = DatabaseUrl::parse(text)?;
        if url.engine() != Engine::Postgres {
            return Err(CliError::usage(
                "`safeshift diff` compares PostgreSQL databases",
            ));
        }
        snapshots.push((
            url.redacted().to_owned(),
            safeshift_rehearse::snapshot_of(&url, &scope).map_err(from_rehearse)?,
        ));
    }
    let difference = safeshift_rehearse::diff(&snapshots[0].1, &snapshots[1].1);
    if args.json {
        print_json(&difference);
    } else {
        out(render_diff(&difference, &snapshots[0].0, &snapshots[1].0));
    }
    Ok(if args.exit_code && !difference.is_empty() {
        Exit::SchemasDiffer
    } else {
        Exit::Success
    })
}
