//! The run: `up` and `down` under a [`Policy`]. There is one path for every run; each step does
//! what the policy asks of it, and nothing under the default policy (the unguarded run: the lint
//! gate, then the migrations).
//!
//! `up`, in order: where the database stands, the plan (for a guarded run), the lint gate, the
//! pre-flight checks, a verified backup, the confirmation, the hooks before, the migrations
//! under the watchdog, the health checks (and the rollback of the run's migrations when they
//! fail), the hooks after. Every step that is not a migration is written to the run-events log.

use safeshift_driver::{Driver, EventKind, EventOutcome};
use safeshift_lint::Grading;
use safeshift_runner::{DownTarget, DryRun, Migrator, RunError, RunReport, StatusReport};
use safeshift_source::Version;

use crate::database::Database;
use crate::error::{DeployError, DeployFailure, Deployed, Stage};
use crate::events::{Entry, Recorder};
use crate::frontend::{Action, Confirm, Question, Report, Step, Stop};
use crate::hooks::{self, HookContext};
use crate::plan::{self, Plan};
use crate::policy::{Backups, Policy};
use crate::preflight::{self, Outcome, PreflightInputs};
use crate::watch;

/// A project's migrations on one database, under a policy.
pub struct Deployment {
    migrator: Migrator,
    database: Database,
    policy: Policy,
    /// The migration's connection, opened by the first run, and whether it may create a
    /// missing SQLite file.
    db: Option<(Box<dyn Driver>, bool)>,
}

impl Deployment {
    /// `migrator` holds the migrations (with whatever statement hooks it should run them with);
    /// nothing connects before a run.
    pub fn new(migrator: Migrator, database: Database, policy: Policy) -> Deployment {
        Deployment {
            migrator,
            database,
            policy,
            db: None,
        }
    }

    pub fn migrator(&self) -> &Migrator {
        &self.migrator
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// What `up` would run, without taking the lock or changing anything.
    pub fn dry_run_up(&mut self, target: Option<&Version>) -> Result<DryRun, DeployError> {
        let db = connect(&mut self.db, &self.database, false)?;
        Ok(self.migrator.dry_run_up(db, target)?)
    }

    /// What `down` would run, without taking the lock or changing anything.
    pub fn dry_run_down(&mut self, target: &DownTarget) -> Result<DryRun, DeployError> {
        let db = connect(&mut self.db, &self.database, false)?;
        Ok(self.migrator.dry_run_down(db, target)?)
    }

    /// Applies the pending migrations up to `target` (all with `None`), doing around them what
    /// the policy asks.
    pub fn up(
        &mut self,
        target: Option<&Version>,
        confirm: &mut dyn Confirm,
        report: &mut dyn Report,
    ) -> Result<Deployed, DeployFailure> {
        let before =
            |error: DeployError| failure(Deployed::default(), Stage::BeforeMigrations, error);
        if self.policy.confirm {
            confirm
                .can_ask(Action::Up, environment_name(&self.policy))
                .map_err(|refusal| before(refusal.into()))?;
        }
        let db = connect(&mut self.db, &self.database, true).map_err(before)?;
        let mut run = Run {
            migrator: &mut self.migrator,
            db,
            database: &self.database,
            policy: &self.policy,
            report,
            done: Deployed::default(),
        };
        match run.up(target, confirm) {
            Ok(()) => Ok(run.done),
            Err((stage, error)) => Err(failure(run.done, stage, error)),
        }
    }

    /// Rolls back applied migrations, newest first, asking first when the policy says so.
    pub fn down(
        &mut self,
        target: &DownTarget,
        confirm: &mut dyn Confirm,
        report: &mut dyn Report,
    ) -> Result<Deployed, DeployFailure> {
        let before =
            |error: DeployError| failure(Deployed::default(), Stage::BeforeMigrations, error);
        if self.policy.confirm {
            confirm
                .can_ask(Action::Down, environment_name(&self.policy))
                .map_err(|refusal| before(refusal.into()))?;
        }
        let db = connect(&mut self.db, &self.database, false).map_err(before)?;
        if self.policy.confirm {
            let plan = self
                .migrator
                .dry_run_down(db, target)
                .map_err(|error| before(error.into()))?;
            let versions: Vec<String> = plan.steps.iter().map(|s| s.version.clone()).collect();
            let database = db.server().database.clone();
            confirm
                .ask(&Question::RollBack {
                    versions: &versions,
                    database_url: db.redacted_url(),
                    database: &database,
                })
                .map_err(|refusal| before(refusal.into()))?;
        }
        report.migrations_starting(&Stop {
            interrupt: self.migrator.interrupt(),
            canceller: db.canceller(),
        });
        match self.migrator.down(db, target, report) {
            Ok(completed) => Ok(Deployed {
                report: completed,
                ..Deployed::default()
            }),
            Err(stopped) => Err(failure(
                Deployed {
                    report: stopped.completed,
                    ..Deployed::default()
                },
                Stage::Migrations,
                stopped.error.into(),
            )),
        }
    }
}

/// The connection in `slot`, opened now if it is not open yet (or again, when it may not
/// create a missing SQLite file and `create` asks for that).
fn connect<'a>(
    slot: &'a mut Option<(Box<dyn Driver>, bool)>,
    database: &Database,
    create: bool,
) -> Result<&'a mut dyn Driver, DeployError> {
    let open = match slot.take() {
        Some((db, may_create)) if may_create || !create => (db, may_create),
        _ => (database.connect(create)?, create),
    };
    Ok(slot.insert(open).0.as_mut())
}

