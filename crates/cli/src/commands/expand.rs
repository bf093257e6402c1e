//! `safeshift new --rename-column` and `--change-type`: write the expand and contract
//! migrations of a column change, from the column's definition in the database.

use safeshift_driver::PostgresDriver;
use safeshift_lint::TableName;
use safeshift_online::catalog;
use safeshift_online::expand::{self, Change, ExpandContract};
use safeshift_source::{
    Layout, NewMigration, VersionScheme, existing_versions, plan_new_migration, slugify,
    write_new_migration,
};

use crate::cli::NewArgs;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::{YELLOW, out, styled};

pub fn run(context: &Context, args: &NewArgs) -> Result<Exit, CliError> {
    let (target, change) = match (&args.rename_column, &args.change_type) {
        (Some(values), _) => (
            &values[0],
            Change::Rename {
                new_name: values[1].clone(),
            },
        ),
        (None, Some(values)) => {
            let (_, column) = split_column(&values[0])?;
            (
                &values[0],
                Change::ChangeType {
                    new_name: args
                        .new_column
                        .clone()
                        .unwrap_or_else(|| format!("{column}_new")),
                    new_type: values[1].clone(),
                    to_new: args.using.clone(),
                    to_old: args.reverse.clone(),
                },
            )
        }
        (None, None) => unreachable!("checked by the caller"),
    };
    let (table, column) = split_column(target)?;
    let mut db = context.connect(false)?;
    let Some(driver) = PostgresDriver::of_mut(db.as_mut()) else {
        return Err(CliError::usage(
            "expand/contract migrations are written for PostgreSQL; this project's database is not",
        ));
    };
    let facts = catalog::column_facts(driver, &table, &column)?;
    let generated = expand::generate(&facts, &change).map_err(CliError::usage)?;

    let directory = &context.project.migrations_dir;
    std::fs::create_dir_all(directory)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", directory.display())))?;
    let mut existing = existing_versions(directory).map_err(|e| CliError::Source(e.into()))?;
    let scheme = if args.timestamp {
        Some(VersionScheme::Timestamp)
    } else if args.sequence {
        Some(VersionScheme::Sequence)
    } else {
        context.project.version_scheme
    };
    let subject = if args.description.is_empty() {
        match &change {
            Change::Rename { new_name } => format!("rename {} {column} to {new_name}", table.name),
            Change::ChangeType { new_type, .. } => {
                format!("{} {column} to {new_type}", table.name)
            }
        }
    } else {
        args.description.join(" ")
    };
    let now = chrono::Utc::now();
    let mut plan = |word: &str| -> Result<NewMigration, CliError> {
        let description = format!("{word} {subject}");
        let planned = plan_new_migration(
            directory,
            &existing,
            &description,
            scheme,
            Some(Layout::Sections),
            now,
        )
        .map_err(CliError::usage)?;
        existing.push((
            safeshift_source::Version::parse(&planned.version).ok_or_else(|| {
                CliError::usage(format!("`{}` is not a version", planned.version))
            })?,
            Layout::Sections,
        ));
        Ok(planned)
    };
    let mut expand_file = plan("expand")?;
    let mut contract_file = plan("contract")?;
    let (expand_text, contract_text) = contents(
        &generated,
        &expand_file.version,
        &contract_file.version,
        &slugify(&subject),
    );
    expand_file.files[0].1 = expand_text;
    contract_file.files[0].1 = contract_text;
    for file in [&expand_file, &contract_file] {
        write_new_migration(file)
            .map_err(|e| CliError::usage(format!("cannot write the migration: {e}")))?;
        out(format!("created {}", file.files[0].0.display()));
    }
    for item in &generated.review {
        out(format!("{} {item}", styled(YELLOW, "review:")));
    }
    out(format!(
        "next: `safeshift up --to {}`, deploy code that uses `{}`, then `safeshift up` applies the contract",
        expand_file.version, generated.new_column
    ));
    Ok(Exit::Success)
}

/// `schema.table.column` or `table.column`.
fn split_column(text: &str) -> Result<(TableName, String), CliError> {
    let parts: Vec<&str> = text.split('.').collect();
    match parts.as_slice() {
        [table, column] if !table.is_empty() && !column.is_empty() => {
            Ok((TableName::new(None, table), (*column).to_owned()))
        }
        [schema, table, column] if !table.is_empty() && !column.is_empty() => {
            Ok((TableName::new(Some(schema), table), (*column).to_owned()))
        }
        _ => Err(CliError::usage(format!(
            "`{text}`: name the column as TABLE.COLUMN (or SCHEMA.TABLE.COLUMN)"
        ))),
    }
}

/// The two files' text.
fn contents(
    generated: &ExpandContract,
    expand_version: &str,
    contract_version: &str,
    _slug: &str,
) -> (String, String) {
    let new = &generated.new_column;
    let expand = format!(
        "-- Expand: {title}.\n\
         --\n\
         -- Adds `{new}` next to the old column and keeps the two equal with a trigger, whichever\n\
         -- one a statement writes, so running code keeps working; then fills `{new}` in batches.\n\
         -- 1. safeshift up --to {expand_version}   (this migration)\n\
         -- 2. deploy code that reads and writes `{new}`\n\
         -- 3. safeshift up                 ({contract_version}, the contract: drops the old column)\n\
         -- Written by `safeshift new`; review it before applying.\n\
         \n\
         -- migrate:up transaction:false\n\
         {up}\n\
         -- migrate:down transaction:false\n\
         {down}",
        title = generated.title,
        up = generated.expand_up,
        down = generated.expand_down,
    );
    let contract = format!(
        "-- Contract: {title}.\n\
         --\n\
         -- Drops the old column and the trigger that kept it equal to `{new}` (added by {expand_version}).\n\
         -- Apply it only once no running code uses the old column: statements that name it fail\n\
         -- once it is gone. Its down section brings the old column back, filled and kept in sync.\n\
         \n\
         -- migrate:up transaction:false\n\
         {up}\n\
         -- migrate:down transaction:false\n\
         {down}",
        title = generated.title,
        up = generated.contract_up,
        down = generated.contract_down,
    );
    (expand, contract)
}
