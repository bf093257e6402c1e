//! Statement hooks through the public API, on a real SQLite database.

use std::sync::{Arc, Mutex};

use safeshift_driver::{ConnectOptions, DatabaseUrl, Driver, DriverError, ErrorKind};
use safeshift_runner::{Migrator, Quiet, RunError, Settings, StatementContext, StatementHooks};
use safeshift_source::{MigrationSet, Section, Statement};

/// Runs `-- safeshift:double` statements twice and logs every call.
struct Doubling {
    log: Arc<Mutex<Vec<String>>>,
}

impl StatementHooks for Doubling {
    fn directives(&self) -> &[&'static str] {
        &["double"]
    }

    fn validate(&self, _statement: &Statement, section: &Section) -> Result<(), String> {
        if section.options.transaction {
            Err("`double` needs a migration without a transaction".into())
        } else {
            Ok(())
        }
    }

    fn before_statement(
        &mut self,
        _db: &mut dyn Driver,
        statement: &Statement,
        context: &StatementContext<'_>,
    ) -> Result<(), DriverError> {
        self.log.lock().unwrap().push(format!(
            "before {} {}/{}",
            context.version, context.number, context.total
        ));
        if statement.sql.contains("forbidden") {
            return Err(DriverError::new(
                ErrorKind::Statement,
                "refused by the hook",
            ));
        }
        Ok(())
    }

    fn run_statement(
        &mut self,
        db: &mut dyn Driver,
        statement: &Statement,
        _context: &StatementContext<'_>,
    ) -> Option<Result<(), DriverError>> {
        statement.directive("double")?;
        self.log.lock().unwrap().push("run double".into());
        Some(
            db.execute(&statement.sql)
                .and_then(|()| db.execute(&statement.sql)),
        )
    }
}

/// A project directory, its database, a migrator with the hooks installed, and the hooks' log.
type Setup = (
    tempfile::TempDir,
    Box<dyn Driver>,
    Migrator,
    Arc<Mutex<Vec<String>>>,
);

fn setup(files: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    for (name, contents) in files {
        std::fs::write(migrations.join(name), contents).unwrap();
    }
    let url = DatabaseUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("db.sqlite").display()
    ))
    .unwrap();
    let db = safeshift_driver::connect(&url, &ConnectOptions::default()).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut migrator = Migrator::new(
        MigrationSet::load(&migrations).unwrap(),
        Settings::default(),
    );
    migrator.set_hooks(Box::new(Doubling {
        log: Arc::clone(&log),
    }));
    (dir, db, migrator, log)
}

#[test]
fn hooks_see_every_statement_and_can_run_directive_statements() {
    let (_dir, mut db, migrator, log) = setup(&[(
        "0001_a.sql",
        "-- migrate:up transaction:false\nCREATE TABLE a (x INTEGER);\n-- safeshift:double\nINSERT INTO a VALUES (1);\n",
    )]);
    migrator.up(db.as_mut(), None, &mut Quiet).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["before 0001 1/2", "before 0001 2/2", "run double"]
    );
    let url = db.redacted_url().trim_start_matches("sqlite://").to_owned();
    let connection = rusqlite::Connection::open(url).unwrap();
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM a", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows, 2, "the hook ran the statement, twice");
}

#[test]
fn hooks_validate_their_directives_when_the_run_is_planned() {
    let (_dir, mut db, migrator, log) = setup(&[(
        "0001_a.sql",
        "-- migrate:up\nCREATE TABLE a (x INTEGER);\n-- safeshift:double\nINSERT INTO a VALUES (1);\n",
    )]);
    let failure = migrator.up(db.as_mut(), None, &mut Quiet).unwrap_err();
    let RunError::Source(errors) = failure.error else {
        panic!("{:?}", failure.error)
    };
    assert!(
        errors.0[0]
            .message
            .contains("needs a migration without a transaction")
    );
    assert_eq!(errors.0[0].line, Some(3));
    assert!(log.lock().unwrap().is_empty(), "nothing ran");
}

#[test]
fn a_hook_error_fails_the_statement_like_a_database_error() {
    let (_dir, mut db, migrator, _log) = setup(&[(
        "0001_a.sql",
        "-- migrate:up\nCREATE TABLE forbidden (x INTEGER);\n",
    )]);
    let failure = migrator.up(db.as_mut(), None, &mut Quiet).unwrap_err();
    let RunError::MigrationFailed {
        error, statement, ..
    } = failure.error
    else {
        panic!("{:?}", failure.error)
    };
    assert_eq!(error.message, "refused by the hook");
    assert_eq!(statement.unwrap().number, 1);
    assert_eq!(migrator.status(db.as_mut()).unwrap().pending, 1);
}
