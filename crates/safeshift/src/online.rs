//! The `[online]` section of safeshift.toml: lock-safe DDL, backfills, concurrent index retries.

use std::time::Duration;

use serde::Deserialize;

use safeshift_online::{BackfillOptions, LockSafety, OnlineSettings, Probe};
use safeshift_source::{parse_duration, parse_timeout};

use crate::config::ProjectError;

/// `[online]` in safeshift.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineSection {
    /// lock_timeout of each attempt of a statement whose lock blocks reads or writes.
    pub lock_timeout: Option<String>,
    /// Attempts per such statement.
    pub lock_attempts: Option<u32>,
    /// The most time all attempts of one statement may spend queued for their lock.
    pub max_stall: Option<String>,
    /// How long to wait for long transactions on a table before queueing behind them [default:
    /// the statement's lock_timeout].
    pub wait_for_transactions: Option<String>,
    /// Retries of a failed CREATE INDEX CONCURRENTLY.
    pub index_retries: Option<u32>,
    /// Rows in a backfill's first batch.
    pub backfill_batch: Option<u64>,
    /// The batch duration backfills adapt their batch size to.
    pub backfill_target: Option<String>,
    /// Sleep between backfill batches.
    pub backfill_pause: Option<String>,
    /// Pause backfills while a standby replays further behind than this (`off` to ignore).
    pub max_replication_lag: Option<String>,
    /// Pause backfills while more sessions than this wait for a lock on the table.
    pub max_lock_waiters: Option<u32>,
    /// Pause backfills while this query returns true or a positive number, or this URL answers
    /// anything but 2xx.
    pub probe: Option<String>,
}

/// Resolves the section over the defaults; `config_error` names the key in errors.
pub fn settings(
    section: &OnlineSection,
    checkpoint_schema: &str,
    config_error: &dyn Fn(&str, String) -> ProjectError,
) -> Result<OnlineSettings, ProjectError> {
    let parsed = |parse: fn(&str) -> Result<Duration, String>,
                  value: &Option<String>,
                  key: &str|
     -> Result<Option<Duration>, ProjectError> {
        value
            .as_deref()
            .map(|v| parse(v).map_err(|m| config_error(&format!("online.{key}"), m)))
            .transpose()
    };
    let duration = |value: &Option<String>, key: &str| parsed(parse_duration, value, key);
    // What the database is given as a lock_timeout.
    let timeout = |value: &Option<String>, key: &str| parsed(parse_timeout, value, key);
    let lock_defaults = LockSafety::default();
    let lock_safety = LockSafety {
        lock_timeout: timeout(&section.lock_timeout, "lock_timeout")?
            .unwrap_or(lock_defaults.lock_timeout),
        attempts: section
            .lock_attempts
            .unwrap_or(lock_defaults.attempts)
            .max(1),
        max_stall: duration(&section.max_stall, "max_stall")?.unwrap_or(lock_defaults.max_stall),
        wait_for_transactions: timeout(&section.wait_for_transactions, "wait_for_transactions")?
            .or(lock_defaults.wait_for_transactions),
        ..lock_defaults
    };
    if lock_safety.lock_timeout.is_zero() {
        return Err(config_error(
            "online.lock_timeout",
            "0 would let a statement queue forever; give a short duration such as 100ms".into(),
        ));
    }
    let backfill_defaults = BackfillOptions::default();
    let backfill = BackfillOptions {
        batch: section
            .backfill_batch
            .unwrap_or(backfill_defaults.batch)
            .max(1),
        target: duration(&section.backfill_target, "backfill_target")?
            .filter(|d| !d.is_zero())
            .unwrap_or(backfill_defaults.target),
        pause: duration(&section.backfill_pause, "backfill_pause")?
            .unwrap_or(backfill_defaults.pause),
        max_replication_lag: match section.max_replication_lag.as_deref() {
            Some("off") => None,
            Some(_) => duration(&section.max_replication_lag, "max_replication_lag")?,
            None => backfill_defaults.max_replication_lag,
        },
        max_lock_waiters: section
            .max_lock_waiters
            .unwrap_or(backfill_defaults.max_lock_waiters),
        probe: section.probe.as_deref().map(Probe::parse),
        ..backfill_defaults
    };
    Ok(OnlineSettings {
        lock_safety,
        backfill,
        index_retries: section.index_retries.unwrap_or(3),
        checkpoint_schema: checkpoint_schema.to_owned(),
    })
}
