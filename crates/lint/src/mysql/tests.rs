//! The MySQL rules on statements as people write them, for MySQL and MariaDB versions.

use super::*;

/// Lints `statements` as migration 0002, after 0001 created `accounts` (so 0002 changes a table
/// in use), and returns `(rule, algorithm)` per finding.
fn lint(target: MysqlTarget, statements: &str) -> Vec<(String, Option<Algorithm>)> {
    let report = lint_report(target, statements);
    assert!(
        report.files[0].diagnostics.is_empty(),
        "{:?}",
        report.files[0].diagnostics
    );
    report.files[0]
        .findings
        .iter()
        .map(|f| (f.rule.to_owned(), f.algorithm))
        .collect()
}

fn lint_report(target: MysqlTarget, statements: &str) -> MysqlLintReport {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0001_accounts.sql"),
        "-- migrate:up\nCREATE TABLE accounts (id bigint PRIMARY KEY AUTO_INCREMENT, email varchar(20) NOT NULL, \
         state enum('a','b'), note text);\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("0002_change.sql"),
        format!("-- migrate:up\n{statements}\n"),
    )
    .unwrap();
    let set = MigrationSet::load(dir.path()).unwrap();
    lint_mysql_set(&set, &target, |version| version == "0002")
}

fn mariadb() -> MysqlTarget {
    MysqlTarget::default_for(Server::Mariadb)
}

fn mysql(version: (u32, u32, u32)) -> MysqlTarget {
    MysqlTarget {
        server: Server::Mysql,
        version,
    }
}

fn found(rule: &str, algorithm: Algorithm) -> (String, Option<Algorithm>) {
    (rule.to_owned(), Some(algorithm))
}

#[test]
fn adding_a_column_is_instant_where_the_server_can() {
    let sql = "ALTER TABLE accounts ADD COLUMN age int AFTER email;";
    assert_eq!(
        lint(mariadb(), sql),
        [found("mysql-algorithm-not-stated", Algorithm::Instant)]
    );
    assert_eq!(
        lint(mysql((8, 0, 36)), sql),
        [found("mysql-algorithm-not-stated", Algorithm::Instant)]
    );
    // Before 8.0.29 only the last position is instant.
    assert_eq!(
        lint(mysql((8, 0, 20)), sql),
        [found(
            "mysql-alter-rebuilds-table",
            Algorithm::InplaceRebuild
        )]
    );
    assert_eq!(
        lint(
            mysql((8, 0, 20)),
            "ALTER TABLE accounts ADD COLUMN age int;"
        ),
        [found("mysql-algorithm-not-stated", Algorithm::Instant)]
    );
    assert!(
        lint(
            mariadb(),
            "ALTER TABLE accounts ADD COLUMN age int, ALGORITHM=INSTANT;"
        )
        .is_empty()
    );
}

#[test]
fn the_safe_form_states_the_algorithm() {
    let report = lint_report(
        mariadb(),
        "ALTER TABLE accounts ADD INDEX accounts_email (email);",
    );
    let finding = &report.files[0].findings[0];
    assert_eq!(finding.rule, "mysql-algorithm-not-stated");
    assert_eq!(
        finding.safe_alternative.as_deref(),
        Some("ALTER TABLE accounts ADD INDEX accounts_email (email), ALGORITHM=INPLACE, LOCK=NONE")
    );
    assert!(
        finding
            .metadata_lock
            .starts_with("EXCLUSIVE at the start and the end")
    );
    // The safe form passes.
    assert!(
        lint(
            mariadb(),
            "ALTER TABLE accounts ADD INDEX accounts_email (email), ALGORITHM=INPLACE, LOCK=NONE;"
        )
        .is_empty()
    );
}

