//! The terminal as a run's front end: it shows the run's steps and progress, and asks a person
//! to confirm by typing the database's name.

use safeshift::{Action, Confirm, Question, Refusal, Report, Step, Stop};
use safeshift_runner::{Event, Observer};
use safeshift_watch::WatchEvent;

use crate::context::Context;
use crate::output::err;
use crate::production::{confirm, render};
use crate::render::Progress;
use crate::signals::Interrupts;

/// Shows a run on the terminal: steps on stderr, migration progress on stdout (stderr with
/// `--json`), watchdog events as they come; Ctrl-C stops the migrations once they run.
pub struct Terminal {
    progress: Progress,
    json: bool,
    /// Installed when the migrations start.
    interrupts: Option<Interrupts>,
}

impl Terminal {
    pub fn new(context: &Context, json: bool) -> Terminal {
        Terminal {
            progress: Progress::new(context.quiet, json, context.project.lock.wait),
            json,
            interrupts: None,
        }
    }
}

impl Observer for Terminal {
    fn event(&mut self, event: Event<'_>) {
        self.progress.event(event);
    }
}

impl Report for Terminal {
    fn step(&mut self, step: Step<'_>) {
        render::step(&step);
    }

    fn watch_events(&self) -> Box<dyn FnMut(WatchEvent) + Send> {
        let json = self.json;
        Box::new(move |event| render::watch_event(&event, json))
    }

    fn migrations_starting(&mut self, stop: &Stop) {
        let interrupts = Interrupts::install(stop.interrupt.clone());
        interrupts.cancel_with(stop.canceller.clone());
        self.interrupts = Some(interrupts);
    }
}

/// A person at the terminal types the database's name; `--yes` answers in advance.
pub struct TypedConfirmation {
    pub yes: bool,
}

impl Confirm for TypedConfirmation {
    fn can_ask(&self, action: Action, environment: &str) -> Result<(), Refusal> {
        let what = match action {
            Action::Up => "`up`",
            Action::Down => "`down`",
        };
        confirm::require_possible(what, environment, self.yes)
    }

    fn ask(&mut self, question: &Question<'_>) -> Result<(), Refusal> {
        match question {
            Question::Apply {
                plan,
                backup,
                database,
            } => {
                render::plan_summary(plan, *backup, &|line| err(line));
                confirm::ask(
                    database,
                    &format!("apply {} migration(s)", plan.migrations.len()),
                    self.yes,
                )
                .map(drop)
            }
            Question::RollBack {
                versions,
                database_url,
                database,
            } => {
                err(format!(
                    "Rolling back {} migration(s) on {database_url}: {}",
                    versions.len(),
                    versions.join(", ")
                ));
                confirm::ask(database, "roll them back", self.yes).map(drop)
            }
        }
    }
}
