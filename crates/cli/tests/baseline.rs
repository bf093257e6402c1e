//! `safeshift baseline`, and `safeshift adopt` for the tools whose history safeshift adopts
//! without reading their migrations as SQL it runs (dbmate's and golang-migrate's
//! `schema_migrations`, and the tools whose migrations are code: Rails, Alembic, Knex, TypeORM,
//! Sequelize), on real PostgreSQL. Each tool's table is created as the tool creates it.

mod common;

use common::{Project, exit, pg_rows, pg_table_exists, pg_value};
use safeshift_testkit::{TestDatabase, shared_server};

const REHEARSAL_FAILED: i32 = 11;

fn run_sql(client: &mut postgres::Client, sql: &str) {
    client
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn contents(client: &mut postgres::Client, table: &str) -> Vec<Vec<Option<String>>> {
    pg_rows(client, &format!("SELECT * FROM {table} ORDER BY 1"))
}

/// `(version, kind, note)` of safeshift's history rows.
fn history(client: &mut postgres::Client) -> Vec<(String, String, String)> {
    pg_rows(
        client,
        "SELECT version, kind, coalesce(note, '') FROM safeshift.history ORDER BY id",
    )
    .into_iter()
    .map(|r| {
        (
            r[0].clone().unwrap(),
            r[1].clone().unwrap(),
            r[2].clone().unwrap(),
        )
    })
    .collect()
}

/// An application schema migrated by hand: a type, a sequence, tables with constraints and an
/// index, a function, a trigger and a view.
const HAND_MIGRATED: &str = r#"
CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped');
CREATE SEQUENCE invoice_numbers START 1000;
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    state order_state NOT NULL DEFAULT 'new',
    invoice bigint DEFAULT nextval('invoice_numbers'),
    total numeric(12, 2) CHECK (total >= 0)
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE FUNCTION lower_email() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.email := lower(NEW.email);
    RETURN NEW;
END;
$$;
CREATE TRIGGER customers_lower_email BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION lower_email();
CREATE VIEW paid_orders AS SELECT id, customer_id, total FROM orders WHERE state = 'paid';
COMMENT ON TABLE orders IS 'one row per order';
"#;

fn rehearse(project: &Project, extra: &[&str]) -> common::Run {
    let scratch = shared_server().admin_url();
    let mut args = vec!["rehearse", "--scratch-url", scratch.as_str()];
    args.extend_from_slice(extra);
    project.run(&args)
}

#[test]
fn a_hand_migrated_database_is_baselined_and_the_baseline_rebuilds_it() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    let mut client = db.client();
    run_sql(&mut client, HAND_MIGRATED);
    project.write(
        "0001_add_refunds.sql",
        "-- migrate:up\nCREATE TABLE refunds (order_id bigint REFERENCES orders (id));\n-- migrate:down\nDROP TABLE refunds;\n",
    );
    let dry = project.run(&["baseline", "--dry-run"]);
    dry.expect(exit::OK);
    assert!(
        dry.stdout.contains("rebuilds the live schema"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("would write migrations/0000_baseline.sql"),
        "{}",
        dry.stdout
    );
    assert!(!project.migrations().join("0000_baseline.sql").exists());
    assert!(!pg_table_exists(&mut client, "safeshift.history"));

    let baseline = project.run(&["baseline", "--reason", "history starts here"]);
    baseline.expect(exit::OK);
    let file = project.migrations().join("0000_baseline.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("-- migrate:up\n-- Baseline: the schema of"),
        "{text}"
    );
    assert!(text.contains("CREATE TABLE public.orders"));
    assert!(
        !text.contains("\\restrict"),
        "psql meta-commands are left out"
    );
    let rows = history(&mut client);
    assert_eq!(rows.len(), 1);
    let (version, kind, note) = &rows[0];
    assert_eq!((version.as_str(), kind.as_str()), ("0000", "resolve"));
    assert!(
        note.contains("proven to rebuild the same schema on throwaway PostgreSQL 15.")
            && note.ends_with("; reason: history starts here"),
        "{note}"
    );
    let status = project.run(&["status", "--json"]).json();
    assert_eq!(status["entries"][0]["state"], "applied");
    assert_eq!(status["pending"], 1);
    // Rehearsing replays the baseline on an empty database, then rehearses what is pending.
    let rehearsal = rehearse(&project, &[]);
    rehearsal.expect(exit::OK);
    assert!(
        rehearsal
            .stdout
            .contains("1 migrations rehearsed: 1 passed")
            || rehearsal.stdout.contains("1 migration rehearsed: 1 passed"),
        "{}",
        rehearsal.stdout
    );
    project.run(&["up"]).expect(exit::OK);
    assert!(pg_table_exists(&mut client, "refunds"));
    // A second baseline is refused: the history has begun.
    let again = project.run(&["baseline"]);
    again.expect(exit::REFUSED);
    assert!(again.stderr.contains("already records applied migrations"));
}

#[test]
fn hand_run_files_taken_as_applied_must_rebuild_the_live_schema() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    let mut client = db.client();
    let files = [
        (
            "001_customers.sql",
            "-- Up Migration\nCREATE TABLE customers (id bigint PRIMARY KEY, email text);\n-- Down Migration\nDROP TABLE customers;\n",
        ),
        (
            "002_orders.sql",
            "-- Up Migration\nCREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers (id));\n-- Down Migration\nDROP TABLE orders;\n",
        ),
        (
            "003_refunds.sql",
            "-- Up Migration\nCREATE TABLE refunds (order_id bigint REFERENCES orders (id));\n-- Down Migration\nDROP TABLE refunds;\n",
        ),
    ];
    for (name, text) in files {
        project.write(name, text);
    }
    // Someone ran 001 and 002 by hand, and altered the table while at it.
    run_sql(
        &mut client,
        "CREATE TABLE customers (id bigint PRIMARY KEY, email text, phone text); CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers (id));",
    );
    let refused = project.run(&["baseline", "--through", "002"]);
    refused.expect(REHEARSAL_FAILED);
    assert!(
        refused.stderr.contains("public.customers") && refused.stderr.contains("phone"),
        "the difference is shown: {}",
        refused.stderr
    );
    assert!(!pg_table_exists(&mut client, "safeshift.history"));
    run_sql(&mut client, "ALTER TABLE customers DROP COLUMN phone");
    project
        .run(&["baseline", "--through", "002"])
        .expect(exit::OK);
    let versions: Vec<String> = history(&mut client).into_iter().map(|(v, ..)| v).collect();
    assert_eq!(versions, ["001", "002"]);
    let status = project.run(&["status", "--json"]).json();
    assert_eq!(status["format"]["format"], "plain");
    assert_eq!(status["pending"], 1);
    project.run(&["up"]).expect(exit::OK);
    project.run(&["down", "--steps", "3"]).expect(exit::OK);
    assert!(
        !pg_table_exists(&mut client, "customers"),
        "plain files roll back too"
    );
}

