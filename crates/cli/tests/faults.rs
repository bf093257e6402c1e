//! Fault injection: runners killed with SIGKILL at random points, drawn from a fixed seed, of a
//! run that mixes transactional migrations with non-transactional ones holding every kind of
//! statement that commits on its own: `CREATE`/`DROP INDEX CONCURRENTLY` (a short build on a
//! 150k-row table, and an unnamed one), `REINDEX CONCURRENTLY`, `ALTER TYPE … ADD VALUE`,
//! `VACUUM`, `DETACH PARTITION CONCURRENTLY` and a batched backfill. After every kill:
//!
//! * the history tells the truth about what the killed runner committed (a ledger row written by
//!   every few statements shows it);
//! * one `up` finishes the job;
//! * the result equals a clean run's: the same schema (`safeshift schema --json`), every data
//!   statement applied exactly once (the backfill adds to its column, so twice would show), no
//!   lock left, and every history row settled.
//!
//! The seed and the number of trials are fixed, so a failure repeats; `SAFESHIFT_FAULT_SEED` and
//! `SAFESHIFT_FAULT_TRIALS` (trials per test) run a different or heavier sweep.

mod common;

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{Project, advisory_locks, exit, live_leases, pg_rows, pg_value, wait_until};
use safeshift_testkit::TestDatabase;

/// Generous: a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);
const DEFAULT_SEED: u64 = 0x5afe_0011;
/// The lease (through PgBouncer) lasts this long without a heartbeat.
const LEASE: &str = "2s";

/// Where the test reaches the database and how the run lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    DirectAdvisory,
    PgBouncerLease,
}

/// When a runner is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// Anywhere in the run: a uniform delay over a clean run's duration.
    Anywhere,
    /// While the concurrent build of `big_n` runs: a uniform delay over its build time after it
    /// shows in `pg_stat_activity` (the build takes a few hundred milliseconds).
    DuringTheIndexBuild,
}

/// The migrations, and the statements of each that write a ledger row `(version, statement)`.
const MIGRATIONS: &[(&str, bool, &str, &[i64])] = &[
    (
        "0001_tables",
        true,
        "CREATE TABLE ledger (version text NOT NULL, statement int NOT NULL);\n\
         CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL, note text NOT NULL);\n\
         INSERT INTO big SELECT g, g % 1000, md5(g::text) FROM generate_series(1, 150000) g;\n\
         CREATE INDEX big_note ON big (note);\n\
         CREATE TABLE small (id bigint PRIMARY KEY, n int NOT NULL);\n\
         INSERT INTO small SELECT g, g FROM generate_series(1, 20000) g;\n\
         CREATE TYPE mood AS ENUM ('ok');\n\
         CREATE TABLE parts (id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);\n\
         CREATE TABLE parts_2020 PARTITION OF parts FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');\n\
         CREATE TABLE parts_2021 PARTITION OF parts FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');\n\
         INSERT INTO ledger VALUES ('0001', 11);",
        &[11],
    ),
    (
        "0002_indexes",
        false,
        "CREATE INDEX CONCURRENTLY big_n ON big (n, id);\n\
         INSERT INTO ledger VALUES ('0002', 2);\n\
         ALTER TYPE mood ADD VALUE 'great';\n\
         INSERT INTO ledger VALUES ('0002', 4);\n\
         DROP INDEX CONCURRENTLY big_note;\n\
         INSERT INTO ledger VALUES ('0002', 6);\n\
         REINDEX INDEX CONCURRENTLY big_n;\n\
         INSERT INTO ledger VALUES ('0002', 8);\n\
         VACUUM big;\n\
         INSERT INTO ledger VALUES ('0002', 10);",
        &[2, 4, 6, 8, 10],
    ),
    (
        "0003_backfill",
        false,
        "ALTER TABLE small ADD COLUMN n2 int;\n\
         -- safeshift:backfill batch=2000 max-batch=2000\n\
         UPDATE small SET n2 = coalesce(n2, 0) + 2 * n;\n\
         INSERT INTO ledger VALUES ('0003', 3);\n\
         ALTER TABLE parts DETACH PARTITION parts_2021 CONCURRENTLY;\n\
         INSERT INTO ledger VALUES ('0003', 5);\n\
         CREATE UNIQUE INDEX CONCURRENTLY ON small (n2);\n\
         INSERT INTO ledger VALUES ('0003', 7);",
        &[3, 5, 7],
    ),
    (
        "0004_flag",
        true,
        "ALTER TABLE big ADD COLUMN flag boolean;\n\
         INSERT INTO ledger VALUES ('0004', 2);",
        &[2],
    ),
];