#[test]
fn a_type_change_copies_and_a_longer_varchar_does_not() {
    let copy = lint_report(
        mariadb(),
        "ALTER TABLE accounts MODIFY COLUMN email varchar(10) NOT NULL;",
    );
    let finding = &copy.files[0].findings[0];
    assert_eq!(finding.rule, "mysql-alter-copies-table");
    assert!(finding.blocks_writes);
    assert!(finding.metadata_lock.starts_with("SHARED_NO_WRITE"));
    assert_eq!(
        finding.safe_alternative.as_deref(),
        Some(
            "-- safeshift:online-schema-change\nALTER TABLE accounts MODIFY COLUMN email varchar(10) NOT NULL"
        )
    );
    // Lengthening a VARCHAR: instant on MariaDB; on MySQL in place within its length prefix.
    assert_eq!(
        lint(
            mariadb(),
            "ALTER TABLE accounts MODIFY COLUMN email varchar(300) NOT NULL;"
        ),
        [found("mysql-algorithm-not-stated", Algorithm::Instant)]
    );
    assert_eq!(
        lint(
            mysql((8, 0, 36)),
            "ALTER TABLE accounts MODIFY COLUMN email varchar(60) NOT NULL;"
        ),
        [found("mysql-algorithm-not-stated", Algorithm::Inplace)]
    );
    assert_eq!(
        lint(
            mysql((8, 0, 36)),
            "ALTER TABLE accounts MODIFY COLUMN email varchar(300) NOT NULL;"
        ),
        [found("mysql-alter-copies-table", Algorithm::Copy)]
    );
    assert_eq!(
        lint(
            mariadb(),
            "ALTER TABLE accounts MODIFY COLUMN state enum('a','b','c');"
        ),
        [found("mysql-algorithm-not-stated", Algorithm::Instant)]
    );
    assert_eq!(
        lint(
            mariadb(),
            "ALTER TABLE accounts MODIFY COLUMN email varchar(20) NULL;"
        ),
        [found(
            "mysql-alter-rebuilds-table",
            Algorithm::InplaceRebuild
        )]
    );
}

#[test]
fn a_clause_the_server_cannot_honour_fails_the_statement() {
    assert_eq!(
        lint(
            mariadb(),
            "ALTER TABLE accounts MODIFY COLUMN email bigint NOT NULL, ALGORITHM=INPLACE, LOCK=NONE;"
        ),
        [found("mysql-algorithm-not-available", Algorithm::Copy)]
    );
    assert_eq!(
        lint(
            mysql((8, 0, 20)),
            "ALTER TABLE accounts DROP COLUMN note, ALGORITHM=INSTANT;"
        ),
        [
            found("mysql-algorithm-not-available", Algorithm::InplaceRebuild),
            ("mysql-dropping-data".to_owned(), None)
        ]
    );
}

#[test]
fn writes_wait_for_fulltext_and_foreign_keys() {
    assert_eq!(
        lint(
            mariadb(),
            "ALTER TABLE accounts ADD FULLTEXT INDEX accounts_note (note);"
        ),
        [found(
            "mysql-alter-blocks-writes",
            Algorithm::InplaceRebuild
        )]
    );
    assert_eq!(
        lint(
            mariadb(),
            "ALTER TABLE accounts ADD CONSTRAINT fk FOREIGN KEY (id) REFERENCES other (id);"
        ),
        [found("mysql-alter-copies-table", Algorithm::Copy)]
    );
}

#[test]
fn new_tables_are_free_to_change_and_old_data_is_flagged() {
    assert!(
        lint(
            mariadb(),
            "CREATE TABLE fresh (id int);\nALTER TABLE fresh MODIFY COLUMN id bigint;\nDROP TABLE fresh;"
        )
        .is_empty()
    );
    assert_eq!(
        lint(
            mariadb(),
            "DROP TABLE accounts;\nUPDATE other SET x = 1;\nRENAME TABLE other TO others;"
        )
        .into_iter()
        .map(|(rule, _)| rule)
        .collect::<Vec<_>>(),
        [
            "mysql-dropping-data",
            "mysql-unbatched-data-change",
            "mysql-renaming"
        ]
    );
}

#[test]
fn an_acknowledged_finding_keeps_its_reason() {
    let report = lint_report(
        mariadb(),
        "-- safeshift:allow mysql-alter-copies-table the table holds 40 rows\n\
         ALTER TABLE accounts MODIFY COLUMN email int NOT NULL;",
    );
    let finding = &report.files[0].findings[0];
    assert_eq!(
        finding.suppressed.as_deref(),
        Some("the table holds 40 rows")
    );
    assert_eq!(report.files[0].risk(), None);
    assert!(!report.fails(Risk::Low));
}

/// The safe form the lint proposes is not reported again: an ALTER run with
/// pt-online-schema-change copies online, so its copy, rebuild and write-blocking findings go;
/// a clause the server cannot honour still fails it.
#[test]
fn an_alter_run_as_an_online_schema_change_is_not_flagged() {
    assert!(
        lint(
            mariadb(),
            "-- safeshift:online-schema-change\nALTER TABLE accounts MODIFY COLUMN email varchar(10) NOT NULL;"
        )
        .is_empty()
    );
    assert!(
        lint(
            mariadb(),
            "-- safeshift:online-schema-change chunk-time=1s\nALTER TABLE accounts ADD FULLTEXT INDEX ft (note);"
        )
        .is_empty()
    );
    assert_eq!(
        lint(
            mariadb(),
            "ALTER TABLE accounts MODIFY COLUMN email varchar(10) NOT NULL;"
        ),
        [found("mysql-alter-copies-table", Algorithm::Copy)]
    );
}
