//! `safeshift baseline`: start the history of a database migrated without one. Its live schema
//! becomes the first migration (or the existing migrations up to `--through` are taken as
//! applied by hand), proven on a throwaway server to rebuild the same schema, and recorded as
//! applied with an audit note. `safeshift adopt` uses the same path for tools whose migrations
//! are code.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use safeshift_driver::{DatabaseUrl, Driver, Engine, HistoryRecord};
use safeshift_rehearse::{BaselineProof, ServerChoice, SnapshotScope};
use safeshift_runner::{AppliedElsewhere, RunError};
use safeshift_source::{
    Format, Layout, LooseFile, Section, Version, existing_versions, plan_migration_with_sql,
    write_new_migration,
};

use crate::cli::BaselineArgs;
use crate::commands::rehearse::from_rehearse;
use crate::commands::{parse_version, print_json};
use crate::context::Context;
use crate::exit::{CliError, Exit, Guard};
use crate::output::{BOLD, DIM, GREEN, RED, err, out, styled};
use crate::rehearse::difference_lines;
use crate::render::Progress;

/// What a baseline records, and how.
pub struct BaselineRequest {
    /// The new migration's version (`None`: one before every migration in the directory).
    pub version: Option<Version>,
    /// Take the existing migrations up to this version as applied instead of writing one.
    pub through: Option<Version>,
    pub prove: bool,
    pub scratch: Option<DatabaseUrl>,
    /// What the audit note starts with (why there is a baseline).
    pub origin: String,
    pub reason: Option<String>,
    /// Other tools' tables to leave out, as `(schema, table)`.
    pub excluded_tables: Vec<(String, String)>,
    pub excluded_schemas: Vec<String>,
    pub dry_run: bool,
}

/// What a baseline did.
#[derive(Serialize)]
pub struct BaselineOutcome {
    /// The version recorded last (the baseline migration's, or `--through`'s).
    pub version: String,
    /// Files written (none with `--through` or `--dry-run`).
    pub files: Vec<PathBuf>,
    /// Migrations recorded as applied.
    pub migrations: Vec<String>,
    pub proof: Option<BaselineProof>,
    pub recorded: Vec<HistoryRecord>,
    pub dry_run: bool,
}

pub fn run(context: &Context, args: &BaselineArgs) -> Result<Exit, CliError> {
    let mut db = context.connect(!args.dry_run)?;
    if let Some(table) = safeshift_adopt::find_history_tables(db.as_mut())?.first() {
        return Err(CliError::usage_with_help(
            format!(
                "{} holds {}'s migration history",
                table.display_name(),
                table.tool
            ),
            format!(
                "adopt that history with `safeshift adopt --from {}`, which matches it to the files (and, for tools whose migrations are code, takes this baseline itself)",
                table.tool
            ),
        ));
    }
    let request = BaselineRequest {
        version: args.version.as_deref().map(parse_version).transpose()?,
        through: args.through.as_deref().map(parse_version).transpose()?,
        prove: !args.no_proof,
        scratch: args
            .scratch_url
            .as_deref()
            .map(DatabaseUrl::parse)
            .transpose()?,
        origin: "baseline".to_owned(),
        reason: args.reason.clone(),
        excluded_tables: Vec::new(),
        excluded_schemas: Vec::new(),
        dry_run: args.dry_run,
    };
    let outcome = record_baseline(context, db.as_mut(), &request)?;
    if args.json {
        print_json(&json!({ "ok": true, "baseline": outcome }));
    } else {
        render(&outcome);
    }
    Ok(Exit::Success)
}

