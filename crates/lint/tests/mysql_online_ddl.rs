//! The MySQL linter's online DDL model against a real MariaDB server: for each change, the
//! algorithm the linter predicts is the one the server accepts when asked for it explicitly,
//! and the cheaper one is refused.

use mysql::prelude::Queryable;
use safeshift_lint::mysql::{Algorithm, MysqlTarget, lint_mysql_set};
use safeshift_source::MigrationSet;
use safeshift_testkit::TestMysqlDatabase;

const TABLE: &str = "CREATE TABLE accounts (id bigint PRIMARY KEY AUTO_INCREMENT, email varchar(20) NOT NULL, \
                     state enum('a','b'), note text, body text) DEFAULT CHARSET = utf8mb4";

const CHANGES: &[&str] = &[
    "ADD COLUMN age int",
    "ADD COLUMN age int AFTER email",
    "DROP COLUMN note",
    "RENAME COLUMN note TO remark",
    "MODIFY COLUMN email varchar(300) NOT NULL",
    "MODIFY COLUMN email varchar(10) NOT NULL",
    "MODIFY COLUMN email varchar(20) NULL",
    "MODIFY COLUMN email bigint NOT NULL",
    "MODIFY COLUMN state enum('a','b','c')",
    "MODIFY COLUMN state enum('c','a','b')",
    "ADD INDEX accounts_email (email)",
    "ADD UNIQUE accounts_email_unique (email)",
    "ADD FULLTEXT INDEX accounts_body (body)",
    "ADD CONSTRAINT accounts_email_given CHECK (length(email) > 0)",
    "ALTER COLUMN state SET DEFAULT 'a'",
];

/// The linter's prediction for one change on `accounts`, on `target`.
fn predicted(target: &MysqlTarget, change: &str) -> (Algorithm, bool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0001_accounts.sql"),
        format!("-- migrate:up\n{TABLE};\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("0002_change.sql"),
        format!("-- migrate:up\nALTER TABLE accounts {change};\n"),
    )
    .unwrap();
    let set = MigrationSet::load(dir.path()).unwrap();
    let report = lint_mysql_set(&set, target, |version| version == "0002");
    let file = &report.files[0];
    assert!(
        file.diagnostics.is_empty(),
        "{change}: {:?}",
        file.diagnostics
    );
    let finding = file
        .findings
        .iter()
        .find(|f| f.algorithm.is_some())
        .unwrap_or_else(|| panic!("{change}: no algorithm reported"));
    (finding.algorithm.unwrap(), finding.blocks_writes)
}

/// Whether the server runs the change with these clauses on a fresh `accounts`.
fn accepts(conn: &mut mysql::Conn, change: &str, clauses: &str) -> Result<(), String> {
    conn.query_drop(format!(
        "DROP TABLE IF EXISTS accounts; {TABLE}; INSERT INTO accounts (email) VALUES ('1'), ('2')"
    ))
    .unwrap();
    conn.query_drop(format!("ALTER TABLE accounts {change}, {clauses}"))
        .map_err(|e| e.to_string())
}

#[test]
fn the_predicted_algorithm_is_what_mariadb_accepts_and_nothing_cheaper() {
    let db = TestMysqlDatabase::new();
    let mut conn = db.conn();
    let version: String = conn.query_first("SELECT VERSION()").unwrap().unwrap();
    let target = MysqlTarget::from_version_string(&version);
    for change in CHANGES {
        let (algorithm, blocks_writes) = predicted(&target, change);
        let lock = if blocks_writes {
            "LOCK=SHARED"
        } else {
            "LOCK=NONE"
        };
        let asked = match algorithm {
            Algorithm::Instant => "ALGORITHM=INSTANT".to_owned(),
            Algorithm::Inplace | Algorithm::InplaceRebuild => format!("ALGORITHM=INPLACE, {lock}"),
            Algorithm::Copy => "ALGORITHM=COPY".to_owned(),
        };
        accepts(&mut conn, change, &asked).unwrap_or_else(|error| {
            panic!("{change}: predicted {algorithm:?}, but {asked} fails: {error}")
        });
        let cheaper = match algorithm {
            Algorithm::Instant => None,
            Algorithm::Inplace | Algorithm::InplaceRebuild => Some("ALGORITHM=INSTANT".to_owned()),
            Algorithm::Copy => Some("ALGORITHM=INPLACE".to_owned()),
        };
        if let Some(cheaper) = cheaper {
            assert!(
                accepts(&mut conn, change, &cheaper).is_err(),
                "{change}: predicted {algorithm:?}, but the server also accepts {cheaper}"
            );
        }
        if !blocks_writes && algorithm != Algorithm::Copy && algorithm != Algorithm::Instant {
            accepts(&mut conn, change, "LOCK=NONE").unwrap_or_else(|error| {
                panic!("{change}: predicted concurrent writes, but LOCK=NONE fails: {error}")
            });
        }
        if blocks_writes && algorithm != Algorithm::Copy {
            assert!(
                accepts(&mut conn, change, "LOCK=NONE").is_err(),
                "{change}: predicted blocked writes, but LOCK=NONE is accepted"
            );
        }
    }
}
