//! Production runs against a real PostgreSQL 15, driving the binary: backups that restore to the
//! same data, the watchdog naming who blocks a migration and aborting cleanly, health checks that
//! roll a run back, confirmation that never waits for input that cannot come, and no password in
//! any output or file.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Project, Run, exit, pg_rows, pg_table_exists, pg_value, postgres_snapshot_settings,
    safeshift_bin,
};
use safeshift_lint::RuleId;
use safeshift_testkit::TestDatabase;

const GUARD: i32 = 9;
const HEALTH: i32 = 10;

/// A command for the binary in the project without `--database-url`, so the environment's own
/// `url` is used.
fn env_command(project: &Project, variables: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(safeshift_bin());
    command.current_dir(project.path()).args(args);
    for variable in [
        "DATABASE_URL",
        "SAFESHIFT_DATABASE_URL",
        "SAFESHIFT_CONFIG",
        "SAFESHIFT_ENV",
        "SAFESHIFT_LOCK_TIMEOUT",
        "SAFESHIFT_RETRIES",
        "PGPASSWORD",
    ] {
        command.env_remove(variable);
    }
    command.env("NO_COLOR", "1");
    for (name, value) in variables {
        command.env(name, value);
    }
    command
}

fn run(mut command: Command) -> Run {
    Run::from(
        command
            .stdin(Stdio::null())
            .output()
            .expect("run safeshift"),
    )
}

/// Row count and content hash of every user table outside the safeshift schema.
fn fingerprints(client: &mut postgres::Client) -> BTreeMap<String, (String, String)> {
    let tables = pg_rows(
        client,
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'safeshift') ORDER BY 1",
    );
    tables
        .into_iter()
        .map(|row| {
            let table = row[0].clone().unwrap();
            let values = pg_rows(
                client,
                &format!(
                    "SELECT count(*)::text, coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM {table} t"
                ),
            );
            (
                table,
                (
                    values[0][0].clone().unwrap(),
                    values[0][1].clone().unwrap(),
                ),
            )
        })
        .collect()
}

