//! `safeshift backup create|list|verify|restore|prune`.

use std::path::{Path, PathBuf};

use serde_json::json;

use safeshift_backup::{Backup, CreateOptions, Database, RestoreTarget, Retention};
use safeshift_deploy::Step;
use safeshift_deploy::events::{Entry, Recorder};
use safeshift_driver::{Driver, EventKind, EventOutcome};
use safeshift_source::{parse_duration, parse_timeout};

use crate::cli::{
    BackupCommand, BackupCreateArgs, BackupListArgs, BackupPruneArgs, BackupRestoreArgs,
    BackupVerifyArgs,
};
use crate::commands::print_json;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::{BOLD, GREEN, YELLOW, err, out, styled};
use crate::production::{confirm, render};

pub fn run(context: &Context, command: &BackupCommand) -> Result<Exit, CliError> {
    match command {
        BackupCommand::Create(args) => create(context, args),
        BackupCommand::List(args) => list(context, args),
        BackupCommand::Verify(args) => verify(context, args),
        BackupCommand::Restore(args) => restore(context, args),
        BackupCommand::Prune(args) => prune(context, args),
    }
}

/// The backup directory: the flag, the environment's, `[backup] dir`, else `backups`.
fn directory(context: &Context, flag: &Option<PathBuf>) -> PathBuf {
    flag.clone()
        .or_else(|| {
            context
                .project
                .environment
                .as_ref()
                .and_then(|e| e.backup_dir.clone())
        })
        .unwrap_or_else(|| context.project.backup.dir.clone())
}

/// A backup named on the command line: a path, or a file name in the backup directory.
fn locate(context: &Context, file: &Path, dir: &Option<PathBuf>) -> Result<Backup, CliError> {
    let path = if file.exists() || file.components().count() > 1 {
        file.to_path_buf()
    } else {
        directory(context, dir).join(file)
    };
    Ok(Backup::open(&path)?)
}

/// The newest applied version, for the backup's name and metadata.
fn schema_version(context: &Context) -> Result<Option<String>, CliError> {
    let migrator = context.migrator(true)?;
    let mut db = context.connect(false)?;
    let status = migrator.status(db.as_mut())?;
    Ok(status.newest_applied().map(str::to_owned))
}

/// Takes a backup and checks it (checksum and contents).
fn create(context: &Context, args: &BackupCreateArgs) -> Result<Exit, CliError> {
    let url = context.database_url()?;
    let options = CreateOptions {
        dir: directory(context, &args.backup_dir),
        prefix: args
            .prefix
            .clone()
            .unwrap_or_else(|| context.project.backup.prefix.clone()),
        schema_version: schema_version(context)?,
        created_by: context.identity.installed_by.clone(),
        fingerprints: context.project.backup.fingerprints && !args.no_fingerprints,
    };
    let database = Database {
        url: &url,
        base_dir: &context.project.root,
    };
    let mut db = context.connect(false)?;
    // The backup holds the events log, so that restoring it replaces the log instead of failing
    // on a table the backup does not know.
    if let Err(error) = db.ensure_events() {
        render::step(&Step::EventsLogUnavailable { error: &error });
    }
    let mut backup = match safeshift_backup::create(&database, &options) {
        Ok(backup) => backup,
        Err(error) => {
            record(
                db.as_mut(),
                context,
                Entry {
                    kind: EventKind::Backup,
                    outcome: EventOutcome::Failed,
                    summary: error.to_string(),
                    detail: None,
                    backup: None,
                },
            );
            return Err(error.into());
        }
    };
    let verification = safeshift_backup::verify(&mut backup, None)?;
    record(
        db.as_mut(),
        context,
        Entry {
            kind: EventKind::Backup,
            outcome: if verification.ok() {
                EventOutcome::Succeeded
            } else {
                EventOutcome::Failed
            },
            summary: format!(
                "{} taken{}",
                backup.reference(),
                if verification.ok() {
                    " and verified"
                } else {
                    "; verification FAILED"
                }
            ),
            detail: serde_json::to_value(&verification).ok(),
            backup: Some(&backup.reference()),
        },
    );
    if args.json {
        print_json(
            &json!({ "ok": verification.ok(), "backup": backup, "verification": verification }),
        );
    } else {
        out(format!(
            "{} {}",
            styled(GREEN, "Backup written:"),
            backup.path.display()
        ));
        for line in render::backup_rows(std::slice::from_ref(&backup)) {
            out(format!("  {line}"));
        }
        render::verification(&verification, &|line| out(line));
    }
    if verification.ok() {
        Ok(Exit::Success)
    } else {
        Err(CliError::guard(
            format!("{} failed verification", backup.reference()),
            None,
        ))
    }
}

