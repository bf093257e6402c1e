//! Loading migration directories: every layout, and every malformed-file error with its place.

use std::path::Path;

use safeshift_source::{
    Direction, Layout, MigrationSet, MissingDown, SourceErrorKind, SourceErrors,
};

fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

fn load_err(files: &[(&str, &[u8])]) -> SourceErrors {
    let dir = dir_with(files);
    MigrationSet::load(dir.path()).expect_err("loading should fail")
}

fn only_error(files: &[(&str, &[u8])]) -> safeshift_source::SourceError {
    let errors = load_err(files);
    assert_eq!(errors.0.len(), 1, "{errors}");
    errors.0.into_iter().next().unwrap()
}

const NATIVE: &[u8] = b"-- Migration 0001\n-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down\nDROP TABLE a;\n";

#[test]
fn reads_the_three_layouts_in_version_order() {
    let dir = dir_with(&[
        ("0010_pair.up.sql", b"CREATE TABLE c (id int);\n"),
        ("0010_pair.down.sql", b"DROP TABLE c;\n"),
        ("0001_create_a.sql", NATIVE),
        ("0002_add_b.sql", b"CREATE TABLE b (id int);\n"),
        ("rollback/0002_rollback_b.sql", b"DROP TABLE b;\n"),
        ("README.md", b"not a migration"),
    ]);
    let set = MigrationSet::load(dir.path()).unwrap();
    let versions: Vec<_> = set.migrations.iter().map(|m| m.version.as_str()).collect();
    assert_eq!(versions, ["0001", "0002", "0010"]);
    assert_eq!(set.migrations[0].layout, Layout::Sections);
    assert_eq!(set.migrations[1].layout, Layout::RollbackDirectory);
    assert_eq!(set.migrations[2].layout, Layout::Pair);
    assert_eq!(
        set.migrations[0].up.sql().trim(),
        "CREATE TABLE a (id int);"
    );
    assert_eq!(set.migrations[0].up.body_line(), 3);
    assert_eq!(
        set.migrations[0].down_section().unwrap().sql().trim(),
        "DROP TABLE a;"
    );
    assert_eq!(
        set.migrations[1].down_section().unwrap().relative_path,
        Path::new("rollback/0002_rollback_b.sql")
    );
    assert_eq!(
        set.migrations[2].down.as_ref().unwrap().direction,
        Direction::Down
    );
    assert_eq!(set.migrations[0].name, "create_a");
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn line_endings_and_bom_do_not_change_checksums() {
    let crlf: Vec<u8> = [
        b"\xEF\xBB\xBF".as_slice(),
        &NATIVE
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect::<Vec<u8>>(),
    ]
    .concat();
    let a = MigrationSet::load(dir_with(&[("0001_a.sql", NATIVE)]).path()).unwrap();
    let b = MigrationSet::load(dir_with(&[("0001_a.sql", &crlf)]).path()).unwrap();
    assert_eq!(a.migrations[0].up.checksum, b.migrations[0].up.checksum);
    // Editing the down section does not change the up checksum; editing the up section does.
    let down_edited =
        MigrationSet::load(dir_with(&[("0001_a.sql", &[NATIVE, b"-- fixed\n"].concat())]).path())
            .unwrap();
    assert_eq!(
        a.migrations[0].up.checksum,
        down_edited.migrations[0].up.checksum
    );
    assert_ne!(
        a.migrations[0].down.as_ref().unwrap().checksum,
        down_edited.migrations[0].down.as_ref().unwrap().checksum
    );
    let up_edited = MigrationSet::load(
        dir_with(&[(
            "0001_a.sql",
            b"-- migrate:up\nCREATE TABLE a (id bigint);\n-- migrate:down\nDROP TABLE a;\n",
        )])
        .path(),
    )
    .unwrap();
    assert_ne!(
        a.migrations[0].up.checksum,
        up_edited.migrations[0].up.checksum
    );
}

#[test]
fn options_on_the_marker_line() {
    let set = MigrationSet::load(
        dir_with(&[(
            "0001_idx.sql",
            b"-- migrate:up transaction:false lock_timeout:2s\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY i;\n",
        )])
        .path(),
    )
    .unwrap();
    let migration = &set.migrations[0];
    assert!(!migration.up.options.transaction);
    assert_eq!(
        migration.up.options.lock_timeout,
        Some(std::time::Duration::from_secs(2))
    );
    assert!(!migration.down.as_ref().unwrap().options.transaction);
}

#[test]
fn sqlx_no_transaction_first_line_is_honoured() {
    let set = MigrationSet::load(
        dir_with(&[(
            "0001_idx.up.sql",
            b"-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
        )])
        .path(),
    )
    .unwrap();
    assert!(!set.migrations[0].up.options.transaction);
    assert_eq!(
        set.migrations[0].down_section().unwrap_err(),
        MissingDown::Absent
    );
}

#[test]
fn duplicate_versions_name_both_files() {
    let error = only_error(&[("0001_a.sql", NATIVE), ("1_b.sql", NATIVE)]);
    assert_eq!(error.kind, SourceErrorKind::DuplicateVersion);
    assert!(error.message.contains("0001_a.sql"), "{}", error.message);
    assert!(error.path.ends_with("1_b.sql"));
}

#[test]
fn a_file_without_an_up_section() {
    let error = only_error(&[("0001_a.sql", b"CREATE TABLE a (id int);\n")]);
    assert_eq!(error.kind, SourceErrorKind::MissingUp);
    assert_eq!(error.line, Some(1));
    let error = only_error(&[("0001_a.sql", b"-- migrate:down\nDROP TABLE a;\n")]);
    assert_eq!(error.kind, SourceErrorKind::MissingUp);
    assert_eq!(error.line, Some(1));
}

#[test]
fn an_up_section_without_statements() {
    let error = only_error(&[(
        "0001_a.sql",
        b"-- migrate:up\n-- nothing yet\n\n-- migrate:down\n",
    )]);
    assert_eq!(error.kind, SourceErrorKind::EmptyUp);
    assert_eq!(error.line, Some(1));
}

#[test]
fn unknown_options_are_located() {
    let error = only_error(&[(
        "0001_a.sql",
        b"-- header\n-- migrate:up transaction:flase\nSELECT 1;\n",
    )]);
    assert_eq!(error.kind, SourceErrorKind::UnknownOption);
    assert_eq!((error.line, error.column), (Some(2), Some(15)));
    assert!(
        error
            .help
            .as_deref()
            .unwrap()
            .contains("transaction:true|false")
    );
    let error = only_error(&[("0001_a.sql", b"-- migrate:up retries:3\nSELECT 1;\n")]);
    assert!(
        error.message.contains("unknown option `retries`"),
        "{}",
        error.message
    );
}

#[test]
fn empty_and_non_utf8_files() {
    let error = only_error(&[("0001_a.sql", b"  \n\n")]);
    assert_eq!(error.kind, SourceErrorKind::Empty);
    let error = only_error(&[("0001_a.sql", b"-- migrate:up\nSELECT '\xe9t\xe9';\n")]);
    assert_eq!(error.kind, SourceErrorKind::NotUtf8);
    assert_eq!((error.line, error.column), (Some(2), Some(9)));
}

#[test]
fn down_files_without_their_up_file() {
    let error = only_error(&[("0001_a.down.sql", b"DROP TABLE a;\n")]);
    assert_eq!(error.kind, SourceErrorKind::OrphanDown);
    let error = only_error(&[
        ("0001_a.up.sql", b"CREATE TABLE a (id int);\n"),
        ("0001_b.down.sql", b"DROP TABLE b;\n"),
    ]);
    assert_eq!(error.kind, SourceErrorKind::OrphanDown);
    assert!(error.path.ends_with("0001_b.down.sql"));
    let error = only_error(&[("rollback/0007_rollback_a.sql", b"DROP TABLE a;\n")]);
    assert_eq!(error.kind, SourceErrorKind::OrphanDown);
}

#[test]
fn markers_that_are_not_quite_markers() {
    let error = only_error(&[("0001_a.sql", b"-- migrate: up\nSELECT 1;\n")]);
    assert_eq!(error.kind, SourceErrorKind::UnknownMarker);
    // A goose annotation in a file that has safeshift's markers mixes two layouts in one file.
    let error = only_error(&[(
        "0001_a.sql",
        b"-- migrate:up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n",
    )]);
    assert_eq!(error.kind, SourceErrorKind::UnknownMarker);
    assert_eq!(error.line, Some(3));
    assert!(error.help.unwrap().contains("-- migrate:up"));
}

#[test]
fn misplaced_markers_and_code_before_up() {
    let error = only_error(&[(
        "0001_a.sql",
        b"-- migrate:down\nDROP TABLE a;\n-- migrate:up\nCREATE TABLE a ();\n",
    )]);
    assert_eq!(error.kind, SourceErrorKind::MisplacedMarker);
    assert_eq!(error.line, Some(3));
    let error = only_error(&[(
        "0001_a.sql",
        b"-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n",
    )]);
    assert_eq!(error.kind, SourceErrorKind::MisplacedMarker);
    let error = only_error(&[(
        "0001_a.sql",
        b"-- header\nCREATE TABLE early ();\n-- migrate:up\nSELECT 1;\n",
    )]);
    assert_eq!(error.kind, SourceErrorKind::CodeBeforeUp);
    assert_eq!((error.line, error.column), (Some(2), Some(1)));
    let error = only_error(&[("0001_a.up.sql", b"SELECT 1;\n-- migrate:down\nSELECT 2;\n")]);
    assert_eq!(error.kind, SourceErrorKind::MisplacedMarker);
}

#[test]
fn bad_file_names_and_ignored_files() {
    let error = only_error(&[("0001.sql", NATIVE)]);
    assert_eq!(error.kind, SourceErrorKind::BadFileName);
    let error = only_error(&[("2024a_x.sql", NATIVE)]);
    assert_eq!(error.kind, SourceErrorKind::BadFileName);
    let set = MigrationSet::load(
        dir_with(&[
            ("seed.sql", b"INSERT INTO a VALUES (1);"),
            ("0001_a.sql", NATIVE),
        ])
        .path(),
    )
    .unwrap();
    assert_eq!(set.migrations.len(), 1);
    assert_eq!(set.warnings.len(), 1);
    assert!(set.warnings[0].path.ends_with("seed.sql"));
}

#[test]
fn every_error_in_the_directory_is_reported_at_once() {
    let errors = load_err(&[
        ("0001_a.sql", b""),
        ("0002_b.sql", b"SELECT 1;"),
        ("0003_c.down.sql", b"SELECT 1;"),
    ]);
    let kinds: Vec<_> = errors.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            SourceErrorKind::Empty,
            SourceErrorKind::MissingUp,
            SourceErrorKind::OrphanDown
        ]
    );
}

