//! The arguments of `-- safeshift:backfill`: `key=value` words that override the configured
//! backfill options for one statement, e.g.
//! `-- safeshift:backfill batch=5000 target=200ms pause=50ms max-lag=5s`.

use safeshift_source::{parse_duration, parse_timeout};

use crate::settings::{BackfillOptions, Probe};

/// The keys `-- safeshift:backfill` accepts, for messages.
pub const KEYS: &[&str] = &[
    "batch",
    "min-batch",
    "max-batch",
    "target",
    "pause",
    "max-lag",
    "max-waiters",
    "lock-timeout",
    "statement-timeout",
    "probe",
];

/// Applies `arguments` on top of `options`.
pub fn apply(arguments: &str, options: &mut BackfillOptions) -> Result<(), String> {
    for word in arguments.split_whitespace() {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| format!("`{word}`: write arguments as key=value, e.g. batch=5000"))?;
        let count = |value: &str| -> Result<u64, String> {
            value
                .replace('_', "")
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{key}={value}`: expected a positive whole number"))
        };
        let duration =
            |value: &str| parse_duration(value).map_err(|message| format!("`{key}`: {message}"));
        // What each batch's transaction is given.
        let timeout =
            |value: &str| parse_timeout(value).map_err(|message| format!("`{key}`: {message}"));
        match key {
            "batch" => options.batch = count(value)?,
            "min-batch" => options.min_batch = count(value)?,
            "max-batch" => options.max_batch = count(value)?,
            "target" => options.target = duration(value)?,
            "pause" => options.pause = duration(value)?,
            "max-lag" => {
                options.max_replication_lag = match value {
                    "off" => None,
                    _ => Some(duration(value)?),
                }
            }
            "max-waiters" => {
                options.max_lock_waiters = value
                    .parse()
                    .map_err(|_| format!("`{word}`: expected a whole number"))?
            }
            "lock-timeout" => options.lock_timeout = timeout(value)?,
            "statement-timeout" => options.statement_timeout = timeout(value)?,
            "probe" => options.probe = Some(Probe::parse(value)),
            _ => {
                return Err(format!(
                    "unknown backfill argument `{key}`; known: {}",
                    KEYS.join(", ")
                ));
            }
        }
    }
    if options.min_batch > options.max_batch {
        return Err(format!(
            "min-batch ({}) is larger than max-batch ({})",
            options.min_batch, options.max_batch
        ));
    }
    if options.target.is_zero() {
        return Err("target must be longer than 0".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn overrides_options() {
        let mut options = BackfillOptions::default();
        apply(
            "batch=5_000 target=200ms pause=50ms max-lag=off max-waiters=2 probe=http://app/health",
            &mut options,
        )
        .unwrap();
        assert_eq!(options.batch, 5_000);
        assert_eq!(options.target, Duration::from_millis(200));
        assert_eq!(options.pause, Duration::from_millis(50));
        assert_eq!(options.max_replication_lag, None);
        assert_eq!(options.max_lock_waiters, 2);
        assert_eq!(options.probe, Some(Probe::Http("http://app/health".into())));
        apply("", &mut options).unwrap();
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        let mut options = BackfillOptions::default();
        assert!(
            apply("batch", &mut options)
                .unwrap_err()
                .contains("key=value")
        );
        assert!(
            apply("batch=0", &mut options)
                .unwrap_err()
                .contains("positive")
        );
        assert!(
            apply("speed=fast", &mut options)
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            apply("target=soon", &mut options)
                .unwrap_err()
                .contains("duration")
        );
        assert!(
            apply("min-batch=10 max-batch=5", &mut options)
                .unwrap_err()
                .contains("larger")
        );
    }
}
