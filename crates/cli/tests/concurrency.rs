//! Many runners at once on one PostgreSQL database: the run lock serialises them, directly
//! (advisory lock) and through PgBouncer in transaction pooling (lease lock); every migration
//! is applied exactly once, every runner exits 0, and the lock is free afterwards. A runner that
//! has to wait says who holds the lock, gives up after `--lock-wait` with exit 5, and `status`
//! never waits for the lock.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    Project, Run, advisory_locks, backend_running, exit, live_leases, pg_history, pg_rows,
    pg_value, spawn_piped,
};
use safeshift_testkit::TestDatabase;

const RUNNERS: usize = 8;
const MIGRATIONS: usize = 30;
/// Generous: a loaded 2-core machine runs 8 runners, a PostgreSQL server and PgBouncer.
const DEADLINE: Duration = Duration::from_secs(90);

/// How a test reaches the database and holds the run lock.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// Straight to PostgreSQL, with the default session advisory lock.
    DirectAdvisory,
    /// Through the transaction-pooling PgBouncer, with the lease lock.
    PgBouncerLease,
}

impl Route {
    fn project(self, db: &TestDatabase) -> Project {
        match self {
            Route::DirectAdvisory => Project::postgres(db.url()),
            Route::PgBouncerLease => Project::postgres(db.pgbouncer_url()),
        }
    }

    fn lock_mode(self) -> &'static str {
        match self {
            Route::DirectAdvisory => "advisory",
            Route::PgBouncerLease => "lease",
        }
    }
}

/// `MIGRATIONS` migrations: the first creates `ledger`, and each one records its version there
/// (so a migration applied twice shows as two rows) and creates a table of its own; every third
/// one sleeps a little so the runners overlap.
fn write_ledger_migrations(project: &Project) {
    project.migration(
        "0001_ledger.sql",
        "CREATE TABLE ledger (version text NOT NULL);\nINSERT INTO ledger VALUES ('0001');",
        "DROP TABLE ledger;",
    );
    for number in 2..=MIGRATIONS {
        let version = format!("{number:04}");
        let sleep = if number % 3 == 0 {
            "SELECT pg_sleep(0.05);\n"
        } else {
            ""
        };
        project.migration(
            &format!("{version}_table_{number}.sql"),
            &format!("CREATE TABLE t_{version} (id int);\n{sleep}INSERT INTO ledger VALUES ('{version}');"),
            &format!("DROP TABLE t_{version};"),
        );
    }
}

fn finish(child: Child) -> Run {
    common::finish_within(child, DEADLINE)
}

/// Polls `condition` until it holds, failing the test with `what` past `DEADLINE`.
fn wait_until(what: &str, condition: impl FnMut() -> bool) {
    common::wait_until(what, DEADLINE, condition)
}

/// Whether `text` names the process `pid` the way safeshift describes a lock holder
/// (`user@host pid N`).
fn names_process(text: &str, pid: u32) -> bool {
    let needle = format!(" pid {pid}");
    text.match_indices(&needle)
        .any(|(at, _)| !text[at + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

fn migrate_row(version: &str) -> (String, String, String, String) {
    (
        version.into(),
        "up".into(),
        "succeeded".into(),
        "migrate".into(),
    )
}

fn eight_runners_apply_every_migration_once(route: Route) {
    let db = TestDatabase::new();
    let project = route.project(&db);
    write_ledger_migrations(&project);
    // Some runners stop at a version of their own, so the work is split between several lock
    // holders in whatever order they win; the last one applies everything that is left.
    let targets: Vec<Option<String>> = (0..RUNNERS)
        .map(|runner| {
            (runner + 1 < RUNNERS).then(|| format!("{:04}", (runner + 1) * MIGRATIONS / RUNNERS))
        })
        .collect();
    let children: Vec<(Option<String>, Child)> = targets
        .into_iter()
        .map(|target| {
            let mut args = vec![
                "--lock-mode",
                route.lock_mode(),
                "--lock-wait",
                "120s",
                "up",
            ];
            if let Some(target) = &target {
                args.extend(["--to", target.as_str()]);
            }
            let child = spawn_piped(&project, &args);
            (target, child)
        })
        .collect();
    let runs: Vec<(Option<String>, Run)> = children
        .into_iter()
        .map(|(target, child)| (target, finish(child)))
        .collect();
    for (target, run) in &runs {
        assert_eq!(
            run.code,
            exit::OK,
            "runner with --to {target:?} failed\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout,
            run.stderr
        );
    }

    let mut client = db.client();
    let expected: Vec<_> = (1..=MIGRATIONS)
        .map(|n| migrate_row(&format!("{n:04}")))
        .collect();
    assert_eq!(
        pg_history(&mut client),
        expected,
        "one succeeded up row per version, in order, and nothing else"
    );
    let ledger = pg_rows(
        &mut client,
        "SELECT version, count(*) FROM ledger GROUP BY version ORDER BY version",
    );
    let expected_ledger: Vec<Vec<Option<String>>> = (1..=MIGRATIONS)
        .map(|n| vec![Some(format!("{n:04}")), Some("1".to_owned())])
        .collect();
    assert_eq!(
        ledger, expected_ledger,
        "every migration's statements ran exactly once"
    );
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%'"
        ),
        (MIGRATIONS - 1).to_string()
    );
    // The lock serialised the runs: each run's rows are one unbroken stretch of the log.
    let run_ids: Vec<String> = pg_rows(
        &mut client,
        "SELECT run_id FROM safeshift.history ORDER BY id",
    )
    .into_iter()
    .map(|row| row[0].clone().unwrap())
    .collect();
    let mut seen = Vec::new();
    for (index, run_id) in run_ids.iter().enumerate() {
        if index > 0 && run_ids[index - 1] == *run_id {
            continue;
        }
        assert!(
            !seen.contains(run_id),
            "run {run_id} wrote rows before and after another run: {run_ids:?}"
        );
        seen.push(run_id.clone());
    }
    wait_until("no advisory lock is held", || {
        advisory_locks(&mut client) == 0
    });
    assert_eq!(live_leases(&mut client), 0, "the lease was released");
    if matches!(route, Route::PgBouncerLease) {
        assert!(
            pg_value(&mut client, "SELECT count(*) FROM safeshift.history_lock") == "0",
            "a finished run deletes its lease row"
        );
    }
}

#[test]
fn eight_runners_at_once_directly_with_the_advisory_lock() {
    eight_runners_apply_every_migration_once(Route::DirectAdvisory);
}

#[test]
fn eight_runners_at_once_through_pgbouncer_with_the_lease_lock() {
    eight_runners_apply_every_migration_once(Route::PgBouncerLease);
}

/// Reads a child's stdout line by line on a thread.
fn stdout_lines(child: &mut Child) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    (receiver, reader)
}

