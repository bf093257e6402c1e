//! `safeshift adopt`: take over from the tool the project uses today. Its history table is read
//! (never written), matched to the migration files, and what it applied is recorded in
//! safeshift's history with an audit note each; any disagreement refuses the whole adoption.
//! Tools whose migrations are code are adopted through a baseline of the live schema.

use serde_json::json;

use safeshift_adopt::{
    AdoptOptions, AdoptionPlan, CodeToolCheck, Disagreement, HistoryTable, Tool, code_tool_check,
    default_tool_directory, find_history_tables, locate_history_table, plan_adoption, read_history,
};
use safeshift_driver::{DatabaseUrl, Driver};
use safeshift_runner::{HistoryState, RunError};
use safeshift_source::SqitchPlan;

use crate::cli::AdoptArgs;
use crate::commands::baseline::{self, BaselineRequest};
use crate::commands::print_json;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::{BOLD, DIM, GREEN, RED, YELLOW, err, out, styled};
use crate::render::Progress;

pub fn run(context: &Context, args: &AdoptArgs) -> Result<Exit, CliError> {
    let mut db = context.connect(!args.dry_run)?;
    let table = choose_table(db.as_mut(), args)?;
    if !table.tool.runs_sql_files() {
        return adopt_code_tool(context, db.as_mut(), &table, args);
    }
    let migrator = context.migrator(false)?;
    let set = migrator.migrations();
    let sqitch_project = (table.tool == Tool::Sqitch)
        .then(|| {
            SqitchPlan::read(&set.directory)
                .ok()
                .map(|plan| plan.project)
        })
        .flatten();
    let options = AdoptOptions {
        allow_missing_files: args.allow_missing_files,
        accept_changed: args.accept_changed,
        reason: args.reason.clone(),
    };
    // Planned first without the run lock, so a dry run, or an adoption that is refused, leaves
    // the database exactly as it was (not even safeshift's history table is created).
    let state = HistoryState::from_records(&db.read_history()?);
    let foreign = read_history(db.as_mut(), &table, sqitch_project.as_deref())?;
    let plan = plan_adoption(set, &foreign, &state, &options);
    if args.dry_run || !plan.agrees() {
        if args.json {
            print_json(&json!({ "ok": plan.agrees(), "dry_run": args.dry_run, "plan": plan }));
        } else {
            render_plan(&plan, args.dry_run);
        }
        return if plan.agrees() {
            Ok(Exit::Success)
        } else {
            Err(refusal(plan.disagreements.len()))
        };
    }
    let mut progress = Progress::new(context.quiet, args.json, context.project.lock.wait);
    let mut planned: Option<AdoptionPlan> = None;
    let outcome = migrator.record_applied(db.as_mut(), &mut progress, |db, state| {
        // Read under the run lock, so the history matched is the history recorded against.
        let foreign = read_history(db, &table, sqitch_project.as_deref())?;
        let plan = plan_adoption(set, &foreign, state, &options);
        let records = plan.records();
        let agrees = plan.agrees();
        let count = plan.disagreements.len();
        planned = Some(plan);
        if agrees {
            Ok(records)
        } else {
            Err(refusal_error(count))
        }
    });
    let Some(plan) = planned else {
        return Err(outcome.err().map_or_else(
            || CliError::usage("adoption stopped before reading the history"),
            CliError::from,
        ));
    };
    match outcome {
        Ok(recorded) => {
            if args.json {
                print_json(&json!({ "ok": true, "plan": plan, "recorded": recorded.len() }));
            } else {
                render_plan(&plan, false);
                render_recorded(&plan, recorded.len());
            }
            Ok(Exit::Success)
        }
        Err(error) => {
            if args.json {
                print_json(&json!({ "ok": false, "plan": plan }));
            } else {
                render_plan(&plan, false);
            }
            Err(CliError::from(error))
        }
    }
}

