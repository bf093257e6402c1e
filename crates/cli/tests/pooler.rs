//! The advisory run lock through a connection pooler. A session advisory lock lives on a server
//! connection; through PgBouncer in transaction pooling the runner's statements run on whichever
//! server connection is free, so the lock protects nothing, and its unlock lands elsewhere
//! (`WARNING: you don't own a lock`), leaving it held on a pooled connection long after the
//! runner exits. safeshift must notice the pooler before it takes the lock and refuse advisory
//! mode there (exit 5, "use --lock-mode lease"), every time, for one runner or eight, leaving no
//! lock behind; through session pooling, where the lock works, it must not refuse.

mod common;

use std::process::Child;
use std::time::Duration;

use common::{Project, Run, advisory_locks, exit, pg_history, pg_value, spawn_piped};
use safeshift_testkit::{PgBouncer, PoolMode, TestDatabase, shared_server};

const MIGRATIONS: usize = 20;
const RUNNERS: usize = 8;
/// Generous: a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(90);

fn write_migrations(project: &Project) {
    for number in 1..=MIGRATIONS {
        let version = format!("{number:04}");
        project.migration(
            &format!("{version}_table_{number}.sql"),
            &format!("CREATE TABLE t_{version} (id int);"),
            &format!("DROP TABLE t_{version};"),
        );
    }
}

fn finish(child: Child) -> Run {
    common::finish_within(child, DEADLINE)
}

/// A refusal as documented: exit 5, naming the pooler and the fix. Almost always it comes from
/// the check before the lock is taken; should that check miss, the first migration's own check
/// stops the run the same way, and the lock it took is released (the callers check pg_locks).
#[track_caller]
fn assert_refused(run: &Run) {
    run.expect(exit::LOCK);
    let text = run.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("transaction-pooling proxy"),
        "the refusal names the pooler:\n{}",
        run.stderr
    );
    assert!(
        text.contains("--lock-mode lease"),
        "the refusal names the fix:\n{}",
        run.stderr
    );
    assert!(
        !text.contains("you don't own a lock"),
        "no unlock landed on another server connection:\n{}",
        run.stderr
    );
}

/// Nothing was applied: no table of the migrations exists.
fn tables_created(client: &mut postgres::Client) -> String {
    pg_value(
        client,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%'",
    )
}

#[test]
fn one_advisory_runner_through_transaction_pooling_is_refused_before_taking_the_lock() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.pgbouncer_url());
    write_migrations(&project);
    let mut client = db.client();
    for _ in 0..3 {
        let run = project.run(&["--lock-mode", "advisory", "up"]);
        assert_refused(&run);
        assert_eq!(
            advisory_locks(&mut client),
            0,
            "a refused runner left an advisory lock on a pooled server connection"
        );
    }
    assert_eq!(tables_created(&mut client), "0");
    // The next direct run is not blocked by anything the refused ones did.
    let direct = Project::postgres(db.url());
    write_migrations(&direct);
    direct.run(&["--lock-wait", "2s", "up"]).expect(exit::OK);
    assert_eq!(tables_created(&mut client), MIGRATIONS.to_string());
    assert_eq!(pg_history(&mut client).len(), MIGRATIONS);
}

#[test]
fn eight_advisory_runners_through_transaction_pooling_are_all_refused_and_leave_no_lock() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.pgbouncer_url());
    write_migrations(&project);
    let runners: Vec<Child> = (0..RUNNERS)
        .map(|_| {
            spawn_piped(
                &project,
                &["--lock-mode", "advisory", "--lock-wait", "30s", "up"],
            )
        })
        .collect();
    let runs: Vec<Run> = runners.into_iter().map(finish).collect();
    for run in &runs {
        assert_refused(run);
    }
    let mut client = db.client();
    assert_eq!(
        advisory_locks(&mut client),
        0,
        "an advisory lock outlived every runner"
    );
    assert_eq!(tables_created(&mut client), "0");
    let direct = Project::postgres(db.url());
    write_migrations(&direct);
    direct.run(&["--lock-wait", "2s", "up"]).expect(exit::OK);
}

/// Session pooling hands a client one server connection for its whole session: the advisory
/// lock works there, and safeshift must not refuse it.
#[test]
fn the_advisory_lock_through_session_pooling_is_not_refused() {
    let db = TestDatabase::new();
    let server = shared_server();
    let pgbouncer = PgBouncer::start_in_front_of(server.host(), server.port(), PoolMode::Session)
        .expect("start a session-pooling PgBouncer");
    let project = Project::postgres(pgbouncer.url(db.name()));
    write_migrations(&project);
    project
        .run(&["--lock-mode", "advisory", "up"])
        .expect(exit::OK);
    let mut client = db.client();
    assert_eq!(tables_created(&mut client), MIGRATIONS.to_string());
    assert_eq!(advisory_locks(&mut client), 0);
}
