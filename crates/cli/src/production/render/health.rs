//! A health check's outcome.

use safeshift_watch::HealthOutcome;

use crate::output::{GREEN, RED, millis, styled};

pub fn health(outcome: &HealthOutcome, say: &dyn Fn(String)) {
    say(format!(
        "  {} {} — {} ({})",
        if outcome.ok {
            styled(GREEN, "healthy")
        } else {
            styled(RED, "UNHEALTHY")
        },
        outcome.check,
        outcome.detail,
        millis(outcome.duration_ms)
    ));
}
