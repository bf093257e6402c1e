//! `up` in an environment that asks for care (or with `--abort-on` / `--rollback-on-failure`):
//! pre-flight, a verified backup, the plan and a typed confirmation, hooks before, the migrations
//! under the watchdog, health checks (and a rollback of this run when they fail), hooks after.
//! Every step that is not a migration is written to the run-events log.

use serde_json::json;

use safeshift_backup::{CreateOptions, Database};
use safeshift_driver::{Direction, Driver, EventOutcome};
use safeshift_lint::Risk;
use safeshift_runner::{DownTarget, Migrator, RunReport};
use safeshift_source::Version;

use crate::cli::UpArgs;
use crate::commands::{error_json, print_json};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::{BOLD, err, out, styled};
use crate::production::hooks::{self, HookContext, HookOutcome};
use crate::production::{confirm, plan, preflight, record_event, render, watch};
use crate::render::{self as run_render, Progress};
use crate::signals::Interrupts;

/// Runs the guarded `up`.
pub fn run(
    context: &Context,
    args: &UpArgs,
    target: Option<&Version>,
    accepted: Risk,
) -> Result<Exit, CliError> {
    let environment = context.project.environment.clone();
    let name = environment.as_ref().map_or("default", |e| e.name.as_str());
    let confirm_needed = environment.as_ref().is_some_and(|e| e.confirm);
    if confirm_needed {
        confirm::require_possible("`up`", name, args.yes)?;
    }
    let url = context.database_url()?;
    let options = context.connect_options(false);
    let say = |line: String| err(line);
    let mut db = context.connect(true)?;
    let probe_migrator = context.migrator(args.allow_out_of_order)?;
    let plan = plan::build(context, &probe_migrator, db.as_mut(), target)?;
    if plan.migrations.is_empty() {
        if args.json {
            print_json(&json!({ "ok": true, "direction": "up", "report": RunReport::default() }));
        } else {
            out(format!(
                "Nothing to apply: {} is up to date.",
                db.redacted_url()
            ));
        }
        return Ok(Exit::Success);
    }
    if let Some(evaluation) = &plan.evaluation {
        crate::commands::lint::refuse_blocking(evaluation, accepted, args.json)?;
    }

    if environment.as_ref().is_some_and(|e| e.preflight) {
        let report = preflight::run(context, &probe_migrator, &url, &options, target, accepted)?;
        render::preflight(&report, &say);
        let outcome = report.outcome();
        record_event(
            db.as_mut(),
            context,
            "preflight",
            match outcome {
                preflight::Outcome::Pass => EventOutcome::Succeeded,
                preflight::Outcome::Warn => EventOutcome::Warning,
                preflight::Outcome::Fail => EventOutcome::Failed,
            },
            format!("{} check(s), outcome {:?}", report.checks.len(), outcome).to_lowercase(),
            serde_json::to_value(&report).ok(),
            None,
        );
        if outcome == preflight::Outcome::Fail {
            return Err(CliError::guard(
                "pre-flight checks failed; nothing was applied",
                Some(
                    "fix what the failed checks report, then run `safeshift preflight` again"
                        .into(),
                ),
            ));
        }
    }

    let backup_ref = match &environment {
        Some(environment) if environment.backup_required => Some(take_backup(
            context,
            db.as_mut(),
            &url,
            environment.backup_dir.clone(),
            &plan,
        )?),
        _ => None,
    };

    if confirm_needed {
        render::plan_summary(&plan, backup_ref.as_deref(), &say);
        let database = db.server().database.clone();
        confirm::ask(
            &database,
            &format!("apply {} migration(s)", plan.migrations.len()),
            args.yes,
        )?;
    }

    let mut settings = context.settings(args.allow_out_of_order);
    settings.backup_ref = backup_ref.clone();
    let migrator = Migrator::new(context.migrations()?, settings);
    let hook_context = |outcome: Option<&'static str>| HookContext {
        environment: name,
        run_id: &context.identity.run_id,
        database: url.redacted(),
        outcome,
    };
    let before = environment
        .as_ref()
        .map_or(&[][..], |e| &e.hooks_before[..]);
    let after = environment.as_ref().map_or(&[][..], |e| &e.hooks_after[..]);
    let hook_timeout = environment
        .as_ref()
        .map_or(std::time::Duration::from_secs(300), |e| e.hook_timeout);
    for argv in before {
        let outcome = hooks::run("before", argv, &hook_context(None), hook_timeout);
        report_hook(db.as_mut(), context, &outcome, backup_ref.as_deref());
        if !outcome.ok {
            run_after_hooks(
                db.as_mut(),
                context,
                after,
                &hook_context(Some("failed")),
                hook_timeout,
                backup_ref.as_deref(),
            );
            return Err(CliError::guard(
                format!(
                    "the before hook `{}` failed ({}); nothing was applied",
                    outcome.command.join(" "),
                    outcome.problem.unwrap_or_default()
                ),
                None,
            ));
        }
    }

    let interrupts = Interrupts::install(migrator.interrupt());
    interrupts.cancel_with(db.canceller());
    let mut watch_settings = environment
        .as_ref()
        .map(|e| e.watch.clone())
        .unwrap_or_default();
    if let Some(abort_on) = &args.abort_on {
        watch_settings
            .apply_abort_on(abort_on)
            .map_err(|m| CliError::usage(format!("--abort-on: {m}")))?;
    }
    if !watch_settings.duration_given {
        // Twice the estimate, and never under 30 s: estimates are rough.
        watch_settings.limits.duration =
            Some((plan.estimated * 2).max(std::time::Duration::from_secs(30)));
    }
    let watchdog = if args.no_watch {
        None
    } else {
        watch::start(
            db.as_ref(),
            &url,
            &options,
            &watch_settings,
            plan.estimated,
            {
                let interrupt = migrator.interrupt();
                let cancel = db.canceller();
                Box::new(move |reason: String| {
                    interrupt.request(reason);
                    cancel();
                })
            },
            args.json,
        )
    };
    let mut progress = Progress::new(context.quiet, args.json, context.project.lock.wait);
    let result = migrator.up(db.as_mut(), target, &mut progress);
    let summary = watchdog.map(|w| w.stop());
    if let Some(reason) = summary.as_ref().and_then(|s| s.aborted.clone()) {
        record_event(
            db.as_mut(),
            context,
            "watchdog",
            EventOutcome::Failed,
            format!("aborted the run: {reason}"),
            serde_json::to_value(&summary).ok(),
            backup_ref.as_deref(),
        );
    }
    let report = match result {
        Ok(report) => report,
        Err(failure) => {
            run_after_hooks(
                db.as_mut(),
                context,
                after,
                &hook_context(Some("failed")),
                hook_timeout,
                backup_ref.as_deref(),
            );
            let error = CliError::from(failure.error);
            if args.json {
                print_json(
                    &json!({ "ok": false, "direction": "up", "report": failure.completed,
                    "watchdog": summary, "backup": backup_ref, "error": error_json(&error) }),
                );
            } else if !failure.completed.migrations.is_empty() {
                out(format!(
                    "Applied {} migration(s) before the failure.",
                    failure.completed.migrations.len()
                ));
            }
            return Err(error);
        }
    };

    let checks = environment.as_ref().map_or(&[][..], |e| &e.health[..]);
    let mut health = Vec::new();
    if !checks.is_empty() && !report.migrations.is_empty() {
        say(format!(
            "{} after {} migration(s)",
            styled(BOLD, "Health checks"),
            report.migrations.len()
        ));
        for check in checks {
            let outcome = safeshift_watch::health::run(check, &url, &options);
            render::health(&outcome, &say);
            record_event(
                db.as_mut(),
                context,
                "health-check",
                if outcome.ok {
                    EventOutcome::Succeeded
                } else {
                    EventOutcome::Failed
                },
                format!("{}: {}", outcome.check, outcome.detail),
                serde_json::to_value(&outcome).ok(),
                backup_ref.as_deref(),
            );
            health.push(outcome);
        }
    }
    let unhealthy: Vec<String> = health
        .iter()
        .filter(|h| !h.ok)
        .map(|h| format!("{} ({})", h.check, h.detail))
        .collect();
    if unhealthy.is_empty() {
        run_after_hooks(
            db.as_mut(),
            context,
            after,
            &hook_context(Some("ok")),
            hook_timeout,
            backup_ref.as_deref(),
        );
        if args.json {
            print_json(
                &json!({ "ok": true, "direction": "up", "report": report, "watchdog": summary,
                "backup": backup_ref, "health": health }),
            );
        } else {
            run_render::run_summary(&report, Direction::Up, db.redacted_url());
        }
        return Ok(Exit::Success);
    }

    let rollback =
        args.rollback_on_failure || environment.as_ref().is_some_and(|e| e.rollback_on_failure);
    let mut rolled_back = None;
    if rollback {
        let versions: Vec<Version> = report
            .migrations
            .iter()
            .filter_map(|m| Version::parse(&m.version))
            .collect();
        say(format!(
            "{} rolling back the {} migration(s) this run applied, newest first",
            styled(BOLD, "Rollback:"),
            versions.len()
        ));
        let outcome = migrator.down(
            db.as_mut(),
            &DownTarget::Versions(versions.clone()),
            &mut progress,
        );
        let (event_outcome, summary_text) = match &outcome {
            Ok(done) => (
                EventOutcome::Succeeded,
                format!(
                    "rolled back {} migration(s) after failed health checks: {}",
                    done.migrations.len(),
                    unhealthy.join("; ")
                ),
            ),
            Err(failure) => (
                EventOutcome::Failed,
                format!(
                    "the rollback after failed health checks failed: {}",
                    failure.error
                ),
            ),
        };
        record_event(
            db.as_mut(),
            context,
            "rollback",
            event_outcome,
            &summary_text,
            Some(json!({ "versions": versions.iter().map(|v| v.to_string()).collect::<Vec<_>>() })),
            backup_ref.as_deref(),
        );
        say(summary_text);
        rolled_back = Some(outcome.is_ok());
        if let Err(failure) = outcome {
            run_after_hooks(
                db.as_mut(),
                context,
                after,
                &hook_context(Some("failed")),
                hook_timeout,
                backup_ref.as_deref(),
            );
            return Err(CliError::from(failure.error));
        }
    }
    run_after_hooks(
        db.as_mut(),
        context,
        after,
        &hook_context(Some("failed")),
        hook_timeout,
        backup_ref.as_deref(),
    );
    if args.json {
        print_json(
            &json!({ "ok": false, "direction": "up", "report": report, "watchdog": summary,
            "backup": backup_ref, "health": health, "rolled_back": rolled_back }),
        );
    }
    Err(CliError::Guard(Box::new(crate::exit::Guard {
        exit: Exit::HealthCheck,
        message: format!(
            "{} health check(s) failed after applying {} migration(s): {}{}",
            unhealthy.len(),
            report.migrations.len(),
            unhealthy.join("; "),
            match rolled_back {
                Some(true) => "; the migrations of this run were rolled back",
                _ => "",
            }
        ),
        help: if rolled_back.is_none() {
            Some("roll back with `safeshift down`, or next time pass --rollback-on-failure".into())
        } else {
            None
        },
    })))
}