fn failure(done: Deployed, stage: Stage, error: DeployError) -> DeployFailure {
    DeployFailure { done, stage, error }
}

/// The environment's name as hooks and confirmations show it.
fn environment_name(policy: &Policy) -> &str {
    policy.environment.as_deref().unwrap_or("default")
}

/// How a run continues after it read where the database stands.
enum Prepared {
    /// Nothing to apply, and the run is guarded: it stops before its guards.
    UpToDate,
    /// An unguarded run: straight to the migrations.
    Unguarded,
    /// A guarded run, with the plan its guards look at.
    Guarded(Box<Plan>),
}

/// One `up` in progress.
struct Run<'r> {
    migrator: &'r mut Migrator,
    db: &'r mut dyn Driver,
    database: &'r Database,
    policy: &'r Policy,
    report: &'r mut dyn Report,
    done: Deployed,
}

type StageError = (Stage, DeployError);

impl Run<'_> {
    fn up(
        &mut self,
        target: Option<&Version>,
        confirm: &mut dyn Confirm,
    ) -> Result<(), StageError> {
        let before = |error: DeployError| (Stage::BeforeMigrations, error);
        let plan = match self.prepare(target).map_err(before)? {
            Prepared::UpToDate => {
                self.done.up_to_date = true;
                return Ok(());
            }
            Prepared::Unguarded => None,
            Prepared::Guarded(plan) => {
                self.guard(target, &plan, confirm).map_err(before)?;
                Some(plan)
            }
        };
        self.apply(target, plan.as_deref())?;
        self.check_health()
    }

    /// Checks the files, reads where the database stands, builds the plan for a guarded run,
    /// and runs the lint gate.
    fn prepare(&mut self, target: Option<&Version>) -> Result<Prepared, DeployError> {
        // Every file problem, both directions, before the gate and the guards: one run shows
        // the whole list.
        self.migrator.check_files(self.db.dialect())?;
        let status = self.migrator.status(self.db)?;
        let pending = pending_up_to(&status, target);
        let guarded = self.policy.guards_the_run();
        if guarded && pending == 0 {
            return Ok(Prepared::UpToDate);
        }
        // One evaluation of the migrations to apply: the plan shows it, the gate refuses on it.
        let (plan, evaluation) = if guarded {
            let mut plan = plan::build(
                self.migrator,
                self.db,
                self.database,
                self.policy.risk_policy,
                target,
            )?;
            let evaluation = plan.evaluation.take();
            (Some(plan), evaluation)
        } else {
            let evaluation = crate::evaluation::evaluate_pending(
                self.migrator,
                &status,
                self.db,
                self.database,
                self.policy.risk_policy,
                target,
            )?;
            (None, evaluation)
        };
        if evaluation
            .as_ref()
            .is_some_and(|e| matches!(e.grading, Grading::SizesUnavailable { .. }))
        {
            self.report.step(Step::SizesUnavailable);
        }
        crate::gate::check(evaluation.as_ref(), self.policy.max_risk)?;
        Ok(match plan {
            Some(plan) => Prepared::Guarded(Box::new(plan)),
            None => Prepared::Unguarded,
        })
    }

    /// Before anything is applied: the pre-flight checks, the backup, the confirmation and the
    /// hooks before.
    fn guard(
        &mut self,
        target: Option<&Version>,
        plan: &Plan,
        confirm: &mut dyn Confirm,
    ) -> Result<(), DeployError> {
        if self.policy.preflight {
            self.preflight(target, plan)?;
        }
        if self.policy.backups.before_up {
            let reference = self.take_backup(&self.policy.backups, plan.current_version.clone())?;
            self.migrator.set_backup_ref(Some(reference.clone()));
            self.done.backup = Some(reference);
        }
        if self.policy.confirm {
            let database = self.db.server().database.clone();
            confirm.ask(&Question::Apply {
                plan,
                backup: self.done.backup.as_deref(),
                database: &database,
            })?;
        }
        for argv in &self.policy.hooks.before {
            let outcome = self.hook("before", argv, None);
            if !outcome.ok {
                self.hooks_after("failed");
                return Err(DeployError::guard(
                    format!(
                        "the before hook `{}` failed ({}); nothing was applied",
                        outcome.command.join(" "),
                        outcome.problem.unwrap_or_default()
                    ),
                    None,
                ));
            }
        }
        Ok(())
    }

    fn preflight(&mut self, target: Option<&Version>, plan: &Plan) -> Result<(), DeployError> {
        let inputs = PreflightInputs {
            target,
            accepted: self.policy.max_risk,
            risk_policy: self.policy.risk_policy,
            backup_dir: &self.policy.backups.dir,
            plan: Some(plan),
        };
        let checked = preflight::run(self.database, self.migrator, &inputs)?;
        self.report.step(Step::Preflight(&checked));
        let outcome = checked.outcome();
        self.record(Entry {
            kind: EventKind::Preflight,
            outcome: match outcome {
                Outcome::Pass => EventOutcome::Succeeded,
                Outcome::Warn => EventOutcome::Warning,
                Outcome::Fail => EventOutcome::Failed,
            },
            summary: format!("{} check(s), outcome {:?}", checked.checks.len(), outcome)
                .to_lowercase(),
            detail: serde_json::to_value(&checked).ok(),
            backup: None,
        });
        if outcome == Outcome::Fail {
            return Err(DeployError::guard(
                "pre-flight checks failed; nothing was applied",
                Some(
                    "fix what the failed checks report, then run `safeshift preflight` again"
                        .into(),
                ),
            ));
        }
        Ok(())
    }

    /// Takes the backup the policy requires and verifies it (checksum and contents), recording
    /// both in the events log. Returns its reference for the history rows.
    fn take_backup(
        &mut self,
        required: &Backups,
        schema_version: Option<String>,
    ) -> Result<String, DeployError> {
        let options = safeshift_backup::CreateOptions {
            dir: required.dir.clone(),
            prefix: required.prefix.clone(),
            schema_version,
            created_by: self.migrator.settings().identity.installed_by.clone(),
            fingerprints: required.fingerprints,
        };
        self.report.step(Step::BackupStarted { dir: &options.dir });
        // The backup holds the events log, so that restoring it replaces the log instead of
        // failing on a table the backup does not know.
        if let Err(error) = self.db.ensure_events() {
            self.report
                .step(Step::EventsLogUnavailable { error: &error });
        }
        let mut backup = match safeshift_backup::create(&self.database.for_backup(), &options) {
            Ok(backup) => backup,
            Err(error) => {
                self.record(Entry {
                    kind: EventKind::Backup,
                    outcome: EventOutcome::Failed,
                    summary: error.to_string(),
                    detail: None,
                    backup: None,
                });
                return Err(DeployError::guard(
                    format!("the required backup failed: {error}; nothing was applied"),
                    error.help(),
                ));
            }
        };
        let verification = safeshift_backup::verify(&mut backup, None)?;
        let reference = backup.reference();
        self.report.step(Step::BackupChecked {
            verification: &verification,
        });
        self.record(Entry {
            kind: EventKind::Backup,
            outcome: if verification.ok() {
                EventOutcome::Succeeded
            } else {
                EventOutcome::Failed
            },
            summary: format!(
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
            detail: serde_json::to_value(&verification).ok(),
            backup: Some(&reference),
        });
        if !verification.ok() {
            return Err(DeployError::guard(
                format!("the backup {reference} failed verification; nothing was applied"),
                None,
            ));
        }
        self.report.step(Step::BackupTaken {
            reference: &reference,
        });
        Ok(reference)
    }

    /// The migrations, under the watchdog when the policy asks for one.
    fn apply(&mut self, target: Option<&Version>, plan: Option<&Plan>) -> Result<(), StageError> {
        let stop = Stop {
            interrupt: self.migrator.interrupt(),
            canceller: self.db.canceller(),
        };
        self.report.migrations_starting(&stop);
        let watchdog = match (&self.policy.watch, plan) {
            (Some(settings), Some(plan)) => watch::start(
                self.db,
                self.database,
                settings,
                plan.estimated,
                stop,
                self.report,
            ),
            _ => None,
        };
        let result = self.migrator.up(self.db, target, self.report);
        self.done.watchdog = watchdog.map(|watchdog| watchdog.stop());
        let aborted = self
            .done
            .watchdog
            .as_ref()
            .and_then(|summary| summary.aborted.clone());
        if let Some(reason) = aborted {
            self.record(Entry {
                kind: EventKind::Watchdog,
                outcome: EventOutcome::Failed,
                summary: format!("aborted the run: {reason}"),
                detail: serde_json::to_value(&self.done.watchdog).ok(),
                backup: self.done.backup.clone().as_deref(),
            });
        }
        match result {
            Ok(report) => {
                self.done.report = report;
                Ok(())
            }
            Err(stopped) => {
                self.done.report = stopped.completed;
                self.hooks_after("failed");
                Err((Stage::Migrations, stopped.error.into()))
            }
        }
    }

    /// After the migrations: the health checks; when one fails, the rollback of the run's
    /// migrations if the policy asks for it. Then the hooks after.
    fn check_health(&mut self) -> Result<(), StageError> {
        let applied = self.done.report.migrations.len();
        if !self.policy.health.is_empty() && applied > 0 {
            self.report.step(Step::HealthChecksStarted { applied });
            for check in &self.policy.health {
                let outcome = safeshift_watch::health::run(
                    check,
                    &self.database.url,
                    &self.database.other_options(),
                );
                self.report.step(Step::Health(&outcome));
                self.record(Entry {
                    kind: EventKind::HealthCheck,
                    outcome: if outcome.ok {
                        EventOutcome::Succeeded
                    } else {
                        EventOutcome::Failed
                    },
                    summary: format!("{}: {}", outcome.check, outcome.detail),
                    detail: serde_json::to_value(&outcome).ok(),
                    backup: self.done.backup.clone().as_deref(),
                });
                self.done.health.push(outcome);
            }
        }
        let unhealthy: Vec<String> = self
            .done
            .health
            .iter()
            .filter(|h| !h.ok)
            .map(|h| format!("{} ({})", h.check, h.detail))
            .collect();
        if unhealthy.is_empty() {
            self.hooks_after("ok");
            return Ok(());
        }
        if self.policy.rollback_on_failure {
            let rolled_back = self.roll_back(&unhealthy);
            self.done.rolled_back = Some(rolled_back.is_ok());
            if let Err(error) = rolled_back {
                self.hooks_after("failed");
                return Err((Stage::Rollback, error.into()));
            }
        }
        self.hooks_after("failed");
        let rolled_back = self.done.rolled_back;
        Err((
            Stage::HealthChecks,
            DeployError::Unhealthy {
                message: format!(
                    "{} health check(s) failed after applying {applied} migration(s): {}{}",
                    unhealthy.len(),
                    unhealthy.join("; "),
                    match rolled_back {
                        Some(true) => "; the migrations of this run were rolled back",
                        _ => "",
                    }
                ),
                help: rolled_back.is_none().then(|| {
                    "roll back with `safeshift down`, or next time pass --rollback-on-failure"
                        .to_owned()
                }),
            },
        ))
    }

    /// Rolls back the migrations this run applied, newest first, and records how it went.
    fn roll_back(&mut self, unhealthy: &[String]) -> Result<RunReport, RunError> {
        let versions: Vec<Version> = self
            .done
            .report
            .migrations
            .iter()
            .filter_map(|m| Version::parse(&m.version))
            .collect();
        self.report.step(Step::RollbackStarted {
            migrations: versions.len(),
        });
        let outcome = self.migrator.down(
            self.db,
            &DownTarget::Versions(versions.clone()),
            self.report,
        );
        let (event_outcome, summary) = match &outcome {
            Ok(done) => (
                EventOutcome::Succeeded,
                format!(
                    "rolled back {} migration(s) after failed health checks: {}",
                    done.migrations.len(),
                    unhealthy.join("; ")
                ),
            ),
            Err(stopped) => (
                EventOutcome::Failed,
                format!(
                    "the rollback after failed health checks failed: {}",
                    stopped.error
                ),
            ),
        };
        self.record(Entry {
            kind: EventKind::Rollback,
            outcome: event_outcome,
            summary: summary.clone(),
            detail: Some(serde_json::json!({
                "versions": versions.iter().map(|v| v.to_string()).collect::<Vec<_>>()
            })),
            backup: self.done.backup.clone().as_deref(),
        });
        self.report.step(Step::RollbackEnded { summary: &summary });
        outcome.map_err(|stopped| stopped.error)
    }

    /// Runs one hook, reports it and records it.
    fn hook(
        &mut self,
        phase: &'static str,
        argv: &[String],
        outcome: Option<&'static str>,
    ) -> hooks::HookOutcome {
        let context = HookContext {
            environment: environment_name(self.policy),
            run_id: &self.migrator.settings().identity.run_id,
            database: self.database.url.redacted(),
            outcome,
            withheld: &self.policy.hooks.withheld,
        };
        let ran = hooks::run(phase, argv, &context, self.policy.hooks.timeout);
        self.report.step(Step::Hook(&ran));
        self.record(Entry {
            kind: EventKind::Hook,
            outcome: if ran.ok {
                EventOutcome::Succeeded
            } else {
                EventOutcome::Failed
            },
            summary: format!(
                "{} hook `{}`: {}",
                ran.phase,
                ran.command.join(" "),
                if ran.ok {
                    "ok".to_owned()
                } else {
                    ran.problem.clone().unwrap_or_default()
                }
            ),
            detail: serde_json::to_value(&ran).ok(),
            backup: self.done.backup.clone().as_deref(),
        });
        ran
    }

    /// The hooks after the run, told how it went (`ok` or `failed`).
    fn hooks_after(&mut self, outcome: &'static str) {
        for argv in &self.policy.hooks.after {
            self.hook("after", argv, Some(outcome));
        }
    }

    /// Records an event; failing to record is reported, never a reason to stop.
    fn record(&mut self, entry: Entry<'_>) {
        let recorder = Recorder {
            identity: &self.migrator.settings().identity,
            environment: self.policy.environment.as_deref(),
        };
        let kind = entry.kind;
        if let Err(error) = recorder.record(self.db, entry) {
            self.report.step(Step::EventNotRecorded {
                kind,
                error: &error,
            });
        }
    }
}

/// How many migrations `up --to target` would apply (all pending with `None`).
fn pending_up_to(status: &StatusReport, target: Option<&Version>) -> usize {
    status
        .entries
        .iter()
        .filter(|e| e.file.is_some() && e.state.runs_on_up())
        .filter_map(|e| Version::parse(&e.version))
        .filter(|v| target.is_none_or(|t| v <= t))
        .count()
}
