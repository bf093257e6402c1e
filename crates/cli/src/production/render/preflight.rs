//! The pre-flight checks, as `safeshift preflight` prints them (and `up` before a production run).

use crate::output::{BOLD, DIM, GREEN, RED, YELLOW, styled};
use safeshift_deploy::preflight::{Outcome, Preflight};

fn verdict(outcome: Outcome) -> String {
    match outcome {
        Outcome::Pass => styled(GREEN, "pass"),
        Outcome::Warn => styled(YELLOW, "warn"),
        Outcome::Fail => styled(RED, "FAIL"),
    }
}

/// `safeshift preflight`, and the checks before a production `up` (to stderr there).
pub fn preflight(report: &Preflight, say: &dyn Fn(String)) {
    say(format!(
        "{} {}",
        styled(BOLD, "Pre-flight"),
        report.database
    ));
    for check in &report.checks {
        say(format!(
            "  {}  {:<18} {}",
            verdict(check.outcome),
            check.name,
            check.summary
        ));
        for detail in &check.details {
            say(format!("        {}", styled(DIM, detail)));
        }
    }
    let (fails, warns) = report
        .checks
        .iter()
        .fold((0, 0), |(f, w), c| match c.outcome {
            Outcome::Fail => (f + 1, w),
            Outcome::Warn => (f, w + 1),
            Outcome::Pass => (f, w),
        });
    say(match report.outcome() {
        Outcome::Fail => format!("{fails} check(s) failed, {warns} warning(s)."),
        Outcome::Warn => format!("Ready, with {warns} warning(s)."),
        Outcome::Pass => "Ready.".to_owned(),
    });
}
