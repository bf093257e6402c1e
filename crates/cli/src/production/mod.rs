//! Production runs on the terminal: the run itself (pre-flight, backup, plan and confirmation,
//! hooks, watchdog, health checks, rollback) is `safeshift_deploy`'s; this module shows it as it
//! happens ([`frontend::Terminal`]), asks for the typed confirmation ([`confirm`]), and renders
//! the reports that `preflight`, `plan`, `activity` and `backup` print ([`render`]).

pub mod confirm;
pub mod frontend;
pub mod render;
