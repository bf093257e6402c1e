//! `safeshift history`: the append-only log, every attempt included.

use crate::cli::HistoryArgs;
use crate::commands::{parse_version, print_json};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::render;

pub fn run(context: &Context, args: &HistoryArgs) -> Result<Exit, CliError> {
    let version = args.version.as_deref().map(parse_version).transpose()?;
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
    if let Some(version) = &version {
        records.retain(|r| safeshift_source::Version::parse(&r.version).as_ref() == Some(version));
    }
    if let Some(limit) = args.limit {
        let skip = records.len().saturating_sub(limit);
        records.drain(..skip);
    }
    if args.json {
        print_json(&records);
    } else {
        render::history(&records);
    }
    Ok(Exit::Success)
}