#[test]
fn dbmate_schema_migrations_is_adopted() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    let mut client = db.client();
    // dbmate's table on PostgreSQL.
    run_sql(
        &mut client,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) PRIMARY KEY)",
    );
    for i in 1..=3 {
        project.migration(
            &format!("2024010100000{i}_t{i}.sql"),
            &format!("CREATE TABLE t{i} (id int);"),
            &format!("DROP TABLE t{i};"),
        );
    }
    run_sql(
        &mut client,
        "CREATE TABLE t1 (id int); CREATE TABLE t2 (id int); INSERT INTO schema_migrations VALUES ('20240101000001'), ('20240101000002')",
    );
    let before = contents(&mut client, "schema_migrations");
    project.run(&["adopt"]).expect(exit::OK);
    assert_eq!(contents(&mut client, "schema_migrations"), before);
    assert!(
        history(&mut client)[0]
            .2
            .starts_with("adopted from dbmate (public.schema_migrations version 20240101000001")
    );
    let up = project.run(&["up"]);
    up.expect(exit::OK);
    assert!(up.stdout.contains("Applied 1 migration(s)"));
}

#[test]
fn golang_migrate_dirty_version_refuses_and_its_one_version_stands_for_all_before_it() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    let mut client = db.client();
    // golang-migrate's table on PostgreSQL: one row.
    run_sql(
        &mut client,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null)",
    );
    for i in 1..=4 {
        project.write(
            &format!("{i:06}_t{i}.up.sql"),
            format!("CREATE TABLE t{i} (id int);\n"),
        );
        project.write(
            &format!("{i:06}_t{i}.down.sql"),
            format!("DROP TABLE t{i};\n"),
        );
    }
    run_sql(
        &mut client,
        "CREATE TABLE t1 (id int); CREATE TABLE t2 (id int); CREATE TABLE t3 (id int); INSERT INTO schema_migrations VALUES (3, true)",
    );
    let refused = project.run(&["adopt"]);
    refused.expect(exit::REFUSED);
    assert!(
        refused
            .stderr
            .contains("golang-migrate marked version 3 dirty"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("migrate force 3"));
    // As `migrate force 3` does.
    run_sql(&mut client, "UPDATE schema_migrations SET dirty = false");
    let adopted = project.run(&["adopt"]);
    adopted.expect(exit::OK);
    assert!(
        adopted.stdout.contains("recorded 3 migration(s)"),
        "{}",
        adopted.stdout
    );
    assert!(
        adopted.stdout.contains(
            "2 migration(s) up to 3 count as applied: public.schema_migrations holds one row, the newest version applied: 3"
        ),
        "{}",
        adopted.stdout
    );
    let up = project.run(&["up"]);
    up.expect(exit::OK);
    assert!(up.stdout.contains("applied 000004"), "{}", up.stdout);
}

