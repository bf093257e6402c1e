//! Migration files for safeshift: finding them in every supported layout, reading them into up and
//! down sections with their options, checksumming them, and splitting sections into statements.
//!
//! Three layouts are read as they are, without conversion:
//!
//! * `0004_add_idempotency_tables.sql` with `-- migrate:up` and `-- migrate:down` sections (the
//!   layout dbmate uses; options such as `transaction:false` go on the marker line);
//! * `0004_add_idempotency_tables.up.sql` and `.down.sql` pairs (golang-migrate, sqlx);
//! * `0004_add_idempotency_tables.sql` with `rollback/0004_rollback_idempotency_tables.sql`.
//!
//! This crate knows nothing about databases or terminals: it returns values and errors that name
//! the file, line and column.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! std::fs::write(
//!     dir.path().join("0001_create_users.sql"),
//!     "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY);\n-- migrate:down\nDROP TABLE users;\n",
//! ).unwrap();
//! let set = safeshift_source::MigrationSet::load(dir.path()).unwrap();
//! let migration = &set.migrations[0];
//! assert_eq!(migration.version.as_str(), "0001");
//! let statements = migration.up.executable_statements(safeshift_source::Dialect::Postgres).unwrap();
//! assert_eq!(statements[0].sql, "CREATE TABLE users (id bigint PRIMARY KEY)");
//! ```

mod checksum;
mod error;
mod format;
mod layouts;
mod load;
mod loose;
mod migration;
mod new;
mod options;
mod statements;
mod template;
mod text;
mod unclassified;
mod version;

pub use checksum::Checksum;
pub use error::{SourceError, SourceErrorKind, SourceErrors};
pub use format::{Detection, Format, LoadOptions, detect_format, discover_directory};
pub use layouts::flyway::flyway_checksum;
pub use layouts::prisma::prisma_checksum_matches;
pub use layouts::sqitch::{SqitchChange, SqitchPlan, sqitch_script_hash};
pub use load::{MigrationSet, ROLLBACK_DIRECTORY, SourceWarning, existing_versions};
pub use loose::LooseFile;
pub use migration::{Layout, Migration, MissingDown, Section};
pub use new::{
    NewMigration, VersionScheme, default_directory, plan_migration_with_sql, plan_new_migration,
    slugify, write_new_migration,
};
pub use options::{
    Direction, KNOWN_OPTIONS, MAX_TIMEOUT, SectionOptions, check_timeout, parse_duration,
    parse_timeout,
};
pub use statements::{
    ConcurrentIndex, Dialect, Directive, Statement, Transactionality, scan_tokens,
    transactionality_of,
};
pub use template::Variables;
pub use text::SourceText;
pub use version::Version;
