//! The safeshift run, for the `safeshift` command and for applications that embed safeshift:
//! [`Deployment::up`] and [`Deployment::down`] under a [`Policy`] (pre-flight checks, a verified
//! backup, the plan and a confirmation, hooks, a watchdog, health checks and a rollback), with
//! the lint gate before every `up`. The unguarded run is [`Policy::default`]: the same path, with
//! nothing around the migrations but the gate.
//!
//! What only a front end can do is asked of it through [`Confirm`] (a person's go-ahead) and
//! [`Report`] (showing the run as it happens). Nothing here prints.

// `DeployError` carries the runner's error (the failed statement and the database's error); it
// is returned once per run, never in a loop, so its size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod database;
mod deployment;
pub mod describe;
mod error;
pub mod evaluation;
pub mod events;
mod frontend;
mod gate;
pub mod hooks;
pub mod plan;
mod policy;
pub mod preflight;
mod watch;

pub use database::Database;
pub use deployment::Deployment;
pub use describe::millis;
pub use error::{DeployError, DeployFailure, Deployed, Stage};
pub use frontend::{
    Action, Confirm, NoWatchdog, Question, Quiet, Refusal, Report, Step, Stop, Unattended,
};
pub use plan::Plan;
pub use policy::{Backups, Hooks, Policy, WatchSettings, parse_percent};
pub use preflight::Preflight;
