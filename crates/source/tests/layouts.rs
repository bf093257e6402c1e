//! Other tools' layouts read as they are: detection, each layout's sections and transaction
//! rules, templates, and the errors for what cannot be followed.

use std::collections::BTreeMap;

use safeshift_source::{
    Dialect, Direction, Format, Layout, LoadOptions, MigrationSet, SourceErrorKind, SourceErrors,
    Variables, Version, detect_format, discover_directory, existing_versions, flyway_checksum,
    plan_new_migration,
};

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

fn versions(set: &MigrationSet) -> Vec<&str> {
    set.migrations.iter().map(|m| m.version.as_str()).collect()
}

fn only_error(errors: SourceErrors) -> safeshift_source::SourceError {
    assert_eq!(errors.0.len(), 1, "{errors}");
    errors.0.into_iter().next().unwrap()
}

fn with_format(format: Format) -> LoadOptions {
    LoadOptions {
        format: Some(format),
        ..LoadOptions::default()
    }
}

#[test]
fn goose_files_are_detected_and_read() {
    let dir = dir_with(&[
        (
            "00001_users.sql",
            "-- +goose Up\nCREATE TABLE users (id int);\n-- +goose Down\nDROP TABLE users;\n",
        ),
        (
            "00002_index.sql",
            "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY users_id ON users (id);\n-- +goose Down\nDROP INDEX CONCURRENTLY users_id;\n",
        ),
    ]);
    let set = MigrationSet::load(dir.path()).unwrap();
    assert_eq!(set.detection.format, Format::Goose);
    assert!(
        set.detection.reason.contains("2 of 2"),
        "{}",
        set.detection.reason
    );
    assert_eq!(versions(&set), ["00001", "00002"]);
    assert_eq!(set.migrations[0].layout, Layout::Goose);
    assert!(!set.migrations[1].up.options.transaction);
    assert!(
        !set.migrations[1]
            .down_section()
            .unwrap()
            .options
            .transaction
    );
    assert_eq!(
        existing_versions(dir.path()).unwrap()[0].1,
        Layout::Goose,
        "new follows the goose layout"
    );
}

#[test]
fn goose_go_migrations_stop_the_load() {
    let dir = dir_with(&[
        ("00001_users.sql", "-- +goose Up\nSELECT 1;\n"),
        ("00002_backfill.go", "package migrations\n"),
    ]);
    let error = only_error(MigrationSet::load(dir.path()).unwrap_err());
    assert_eq!(error.kind, SourceErrorKind::Layout);
    assert!(error.path.ends_with("00002_backfill.go"));
}

#[test]
fn plain_files_with_and_without_section_comments() {
    let dir = dir_with(&[
        (
            "001_users.sql",
            "-- Up Migration\nCREATE TABLE users (id int);\n-- Down Migration\nDROP TABLE users;\n",
        ),
        ("002_seed.sql", "INSERT INTO users VALUES (1);\n"),
    ]);
    let set = MigrationSet::load(dir.path()).unwrap();
    assert_eq!(set.detection.format, Format::Plain);
    assert_eq!(set.migrations[0].layout, Layout::Plain);
    assert!(set.migrations[0].down_section().is_ok());
    assert_eq!(
        set.migrations[1]
            .up
            .statements(Dialect::Postgres)
            .unwrap()
            .len(),
        1
    );
    assert!(set.migrations[1].down.is_none());
    // Without any section comment, files are read as plain only when asked.
    let dir = dir_with(&[("001_users.sql", "CREATE TABLE users (id int);\n")]);
    let error = only_error(MigrationSet::load(dir.path()).unwrap_err());
    assert_eq!(error.kind, SourceErrorKind::MissingUp);
    assert!(error.help.unwrap().contains("--migration-format plain"));
    let set = MigrationSet::load_with(dir.path(), &with_format(Format::Plain)).unwrap();
    assert_eq!(set.migrations[0].layout, Layout::Plain);
}