/// Takes the backup the environment requires and verifies it (checksum and contents), recording
/// both in the events log. Returns its reference for the history rows.
fn take_backup(
    context: &Context,
    db: &mut dyn Driver,
    url: &safeshift_driver::DatabaseUrl,
    dir: Option<std::path::PathBuf>,
    plan: &plan::Plan,
) -> Result<String, CliError> {
    let options = CreateOptions {
        dir: dir.unwrap_or_else(|| context.project.backup.dir.clone()),
        prefix: context.project.backup.prefix.clone(),
        schema_version: plan.current_version.clone(),
        created_by: context.identity.installed_by.clone(),
        fingerprints: context.project.backup.fingerprints,
    };
    err(format!(
        "{} taking a backup into {}",
        styled(BOLD, "Backup:"),
        options.dir.display()
    ));
    let database = Database {
        url,
        base_dir: &context.project.root,
    };
    crate::production::prepare_for_backup(db);
    let mut backup = match safeshift_backup::create(&database, &options) {
        Ok(backup) => backup,
        Err(error) => {
            record_event(
                db,
                context,
                "backup",
                EventOutcome::Failed,
                error.to_string(),
                None,
                None,
            );
            return Err(CliError::guard(
                format!("the required backup failed: {error}; nothing was applied"),
                error.help(),
            ));
        }
    };
    let verification = safeshift_backup::verify(&mut backup, None)?;
    let reference = backup.reference();
    render::verification(&verification, &|line| err(line));
    record_event(
        db,
        context,
        "backup",
        if verification.ok() {
            EventOutcome::Succeeded
        } else {
            EventOutcome::Failed
        },
        format!(
            "{} ({}, {}){}",
            reference,
            safeshift_backup::human_bytes(backup.metadata.size_bytes),
            backup.metadata.sha256,
            if verification.ok() {
                ", verified"
            } else {
                ", verification FAILED"
            }
        ),
        serde_json::to_value(&verification).ok(),
        Some(&reference),
    );
    if !verification.ok() {
        return Err(CliError::guard(
            format!("the backup {reference} failed verification; nothing was applied"),
            None,
        ));
    }
    err(format!("  backup {reference} taken and verified"));
    Ok(reference)
}