fn schema(client: &mut postgres::Client) -> Vec<Vec<Option<String>>> {
    pg_rows(
        client,
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns \
         WHERE table_schema = 'public' ORDER BY 1, 2",
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn shop(db: &TestDatabase) -> Project {
    let project = Project::postgres(db.url());
    project.migration(
        "0001_shop.sql",
        "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, note text);\n\
         CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers (id), total numeric(10,2), placed_at timestamptz);\n\
         INSERT INTO customers SELECT g, 'c' || g || '@example.com', CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, 500) g;\n\
         INSERT INTO orders SELECT g, 1 + g % 500, (g * 1.25)::numeric(10,2), timestamptz '2024-01-01' + g * interval '1 minute' FROM generate_series(1, 3000) g;",
        "DROP TABLE orders;\nDROP TABLE customers;",
    );
    project
}

#[test]
fn backup_restore_round_trip_and_corruption() {
    let db = TestDatabase::new();
    let project = shop(&db);
    project.run(&["up"]).expect(exit::OK);
    let mut client = db.client();
    let original = fingerprints(&mut client);
    assert_eq!(original.len(), 2);

    let created = project.run(&["backup", "create", "--json"]);
    created.expect(exit::OK);
    let json = created.json();
    assert_eq!(json["ok"], true);
    let file = project
        .path()
        .join(json["backup"]["path"].as_str().unwrap());
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("safeshift_{}_0001_", db.name())) && name.ends_with(".dump"),
        "{name}"
    );
    let metadata = PathBuf::from(format!("{}.json", file.display()));
    assert_eq!(mode(&file), 0o600, "the dump is readable by its owner only");
    assert_eq!(mode(&metadata), 0o600, "the metadata too");
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    assert_eq!(recorded["schema_version"], "0001");
    assert_eq!(recorded["database"], db.name());
    assert!(recorded["sha256"].as_str().unwrap().starts_with("sha256:"));
    assert!(recorded["dump_tool"].as_str().unwrap().contains("pg_dump"));
    assert_eq!(
        recorded["size_bytes"].as_u64().unwrap(),
        std::fs::metadata(&file).unwrap().len()
    );

    let deep = project.run(&["backup", "verify", &name, "--deep", "--json"]);
    deep.expect(exit::OK);
    let deep = deep.json();
    assert!(
        deep["verification"]["deep"]["tables_compared"]
            .as_u64()
            .unwrap()
            >= 3
    );
    assert_eq!(
        deep["verification"]["deep"]["mismatches"],
        serde_json::json!([])
    );

    // Damage: a table dropped, rows changed.
    client
        .batch_execute("DROP TABLE orders; UPDATE customers SET note = 'changed' WHERE id < 10; DELETE FROM customers WHERE id > 490")
        .unwrap();
    assert_ne!(fingerprints(&mut client), original);

    let restored = project.run(&["backup", "restore", &name, "--yes"]);
    restored.expect(exit::OK);
    assert!(restored.stderr.contains("replaces"), "{}", restored.stderr);
    assert_eq!(fingerprints(&mut client), original, "every table as it was");
    let events = project.run(&["history", "--events", "--json"]).json();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"restore"), "{events}");
    assert!(
        kinds.contains(&"backup"),
        "the events since the backup survive its restore: {events}"
    );

    // Into a new database with --to.
    let copy = format!("{}_copy", db.name());
    project
        .run(&["backup", "restore", &name, "--to", &copy])
        .expect(exit::OK);
    let mut copy_client = postgres::Client::connect(
        &db.url()
            .replace(&format!("/{}", db.name()), &format!("/{copy}")),
        postgres::NoTls,
    )
    .unwrap();
    assert_eq!(fingerprints(&mut copy_client), original);
    drop(copy_client);
    client
        .batch_execute(&format!("DROP DATABASE \"{copy}\" WITH (FORCE)"))
        .unwrap();

    // A damaged copy fails verification, with the reason.
    let damaged = file.with_file_name(format!("damaged_{name}"));
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    std::fs::copy(&metadata, format!("{}.json", damaged.display())).unwrap();
    let verify = project.run(&["backup", "verify", damaged.to_str().unwrap()]);
    verify.expect(GUARD);
    assert!(verify.all().contains("checksum"), "{}", verify.all());
    let listed = project.run(&["backup", "list", "--json"]).json();
    assert_eq!(listed["backups"].as_array().unwrap().len(), 2);

    // Retention never removes the newest verified backup.
    let pruned = project.run(&["backup", "prune", "--keep", "0", "--json"]);
    pruned.expect(exit::OK);
    assert!(file.exists(), "the newest verified backup is kept");
    assert!(!damaged.exists(), "the failed one is pruned");
}

#[test]
fn watchdog_names_the_blocker_and_aborts_cleanly() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_accounts.sql",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL DEFAULT 0);\nINSERT INTO accounts SELECT g FROM generate_series(1, 100) g;",
        "DROP TABLE accounts;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_note.sql",
        "ALTER TABLE accounts ADD COLUMN note text;",
        "ALTER TABLE accounts DROP COLUMN note;",
    );

    // Another session keeps a transaction open that has read the table.
    let mut blocker = db.client();
    let blocker_pid = pg_value(&mut blocker, "SELECT pg_backend_pid()");
    blocker
        .batch_execute("BEGIN; SELECT * FROM accounts WHERE id = 1")
        .unwrap();

    // Lock-safe DDL would wait for the blocker outside the lock queue; an attempt allowed to
    // queue for a minute waits in it, as DDL without lock safety does, and the watchdog is what
    // stops it.
    write_config(&project, "[online]\nlock_timeout = \"60s\"\n");
    let mut child = project
        .command(&["up", "--abort-on", "lock-wait=2s", "--lock-timeout", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Once the migration waits, an application query queues behind it.
    let mut watcher = db.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = pg_value(
            &mut watcher,
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%ALTER TABLE accounts%'",
        );
        if waiting == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the migration never waited for the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = db.url();
    let application = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        pg_value(&mut client, "SELECT count(*) FROM accounts")
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the run did not abort");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(GUARD), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {blocker_pid} ")),
        "the watchdog names the blocking pid:\n{stderr}"
    );
    assert!(
        stderr.contains("SELECT * FROM accounts WHERE id = 1"),
        "and its query:\n{stderr}"
    );
    assert!(stderr.contains("idle in transaction"), "{stderr}");
    assert!(stderr.contains("queued behind"), "{stderr}");

    // The blocked application query was released without the blocker ending.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !application.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the application query stayed blocked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(application.join().unwrap(), "100");

    // The history says what happened, and nothing was applied.
    let mut client = db.client();
    let rows = pg_rows(
        &mut client,
        "SELECT status, error_message FROM safeshift.history WHERE version = '0002' ORDER BY id",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0].as_deref(), Some("failed"));
    assert!(
        rows[0][1]
            .as_deref()
            .unwrap_or_default()
            .contains("watchdog"),
        "{rows:?}"
    );
    assert_eq!(
        pg_value(
            &mut client,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'note'"
        ),
        "0"
    );
    let events = project.run(&["history", "--events", "--json"]).json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "watchdog" && e["outcome"] == "failed"),
        "{events}"
    );
    blocker.batch_execute("ROLLBACK").unwrap();
    project.run(&["up"]).expect(exit::OK);
}

