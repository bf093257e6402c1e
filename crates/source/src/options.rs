//! Section markers (`-- migrate:up transaction:false`) and the options they carry.

use std::time::Duration;

use serde::Serialize;

/// Which way a section changes the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options written on a section's marker line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionOptions {
    /// Run the section in one transaction (the default). `transaction:false` runs the statements
    /// one at a time, each committed on its own, which `CREATE INDEX CONCURRENTLY` needs.
    pub transaction: bool,
    /// `lock_timeout` for this section, overriding the run's.
    pub lock_timeout: Option<Duration>,
    /// `statement_timeout` for this section, overriding the run's.
    pub statement_timeout: Option<Duration>,
}

impl Default for SectionOptions {
    fn default() -> Self {
        SectionOptions {
            transaction: true,
            lock_timeout: None,
            statement_timeout: None,
        }
    }
}

/// The options safeshift understands, for error messages.
pub const KNOWN_OPTIONS: &str = "transaction:true|false, lock_timeout:<duration>, statement_timeout:<duration> (durations like 5s, 500ms, 2min; 0 disables)";

/// What a line of a migration file is, as far as section markers go.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MarkerLine<'a> {
    /// `-- migrate:up …` or `-- migrate:down …`, with the option text and its byte offset in the line.
    Marker {
        direction: Direction,
        options: &'a str,
        options_offset: usize,
    },
    /// Looks like a marker but is not one (`-- migrate: up`, `-- Migrate:Up`, `-- migrate:upp`).
    NearMiss,
    /// A goose annotation (`-- +goose Up`).
    Goose,
    NotMarker,
}

pub(crate) fn classify_line(line: &str) -> MarkerLine<'_> {
    let indent = line.len() - line.trim_start().len();
    let Some(after_dashes) = line[indent..].strip_prefix("--") else {
        return MarkerLine::NotMarker;
    };
    let rest = after_dashes.trim_start();
    let rest_offset = line.len() - rest.len();
    for (keyword, direction) in [
        ("migrate:up", Direction::Up),
        ("migrate:down", Direction::Down),
    ] {
        if let Some(options) = rest.strip_prefix(keyword)
            && (options.is_empty() || options.starts_with(char::is_whitespace))
        {
            return MarkerLine::Marker {
                direction,
                options,
                options_offset: rest_offset + keyword.len(),
            };
        }
    }
    if rest.starts_with("+goose") {
        return MarkerLine::Goose;
    }
    let lower = rest.to_ascii_lowercase();
    if let Some(after) = lower.strip_prefix("migrate")
        && after.trim_start().starts_with(':')
    {
        return MarkerLine::NearMiss;
    }
    MarkerLine::NotMarker
}

/// A problem with one option token: the byte offset of the token in the option text and a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OptionError {
    pub offset: usize,
    pub message: String,
}

pub(crate) fn parse_options(text: &str) -> Result<SectionOptions, OptionError> {
    let mut options = SectionOptions::default();
    let mut seen: Vec<&str> = Vec::new();
    for (offset, token) in tokens_with_offsets(text) {
        let error = |message: String| OptionError { offset, message };
        let Some((key, value)) = token.split_once(':') else {
            return Err(error(format!(
                "`{token}` is not an option; options are written key:value"
            )));
        };
        if seen.contains(&key) {
            return Err(error(format!("option `{key}` is given twice")));
        }
        seen.push(key);
        match key {
            "transaction" => {
                options.transaction = match value {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(error(format!(
                            "`transaction` takes true or false, not `{value}`"
                        )));
                    }
                }
            }
            "lock_timeout" | "statement_timeout" => {
                let duration =
                    parse_timeout(value).map_err(|message| error(format!("`{key}`: {message}")))?;
                if key == "lock_timeout" {
                    options.lock_timeout = Some(duration);
                } else {
                    options.statement_timeout = Some(duration);
                }
            }
            _ => return Err(error(format!("unknown option `{key}`"))),
        }
    }
    Ok(options)
}