fn write_project(project: &Project) {
    for (name, transactional, up, _) in MIGRATIONS {
        let options = if *transactional {
            ""
        } else {
            " transaction:false"
        };
        project.write(
            &format!("{name}.sql"),
            format!("-- migrate:up{options}\n{up}\n\n-- migrate:down\nSELECT 1;\n"),
        );
    }
}

fn project(db: &TestDatabase, route: Route) -> Project {
    let (project, mode) = match route {
        Route::DirectAdvisory => (Project::postgres(db.url()), "advisory"),
        Route::PgBouncerLease => (Project::postgres(db.pgbouncer_url()), "lease"),
    };
    std::fs::write(
        project.path().join("safeshift.toml"),
        format!("[lock]\nmode = \"{mode}\"\nlease = \"{LEASE}\"\n"),
    )
    .unwrap();
    write_project(&project);
    project
}

/// What a finished run leaves: the schema, the ledger and the backfilled sum.
#[derive(Debug, PartialEq)]
struct Outcome {
    schema: serde_json::Value,
    ledger: Vec<Vec<Option<String>>>,
    backfilled: String,
}

fn outcome(project: &Project, client: &mut postgres::Client) -> Outcome {
    let schema = project.run(&["schema", "--json"]);
    schema.expect(exit::OK);
    Outcome {
        schema: schema.json(),
        ledger: pg_rows(
            client,
            "SELECT version, statement, count(*) FROM ledger GROUP BY 1, 2 ORDER BY 1, 2",
        ),
        backfilled: pg_value(client, "SELECT sum(n2) - 2 * sum(n) FROM small"),
    }
}

/// A clean run's outcome and duration.
fn clean_run(route: Route) -> (Outcome, Duration) {
    let db = TestDatabase::new();
    let project = project(&db, route);
    let started = Instant::now();
    project.run(&["up"]).expect(exit::OK);
    let duration = started.elapsed();
    let mut client = db.client();
    let clean = outcome(&project, &mut client);
    assert_eq!(clean.backfilled, "0");
    (clean, duration)
}

/// `(version, status, transactional, applied, total, message)` of every history row.
type HistoryRow = (String, String, bool, i64, i64, String);

fn history(client: &mut postgres::Client) -> Vec<HistoryRow> {
    if pg_value(client, "SELECT to_regclass('safeshift.history') IS NULL") == "t" {
        return Vec::new();
    }
    pg_rows(
        client,
        "SELECT version, status, transactional, statements_applied, coalesce(statements_total, 0), \
         coalesce(error_message, '') FROM safeshift.history WHERE kind = 'migrate' ORDER BY id",
    )
    .into_iter()
    .map(|row| {
        (
            row[0].clone().unwrap(),
            row[1].clone().unwrap(),
            row[2].as_deref() == Some("t"),
            row[3].as_deref().unwrap().parse().unwrap(),
            row[4].as_deref().unwrap().parse().unwrap(),
            row[5].clone().unwrap(),
        )
    })
    .collect()
}

/// The ledger rows present, as `version → statements`.
fn ledger(client: &mut postgres::Client) -> BTreeMap<String, Vec<i64>> {
    let mut ledger: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    if pg_value(client, "SELECT to_regclass('public.ledger') IS NULL") == "t" {
        return ledger;
    }
    for row in pg_rows(
        client,
        "SELECT version, statement FROM ledger ORDER BY 1, 2",
    ) {
        ledger
            .entry(row[0].clone().unwrap())
            .or_default()
            .push(row[1].as_deref().unwrap().parse().unwrap());
    }
    ledger
}