fn write_config(project: &Project, text: &str) {
    std::fs::write(project.path().join("safeshift.toml"), text).unwrap();
}

#[test]
fn failing_health_check_rolls_the_run_back() {
    let db = TestDatabase::new();
    let project = shop(&db);
    project.run(&["up"]).expect(exit::OK);
    let mut client = db.client();
    let before = schema(&mut client);
    project
        .migration(
            "0002_coupons.sql",
            "CREATE TABLE coupons (code text PRIMARY KEY, percent integer NOT NULL);",
            "DROP TABLE coupons;",
        )
        .migration(
            "0003_order_coupon.sql",
            "ALTER TABLE orders ADD COLUMN coupon text REFERENCES coupons (code);",
            "ALTER TABLE orders DROP COLUMN coupon;",
        );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = listener.local_addr().unwrap().port();
    drop(listener);
    write_config(
        &project,
        &format!(
            "[environments.staging]\nurl = \"${{STAGING_URL}}\"\n\n\
             [[environments.staging.health]]\nsql = \"SELECT count(*) > 0 FROM coupons\"\n\n\
             [[environments.staging.health]]\nhttp = \"http://127.0.0.1:{closed_port}/health\"\ntimeout = \"2s\"\n"
        ),
    );
    let url = db.url();
    let outcome = run(env_command(
        &project,
        &[("STAGING_URL", &url)],
        &["--env", "staging", "up", "--rollback-on-failure"],
    ));
    outcome.expect(HEALTH);
    assert!(outcome.stderr.contains("UNHEALTHY"), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("rolled back 2 migration(s)"),
        "{}",
        outcome.stderr
    );
    assert_eq!(
        schema(&mut client),
        before,
        "the schema is as before the run"
    );
    assert!(!pg_table_exists(&mut client, "public.coupons"));
    let history = pg_rows(
        &mut client,
        "SELECT version, direction, status FROM safeshift.history WHERE version > '0001' ORDER BY id",
    );
    let history: Vec<(String, String)> = history
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            ("0002".to_owned(), "up".to_owned()),
            ("0003".to_owned(), "up".to_owned()),
            ("0003".to_owned(), "down".to_owned()),
            ("0002".to_owned(), "down".to_owned()),
        ],
        "applied in order, rolled back newest first"
    );
    let events = pg_rows(
        &mut client,
        "SELECT kind, outcome, environment FROM safeshift.history_events ORDER BY id",
    );
    assert!(
        events.iter().any(|e| e[0].as_deref() == Some("rollback")
            && e[1].as_deref() == Some("succeeded")
            && e[2].as_deref() == Some("staging")),
        "{events:?}"
    );

    // Without the flag, the migrations stay and the exit code still says the checks failed.
    let kept = run(env_command(
        &project,
        &[("STAGING_URL", &url)],
        &["--env", "staging", "up"],
    ));
    kept.expect(HEALTH);
    assert!(pg_table_exists(&mut client, "public.coupons"));
}