#[test]
fn a_missing_directory_says_how_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let errors = MigrationSet::load(dir.path().join("nope")).unwrap_err();
    assert_eq!(errors.0[0].kind, SourceErrorKind::Io);
    assert!(
        errors.0[0]
            .help
            .as_deref()
            .unwrap()
            .contains("safeshift init")
    );
}

#[test]
fn transaction_mode_errors_say_how_to_fix_the_file() {
    let set = MigrationSet::load(
        dir_with(&[(
            "0001_idx.sql",
            b"-- migrate:up\nCREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
        )])
        .path(),
    )
    .unwrap();
    let error = set.migrations[0]
        .up
        .executable_statements(safeshift_source::Dialect::Postgres)
        .unwrap_err();
    assert_eq!(error.kind, SourceErrorKind::TransactionMode);
    assert_eq!(error.line, Some(3));
    assert!(
        error.message.contains("CREATE INDEX CONCURRENTLY"),
        "{}",
        error.message
    );
    assert!(
        error
            .help
            .unwrap()
            .contains("`-- migrate:up transaction:false`")
    );
    let set =
        MigrationSet::load(dir_with(&[("0001_tx.up.sql", b"BEGIN;\nSELECT 1;\nCOMMIT;\n")]).path())
            .unwrap();
    let error = set.migrations[0]
        .up
        .executable_statements(safeshift_source::Dialect::Postgres)
        .unwrap_err();
    assert!(error.message.contains("`BEGIN`"), "{}", error.message);
    assert!(error.help.unwrap().contains("first line"));
}