fn list(context: &Context, args: &BackupListArgs) -> Result<Exit, CliError> {
    let dir = directory(context, &args.backup_dir);
    let (backups, problems) = safeshift_backup::list(&dir)?;
    if args.json {
        print_json(&json!({ "directory": dir, "backups": backups,
            "unreadable": problems.iter().map(|p| p.to_string()).collect::<Vec<_>>() }));
        return Ok(Exit::Success);
    }
    if backups.is_empty() {
        out(format!("No backups in {}.", dir.display()));
    } else {
        out(format!("{} {}", styled(BOLD, "Backups in"), dir.display()));
        for line in render::backup_rows(&backups) {
            out(line);
        }
    }
    for problem in problems {
        err(format!("{} {problem}", styled(YELLOW, "warning:")));
    }
    Ok(Exit::Success)
}

fn verify(context: &Context, args: &BackupVerifyArgs) -> Result<Exit, CliError> {
    let mut backup = locate(context, &args.file, &args.backup_dir)?;
    let url = if args.deep {
        Some(context.database_url()?)
    } else {
        None
    };
    let database = url.as_ref().map(|url| Database {
        url,
        base_dir: &context.project.root,
    });
    let verification = safeshift_backup::verify(&mut backup, database.as_ref())?;
    if args.json {
        print_json(&json!({ "ok": verification.ok(), "verification": verification }));
    } else {
        out(format!(
            "{} {}",
            styled(BOLD, "Verify"),
            backup.path.display()
        ));
        render::verification(&verification, &|line| out(line));
        out(if verification.ok() {
            format!("{} is good.", backup.reference())
        } else {
            format!("{} FAILED verification.", backup.reference())
        });
    }
    if verification.ok() {
        Ok(Exit::Success)
    } else {
        Err(CliError::guard(
            format!(
                "{}: {}",
                backup.reference(),
                verification.problems.join("; ")
            ),
            Some("take a new backup; do not rely on this one".into()),
        ))
    }
}