#[test]
fn confirmation_never_waits_and_yes_proceeds_with_a_verified_backup() {
    let db = TestDatabase::new();
    let project = shop(&db);
    write_config(
        &project,
        "[backup]\ndir = \"backups\"\n\n[environments.production]\nurl = \"${PROD_URL}\"\nconfirm = true\nbackup = \"required\"\n",
    );
    let url = db.url();
    let started = Instant::now();
    let mut child = env_command(
        &project,
        &[("PROD_URL", &url)],
        &["--env", "production", "up"],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = started + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`up` waited for input that cannot come");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = Run::from(child.wait_with_output().unwrap());
    refused.expect(exit::USAGE);
    assert!(
        refused.stderr.contains("needs confirmation"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let mut client = db.client();
    assert!(
        !pg_table_exists(&mut client, "public.customers"),
        "nothing applied"
    );
    assert!(
        !project.path().join("backups").exists(),
        "no backup taken either"
    );

    // SAFESHIFT_ENV selects it too.
    let confirmed = run(env_command(
        &project,
        &[("PROD_URL", &url), ("SAFESHIFT_ENV", "production")],
        &["up", "--yes"],
    ));
    confirmed.expect(exit::OK);
    assert!(pg_table_exists(&mut client, "public.customers"));
    assert!(
        confirmed.stderr.contains("Pre-flight"),
        "{}",
        confirmed.stderr
    );
    let reference = pg_value(
        &mut client,
        "SELECT backup_ref FROM safeshift.history WHERE version = '0001'",
    );
    assert!(reference.ends_with(".dump"), "{reference}");
    assert!(project.path().join("backups").join(&reference).is_file());
    let events = pg_rows(
        &mut client,
        "SELECT kind, outcome, backup_ref FROM safeshift.history_events WHERE kind = 'backup'",
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0][1].as_deref(), Some("succeeded"));
    assert_eq!(events[0][2].as_deref(), Some(reference.as_str()));
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn no_command_prints_a_password() {
    const PASSWORD: &str = "Sup3r-S3cret-Pw";
    let db = TestDatabase::new();
    let mut client = db.client();
    client
        .batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'secret_user') THEN \
             CREATE ROLE secret_user LOGIN SUPERUSER PASSWORD '{PASSWORD}'; END IF; END $$"
        ))
        .unwrap();
    let url = db
        .url()
        .replacen("postgres@", &format!("secret_user:{PASSWORD}@"), 1);
    assert!(url.contains(PASSWORD), "{url}");
    let project = shop(&db);
    project.migration(
        "0002_index.sql",
        "CREATE INDEX orders_placed_idx ON orders (placed_at);",
        "DROP INDEX orders_placed_idx;",
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = listener.local_addr().unwrap().port();
    drop(listener);
    write_config(
        &project,
        &format!(
            "[backup]\ndir = \"backups\"\n\n[environments.production]\nurl = \"${{PROD_URL}}\"\nconfirm = true\nbackup = \"required\"\nmax_risk = \"high\"\n\
             [environments.production.hooks]\nbefore = [[\"sh\", \"-c\", \"echo before $SAFESHIFT_DATABASE\"]]\nafter = [[\"env\"]]\n\
             [[environments.production.health]]\nhttp = \"http://secret_user:{PASSWORD}@127.0.0.1:{closed_port}/health\"\ntimeout = \"1s\"\n"
        ),
    );
    let with_url = |args: &[&str]| run(env_command(&project, &[("PROD_URL", &url)], args));
    let mut outputs: Vec<(String, Run)> = Vec::new();
    let mut record = |label: &str, run: Run| outputs.push((label.to_owned(), run));

    record("preflight", with_url(&["--env", "production", "preflight"]));
    record(
        "preflight json",
        with_url(&["--env", "production", "preflight", "--json"]),
    );
    record("plan", with_url(&["--env", "production", "plan"]));
    record(
        "plan json",
        with_url(&["--env", "production", "plan", "--format", "json"]),
    );
    record("up refused", with_url(&["--env", "production", "up"]));
    record(
        "up",
        with_url(&[
            "--env",
            "production",
            "up",
            "--yes",
            "--abort-on",
            "lock-wait=30s",
        ]),
    );
    record(
        "up json",
        with_url(&["--env", "production", "up", "--yes", "--json"]),
    );
    record("activity", with_url(&["--env", "production", "activity"]));
    record(
        "activity json",
        with_url(&[
            "--env",
            "production",
            "activity",
            "--json",
            "--watch",
            "0.2",
            "--count",
            "2",
        ]),
    );
    record(
        "backup create",
        with_url(&["--env", "production", "backup", "create"]),
    );
    record(
        "backup create json",
        with_url(&["--env", "production", "backup", "create", "--json"]),
    );
    record(
        "backup list",
        with_url(&["--env", "production", "backup", "list"]),
    );
    let listed = with_url(&["--env", "production", "backup", "list", "--json"]);
    let newest = listed.json()["backups"][0]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    record("backup list json", listed);
    record(
        "backup verify",
        with_url(&["--env", "production", "backup", "verify", &newest, "--deep"]),
    );
    record(
        "backup verify json",
        with_url(&["--env", "production", "backup", "verify", &newest, "--json"]),
    );
    let copy = format!("{}_pw", db.name());
    record(
        "backup restore --to",
        with_url(&[
            "--env",
            "production",
            "backup",
            "restore",
            &newest,
            "--to",
            &copy,
        ]),
    );
    record(
        "backup restore",
        with_url(&[
            "--env",
            "production",
            "backup",
            "restore",
            &newest,
            "--yes",
            "--json",
        ]),
    );
    record(
        "backup prune",
        with_url(&[
            "--env",
            "production",
            "backup",
            "prune",
            "--keep",
            "1",
            "--dry-run",
        ]),
    );
    record(
        "history events",
        with_url(&["--env", "production", "history", "--events"]),
    );
    record(
        "history events json",
        with_url(&["--env", "production", "history", "--events", "--json"]),
    );
    record("down", with_url(&["--env", "production", "down", "--yes"]));
    let unreachable = format!("postgres://secret_user:{PASSWORD}@127.0.0.1:{closed_port}/nowhere");
    for args in [
        &["--env", "production", "preflight"][..],
        &["--env", "production", "up", "--yes"][..],
        &["--env", "production", "backup", "create"][..],
        &["--env", "production", "activity"][..],
        &["--env", "production", "plan"][..],
    ] {
        record(
            &format!("unreachable {}", args[2]),
            run(env_command(&project, &[("PROD_URL", &unreachable)], args)),
        );
    }
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{copy}\" WITH (FORCE)"))
        .unwrap();

    for (label, output) in &outputs {
        assert!(
            !output.all().contains(PASSWORD),
            "`{label}` printed the password:\n{}",
            output.all()
        );
    }
    // The commands did their work (so the grep covered real output).
    let up = &outputs.iter().find(|(l, _)| l == "up").unwrap().1;
    assert_eq!(up.code, HEALTH, "{}", up.all());
    assert!(
        up.stderr.contains("before postgres://secret_user:***@"),
        "{}",
        up.stderr
    );
    // The configuration file is the user's input (it holds the health check's URL); everything
    // else in the project was written by safeshift.
    let written: Vec<PathBuf> = files(project.path())
        .into_iter()
        .filter(|p| !p.ends_with("safeshift.toml"))
        .collect();
    assert!(
        written
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "json"))
    );
    for path in written {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{} holds the password",
            path.display()
        );
    }
    for row in pg_rows(
        &mut client,
        "SELECT coalesce(summary, '') || coalesce(detail, '') FROM safeshift.history_events",
    ) {
        assert!(!row[0].clone().unwrap().contains(PASSWORD), "{row:?}");
    }
}

