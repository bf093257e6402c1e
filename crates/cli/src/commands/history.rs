//! `safeshift history`: the append-only log, every attempt included.

use crate::cli::HistoryArgs;
use crate::commands::{parse_version, print_json};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::out;
use crate::render;

pub fn run(context: &Context, args: &HistoryArgs) -> Result<Exit, CliError> {
    let version = args.version.as_deref().map(parse_version).transpose()?;
    if args.limit == Some(0) {
        return Err(CliError::usage_with_help(
            "--limit 0 would show nothing",
            "give the number of newest rows to show, at least 1, or leave --limit out for all",
        ));
    }
    let mut db = context.connect(false)?;
    if args.events {
        let mut events = db.read_events()?;
        if let Some(limit) = args.limit {
            let skip = events.len().saturating_sub(limit);
            events.drain(..skip);
        }
        if args.json {
            print_json(&events);
        } else {
            render::events(&events);
        }
        return Ok(Exit::Success);
    }
    let mut records = db.read_history()?;
    let total = records.len();
    if let Some(version) = &version {
        records.retain(|r| safeshift_source::Version::parse(&r.version).as_ref() == Some(version));
    }
    if let Some(limit) = args.limit {
        let skip = records.len().saturating_sub(limit);
        records.drain(..skip);
    }
    if args.json {
        print_json(&records);
    } else if let (Some(version), true, true) = (&version, records.is_empty(), total > 0) {
        out(format!(
            "No history rows for version {version} (the history has {total} row{}).",
            if total == 1 { "" } else { "s" }
        ));
    } else {
        render::history(&records);
    }
    Ok(Exit::Success)
}