fn restore(context: &Context, args: &BackupRestoreArgs) -> Result<Exit, CliError> {
    let backup = locate(context, &args.file, &args.backup_dir)?;
    let url = context.database_url()?;
    let lock_timeout = parse_timeout(&args.restore_lock_timeout)
        .map_err(|m| CliError::usage(format!("--restore-lock-timeout: {m}")))?;
    let target = match &args.to {
        Some(name) => RestoreTarget::New(name.clone()),
        None => RestoreTarget::InPlace,
    };
    let in_place = target == RestoreTarget::InPlace;
    if in_place {
        confirm::require_possible(
            "restoring over the database",
            context
                .project
                .environment
                .as_ref()
                .map_or("default", |e| e.name.as_str()),
            args.yes,
        )?;
    }
    let database = Database {
        url: &url,
        base_dir: &context.project.root,
    };
    let preview = safeshift_backup::restore_preview(&backup, &database, &target)?;
    let say = |line: String| err(line);
    render::restore_preview(&preview, &backup, &say);
    if in_place {
        let name = match &backup.metadata.engine[..] {
            "postgres" => preview.database.clone(),
            _ => Path::new(&preview.database)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        confirm::ask(&name, "replace it with the backup", args.yes)?;
    }
    // The events log is an audit trail: what happened since the backup must survive its restore.
    let mut current = context.connect(false)?;
    let events_before = if in_place {
        current.read_events().unwrap_or_default()
    } else {
        Vec::new()
    };
    let started = std::time::Instant::now();
    let written = safeshift_backup::restore(&backup, &database, &target, lock_timeout);
    let took = started.elapsed();
    if in_place {
        drop(current);
        let mut db = context.connect(false)?;
        safeshift_deploy::events::carry_over(db.as_mut(), &events_before);
        if let Err(error) = &written {
            record(
                db.as_mut(),
                context,
                Entry {
                    kind: EventKind::Restore,
                    outcome: EventOutcome::Failed,
                    summary: format!("restoring {} failed: {error}", backup.reference()),
                    detail: None,
                    backup: Some(&backup.reference()),
                },
            );
        }
    }
    let written = written?;
    // Afterwards: the restored database answers, and its history says what the backup said.
    let restored_url = match &target {
        RestoreTarget::InPlace => url.clone(),
        RestoreTarget::New(name) => retarget(&url, name)?,
    };
    let restored = context.with_url(&restored_url);
    let version = schema_version(&restored)?;
    let expected = backup.metadata.schema_version.clone();
    let consistent = version == expected;
    let mut db = restored.connect(false)?;
    let summary = format!(
        "restored {} into {} in {} ms; schema version {} (backup recorded {})",
        backup.reference(),
        written,
        took.as_millis(),
        version.as_deref().unwrap_or("none"),
        expected.as_deref().unwrap_or("none")
    );
    record(
        db.as_mut(),
        context,
        Entry {
            kind: EventKind::Restore,
            outcome: if consistent {
                EventOutcome::Succeeded
            } else {
                EventOutcome::Warning
            },
            summary: summary.clone(),
            detail: Some(
                json!({ "backup": backup.reference(), "target": written, "schema_version": version,
            "expected_schema_version": expected, "duration_ms": took.as_millis() as u64 }),
            ),
            backup: Some(&backup.reference()),
        },
    );
    if args.json {
        print_json(
            &json!({ "ok": consistent, "restored": written, "backup": backup.reference(),
            "schema_version": version, "expected_schema_version": expected, "duration_ms": took.as_millis() as u64 }),
        );
    } else {
        out(format!("{} {summary}", styled(GREEN, "Restored:")));
    }
    if consistent {
        Ok(Exit::Success)
    } else {
        Err(CliError::guard(
            format!(
                "the restored database reports schema version {} but the backup recorded {}",
                version.as_deref().unwrap_or("none"),
                expected.as_deref().unwrap_or("none")
            ),
            Some("run `safeshift status` against it before using it".into()),
        ))
    }
}

/// The URL of another database on the same server (PostgreSQL), or another file (SQLite).
fn retarget(
    url: &safeshift_driver::DatabaseUrl,
    name: &str,
) -> Result<safeshift_driver::DatabaseUrl, CliError> {
    Ok(url.with_database(name)?)
}

fn prune(context: &Context, args: &BackupPruneArgs) -> Result<Exit, CliError> {
    let dir = directory(context, &args.backup_dir);
    let retention = Retention {
        keep: args.keep.or(context.project.backup.keep),
        max_age: match &args.max_age {
            Some(text) => {
                Some(parse_duration(text).map_err(|m| CliError::usage(format!("--max-age: {m}")))?)
            }
            None => context.project.backup.max_age,
        },
    };
    if retention.keep.is_none() && retention.max_age.is_none() {
        return Err(CliError::usage_with_help(
            "no retention given: nothing would be deleted",
            "pass --keep N and/or --max-age 30d, or set keep / max_age under [backup]",
        ));
    }
    let report = safeshift_backup::prune(&dir, retention, args.dry_run)?;
    if args.json {
        print_json(&report);
    } else {
        render::prune(&report);
    }
    Ok(Exit::Success)
}

/// Records an event in the events log; a failure to record is a warning, never a reason to stop
/// what is being recorded.
fn record(db: &mut dyn Driver, context: &Context, entry: Entry<'_>) {
    let recorder = Recorder {
        identity: &context.identity,
        environment: context
            .project
            .environment
            .as_ref()
            .map(|e| e.name.as_str()),
    };
    let kind = entry.kind;
    if let Err(error) = recorder.record(db, entry) {
        render::step(&Step::EventNotRecorded {
            kind,
            error: &error,
        });
    }
}