#[test]
fn sqlite_backups_use_the_online_backup_api_and_restore() {
    let project = Project::sqlite();
    project.migration(
        "0001_notes.sql",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, data BLOB);\n\
         INSERT INTO notes (body, data) VALUES ('a', x'00ff'), ('b', NULL), (NULL, x'');",
        "DROP TABLE notes;",
    );
    project.run(&["up"]).expect(exit::OK);
    let created = project.run(&["backup", "create", "--json"]);
    created.expect(exit::OK);
    let file = project
        .path()
        .join(created.json()["backup"]["path"].as_str().unwrap());
    assert!(
        file.to_string_lossy().ends_with(".sqlite3"),
        "{}",
        file.display()
    );
    assert_eq!(mode(&file), 0o600);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    project
        .run(&["backup", "verify", &name, "--deep"])
        .expect(exit::OK);

    let database = project.path().join("app.db");
    let read = |path: &Path| -> Vec<(i64, Option<String>, Option<Vec<u8>>)> {
        let connection = rusqlite::Connection::open(path).unwrap();
        let mut statement = connection
            .prepare("SELECT id, body, data FROM notes ORDER BY id")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let original = read(&database);
    rusqlite::Connection::open(&database)
        .unwrap()
        .execute_batch("DELETE FROM notes WHERE id = 1; UPDATE notes SET body = 'changed'")
        .unwrap();
    assert_ne!(read(&database), original);
    project
        .run(&["backup", "restore", &name, "--yes"])
        .expect(exit::OK);
    assert_eq!(read(&database), original);
    project
        .run(&["backup", "restore", &name, "--to", "copy.db"])
        .expect(exit::OK);
    assert_eq!(read(&project.path().join("copy.db")), original);
    let events = project.run(&["history", "--events"]);
    events.expect(exit::OK);
    assert!(events.stdout.contains("restore"), "{}", events.stdout);
}

