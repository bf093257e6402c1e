//! A few words for numbers and sessions, in the verdicts and events a run records (the same
//! words the command prints).

use safeshift_watch::Session;

/// `850 ms`, `4.2 s`, `37 s`.
pub fn millis(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{:.0} s", ms as f64 / 1000.0)
    } else if ms >= 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// `pid 4242 (user app, application psql, idle in transaction, transaction open 12.3 s): SELECT …`
pub fn session_line(session: &Session) -> String {
    let mut facts = vec![format!("user {}", session.user)];
    if !session.application.is_empty() {
        facts.push(format!("application {}", session.application));
    }
    if !session.state.is_empty() {
        facts.push(session.state.clone());
    }
    if let Some(ms) = session.transaction_ms {
        facts.push(format!("transaction open {}", millis(ms)));
    } else if let Some(ms) = session.query_ms {
        facts.push(format!("query running {}", millis(ms)));
    }
    let query: String = session
        .query
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(160)
        .collect();
    format!("pid {} ({}): {query}", session.pid, facts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(millis(850), "850 ms");
        assert_eq!(millis(4_250), "4.2 s");
        assert_eq!(millis(37_400), "37 s");
    }
}
