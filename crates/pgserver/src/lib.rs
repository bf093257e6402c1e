//! Throwaway PostgreSQL servers started from the PostgreSQL binaries installed on this machine.
//!
//! `safeshift rehearse` proves migrations on one, and the testkit runs the test suite on them.
//! A [`PgServer`] is found ([`PgBinaries::find`]: `PATH`, `pg_config --bindir`,
//! `/usr/lib/postgresql/*/bin`, `/usr/local/pgsql/bin`), started on a copy of a template
//! cluster that `initdb` made once per machine and version (a fraction of a second), listens on
//! a free port on 127.0.0.1 with durability off, runs as the `postgres` system user when this
//! process is root (PostgreSQL refuses to run as root), and is removed afterwards: on drop, by an
//! exit hook, and by a parent-death signal when the process is killed. Whatever a killed process
//! leaves on disk is removed by the next start.
//!
//! ```no_run
//! use safeshift_pgserver::{Layout, PgBinaries, PgServer, ServerOptions};
//!
//! let layout = Layout::from_env_or_default("safeshift", "SAFESHIFT_SERVER_DIR")?;
//! let binaries = PgBinaries::find(None)?;
//! let server = PgServer::start(&ServerOptions::new(layout, binaries))?;
//! let url = server.url("postgres"); // postgres://postgres@127.0.0.1:PORT/postgres
//! # let _ = url;
//! # Ok::<(), safeshift_pgserver::PgServerError>(())
//! ```
//!
//! The building blocks ([`ServerUser`], [`spawn`] with a [`Lifetime`], [`register`],
//! [`Layout`]) are public so other throwaway servers (the testkit's PgBouncer) share them.

mod binaries;
mod cluster;
mod detached;
mod error;
mod layout;
mod process;
mod registry;
mod server;
mod user;

pub use binaries::{PG_BIN_ENV, PgBinaries, find_client_program, find_executable};
pub use detached::{DetachedServer, start_detached, stop_detached};
pub use error::PgServerError;
pub use layout::{Layout, create_dir_with_mode};
pub use process::{Lifetime, free_port, log_tail, spawn, stop_child};
pub use registry::{Registration, register};
pub use server::{PgServer, ServerOptions, TemplateSetup, database_url};
pub use user::ServerUser;