#[test]
fn hooks_run_without_a_shell_and_a_failing_one_stops_the_run() {
    let db = TestDatabase::new();
    let project = shop(&db);
    write_config(
        &project,
        "[environments.staging]\nurl = \"${STAGING_URL}\"\n\
         [environments.staging.hooks]\n\
         before = [[\"sh\", \"-c\", \"echo maintenance on\"], [\"false\"]]\n\
         after = [[\"sh\", \"-c\", \"echo $SAFESHIFT_HOOK_PHASE $SAFESHIFT_OUTCOME > after.txt\"]]\n",
    );
    let url = db.url();
    let stopped = run(env_command(
        &project,
        &[("STAGING_URL", &url)],
        &["--env", "staging", "up"],
    ));
    stopped.expect(GUARD);
    assert!(
        stopped.stderr.contains("the before hook `false` failed"),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("maintenance on"),
        "{}",
        stopped.stderr
    );
    let mut client = db.client();
    assert!(
        !pg_table_exists(&mut client, "public.customers"),
        "nothing applied"
    );
    assert_eq!(
        std::fs::read_to_string(project.path().join("after.txt")).unwrap(),
        "after failed\n",
        "the after hooks still ran, told the outcome"
    );
    let hooks = pg_rows(
        &mut client,
        "SELECT outcome, summary FROM safeshift.history_events WHERE kind = 'hook' ORDER BY id",
    );
    let outcomes: Vec<&str> = hooks.iter().map(|h| h[0].as_deref().unwrap()).collect();
    assert_eq!(outcomes, ["succeeded", "failed", "succeeded"], "{hooks:?}");

    // An environment that does not exist is named, with the ones that do.
    let unknown = run(env_command(
        &project,
        &[("STAGING_URL", &url)],
        &["--env", "prod", "status"],
    ));
    unknown.expect(exit::USAGE);
    assert!(
        unknown.stderr.contains("no environment `prod`"),
        "{}",
        unknown.stderr
    );
    assert!(unknown.stderr.contains("staging"), "{}", unknown.stderr);
}