/// The longest timeout PostgreSQL takes: `lock_timeout`, `statement_timeout` and their kin are
/// milliseconds in a 32-bit integer (about 24.8 days).
pub const MAX_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// Parses a timeout the database is given: a duration (see [`parse_duration`]) of 0 (no limit)
/// or from 1ms to [`MAX_TIMEOUT`].
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    check_timeout(text, parse_duration(text)?)
}

/// `duration` (read from `text`) if the database can take it as a timeout.
pub fn check_timeout(text: &str, duration: Duration) -> Result<Duration, String> {
    if duration > MAX_TIMEOUT {
        return Err(format!(
            "`{text}` is longer than PostgreSQL allows ({}ms, about 24 days); 0 means no limit",
            MAX_TIMEOUT.as_millis()
        ));
    }
    if !duration.is_zero() && duration < Duration::from_millis(1) {
        return Err(format!(
            "`{text}` is shorter than 1ms, the smallest timeout PostgreSQL can set (0 means no limit)"
        ));
    }
    Ok(duration)
}

/// Parses `5s`, `500ms`, `2min`, `1h` or `0` (which disables a timeout).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. 5s, 500ms, 2min"))
}

fn tokens_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_whitespace()
        .map(move |token| (token.as_ptr() as usize - text.as_ptr() as usize, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_stay_within_what_postgresql_takes() {
        assert_eq!(parse_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(parse_timeout("2147483647ms"), Ok(MAX_TIMEOUT));
        assert_eq!(parse_timeout("24d"), Ok(Duration::from_secs(24 * 86_400)));
        assert!(
            parse_timeout("2147483648ms")
                .unwrap_err()
                .contains("2147483647ms")
        );
        assert!(parse_timeout("30d").is_err());
        assert!(parse_timeout("18446744073709551615s").is_err());
        assert!(
            parse_timeout("0.5ms")
                .unwrap_err()
                .contains("shorter than 1ms")
        );
        assert_eq!(parse_timeout("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn recognises_markers_and_near_misses() {
        assert!(matches!(
            classify_line("-- migrate:up transaction:false"),
            MarkerLine::Marker {
                direction: Direction::Up,
                options: " transaction:false",
                options_offset: 13
            }
        ));
        assert!(matches!(
            classify_line("--migrate:down"),
            MarkerLine::Marker {
                direction: Direction::Down,
                ..
            }
        ));
        assert_eq!(classify_line("-- migrate: up"), MarkerLine::NearMiss);
        assert_eq!(classify_line("-- Migrate:Up"), MarkerLine::NearMiss);
        assert_eq!(classify_line("-- migrate:upp"), MarkerLine::NearMiss);
        assert_eq!(classify_line("-- +goose Up"), MarkerLine::Goose);
        assert_eq!(
            classify_line("-- migrate the users table"),
            MarkerLine::NotMarker
        );
        assert_eq!(
            classify_line("select 1; -- migrate:up"),
            MarkerLine::NotMarker
        );
    }

    #[test]
    fn parses_options() {
        let options =
            parse_options(" transaction:false lock_timeout:2s statement_timeout:0").unwrap();
        assert!(!options.transaction);
        assert_eq!(options.lock_timeout, Some(Duration::from_secs(2)));
        assert_eq!(options.statement_timeout, Some(Duration::ZERO));
        assert_eq!(parse_options("").unwrap(), SectionOptions::default());
    }

    #[test]
    fn rejects_bad_options_with_their_offset() {
        let error = parse_options(" transaction:flase").unwrap_err();
        assert_eq!(error.offset, 1);
        assert!(error.message.contains("flase"));
        assert!(
            parse_options(" retries:3")
                .unwrap_err()
                .message
                .contains("unknown option `retries`")
        );
        assert!(parse_options(" nontransactional").is_err());
        assert!(parse_options(" transaction:false transaction:true").is_err());
        assert!(parse_options(" lock_timeout:soon").is_err());
    }
}
