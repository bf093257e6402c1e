//! Drawing the online operations' events: a progress bar (`indicatif`) on a terminal, a line
//! every few seconds otherwise, and one summary line at the end.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use safeshift_online::{BackfillSummary, EventSink, OnlineEvent};

use crate::output::{CYAN, YELLOW, err, styled};

/// How often a line of progress is written when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Draws events on stderr.
pub struct Renderer {
    quiet: bool,
    terminal: bool,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
}

impl Renderer {
    /// A sink that draws on stderr (nothing but failures' context when `quiet`).
    pub fn sink(quiet: bool) -> EventSink {
        let renderer = Mutex::new(Renderer {
            quiet,
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            last_line: None,
        });
        Arc::new(move |event| {
            renderer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .event(event)
        })
    }

    fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.suspend(|| err(&line)),
            None => err(line),
        }
    }

    /// A line of progress when no bar is drawn, at most every few seconds.
    fn plain_progress(&mut self, line: impl FnOnce() -> String) {
        if self.terminal {
            return;
        }
        if self.last_line.is_none_or(|at| at.elapsed() >= PLAIN_EVERY) {
            self.last_line = Some(Instant::now());
            err(line());
        }
    }

    fn bar(&mut self, length: u64, template: &str) -> &ProgressBar {
        self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        })
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn event(&mut self, event: &OnlineEvent) {
        if self.quiet {
            return;
        }
        match event {
            OnlineEvent::WaitingForTransactions {
                statement,
                blockers,
                waited,
            } => {
                let first = &blockers[0];
                let holding = if first.granted { "holds" } else { "waits for" };
                self.say(format!(
                    "    {} pid {} ({}, transaction open {}s) {holding} {} on {}{}; waiting {}s so far before `{statement}`",
                    styled(YELLOW, "waiting:"),
                    first.pid,
                    first.state,
                    first.transaction_age.as_secs(),
                    first.mode,
                    first.table,
                    match blockers.len() {
                        1 => String::new(),
                        n => format!(" (and {} more)", n - 1),
                    },
                    waited.as_secs()
                ));
            }
            OnlineEvent::LockRetry {
                statement,
                attempt,
                delay,
                error,
            } => self.say(format!(
                "    {} `{statement}`: {error}; attempt {attempt} in {}ms",
                styled(YELLOW, "lock busy:"),
                delay.as_millis()
            )),
            OnlineEvent::BackfillStarted {
                name,
                table,
                key,
                rows_total,
                resumed_from_rows,
            } => {
                let resumed = match resumed_from_rows {
                    Some(rows) => format!(", resuming after {} rows", count(*rows)),
                    None => String::new(),
                };
                self.say(format!(
                    "    {} {table} in batches on ({}), ~{} rows{resumed} [{name}]",
                    styled(CYAN, "backfill"),
                    key.join(", "),
                    count(*rows_total)
                ));
                if self.terminal {
                    let bar = self.bar(
                        *rows_total,
                        "    {bar:30} {human_pos}/{human_len} rows  {msg}",
                    );
                    bar.set_position(resumed_from_rows.unwrap_or(0));
                }
            }
            OnlineEvent::BackfillProgress(progress) => {
                let speed = format!(
                    "{}/s, ETA {}, batch {}",
                    count(progress.rows_per_second as u64),
                    progress
                        .eta
                        .map(
                            |eta| humantime::format_duration(Duration::from_secs(eta.as_secs()))
                                .to_string()
                        )
                        .unwrap_or_else(|| "?".into()),
                    count(progress.batch_size)
                );
                if let Some(bar) = &self.bar {
                    bar.set_length(progress.rows_total);
                    bar.set_position(progress.rows_scanned);
                    bar.set_message(speed);
                } else {
                    self.plain_progress(|| {
                        format!(
                            "    {}/{} rows ({} updated), {speed}",
                            count(progress.rows_scanned),
                            count(progress.rows_total),
                            count(progress.rows_updated)
                        )
                    });
                }
            }
            OnlineEvent::BackfillThrottled { reason, .. } => {
                self.say(format!("    {} {reason}", styled(YELLOW, "paused:")))
            }
            OnlineEvent::BackfillUnthrottled { paused, .. } => {
                self.say(format!("    resumed after {:.1}s", paused.as_secs_f64()))
            }
            OnlineEvent::BackfillBatchRetry {
                error, batch_size, ..
            } => self.say(format!(
                "    {} {error}; retrying with {} rows",
                styled(YELLOW, "batch failed:"),
                count(*batch_size)
            )),
            OnlineEvent::BackfillFinished(summary) => {
                self.finish_bar();
                self.say(format!("    {}", summary_line(summary)));
            }
            OnlineEvent::IndexProgress(progress) => {
                let unit = if progress.total > 0 {
                    format!("{}/{}", count(progress.done), count(progress.total))
                } else {
                    String::new()
                };
                if self.terminal {
                    let bar = self.bar(progress.total, "    {spinner} index {prefix}: {msg}");
                    bar.set_prefix(progress.index.clone());
                    bar.set_message(format!("{} {unit}", progress.phase));
                } else {
                    self.plain_progress(|| {
                        format!(
                            "    index {}: {} {unit} ({}s)",
                            progress.index,
                            progress.phase,
                            progress.elapsed.as_secs()
                        )
                    });
                }
            }
            OnlineEvent::IndexRetry {
                index,
                attempt,
                error,
            } => {
                self.finish_bar();
                self.say(format!(
                    "    {} {index}: {error}; dropping the INVALID index and building again (attempt {attempt})",
                    styled(YELLOW, "index build failed:")
                ));
            }
            OnlineEvent::IndexBuilt { index, duration } => {
                self.finish_bar();
                if *duration >= Duration::from_secs(1) {
                    self.say(format!(
                        "    built index {index} concurrently in {:.1}s",
                        duration.as_secs_f64()
                    ));
                }
            }
            OnlineEvent::IndexCleanedUp { index } => {
                self.finish_bar();
                self.say(format!(
                    "    dropped the INVALID index {index} the failed build left"
                ));
            }
            OnlineEvent::SchemaChangeStarted { table, tool } => self.say(format!(
                "    online schema change of {table} with {tool}: copying in throttled chunks while writes go on"
            )),
            OnlineEvent::SchemaChangeProgress {
                table,
                percent,
                remaining,
            } => {
                if self.terminal {
                    let bar = self.bar(1000, "    {spinner} {prefix} [{bar:30}] {msg}");
                    bar.set_prefix(format!("copying {table}"));
                    bar.set_position((percent * 10.0) as u64);
                    bar.set_message(format!("{percent:.0} %, {remaining} remain"));
                } else {
                    self.plain_progress(|| {
                        format!("    copying {table}: {percent:.0} %, {remaining} remain")
                    });
                }
            }
            OnlineEvent::SchemaChangeThrottled { reason, .. } => {
                self.say(format!("    {} {reason}", styled(YELLOW, "paused:")))
            }
            OnlineEvent::SchemaChangeFinished { table, duration } => {
                self.finish_bar();
                self.say(format!(
                    "    swapped in the new {table} after an online copy of {:.1}s",
                    duration.as_secs_f64()
                ));
            }
        }
    }
}

/// `12,345,678`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// One line that says how a backfill went.
pub fn summary_line(summary: &BackfillSummary) -> String {
    if summary.already_finished {
        return format!(
            "backfill {} had already finished ({} rows visited, {} updated)",
            summary.name,
            count(summary.rows_scanned),
            count(summary.rows_updated)
        );
    }
    let mut details = vec![
        format!("{} rows/s", count(summary.rows_per_second as u64)),
        format!("{} batches", count(summary.batches)),
    ];
    if summary.resumed_from_rows > 0 {
        details.push(format!(
            "resumed after {} rows",
            count(summary.resumed_from_rows)
        ));
    }
    if summary.batch_retries > 0 {
        details.push(format!("{} batches retried", summary.batch_retries));
    }
    if !summary.throttled.is_zero() {
        details.push(format!(
            "paused {:.1}s: {}",
            summary.throttled.as_secs_f64(),
            summary.throttle_reasons.join("; ")
        ));
    }
    format!(
        "backfilled {}: {} rows visited, {} updated in {:.1}s ({})",
        summary.table,
        count(summary.rows_scanned),
        count(summary.rows_updated),
        summary.duration.as_secs_f64(),
        details.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(2_000_000), "2,000,000");
    }
}