fn report_hook(
    db: &mut dyn Driver,
    context: &Context,
    outcome: &HookOutcome,
    backup_ref: Option<&str>,
) {
    err(format!(
        "{} {} hook `{}`: {} ({} ms)",
        styled(BOLD, "Hook:"),
        outcome.phase,
        outcome.command.join(" "),
        if outcome.ok {
            "ok".to_owned()
        } else {
            outcome.problem.clone().unwrap_or_default()
        },
        outcome.duration_ms
    ));
    for line in outcome.output.lines() {
        err(format!("    {line}"));
    }
    record_event(
        db,
        context,
        "hook",
        if outcome.ok {
            EventOutcome::Succeeded
        } else {
            EventOutcome::Failed
        },
        format!(
            "{} hook `{}`: {}",
            outcome.phase,
            outcome.command.join(" "),
            if outcome.ok {
                "ok".to_owned()
            } else {
                outcome.problem.clone().unwrap_or_default()
            }
        ),
        serde_json::to_value(outcome).ok(),
        backup_ref,
    );
}

fn run_after_hooks(
    db: &mut dyn Driver,
    context: &Context,
    after: &[Vec<String>],
    hook_context: &HookContext<'_>,
    timeout: std::time::Duration,
    backup_ref: Option<&str>,
) {
    for argv in after {
        let outcome = hooks::run("after", argv, hook_context, timeout);
        report_hook(db, context, &outcome, backup_ref);
    }
}