fn a_held_lock_is_named_and_does_not_block_status(route: Route) {
    let db = TestDatabase::new();
    let project = route.project(&db);
    let mut client = db.client();
    // The first migration waits until the test opens the gate, holding the run lock meanwhile.
    client
        .batch_execute("CREATE TABLE gate (open boolean NOT NULL); INSERT INTO gate VALUES (false)")
        .unwrap();
    project
        .migration(
            "0001_wait_for_gate.sql",
            "DO $$ BEGIN WHILE NOT (SELECT open FROM gate) LOOP PERFORM pg_sleep(0.02); END LOOP; END $$;",
            "SELECT 1;",
        )
        .migration("0002_after_gate.sql", "CREATE TABLE after_gate (id int);", "DROP TABLE after_gate;");
    let lock_mode = ["--lock-mode", route.lock_mode()];
    let holder = spawn_piped(&project, &[&lock_mode[..], &["up"]].concat());
    let holder_pid = holder.id();
    wait_until("the first runner is inside its migration", || {
        backend_running(&mut client, "FROM gate").is_some()
    });

    // `status` reads the history without the lock. The migration in flight is still pending
    // (its history row is written when its transaction commits), and the run in progress is
    // named from the lock, which status looks at without taking.
    let status = finish(spawn_piped(
        &project,
        &[&lock_mode[..], &["status", "--json"]].concat(),
    ));
    status.expect(exit::OK);
    let status = status.json();
    assert_eq!(status["entries"][0]["version"], "0001");
    assert_eq!(status["entries"][0]["state"], "pending", "{status:#}");
    assert_eq!(status["entries"][1]["state"], "pending", "{status:#}");
    let named = status["run_in_progress"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        names_process(named, holder_pid),
        "the holder (pid {holder_pid}) is named: {status:#}"
    );
    let human = finish(spawn_piped(
        &project,
        &[&lock_mode[..], &["status"]].concat(),
    ));
    human.expect(exit::OK);
    assert!(
        human.stdout.contains("a run is in progress"),
        "{}",
        human.stdout
    );

    // A runner with a short --lock-wait gives up with exit 5 and names the holder.
    let impatient = finish(spawn_piped(
        &project,
        &[&lock_mode[..], &["--lock-wait", "1s", "up"]].concat(),
    ));
    impatient.expect(exit::LOCK);
    assert!(
        impatient.stderr.contains("waiting for the run lock"),
        "{}",
        impatient.stderr
    );
    assert!(
        names_process(&impatient.stderr, holder_pid),
        "the error names the holder (pid {holder_pid}):\n{}",
        impatient.stderr
    );

    // A patient runner says who holds the lock while it waits, then carries on.
    let mut waiter = spawn_piped(
        &project,
        &[&lock_mode[..], &["--lock-wait", "120s", "up"]].concat(),
    );
    let (lines, reader) = stdout_lines(&mut waiter);
    let deadline = Instant::now() + DEADLINE;
    let waiting_line = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with("waiting for the run lock, held by") => break line,
            Ok(_) => {}
            Err(error) => panic!("the waiting runner never said it was waiting: {error}"),
        }
    };
    assert!(
        names_process(&waiting_line, holder_pid),
        "the waiting runner names pid {holder_pid}: {waiting_line}"
    );

    client.batch_execute("UPDATE gate SET open = true").unwrap();
    finish(holder).expect(exit::OK);
    let waited = finish(waiter);
    reader.join().unwrap();
    waited.expect(exit::OK);
    assert_eq!(
        pg_history(&mut client),
        [migrate_row("0001"), migrate_row("0002")]
    );
    wait_until("no advisory lock is held", || {
        advisory_locks(&mut client) == 0
    });
    assert_eq!(live_leases(&mut client), 0);
}

#[test]
fn a_held_advisory_lock_is_named_and_does_not_block_status() {
    a_held_lock_is_named_and_does_not_block_status(Route::DirectAdvisory);
}

#[test]
fn a_held_lease_through_pgbouncer_is_named_and_does_not_block_status() {
    a_held_lock_is_named_and_does_not_block_status(Route::PgBouncerLease);
}