/// Right after the kill, before anything settles it: the history says exactly what the killed
/// runner committed. A transactional migration is there with its record or not at all; a
/// non-transactional one is `running` with the statements it recorded, and a ledger statement
/// counts as applied if and only if its row is there.
fn assert_history_is_true_after_kill(client: &mut postgres::Client, trial: &str) {
    // One snapshot for both: through PgBouncer the killed runner's statement may still commit.
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .unwrap();
    let history = history(client);
    let ledger = ledger(client);
    client.batch_execute("COMMIT").unwrap();
    let running: Vec<&HistoryRow> = history.iter().filter(|row| row.1 == "running").collect();
    assert!(running.len() <= 1, "{trial}: {history:?}");
    for (name, transactional, _, markers) in MIGRATIONS {
        let version = &name[..4];
        let rows: Vec<&HistoryRow> = history.iter().filter(|row| row.0 == version).collect();
        let written = ledger.get(version).cloned().unwrap_or_default();
        let expected: Vec<i64> = match rows.as_slice() {
            [] => Vec::new(),
            [(_, status, recorded_transactional, applied, total, _)] => {
                assert_eq!(
                    recorded_transactional, transactional,
                    "{trial}: {version}: {history:?}"
                );
                match status.as_str() {
                    "succeeded" => {
                        if !transactional {
                            assert_eq!(applied, total, "{trial}: {version}: {history:?}");
                        }
                        markers.to_vec()
                    }
                    "running" => {
                        assert!(!transactional, "{trial}: {version}: {history:?}");
                        markers.iter().copied().filter(|m| m <= applied).collect()
                    }
                    other => panic!("{trial}: {version} is {other} after a kill: {history:?}"),
                }
            }
            more => panic!("{trial}: {version} has several rows after one kill: {more:?}"),
        };
        assert_eq!(
            written, expected,
            "{trial}: the ledger of {version} does not match its history: {history:?}"
        );
    }
}

/// After the rerun: every version's rows are interrupted attempts settled as failed, then one
/// success with every statement recorded; nothing is left running.
fn assert_history_is_settled(client: &mut postgres::Client, trial: &str) {
    let history = history(client);
    for (name, transactional, _, _) in MIGRATIONS {
        let version = &name[..4];
        let rows: Vec<&HistoryRow> = history.iter().filter(|row| row.0 == version).collect();
        let (last, earlier) = rows
            .split_last()
            .unwrap_or_else(|| panic!("{trial}: {version} has no history: {history:?}"));
        assert_eq!(last.1, "succeeded", "{trial}: {version}: {history:?}");
        if !transactional {
            assert_eq!(last.3, last.4, "{trial}: {version}: {history:?}");
        }
        for row in earlier {
            assert_eq!(row.1, "failed", "{trial}: {version}: {history:?}");
            assert!(
                row.5.starts_with("interrupted"),
                "{trial}: {version}'s earlier attempt failed for another reason: {history:?}"
            );
        }
    }
    // Every statement recorded as applied without running again has its event, naming the
    // statement the killed attempt stopped at.
    if pg_value(
        client,
        "SELECT to_regclass('safeshift.history_events') IS NOT NULL",
    ) == "t"
    {
        for row in pg_rows(
            client,
            "SELECT summary FROM safeshift.history_events WHERE kind = 'reconcile'",
        ) {
            let summary = row[0].clone().unwrap();
            let stopped_at = history.iter().any(|(version, status, _, applied, _, _)| {
                summary
                    .strip_prefix(&format!("{version} statement {}", applied + 1))
                    .is_some_and(|rest| rest.starts_with([' ', ':']))
                    && status == "failed"
            });
            assert!(
                stopped_at,
                "{trial}: event `{summary}` names no statement an attempt stopped at: {history:?}"
            );
        }
    }
}

/// Kills the runner (if it is still running) and reaps it; returns whether it was killed.
fn kill_if_running(mut child: Child) -> bool {
    let killed = child.try_wait().expect("poll safeshift").is_none();
    if killed {
        child.kill().expect("SIGKILL safeshift");
    }
    child.wait().expect("reap safeshift");
    killed
}

/// One trial: a fresh database, `up` killed at `moment`, the history checked, `up` again, the
/// outcome compared with the clean run's.
/// How a trial's runner ended.
enum Ending {
    Killed,
    /// It finished (after this long) before the kill was due: the trial proves nothing.
    FinishedFirst(Duration),
}

