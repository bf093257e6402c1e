//! `safeshift-testkit`: starts a PostgreSQL server (and PgBouncer) for a whole test run.
//!
//! ```text
//! eval "$(safeshift-testkit start --pgbouncer)"   # prints export lines, servers keep running
//! safeshift-testkit stop "$SAFESHIFT_TEST_PG_BASE" # stops them and removes the directory
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use safeshift_testkit::{DetachedServers, Extras, MYSQL_URL_ENV, PG_URL_ENV, PGBOUNCER_URL_ENV};

const USAGE: &str = "usage: safeshift-testkit start [--pgbouncer] [--mariadb] [--dir DIR]
       safeshift-testkit stop DIR

start  starts a PostgreSQL server (and, with --pgbouncer, a transaction-pooling PgBouncer in
       front of it; with --mariadb, a MariaDB server) that keep running after this command
       exits, and prints shell `export` lines for SAFESHIFT_TEST_PG_URL,
       SAFESHIFT_TEST_PGBOUNCER_URL, SAFESHIFT_TEST_MYSQL_URL and SAFESHIFT_TEST_PG_BASE
stop   stops the servers started in DIR and removes DIR";

/// The environment variable naming the directory to pass to `stop`.
const BASE_ENV: &str = "SAFESHIFT_TEST_PG_BASE";

enum Mode {
    Start {
        extras: Extras,
        dir: Option<PathBuf>,
    },
    Stop {
        dir: PathBuf,
    },
    Help,
}

fn main() -> ExitCode {
    let mode = match parse_arguments(std::env::args().skip(1)) {
        Ok(mode) => mode,
        Err(message) => {
            eprintln!("safeshift-testkit: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let outcome = match mode {
        Mode::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Mode::Start { extras, dir } => safeshift_testkit::start_detached(dir.as_deref(), extras)
            .map(|servers| print!("{}", export_lines(&servers))),
        Mode::Stop { dir } => safeshift_testkit::stop_detached(&dir),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("safeshift-testkit: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse_arguments(mut arguments: impl Iterator<Item = String>) -> Result<Mode, String> {
    let command = arguments.next().ok_or("missing command")?;
    match command.as_str() {
        "start" => {
            let mut extras = Extras::default();
            let mut dir = None;
            while let Some(argument) = arguments.next() {
                match argument.as_str() {
                    "--pgbouncer" => extras.pgbouncer = true,
                    "--mariadb" => extras.mariadb = true,
                    "--dir" => {
                        dir = Some(PathBuf::from(
                            arguments.next().ok_or("--dir needs a value")?,
                        ));
                    }
                    other => return Err(format!("unknown argument `{other}`")),
                }
            }
            Ok(Mode::Start { extras, dir })
        }
        "stop" => {
            let dir = arguments.next().ok_or("stop needs the directory")?;
            match arguments.next() {
                Some(extra) => Err(format!("unexpected argument `{extra}`")),
                None => Ok(Mode::Stop {
                    dir: PathBuf::from(dir),
                }),
            }
        }
        "-h" | "--help" | "help" => Ok(Mode::Help),
        other => Err(format!("unknown command `{other}`")),
    }
}

/// The `export` lines for a POSIX shell, single-quoted so any path survives `eval`.
fn export_lines(servers: &DetachedServers) -> String {
    let mut lines = vec![
        export(PG_URL_ENV, &servers.pg_url),
        export(BASE_ENV, &servers.base_dir.to_string_lossy()),
    ];
    if let Some(url) = &servers.pgbouncer_url {
        lines.push(export(PGBOUNCER_URL_ENV, url));
    }
    if let Some(url) = &servers.mysql_url {
        lines.push(export(MYSQL_URL_ENV, url));
    }
    lines.join("")
}

fn export(name: &str, value: &str) -> String {
    format!("export {name}='{}'\n", value.replace('\'', r"'\''"))
}
