//! Pausing a backfill on feedback: a standby that replays too far behind, sessions queued for a
//! lock on the table, or the user's own probe (a query, or an HTTP endpoint).

use std::time::{Duration, Instant};

use safeshift_driver::{DriverError, ErrorKind};

use crate::session::{Session, quote_literal};
use crate::settings::{BackfillOptions, Probe};

/// Decides, between batches, whether to pause.
pub(crate) struct Throttle {
    max_lag: Option<Duration>,
    max_waiters: u32,
    probe: Option<Probe>,
    probe_interval: Duration,
    /// The probe's last answer, reused until `probe_interval` passes.
    last_probe: Option<(Instant, Option<String>)>,
    /// The table, quoted for `to_regclass`.
    table: String,
}

impl Throttle {
    pub fn new(options: &BackfillOptions, table_sql: &str) -> Throttle {
        Throttle {
            max_lag: options.max_replication_lag,
            max_waiters: options.max_lock_waiters,
            probe: options.probe.clone(),
            probe_interval: options.probe_interval,
            last_probe: None,
            table: quote_literal(table_sql),
        }
    }

    /// Why to pause now, or `None` to go on.
    pub fn reason(&mut self, session: &mut dyn Session) -> Result<Option<String>, DriverError> {
        let row = session
            .rows(&format!(
                "SELECT coalesce((SELECT max(extract(epoch FROM replay_lag)) FROM pg_stat_replication), 0), \
                        (SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND relation = to_regclass({}) AND NOT granted)",
                self.table
            ))?
            .into_iter()
            .next()
            .unwrap_or_default();
        let lag: f64 = row
            .first()
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if let Some(max) = self.max_lag
            && lag > max.as_secs_f64()
        {
            return Ok(Some(format!(
                "replication lag {lag:.1}s is over {:.1}s",
                max.as_secs_f64()
            )));
        }
        let waiters: u32 = row
            .get(1)
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if waiters > self.max_waiters {
            return Ok(Some(format!(
                "{waiters} session(s) wait for a lock on the table"
            )));
        }
        self.probe(session)
    }

    fn probe(&mut self, session: &mut dyn Session) -> Result<Option<String>, DriverError> {
        let Some(probe) = &self.probe else {
            return Ok(None);
        };
        if let Some((at, answer)) = &self.last_probe
            && at.elapsed() < self.probe_interval
        {
            return Ok(answer.clone());
        }
        let answer = match probe {
            Probe::Sql(sql) => {
                let value = session.value(sql).map_err(|error| {
                    DriverError::new(
                        ErrorKind::Statement,
                        format!("the throttle probe query failed: {}", error.summary()),
                    )
                    .with_hint("fix the probe (-- safeshift:backfill probe=…, --throttle-probe, or [online] probe)")
                })?;
                sql_says_pause(value.as_deref()).then(|| {
                    format!(
                        "the probe query answered {}",
                        value.unwrap_or_else(|| "NULL".into())
                    )
                })
            }
            Probe::Http(url) => http_says_pause(url),
        };
        self.last_probe = Some((Instant::now(), answer.clone()));
        Ok(answer)
    }
}

/// A probe query's first value asks for a pause when it is true or a positive number.
fn sql_says_pause(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        Some("t") | Some("true") => true,
        Some(number) => number.parse::<f64>().is_ok_and(|n| n > 0.0),
        None => false,
    }
}

/// An HTTP probe asks for a pause unless it answers 2xx within two seconds.
fn http_says_pause(url: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!(
            "the probe {url} answered HTTP {}",
            response.status().as_u16()
        )),
        Err(error) => Some(format!("the probe {url} did not answer: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers() {
        assert!(sql_says_pause(Some("t")));
        assert!(sql_says_pause(Some("3")));
        assert!(sql_says_pause(Some("0.5")));
        assert!(!sql_says_pause(Some("0")));
        assert!(!sql_says_pause(Some("f")));
        assert!(!sql_says_pause(None));
    }

    #[test]
    fn an_unreachable_http_probe_pauses() {
        // Port 9 on localhost: nothing listens (discard), so the connection is refused.
        let reason = http_says_pause("http://127.0.0.1:9/health").unwrap();
        assert!(reason.contains("did not answer"), "{reason}");
    }
}