/// A project whose migrations are code: the tool's table and files, and the application's
/// schema as those migrations left it.
fn code_project(db: &TestDatabase, table_sql: &str, tool_files: &[(&str, &str)]) -> Project {
    let project = Project::postgres(db.url());
    std::fs::remove_dir(project.migrations()).unwrap();
    for (path, text) in tool_files {
        let path = project.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let mut client = db.client();
    run_sql(&mut client, HAND_MIGRATED);
    run_sql(&mut client, table_sql);
    project
}

/// Adopts a code-based tool into `db/safeshift` and checks the baseline it took.
fn adopt_through_a_baseline(project: &Project, db: &TestDatabase, tool: &str, table: &str) {
    let mut client = db.client();
    let before = contents(&mut client, table);
    let adopted = project.run(&["--dir", "db/safeshift", "adopt", "--from", tool]);
    adopted.expect(exit::OK);
    assert!(
        adopted.stdout.contains("rebuilds the live schema"),
        "{}",
        adopted.stdout
    );
    assert_eq!(contents(&mut client, table), before, "{table} is unchanged");
    let rows = history(&mut client);
    assert_eq!(
        rows.len(),
        1,
        "one baseline stands for every {tool} migration"
    );
    assert!(
        rows[0].2.starts_with(&format!("adopted from {tool}: ")),
        "{}",
        rows[0].2
    );
    let baseline =
        std::fs::read_to_string(project.path().join("db/safeshift/0001_baseline.sql")).unwrap();
    assert!(baseline.contains("CREATE TABLE public.orders"));
    let bare_table = table.trim_matches('"');
    assert!(
        !baseline.contains(&format!("CREATE TABLE public.{bare_table} "))
            && !baseline.contains(&format!("CREATE TABLE public.\"{bare_table}\"")),
        "the tool's own table is not part of the baseline"
    );
    project
        .run(&["--dir", "db/safeshift", "new", "add refunds"])
        .expect(exit::OK);
}

#[test]
fn knex_is_adopted_through_a_baseline_once_every_migration_is_applied() {
    let db = TestDatabase::new();
    // Knex's tables on PostgreSQL.
    let project = code_project(
        &db,
        r#"create table "knex_migrations" ("id" serial primary key, "name" varchar(255), "batch" integer, "migration_time" timestamptz);
           create table "knex_migrations_lock" ("index" serial primary key, "is_locked" integer);
           insert into "knex_migrations_lock" ("is_locked") values (0);
           insert into "knex_migrations" ("name", "batch", "migration_time") values ('20240101000000_customers.js', 1, now()), ('20240102000000_orders.js', 2, now());"#,
        &[
            (
                "migrations/20240101000000_customers.js",
                "exports.up = function (knex) {};\n",
            ),
            (
                "migrations/20240102000000_orders.js",
                "exports.up = function (knex) {};\n",
            ),
            (
                "migrations/20240103000000_refunds.js",
                "exports.up = function (knex) {};\n",
            ),
        ],
    );
    let refused = project.run(&["--dir", "db/safeshift", "adopt"]);
    refused.expect(exit::REFUSED);
    assert!(
        refused
            .stderr
            .contains("20240103000000_refunds.js: knex has not applied it"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("knex migrate:latest"));
    let mut client = db.client();
    run_sql(
        &mut client,
        "insert into knex_migrations (name, batch, migration_time) values ('20240103000000_refunds.js', 3, now()); update knex_migrations_lock set is_locked = 1",
    );
    let locked = project.run(&["--dir", "db/safeshift", "adopt"]);
    locked.expect(exit::REFUSED);
    assert!(
        locked.stderr.contains("knex_migrations_lock is locked"),
        "{}",
        locked.stderr
    );
    run_sql(&mut client, "update knex_migrations_lock set is_locked = 0");
    adopt_through_a_baseline(&project, &db, "knex", "knex_migrations");
}

#[test]
fn alembic_is_adopted_when_the_database_is_at_the_head_revision() {
    let db = TestDatabase::new();
    // Alembic's table on PostgreSQL.
    let project = code_project(
        &db,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)); INSERT INTO alembic_version VALUES ('ae1027a6acf');",
        &[
            ("alembic.ini", "[alembic]\nscript_location = alembic\n"),
            (
                "alembic/versions/1975ea83b712_customers.py",
                "revision = '1975ea83b712'\ndown_revision = None\n",
            ),
            (
                "alembic/versions/ae1027a6acf_orders.py",
                "revision: str = \"ae1027a6acf\"\ndown_revision: Union[str, None] = '1975ea83b712'\n",
            ),
            (
                "alembic/versions/27c6a30d7c24_refunds.py",
                "revision = '27c6a30d7c24'\ndown_revision = 'ae1027a6acf'\n",
            ),
        ],
    );
    let refused = project.run(&["--dir", "db/safeshift", "adopt"]);
    refused.expect(exit::REFUSED);
    assert!(
        refused.stderr.contains("alembic upgrade head"),
        "{}",
        refused.stderr
    );
    run_sql(
        &mut db.client(),
        "UPDATE alembic_version SET version_num = '27c6a30d7c24'",
    );
    adopt_through_a_baseline(&project, &db, "alembic", "alembic_version");
}