/// The history table to adopt: the one `--from` (and `--table`) names, or the only one there is.
fn choose_table(db: &mut dyn Driver, args: &AdoptArgs) -> Result<HistoryTable, CliError> {
    if let Some(tool) = args.from {
        let (schema, default) = tool.default_table();
        let wanted = args.table.clone().unwrap_or_else(|| match schema {
            Some(schema) => format!("{schema}.{default}"),
            None => default.to_owned(),
        });
        return locate_history_table(db, tool, args.table.as_deref())?.ok_or_else(|| {
            CliError::usage_with_help(
                format!("no {tool} history table `{wanted}` in {}", db.redacted_url()),
                "name the table with --table [schema.]table if the tool was configured with another; a database without any history is adopted with `safeshift baseline`",
            )
        });
    }
    let mut found = find_history_tables(db)?;
    match found.len() {
        0 => Err(CliError::usage_with_help(
            format!(
                "no other tool's migration history was found in {}",
                db.redacted_url()
            ),
            "name the tool and its table with --from TOOL --table [schema.]table; a database migrated without any tool is adopted with `safeshift baseline`",
        )),
        1 => Ok(found.remove(0)),
        _ => Err(CliError::usage_with_help(
            format!(
                "several tools' histories are here: {}",
                found
                    .iter()
                    .map(|t| format!("{} ({})", t.display_name(), t.tool))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "choose the one the migration files belong to with --from TOOL",
        )),
    }
}

/// Tools whose migrations are code: the history must agree with the tool's files, and a
/// baseline of the live schema then stands for all of them.
fn adopt_code_tool(
    context: &Context,
    db: &mut dyn Driver,
    table: &HistoryTable,
    args: &AdoptArgs,
) -> Result<Exit, CliError> {
    let foreign = read_history(db, table, None)?;
    let directory = args
        .tool_dir
        .clone()
        .or_else(|| default_tool_directory(&context.project.root, table.tool));
    let check = code_tool_check(&foreign, directory.as_deref());
    if !args.json {
        render_code_check(&check);
    }
    if !check.agrees() {
        if args.json {
            print_json(&json!({ "ok": false, "check": check }));
        }
        return Err(refusal(check.disagreements.len()));
    }
    let schema = table.schema.clone().unwrap_or_else(|| "public".to_owned());
    let mut excluded_tables = vec![(schema.clone(), table.table.clone())];
    match table.tool {
        Tool::Knex => excluded_tables.push((schema.clone(), format!("{}_lock", table.table))),
        Tool::Rails => excluded_tables.push((schema.clone(), "ar_internal_metadata".to_owned())),
        _ => {}
    }
    let request = BaselineRequest {
        version: None,
        through: None,
        prove: true,
        scratch: args
            .scratch_url
            .as_deref()
            .map(DatabaseUrl::parse)
            .transpose()?,
        origin: format!("adopted from {}: {}", table.tool, check.summary()),
        reason: args.reason.clone(),
        excluded_tables,
        excluded_schemas: Vec::new(),
        dry_run: args.dry_run,
    };
    let outcome = baseline::record_baseline(context, db, &request)?;
    if args.json {
        print_json(&json!({ "ok": true, "check": check, "baseline": outcome }));
    } else {
        baseline::render(&outcome);
        if !outcome.dry_run {
            out(format!(
                "{} is unchanged, so the project can go back to {}. New migrations go in {} as SQL.",
                table.display_name(),
                table.tool,
                context.migrations_dir_display()
            ));
        }
    }
    Ok(Exit::Success)
}

fn refusal_error(count: usize) -> RunError {
    RunError::Blocked {
        version: String::new(),
        message: format!(
            "adoption refused: the history and the files disagree in {count} place(s) (listed above); nothing was recorded"
        ),
        help: "settle each as its help says, and run `safeshift adopt` again".into(),
    }
}

fn refusal(count: usize) -> CliError {
    CliError::Run(refusal_error(count))
}

fn render_disagreements(disagreements: &[Disagreement]) {
    if disagreements.is_empty() {
        return;
    }
    err(format!(
        "{} ({})",
        styled(BOLD, "Disagreements"),
        disagreements.len()
    ));
    for disagreement in disagreements {
        err(format!(
            "  {} {}: {}",
            styled(RED, "✗"),
            disagreement.what,
            disagreement.detail
        ));
        err(format!(
            "    {} {}",
            styled(DIM, "help:"),
            disagreement.help
        ));
    }
}

/// What adoption does (or would do) and what disagrees.
fn render_plan(plan: &AdoptionPlan, dry_run: bool) {
    out(format!(
        "{} from {} ({})",
        styled(BOLD, if dry_run { "Adoption plan" } else { "Adopting" }),
        plan.tool,
        plan.table
    ));
    let list = |versions: Vec<&str>| {
        if versions.len() > 6 {
            format!(
                "{} … {}",
                versions[..3].join(", "),
                versions[versions.len() - 2..].join(", ")
            )
        } else {
            versions.join(", ")
        }
    };
    out(format!(
        "  {:<9}{} migration(s){}",
        "adopt",
        plan.adopted.len(),
        if plan.adopted.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                list(plan.adopted.iter().map(|a| a.version.as_str()).collect())
            )
        }
    ));
    if !plan.already_recorded.is_empty() {
        out(format!(
            "  {:<9}{} migration(s) safeshift's history already covers: {}",
            "skip",
            plan.already_recorded.len(),
            list(plan.already_recorded.iter().map(String::as_str).collect())
        ));
    }
    out(format!(
        "  {:<9}{} migration(s) not applied yet{}",
        "pending",
        plan.pending.len(),
        if plan.pending.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                list(plan.pending.iter().map(|p| p.version.as_str()).collect())
            )
        }
    ));
    for pending in plan.pending.iter().filter(|p| p.reason.is_some()) {
        out(format!(
            "  {} {}: {}",
            styled(YELLOW, "note:"),
            pending.version,
            pending.reason.as_deref().unwrap_or_default()
        ));
    }
    for note in &plan.notes {
        out(format!("  {} {note}", styled(DIM, "·")));
    }
    render_disagreements(&plan.disagreements);
}

fn render_recorded(plan: &AdoptionPlan, recorded: usize) {
    if recorded == 0 {
        out(format!(
            "{} nothing new to adopt: safeshift's history already covers what {} applied. {} is unchanged.",
            styled(GREEN, "✓"),
            plan.table,
            plan.table
        ));
        return;
    }
    out(format!(
        "{} recorded {recorded} migration(s) as applied, each with a note naming the {} row it came from. {} is unchanged.",
        styled(GREEN, "✓"),
        plan.table,
        plan.table
    ));
    if !plan.pending.is_empty() {
        out(format!(
            "`safeshift up` applies the {} pending migration(s).",
            plan.pending.len()
        ));
    }
}

fn render_code_check(check: &CodeToolCheck) {
    out(format!(
        "{} from {} ({}): {}",
        styled(BOLD, "Adopting"),
        check.tool,
        check.table,
        check.summary()
    ));
    if let Some(directory) = &check.directory {
        out(format!(
            "  compared with {}'s files in {}",
            check.tool,
            directory.display()
        ));
    }
    for note in &check.notes {
        out(format!("  {} {note}", styled(DIM, "·")));
    }
    render_disagreements(&check.disagreements);
}