#[test]
fn a_forced_format_refuses_files_of_another() {
    let dir = dir_with(&[(
        "0001_a.sql",
        "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n",
    )]);
    let error =
        only_error(MigrationSet::load_with(dir.path(), &with_format(Format::Goose)).unwrap_err());
    assert_eq!(error.kind, SourceErrorKind::Layout);
    let dir = dir_with(&[("00001_a.sql", "-- +goose Up\nSELECT 1;\n")]);
    let error = only_error(
        MigrationSet::load_with(dir.path(), &with_format(Format::Safeshift)).unwrap_err(),
    );
    assert!(
        error.message.contains("goose annotations"),
        "{}",
        error.message
    );
}

#[test]
fn diesel_directories() {
    let dir = dir_with(&[
        (
            "00000000000000_diesel_initial_setup/up.sql",
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql;\n",
        ),
        (
            "00000000000000_diesel_initial_setup/down.sql",
            "DROP FUNCTION f();\n",
        ),
        (
            "2024-01-15-093000_create_users/up.sql",
            "CREATE TABLE users (id int);\n",
        ),
        (
            "2024-01-15-093000_create_users/down.sql",
            "DROP TABLE users;\n",
        ),
        (
            "2024-01-16-100000_index_users/up.sql",
            "CREATE INDEX CONCURRENTLY users_id ON users (id);\n",
        ),
        (
            "2024-01-16-100000_index_users/metadata.toml",
            "run_in_transaction = false\n",
        ),
        (".keep", ""),
    ]);
    let set = MigrationSet::load(dir.path()).unwrap();
    assert_eq!(set.detection.format, Format::Diesel);
    assert_eq!(
        versions(&set),
        ["00000000000000", "20240115093000", "20240116100000"]
    );
    assert_eq!(set.migrations[1].name, "create_users");
    assert_eq!(
        set.migrations[1].file().to_str().unwrap(),
        "2024-01-15-093000_create_users/up.sql"
    );
    assert!(!set.migrations[2].up.options.transaction);
    assert!(set.migrations[2].down.is_none());
    // A statement that needs no transaction, without the metadata, names diesel's option.
    let dir = dir_with(&[(
        "2024-01-16-100000_index_users/up.sql",
        "CREATE INDEX CONCURRENTLY users_id ON users (id);\n",
    )]);
    let set = MigrationSet::load(dir.path()).unwrap();
    let error = set.migrations[0]
        .up
        .executable_statements(Dialect::Postgres)
        .unwrap_err();
    assert!(
        error.help.unwrap().contains("run_in_transaction = false"),
        "diesel's own option is named"
    );
    let new = plan_new_migration(
        dir.path(),
        &existing_versions(dir.path()).unwrap(),
        "add orders",
        None,
        None,
        chrono::DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .into(),
    )
    .unwrap();
    assert!(
        new.files[0]
            .0
            .ends_with("2030-01-01-100000_add_orders/up.sql"),
        "{:?}",
        new.files
    );
}