#[test]
fn preflight_fails_on_an_unsettled_history_and_warns_about_lock_holders() {
    let db = TestDatabase::new();
    let project = shop(&db);
    project.run(&["up"]).expect(exit::OK);
    project.migration(
        "0002_broken.sql",
        "ALTER TABLE customers ADD COLUMN tier text;\nSELECT 1/0;",
        "ALTER TABLE customers DROP COLUMN tier;",
    );
    project.run(&["up"]).expect(exit::MIGRATION_FAILED);
    let mut holder = db.client();
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM customers")
        .unwrap();
    let holder_pid = pg_value(&mut holder, "SELECT pg_backend_pid()");
    let report = project.run(&["preflight", "--json"]);
    report.expect(GUARD);
    let json = report.json();
    let check = |name: &str| {
        json["report"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {json}"))
            .clone()
    };
    assert_eq!(check("history")["outcome"], "fail");
    assert!(
        check("history")["details"][0]
            .as_str()
            .unwrap()
            .contains("0002: its last attempt failed"),
        "{json}"
    );
    assert_eq!(check("connection")["outcome"], "pass");
    assert_eq!(check("privileges")["outcome"], "pass");
    let blocking = check("blocking sessions");
    assert_eq!(blocking["outcome"], "warn", "{json}");
    assert!(
        blocking["details"][0]
            .as_str()
            .unwrap()
            .contains(&format!("pid {holder_pid} ")),
        "{json}"
    );
    assert!(
        check("disk space")["summary"]
            .as_str()
            .unwrap()
            .contains("free")
    );
    // As a person reads it.
    let human = project.run(&["preflight"]);
    human.expect(GUARD);
    postgres_snapshot_settings(&project, db.name())
        .bind(|| insta::assert_snapshot!("preflight_unsettled_history", human.stdout));
    holder.batch_execute("ROLLBACK").unwrap();
}

#[test]
fn plan_describes_each_pending_migration_for_review() {
    let db = TestDatabase::new();
    let project = shop(&db);
    project.run(&["up"]).expect(exit::OK);
    project
        .migration(
            "0002_order_status.sql",
            "ALTER TABLE orders ADD COLUMN status text;\n\
             CREATE INDEX orders_placed_idx ON orders (placed_at);",
            "DROP INDEX orders_placed_idx;\nALTER TABLE orders DROP COLUMN status;",
        )
        .write(
            "0003_customer_email.sql",
            "-- migrate:up transaction:false\n\
             CREATE UNIQUE INDEX CONCURRENTLY customers_email_idx ON customers (email);\n",
        );
    let plan = project.run(&["plan"]);
    plan.expect(exit::OK);
    postgres_snapshot_settings(&project, db.name())
        .bind(|| insta::assert_snapshot!("plan_markdown", plan.stdout));
}

#[test]
fn up_to_a_version_in_an_environment_gates_only_up_to_that_version() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_accounts.sql",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n\
         INSERT INTO accounts SELECT g, 'a' || g || '@example.com' FROM generate_series(1, 20) g;",
        "DROP TABLE accounts;",
    );
    project.run(&["up"]).expect(exit::OK);
    project
        .migration(
            "0002_plans.sql",
            "CREATE TABLE plans (id bigint PRIMARY KEY);",
            "DROP TABLE plans;",
        )
        .migration(
            "0003_drop_email.sql",
            "ALTER TABLE accounts DROP COLUMN email;",
            "ALTER TABLE accounts ADD COLUMN email text;",
        );
    write_config(&project, "[environments.production]\n");
    // 0003 loses the data of a column in use (a high risk, however small the table): it stops
    // a run that applies it, and only such a run.
    let to_second = project.run(&["--env", "production", "up", "--to", "0002"]);
    to_second.expect(exit::OK);
    let mut client = db.client();
    assert!(pg_table_exists(&mut client, "public.plans"));
    let everything = project.run(&["--env", "production", "up"]);
    everything.expect(exit::REFUSED);
    assert!(
        everything.stderr.contains(RuleId::DroppingColumn.as_str()),
        "{}",
        everything.all()
    );
    let email_columns: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'email'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(email_columns, 1, "nothing was applied");
}

#[test]
fn a_production_run_applies_backfills_in_batches_like_any_run() {
    let db = TestDatabase::new();
    let project = Project::postgres(db.url());
    project.migration(
        "0001_items.sql",
        "CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0);\n\
         INSERT INTO items (id) SELECT g FROM generate_series(1, 3000) g;",
        "DROP TABLE items;",
    );
    project.run(&["up"]).expect(exit::OK);
    project.write(
        "0002_count_items.sql",
        "-- migrate:up transaction:false\n\
         -- safeshift:backfill batch=500 min-batch=500 max-batch=500\n\
         UPDATE items SET n = n + 1;\n\n\
         -- migrate:down transaction:false\nUPDATE items SET n = n - 1;\n",
    );
    write_config(&project, "[environments.production]\n");
    let run = project.run(&["--env", "production", "up"]);
    run.expect(exit::OK);
    let mut client = db.client();
    assert_eq!(
        pg_value(&mut client, "SELECT count(*) FROM items WHERE n <> 1"),
        "0"
    );
    // It ran as a backfill, in batches of 500: its checkpoint counts them.
    assert_eq!(
        pg_rows(
            &mut client,
            "SELECT rows_updated::text, batches >= 6 FROM safeshift.backfills WHERE name LIKE '0002/%'"
        ),
        [[Some("3000".to_owned()), Some("t".to_owned())]]
    );
}
