//! The watch crate against a real PostgreSQL 15: the blocking tree, lock waits and connection
//! counts of `Activity`, and the pre-flight probes.

use std::time::{Duration, Instant};

use safeshift_testkit::TestDatabase;
use safeshift_watch::{Activity, probes};

fn value(client: &mut postgres::Client, sql: &str) -> String {
    client
        .simple_query(sql)
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap()
}

#[test]
fn activity_shows_who_blocks_whom() {
    let db = TestDatabase::new();
    let mut setup = db.client();
    setup
        .batch_execute(
            "CREATE TABLE accounts (id bigint PRIMARY KEY); INSERT INTO accounts VALUES (1)",
        )
        .unwrap();
    let mut blocker = db.client();
    let blocker_pid: i64 = value(&mut blocker, "SELECT pg_backend_pid()")
        .parse()
        .unwrap();
    blocker
        .batch_execute("BEGIN; SELECT * FROM accounts")
        .unwrap();
    let url = db.url();
    let waiter = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .batch_execute("SET lock_timeout = '30s'; ALTER TABLE accounts ADD COLUMN note text")
            .is_ok()
    });
    let mut watcher = db.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    let activity = loop {
        let activity = Activity::sample(&mut watcher, 5).unwrap();
        if activity
            .sessions
            .iter()
            .any(|s| s.blocked_by.contains(&blocker_pid))
        {
            break activity;
        }
        assert!(
            Instant::now() < deadline,
            "the ALTER never waited: {activity:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let waiting = activity
        .sessions
        .iter()
        .find(|s| s.blocked_by.contains(&blocker_pid))
        .unwrap();
    assert!(waiting.query.starts_with("SET lock_timeout"), "{waiting:?}");
    assert_eq!(waiting.wait.as_deref(), Some("Lock:relation"));
    let blocking = activity
        .sessions
        .iter()
        .find(|s| s.pid == blocker_pid)
        .expect("the blocker is listed");
    assert_eq!(blocking.state, "idle in transaction");
    assert!(blocking.transaction_ms.is_some());
    assert!(
        activity.lock_waits.iter().any(|w| w.pid == waiting.pid
            && w.mode == "AccessExclusiveLock"
            && w.relation.as_deref() == Some("accounts")),
        "{:?}",
        activity.lock_waits
    );
    assert!(
        activity.connections.used >= 4,
        "setup, blocker, waiter and watcher are connected: {:?}",
        activity.connections
    );
    assert!(activity.tables.iter().any(|t| t.table == "public.accounts"));

    let holders = probes::lock_holders(&mut watcher, &["accounts".to_owned()]).unwrap();
    assert!(
        holders.iter().any(|h| h.session.pid == blocker_pid
            && h.locks.iter().any(|l| l.starts_with("AccessShareLock"))),
        "{holders:?}"
    );
    blocker.batch_execute("ROLLBACK").unwrap();
    assert!(waiter.join().unwrap());
}

#[test]
fn ddl_privilege_tries_a_create_and_checks_ownership() {
    let db = TestDatabase::new();
    let mut admin = db.client();
    admin
        .batch_execute(&format!(
            "CREATE TABLE accounts (id bigint PRIMARY KEY); \
             DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'watch_reader') THEN \
             CREATE ROLE watch_reader LOGIN; END IF; END $$; \
             GRANT CONNECT ON DATABASE \"{}\" TO watch_reader",
            db.name()
        ))
        .unwrap();
    let mut superuser = db.client();
    let checked = probes::ddl_privilege(&mut superuser, &["accounts".to_owned()]).unwrap();
    assert!(checked.superuser && checked.can_create && checked.not_owned.is_empty());
    assert_eq!(
        value(
            &mut superuser,
            "SELECT count(*) FROM pg_class WHERE relname = 'safeshift_preflight_probe'"
        ),
        "0",
        "the probe table was rolled back"
    );

    let url = db.url().replacen("postgres@", "watch_reader@", 1);
    let mut reader = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let checked = probes::ddl_privilege(&mut reader, &["accounts".to_owned()]).unwrap();
    assert_eq!(checked.role, "watch_reader");
    assert!(!checked.can_create, "{checked:?}");
    assert!(checked.create_error.unwrap().contains("permission denied"));
    assert_eq!(checked.not_owned, ["accounts"]);
    assert!(probes::replicas(&mut reader).unwrap().is_empty());
}