#[test]
fn prisma_directories_with_an_optional_down() {
    let dir = dir_with(&[
        ("migration_lock.toml", "provider = \"postgresql\"\n"),
        (
            "20240115093000_init/migration.sql",
            "-- CreateTable\nCREATE TABLE \"User\" (\"id\" SERIAL NOT NULL);\n",
        ),
        ("20240115093000_init/down.sql", "DROP TABLE \"User\";\n"),
        (
            "20240116093000_index/migration.sql",
            "CREATE INDEX CONCURRENTLY \"User_id\" ON \"User\" (\"id\");\n",
        ),
    ]);
    let set = MigrationSet::load(dir.path()).unwrap();
    assert_eq!(set.detection.format, Format::Prisma);
    assert_eq!(versions(&set), ["20240115093000", "20240116093000"]);
    assert_eq!(set.migrations[0].name, "init");
    assert!(set.migrations[0].down_section().is_ok());
    assert!(
        !set.migrations[1].up.options.transaction,
        "a lone CREATE INDEX CONCURRENTLY runs outside a transaction, as Prisma sends it"
    );
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn flyway_locations_undo_repeatables_and_placeholders() {
    let dir = dir_with(&[
        (
            "flyway.conf",
            "flyway.locations=filesystem:db/migration,filesystem:db/repeatable\nflyway.placeholders.owner=app_owner\n",
        ),
        (
            "db/migration/V1__create_users.sql",
            "CREATE TABLE users (id int);\nALTER TABLE users OWNER TO ${owner};\n",
        ),
        ("db/migration/U1__create_users.sql", "DROP TABLE users;\n"),
        (
            "db/migration/2024/V1_1__index.sql",
            "CREATE INDEX CONCURRENTLY users_id ON users (id);\n",
        ),
        (
            "db/migration/V2__orders.sql",
            "CREATE TABLE orders (id int);\n",
        ),
        (
            "db/migration/V2__orders.sql.conf",
            "executeInTransaction=false\n",
        ),
        (
            "db/repeatable/R__views.sql",
            "CREATE OR REPLACE VIEW v AS SELECT id FROM users; -- ${flyway:filename}\n",
        ),
        ("db/migration/notes.sql", "SELECT 1;\n"),
    ]);
    assert_eq!(detect_format(dir.path()).unwrap().format, Format::Flyway);
    let set = MigrationSet::load(dir.path()).unwrap();
    assert_eq!(versions(&set), ["1", "1.1", "2", "R__views"]);
    assert!(set.migrations[3].version.is_repeatable());
    let statements = set.migrations[0]
        .executable_statements(Direction::Up, Dialect::Postgres)
        .unwrap();
    assert_eq!(statements[1].sql, "ALTER TABLE users OWNER TO app_owner");
    assert!(
        set.migrations[0].down_section().is_ok(),
        "U1 is the undo of V1"
    );
    assert!(
        !set.migrations[1].up.options.transaction,
        "CIC runs outside"
    );
    assert!(!set.migrations[2].up.options.transaction, ".sql.conf");
    assert!(set.migrations[3].up.sql().contains("-- R__views.sql"));
    assert_eq!(
        set.warnings.len(),
        1,
        "notes.sql is ignored: {:?}",
        set.warnings
    );
    // The checksum is taken on the file as written.
    let raw = std::fs::read(dir.path().join("db/migration/V1__create_users.sql")).unwrap();
    assert_eq!(
        flyway_checksum(&raw),
        flyway_checksum(b"CREATE TABLE users (id int);\r\nALTER TABLE users OWNER TO ${owner};")
    );
}

#[test]
fn flyway_placeholders_without_values_name_the_file_and_line() {
    let dir = dir_with(&[
        ("sql/V1__a.sql", "SELECT 1;\nCREATE SCHEMA ${schema};\n"),
        (
            "flyway.toml",
            "[flyway]\nlocations = [\"filesystem:sql\"]\n",
        ),
    ]);
    let error = only_error(MigrationSet::load(dir.path()).unwrap_err());
    assert_eq!(error.kind, SourceErrorKind::Template);
    assert!(error.path.ends_with("sql/V1__a.sql"));
    assert_eq!((error.line, error.column), (Some(2), Some(15)));
    assert!(error.help.unwrap().contains("--var schema=VALUE"));
    let options = LoadOptions {
        variables: Variables {
            given: BTreeMap::from([("schema".to_owned(), "billing".to_owned())]),
            ..Variables::default()
        },
        ..LoadOptions::default()
    };
    let set = MigrationSet::load_with(dir.path(), &options).unwrap();
    assert!(set.migrations[0].up.sql().contains("CREATE SCHEMA billing"));
}

#[test]
fn go_templates_in_any_layout() {
    let dir = dir_with(&[(
        "0001_a.sql",
        "-- migrate:up\nCREATE TABLE {{ .Prefix }}_users (id int);\n",
    )]);
    let error = only_error(MigrationSet::load(dir.path()).unwrap_err());
    assert_eq!(error.kind, SourceErrorKind::Template);
    assert_eq!(error.line, Some(2));
    let options = LoadOptions {
        variables: Variables {
            given: BTreeMap::from([("Prefix".to_owned(), "shop".to_owned())]),
            ..Variables::default()
        },
        ..LoadOptions::default()
    };
    let expanded = MigrationSet::load_with(dir.path(), &options).unwrap();
    assert!(expanded.migrations[0].up.sql().contains("shop_users"));
    let other = MigrationSet::load_with(
        dir.path(),
        &LoadOptions {
            variables: Variables {
                given: BTreeMap::from([("Prefix".to_owned(), "crm".to_owned())]),
                ..Variables::default()
            },
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        expanded.migrations[0].up.checksum, other.migrations[0].up.checksum,
        "the checksum is the file's, whatever the values"
    );
}

#[test]
fn sqitch_projects() {
    let dir = dir_with(&[
        ("sqitch.conf", "[core]\n\tengine = pg\n\ttop_dir = db\n"),
        (
            "db/sqitch.plan",
            "%syntax-version=1.0.0\n%project=shop\n\nschema 2024-01-01T00:00:00Z Ann <ann@example.com> # Schema.\nusers [schema] 2024-01-02T00:00:00Z Ann <ann@example.com> # Users.\n",
        ),
        (
            "db/deploy/schema.sql",
            "BEGIN;\nCREATE SCHEMA shop;\nCOMMIT;\n",
        ),
        (
            "db/revert/schema.sql",
            "BEGIN;\nDROP SCHEMA shop;\nCOMMIT;\n",
        ),
        (
            "db/deploy/users.sql",
            "-- Deploy shop:users to pg\n-- requires: schema\n\nBEGIN;\n\nCREATE TABLE shop.users (id int);\n\nCOMMIT;\n",
        ),
        (
            "db/verify/users.sql",
            "BEGIN;\nSELECT id FROM shop.users WHERE false;\nROLLBACK;\n",
        ),
    ]);
    let set = MigrationSet::load(dir.path()).unwrap();
    assert_eq!(set.detection.format, Format::Sqitch);
    assert_eq!(versions(&set), ["1", "2"]);
    assert_eq!(set.migrations[1].name, "users");
    assert!(set.migrations[1].verify.is_some());
    assert!(set.migrations[1].down.is_none());
    assert_eq!(
        set.migrations[1].file().to_str().unwrap(),
        "db/deploy/users.sql"
    );
    let new = plan_new_migration(
        dir.path(),
        &existing_versions(dir.path()).unwrap(),
        "orders",
        None,
        None,
        chrono::Utc::now(),
    );
    assert!(new.unwrap_err().contains("sqitch add"));
}

#[test]
fn mixed_layouts_are_refused_with_what_was_found() {
    let dir = dir_with(&[
        ("V1__a.sql", "SELECT 1;\n"),
        ("0002_b.sql", "-- migrate:up\nSELECT 1;\n"),
    ]);
    let error = only_error(MigrationSet::load(dir.path()).unwrap_err());
    assert_eq!(error.kind, SourceErrorKind::Layout);
    assert!(
        error.message.contains("1 Flyway files"),
        "{}",
        error.message
    );
    // Choosing one reads it, and reports the others' files as ignored.
    let set = MigrationSet::load_with(dir.path(), &with_format(Format::Flyway)).unwrap();
    assert_eq!(versions(&set), ["1"]);
    assert_eq!(set.warnings.len(), 1);
}

#[test]
fn projects_are_found_where_the_other_tool_keeps_them() {
    let dir = dir_with(&[(
        "prisma/migrations/20240101000000_init/migration.sql",
        "SELECT 1;",
    )]);
    assert_eq!(
        discover_directory(dir.path()).unwrap(),
        dir.path().join("prisma/migrations")
    );
    let dir = dir_with(&[
        (
            "diesel.toml",
            "[migrations_directory]\ndir = \"db/diesel\"\n",
        ),
        ("db/diesel/2024-01-01-000000_a/up.sql", "SELECT 1;"),
    ]);
    assert_eq!(
        discover_directory(dir.path()).unwrap(),
        dir.path().join("db/diesel")
    );
    let dir = dir_with(&[("flyway.toml", "[flyway]\n")]);
    assert_eq!(discover_directory(dir.path()).unwrap(), dir.path());
    let dir = dir_with(&[("migrations/0001_a.sql", "-- migrate:up\nSELECT 1;")]);
    assert_eq!(
        discover_directory(dir.path()).unwrap(),
        dir.path().join("migrations")
    );
}

#[test]
fn repeatable_versions_sort_last() {
    assert!(Version::parse("R__a").unwrap() > Version::parse("20991231235959").unwrap());
}