/// Captures (or takes `--through`), proves and records a baseline.
pub fn record_baseline(
    context: &Context,
    db: &mut dyn Driver,
    request: &BaselineRequest,
) -> Result<BaselineOutcome, CliError> {
    let url = context.database_url()?;
    if url.engine() != Engine::Postgres {
        return Err(CliError::usage_with_help(
            "a baseline captures a PostgreSQL schema (with pg_dump); this database is not PostgreSQL",
            "on SQLite, write the schema as a first migration and record it with `safeshift resolve <version> --applied`",
        ));
    }
    refuse_if_history(&db.read_history()?)?;
    let directory = &context.project.migrations_dir;
    // A project adopted from a tool whose migrations are code may have no directory yet.
    let set = if directory.is_dir() || request.through.is_some() {
        context.migrations()?
    } else {
        safeshift_source::MigrationSet {
            directory: directory.clone(),
            migrations: Vec::new(),
            warnings: Vec::new(),
            detection: safeshift_source::Detection {
                format: context.project.format.unwrap_or(Format::Safeshift),
                reason: "no migrations yet".into(),
            },
        }
    };
    let history_schema = context.project.history.schema.clone();
    let mut schemas = vec![history_schema];
    schemas.extend(request.excluded_schemas.iter().cloned());
    let scope = SnapshotScope {
        excluded_schemas: schemas.clone(),
    };
    let snapshot_tables: Vec<String> = request
        .excluded_tables
        .iter()
        .map(|(schema, table)| format!("{}.{}", ident(schema), ident(table)))
        .collect();
    let server = match &request.scratch {
        Some(url) => ServerChoice::Existing(url.clone()),
        None => ServerChoice::Throwaway {
            preferred_major: None,
        },
    };
    let prove = |sections: &[&Section]| -> Result<Option<BaselineProof>, CliError> {
        if !request.prove {
            return Ok(None);
        }
        let proof =
            safeshift_rehearse::prove_rebuild(&url, sections, &server, &scope, &snapshot_tables)
                .map_err(from_rehearse)?;
        if !proof.proven() {
            render_failed_proof(&proof);
            return Err(CliError::Guard(Box::new(Guard {
                exit: Exit::RehearsalFailed,
                message: "the baseline does not rebuild the live schema on an empty server; nothing was written or recorded".into(),
                help: Some("look at the differences above: an object pg_dump cannot recreate (an extension missing on this machine's PostgreSQL), or migrations that differ from what was run by hand; fix the cause, or record it unproven with --no-proof".into()),
            })));
        }
        Ok(Some(proof))
    };
    let reason = request
        .reason
        .as_ref()
        .map(|r| format!("; reason: {r}"))
        .unwrap_or_default();
    let proven = |proof: &Option<BaselineProof>| match proof {
        Some(proof) => format!(
            "proven to rebuild the same schema on {} PostgreSQL {}",
            proof.server.kind, proof.server.version
        ),
        None => "not proven (--no-proof)".to_owned(),
    };

    if let Some(through) = &request.through {
        if set.get(through).is_none() {
            return Err(CliError::usage(format!(
                "--through {through}: no migration has that version"
            )));
        }
        let taken: Vec<_> = set
            .migrations
            .iter()
            .filter(|m| !m.version.is_repeatable() && m.version <= *through)
            .collect();
        let sections: Vec<&Section> = taken.iter().map(|m| &m.up).collect();
        let proof = prove(&sections)?;
        let note = format!(
            "{}: applied before safeshift (baseline --through {through}), {}{reason}",
            request.origin,
            proven(&proof)
        );
        let records: Vec<AppliedElsewhere> = taken
            .iter()
            .map(|m| AppliedElsewhere {
                version: m.version.to_string(),
                name: m.name.clone(),
                file: m.file().display().to_string(),
                checksum: Some(m.up.checksum.to_string()),
                transactional: m.up.options.transaction,
                note: note.clone(),
            })
            .collect();
        let recorded = if request.dry_run {
            Vec::new()
        } else {
            record(context, db, records)?
        };
        return Ok(BaselineOutcome {
            version: through.to_string(),
            files: Vec::new(),
            migrations: taken.iter().map(|m| m.version.to_string()).collect(),
            proof,
            recorded,
            dry_run: request.dry_run,
        });
    }

    let existing = if directory.is_dir() {
        existing_versions(directory).map_err(|e| CliError::Source(e.into()))?
    } else {
        Vec::new()
    };
    let version = match &request.version {
        Some(version) => {
            if existing.iter().any(|(v, _)| v == version) {
                return Err(CliError::usage(format!(
                    "--version {version}: a migration already has that version"
                )));
            }
            version.clone()
        }
        None => default_version(&existing)?,
    };
    let captured = safeshift_rehearse::capture_schema(&url, &schemas, &request.excluded_tables)
        .map_err(from_rehearse)?;
    let today = chrono::Utc::now().format("%Y-%m-%d");
    let sql = format!(
        "-- Baseline: the schema of {} as {} dumped it on {today} (PostgreSQL {}), without owners and grants.\n-- It is recorded as applied where it was taken; on an empty database it builds that schema.\n\n{}",
        url.redacted(),
        captured.pg_dump,
        captured.server_version,
        captured.sql
    );
    let loose = LooseFile::from_bytes(
        std::path::Path::new("baseline.sql"),
        format!("-- migrate:up\n{sql}").as_bytes(),
    )
    .map_err(|e| CliError::Source(e.into()))?;
    let proof = prove(&[&loose.up])?;
    let layout = match (existing.is_empty(), set.detection.format) {
        (true, Format::Goose) => Some(Layout::Goose),
        (true, Format::Flyway) => Some(Layout::Flyway),
        (true, Format::Diesel) => Some(Layout::Diesel),
        (true, Format::Prisma) => Some(Layout::Prisma),
        (true, Format::Plain) => Some(Layout::Plain),
        _ => None,
    };
    let planned = plan_migration_with_sql(
        directory,
        &existing,
        version.as_str(),
        "baseline",
        layout,
        &sql,
        chrono::Utc::now(),
    )
    .map_err(CliError::usage)?;
    let files: Vec<PathBuf> = planned.files.iter().map(|(path, _)| path.clone()).collect();
    if request.dry_run {
        return Ok(BaselineOutcome {
            version: version.to_string(),
            files,
            migrations: vec![version.to_string()],
            proof,
            recorded: Vec::new(),
            dry_run: true,
        });
    }
    std::fs::create_dir_all(directory)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", directory.display())))?;
    write_new_migration(&planned)
        .map_err(|e| CliError::usage(format!("cannot write the baseline: {e}")))?;
    let note = format!(
        "{}: the live schema as {} dumped it (PostgreSQL {}), {}{reason}",
        request.origin,
        captured.pg_dump,
        captured.server_version,
        proven(&proof)
    );
    let recorded = (|| {
        // Read back in the directory's layout, so the recorded checksum is the one `up` sees.
        let set = context.migrations()?;
        let migration = set.get(&version).ok_or_else(|| {
            CliError::usage(format!(
                "the baseline {} was written but is not read as migration {version}",
                files[0].display()
            ))
        })?;
        record(
            context,
            db,
            vec![AppliedElsewhere {
                version: version.to_string(),
                name: migration.name.clone(),
                file: migration.file().display().to_string(),
                checksum: Some(migration.up.checksum.to_string()),
                transactional: migration.up.options.transaction,
                note,
            }],
        )
    })();
    let recorded = match recorded {
        Ok(recorded) => recorded,
        Err(error) => {
            // Leave the directory as it was: an unrecorded baseline would be pending, and `up`
            // would run it on the database it was taken from.
            for file in &files {
                let _ = std::fs::remove_file(file);
            }
            return Err(error);
        }
    };
    Ok(BaselineOutcome {
        version: version.to_string(),
        files,
        migrations: vec![version.to_string()],
        proof,
        recorded,
        dry_run: false,
    })
}