#[test]
fn typeorm_sequelize_and_rails_are_adopted_through_baselines() {
    let db = TestDatabase::new();
    // TypeORM's table on PostgreSQL.
    let project = code_project(
        &db,
        r#"CREATE TABLE "migrations" ("id" SERIAL NOT NULL, "timestamp" bigint NOT NULL, "name" character varying NOT NULL, CONSTRAINT "PK_8c82d7f526340ab734260ea46be" PRIMARY KEY ("id"));
           INSERT INTO "migrations" ("timestamp", "name") VALUES (1700000000000, 'Customers1700000000000'), (1700000001000, 'Orders1700000001000');"#,
        &[
            (
                "src/migrations/1700000000000-Customers.ts",
                "export class Customers1700000000000 {}\n",
            ),
            (
                "src/migrations/1700000001000-Orders.ts",
                "export class Orders1700000001000 {}\n",
            ),
        ],
    );
    adopt_through_a_baseline(&project, &db, "typeorm", "migrations");

    let db = TestDatabase::new();
    // Sequelize's table (umzug's SequelizeStorage) on PostgreSQL.
    let project = code_project(
        &db,
        r#"CREATE TABLE IF NOT EXISTS "SequelizeMeta" ("name" VARCHAR(255) NOT NULL UNIQUE , PRIMARY KEY ("name"));
           INSERT INTO "SequelizeMeta" VALUES ('20240101000000-create-customers.js'), ('20240102000000-create-orders.js');"#,
        &[
            (
                "migrations/20240101000000-create-customers.js",
                "module.exports = {};\n",
            ),
            (
                "migrations/20240102000000-create-orders.js",
                "module.exports = {};\n",
            ),
        ],
    );
    adopt_through_a_baseline(&project, &db, "sequelize", "\"SequelizeMeta\"");

    let db = TestDatabase::new();
    // Rails' tables on PostgreSQL.
    let project = code_project(
        &db,
        r#"CREATE TABLE "schema_migrations" ("version" character varying NOT NULL PRIMARY KEY);
           CREATE TABLE "ar_internal_metadata" ("key" character varying NOT NULL PRIMARY KEY, "value" character varying, "created_at" timestamp(6) NOT NULL, "updated_at" timestamp(6) NOT NULL);
           INSERT INTO "ar_internal_metadata" VALUES ('environment', 'production', now(), now());
           INSERT INTO "schema_migrations" VALUES ('20240101000000'), ('20240102000000');"#,
        &[
            (
                "db/migrate/20240101000000_create_customers.rb",
                "class CreateCustomers < ActiveRecord::Migration[7.1]; end\n",
            ),
            (
                "db/migrate/20240102000000_create_orders.rb",
                "class CreateOrders < ActiveRecord::Migration[7.1]; end\n",
            ),
        ],
    );
    adopt_through_a_baseline(&project, &db, "rails", "schema_migrations");
    let mut client = db.client();
    assert_eq!(
        pg_value(&mut client, "SELECT count(*) FROM ar_internal_metadata"),
        "1",
        "Rails' metadata table is left alone"
    );
}
