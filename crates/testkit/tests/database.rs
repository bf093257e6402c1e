//! Per-test databases on the shared server.

use safeshift_testkit::{TEMPLATE_DATABASE, TestDatabase, shared_server};

fn database_exists(name: &str) -> bool {
    let mut admin =
        postgres::Client::connect(&shared_server().admin_url(), postgres::NoTls).unwrap();
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .unwrap()
        .is_some()
}

#[test]
fn two_test_databases_are_isolated() {
    let first = TestDatabase::new();
    let second = TestDatabase::new();
    assert_ne!(first.name(), second.name());
    first
        .client()
        .batch_execute("CREATE TABLE only_in_first (id int); INSERT INTO only_in_first VALUES (1)")
        .unwrap();
    let visible_in_second: i64 = second
        .client()
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'only_in_first'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(visible_in_second, 0);
    let rows: i64 = first
        .client()
        .query_one("SELECT count(*) FROM only_in_first", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

#[test]
fn a_test_database_is_dropped_on_drop_even_with_a_connection_open() {
    let database = TestDatabase::new();
    let name = database.name().to_owned();
    let mut left_open = database.client();
    left_open.simple_query("SELECT 1").unwrap();
    assert!(database_exists(&name));
    drop(database);
    assert!(!database_exists(&name), "{name} still exists");
    assert!(
        left_open.simple_query("SELECT 1").is_err(),
        "FORCE should disconnect it"
    );
}

#[test]
fn test_databases_come_from_the_template_which_refuses_connections() {
    let database = TestDatabase::new();
    assert!(database.url().ends_with(&format!("/{}", database.name())));
    let template_url = shared_server().url(TEMPLATE_DATABASE);
    let Err(refused) = postgres::Client::connect(&template_url, postgres::NoTls) else {
        panic!("{TEMPLATE_DATABASE} accepted a connection");
    };
    let message = refused.as_db_error().map(|db| db.message().to_owned());
    assert!(
        message
            .as_deref()
            .is_some_and(|message| message.contains("not currently accepting connections")),
        "{refused:?}"
    );
}