fn trial(
    route: Route,
    moment: Moment,
    fraction: f64,
    clean: &Outcome,
    duration: Duration,
    name: &str,
) -> Ending {
    let db = TestDatabase::new();
    let project = project(&db, route);
    let mut client = db.client();
    let runner = project
        .command(&["up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start safeshift");
    let started = Instant::now();
    let delay = match moment {
        Moment::Anywhere => duration.mul_f64(fraction),
        Moment::DuringTheIndexBuild => {
            wait_until("the concurrent build of big_n runs", DEADLINE, || {
                pg_value(
                    &mut client,
                    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() \
                     AND state = 'active' AND query LIKE 'CREATE INDEX CONCURRENTLY big_n%'",
                ) != "0"
            });
            Duration::from_millis((fraction * 250.0) as u64)
        }
    };
    let mut runner = runner;
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if runner.try_wait().expect("poll safeshift").is_some() {
            return Ending::FinishedFirst(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let trial = format!("{name} (killed after {:?})", started.elapsed());
    if !kill_if_running(runner) {
        return Ending::FinishedFirst(started.elapsed());
    }
    assert_history_is_true_after_kill(&mut client, &trial);

    let rerun = project.run(&["up"]);
    assert_eq!(
        rerun.code,
        exit::OK,
        "{trial}: the run after the kill failed\n--- stdout\n{}\n--- stderr\n{}",
        rerun.stdout,
        rerun.stderr
    );
    assert_history_is_settled(&mut client, &trial);
    let after = outcome(&project, &mut client);
    assert_eq!(
        after.ledger, clean.ledger,
        "{trial}: a statement ran twice or never\n{}",
        rerun.stdout
    );
    assert_eq!(
        after.backfilled, "0",
        "{trial}: the backfill updated rows twice or never"
    );
    assert_eq!(
        after.schema, clean.schema,
        "{trial}: the schema differs from a clean run's\n{}",
        rerun.stdout
    );
    project.run(&["status", "--exit-code"]).expect(exit::OK);
    wait_until("no advisory lock is left", DEADLINE, || {
        advisory_locks(&mut client) == 0
    });
    assert_eq!(live_leases(&mut client), 0, "{trial}: a lease is left");
    Ending::Killed
}

fn seed() -> u64 {
    std::env::var("SAFESHIFT_FAULT_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

fn trials(default: usize) -> usize {
    std::env::var("SAFESHIFT_FAULT_TRIALS")
        .ok()
        .and_then(|trials| trials.parse().ok())
        .unwrap_or(default)
}

fn kill_and_resume(route: Route, moment: Moment, default_trials: usize, salt: u64) {
    let (clean, mut duration) = clean_run(route);
    let seed = seed() ^ salt;
    let mut random = fastrand::Rng::with_seed(seed);
    let trials = trials(default_trials);
    for number in 1..=trials {
        // Where in the run the kill falls; the runs' own length is learnt as they go, so a
        // kill due after a quicker run's end is tried again earlier instead of proving nothing.
        let fraction = random.f64();
        let name = format!("{route:?} {moment:?} trial {number}/{trials}, seed {seed}");
        let mut tries = 0;
        while let Ending::FinishedFirst(took) =
            trial(route, moment, fraction, &clean, duration, &name)
        {
            tries += 1;
            assert!(
                tries < 5,
                "{name}: the runner kept finishing before the kill"
            );
            duration = duration.min(took).mul_f64(0.9);
        }
    }
}

#[test]
fn runners_killed_anywhere_directly_with_the_advisory_lock_resume_to_a_clean_result() {
    kill_and_resume(Route::DirectAdvisory, Moment::Anywhere, 8, 1);
}

#[test]
fn runners_killed_during_a_short_concurrent_index_build_resume_to_a_clean_result() {
    kill_and_resume(Route::DirectAdvisory, Moment::DuringTheIndexBuild, 10, 2);
}

#[test]
fn runners_killed_anywhere_through_pgbouncer_with_the_lease_lock_resume_to_a_clean_result() {
    kill_and_resume(Route::PgBouncerLease, Moment::Anywhere, 5, 3);
}
