//! PgBouncer in front of the test servers.

use safeshift_testkit::{PgBouncer, PoolMode, TestDatabase, shared_server};

mod common;
use common::is_alive;

/// The backend pid seen by each of two clients connected at the same time. Only a pooler that
/// hands server connections back after each transaction can give both the same backend.
fn backend_pids_of_two_concurrent_clients(url: &str) -> (String, String) {
    let mut first = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut second = postgres::Client::connect(url, postgres::NoTls).unwrap();
    (backend_pid(&mut first), backend_pid(&mut second))
}

fn backend_pid(client: &mut postgres::Client) -> String {
    single_value(client, "SELECT pg_backend_pid()")
}

/// The first column of the first row, via the simple protocol (PgBouncer 1.18 in transaction
/// mode breaks the extended protocol's named statements).
fn single_value(client: &mut postgres::Client, sql: &str) -> String {
    client
        .simple_query(sql)
        .unwrap()
        .into_iter()
        .find_map(|message| match message {
            postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap().to_owned()),
            _ => None,
        })
        .unwrap()
}

/// The `pool_mode` the admin console reports for `database`.
fn reported_pool_mode(admin_url: &str, database: &str) -> String {
    let mut admin = postgres::Client::connect(admin_url, postgres::NoTls).unwrap();
    let messages = admin.simple_query("SHOW POOLS").unwrap();
    messages
        .into_iter()
        .find_map(|message| match message {
            postgres::SimpleQueryMessage::Row(row) if row.get("database") == Some(database) => {
                Some(row.get("pool_mode").unwrap().to_owned())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("SHOW POOLS has no pool for {database}"))
}

#[test]
fn the_shared_pgbouncer_pools_per_test_databases_in_transaction_mode() {
    let database = TestDatabase::new();
    let url = database.pgbouncer_url();
    assert_ne!(url, database.url());
    let (first, second) = backend_pids_of_two_concurrent_clients(&url);
    assert_eq!(
        first, second,
        "two clients got their own backends: not transaction pooling"
    );
    let admin_url = shared_server().pgbouncer_url("pgbouncer");
    assert_eq!(
        reported_pool_mode(&admin_url, database.name()),
        "transaction"
    );
    // It really is the test database behind the pooler.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    assert_eq!(
        single_value(&mut client, "SELECT current_database()"),
        database.name()
    );
}

#[test]
fn session_mode_gives_each_client_its_own_backend() {
    let database = TestDatabase::new();
    let pgbouncer = PgBouncer::start(shared_server().port(), PoolMode::Session).unwrap();
    assert_eq!(pgbouncer.pool_mode(), PoolMode::Session);
    let (first, second) = backend_pids_of_two_concurrent_clients(&pgbouncer.url(database.name()));
    assert_ne!(first, second);
    assert_eq!(
        reported_pool_mode(&pgbouncer.admin_url(), database.name()),
        "session"
    );
}

#[test]
fn the_postgres_crate_connects_with_an_application_name_and_options() {
    let database = TestDatabase::new();
    let url = format!(
        "{}?application_name=safeshift_probe&options=-c%20lock_timeout%3D1234",
        database.pgbouncer_url()
    );
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    assert_eq!(
        single_value(&mut client, "SHOW application_name"),
        "safeshift_probe"
    );
    // PgBouncer ignores `options` (ignore_startup_parameters), so the setting never arrives:
    // code that relies on startup options behind PgBouncer is wrong, and tests can show it.
    assert_ne!(single_value(&mut client, "SHOW lock_timeout"), "1234ms");
}

#[test]
fn a_dropped_pgbouncer_stops_listening() {
    let pgbouncer = PgBouncer::start(shared_server().port(), PoolMode::Transaction).unwrap();
    let pid = pgbouncer.pid().unwrap();
    let base_dir = pgbouncer.base_dir().to_path_buf();
    let url = pgbouncer.url("postgres");
    postgres::Client::connect(&url, postgres::NoTls).unwrap();
    drop(pgbouncer);
    assert!(postgres::Client::connect(&url, postgres::NoTls).is_err());
    assert!(!base_dir.exists());
    assert!(!is_alive(pid), "pgbouncer {pid} still runs");
}