fn record(
    context: &Context,
    db: &mut dyn Driver,
    records: Vec<AppliedElsewhere>,
) -> Result<Vec<HistoryRecord>, CliError> {
    let migrator = context.migrator(false)?;
    let mut progress = Progress::new(context.quiet, false, context.project.lock.wait);
    Ok(migrator.record_applied(db, &mut progress, |_, state| {
        if state.versions.values().any(|v| v.applied) {
            return Err(RunError::Blocked {
                version: String::new(),
                message: "safeshift's history already records applied migrations".into(),
                help: "a baseline starts the history of a database that has none".into(),
            });
        }
        Ok(records)
    })?)
}

fn refuse_if_history(records: &[HistoryRecord]) -> Result<(), CliError> {
    if safeshift_runner::HistoryState::from_records(records)
        .versions
        .values()
        .any(|v| v.applied)
    {
        return Err(CliError::Run(RunError::Blocked {
            version: String::new(),
            message: "safeshift's history already records applied migrations".into(),
            help: "a baseline starts the history of a database that has none; `safeshift status` shows where it stands".into(),
        }));
    }
    Ok(())
}

/// A version before every migration in the directory: the first one's zeros (`0000`,
/// `00000000000000`), or `0001` in an empty directory.
fn default_version(existing: &[(Version, Layout)]) -> Result<Version, CliError> {
    let first = existing
        .iter()
        .map(|(version, _)| version)
        .filter(|v| !v.is_repeatable())
        .min();
    let text = match first {
        None => "0001".to_owned(),
        Some(first) => {
            let zeros = first
                .as_str()
                .chars()
                .map(|c| if c == '.' { '.' } else { '0' })
                .collect::<String>();
            match Version::parse(&zeros) {
                Some(zero) if zero < *first => zeros,
                _ => {
                    return Err(CliError::usage_with_help(
                        format!("no version sorts before the first migration, {first}"),
                        "give the baseline's version with --version, or, if the migrations in the directory were applied by hand, take them as the baseline with --through <version>",
                    ));
                }
            }
        }
    };
    Version::parse(&text).ok_or_else(|| CliError::usage(format!("`{text}` is not a version")))
}

/// An identifier as PostgreSQL's `quote_ident` writes it (quoted unless plain lower case).
fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn render_failed_proof(proof: &BaselineProof) {
    err(format!(
        "{} the baseline does not rebuild the live schema ({} PostgreSQL {})",
        styled(RED, "✗"),
        proof.server.kind,
        proof.server.version
    ));
    if let Some((file, failure)) = &proof.failure {
        err(format!(
            "  {file}:{}: {} ({})",
            failure.line, failure.error, failure.sql
        ));
    }
    for line in difference_lines(&proof.differences, "in the live database", "rebuilt") {
        err(format!("  {line}"));
    }
}

pub fn render(outcome: &BaselineOutcome) {
    if let Some(proof) = &outcome.proof {
        out(format!(
            "{} rebuilds the live schema on an empty {} PostgreSQL {} ({:.1} s)",
            styled(GREEN, "✓"),
            proof.server.kind,
            proof.server.version,
            proof.ms / 1000.0
        ));
    } else {
        out(format!("{} not proven (--no-proof)", styled(DIM, "·")));
    }
    for file in &outcome.files {
        let verb = if outcome.dry_run {
            "would write"
        } else {
            "wrote"
        };
        out(format!("{verb} {}", file.display()));
    }
    if outcome.dry_run {
        out(format!(
            "Dry run: would record {} migration(s) as applied, up to {}.",
            outcome.migrations.len(),
            outcome.version
        ));
    } else {
        out(format!(
            "{} recorded {} migration(s) as applied, up to {} (history rows {}).",
            styled(BOLD, "Baseline"),
            outcome.recorded.len(),
            outcome.version,
            outcome
                .recorded
                .iter()
                .map(|r| r.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}
