//! `safeshift init`: a configuration file, the migrations directory, and the history table.

use std::path::PathBuf;

use crate::cli::{GlobalArgs, InitArgs};
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::output::{YELLOW, out, styled};
use crate::render::Progress;
use safeshift::config::CONFIG_FILE;

const TEMPLATE: &str = r#"# safeshift configuration. Flags and SAFESHIFT_* environment variables override these values;
# strings may use ${VARIABLE} and ${VARIABLE:-default}.

# Where the migration files live, relative to this file.
directory = "{directory}"

[database]
# SQLite (embedded, no server): sqlite://path.db, relative to this file.
# PostgreSQL: postgres://user@host:5432/database?sslmode=require — keep passwords out of this file:
#   url = "${DATABASE_URL}"
url = "{url}"

[history]
# PostgreSQL schema (a table-name prefix on SQLite) and table of the history log.
schema = "safeshift"
table = "history"

[lock]
# advisory: a session advisory lock (direct connections). lease: a lease row with expiry, for
# PgBouncer in transaction pooling mode.
mode = "advisory"
# How long `up` waits for another run to finish.
wait = "60s"

[migrate]
# Set for every migration; a migration's own `lock_timeout:` / `statement_timeout:` wins.
lock_timeout = "5s"
statement_timeout = "0"
# A migration that fails on a lock timeout or deadlock is retried this many times, with backoff.
retries = 3
"#;

/// Writes the configuration file (never over an existing one); readable and writable by its
/// owner only (0600) when `private`.
fn write_config(path: &std::path::Path, contents: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<Exit, CliError> {
    let config_path = global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(CONFIG_FILE));
    if config_path.exists() {
        out(format!(
            "{} already exists; leaving it as it is",
            config_path.display()
        ));
    } else {
        let url = args
            .url
            .clone()
            .unwrap_or_else(|| "sqlite://app.db".to_owned());
        let redacted = safeshift_driver::redact(&url);
        let holds_password = redacted != url;
        // A password never goes into the file: it reads the URL from DATABASE_URL instead.
        let written_url = if holds_password {
            "${DATABASE_URL}".to_owned()
        } else {
            url.replace('\\', "\\\\").replace('"', "\\\"")
        };
        // An existing project keeps its migrations where its tool keeps them.
        let directory = match global
            .migrations_dir
            .clone()
            .or_else(|| safeshift_source::discover_directory(std::path::Path::new(".")))
        {
            Some(dir) => {
                let relative = dir.strip_prefix(".").unwrap_or(&dir).display().to_string();
                if relative.is_empty() {
                    ".".to_owned()
                } else {
                    relative
                }
            }
            None => "migrations".to_owned(),
        };
        let contents = TEMPLATE
            .replace(
                "{directory}",
                &directory.replace('\\', "/").replace('"', "\\\""),
            )
            .replace("{url}", &written_url);
        write_config(&config_path, &contents, holds_password)
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", config_path.display())))?;
        if holds_password {
            out(format!(
                "{} the URL holds a password, so {} does not keep it: it reads the URL from ${{DATABASE_URL}}. \
                 Set DATABASE_URL to {redacted} with the password (in your shell, CI secrets or secret manager) \
                 before running safeshift; the file is readable by you only",
                styled(YELLOW, "note:"),
                config_path.display()
            ));
        }
        out(format!("created {}", config_path.display()));
    }
    let global_with_config = GlobalArgs {
        config: Some(config_path),
        // The file may read the URL from a variable that is not set yet.
        database_url: global.database_url.clone().or_else(|| args.url.clone()),
        ..clone_global(global)
    };
    let context = Context::new(&global_with_config)?;
    let directory = &context.project.migrations_dir;
    if directory.is_dir() {
        out(format!("{} already exists", directory.display()));
    } else {
        std::fs::create_dir_all(directory)
            .map_err(|e| CliError::usage(format!("cannot create {}: {e}", directory.display())))?;
        out(format!("created {}/", directory.display()));
    }
    if !args.no_database {
        match context.database_url() {
            Ok(url) => {
                let mut db = context.connect(true)?;
                let migrator = context.migrator(false)?;
                let mut progress = Progress::new(context.quiet, false, context.project.lock.wait);
                let created = migrator.init_history(db.as_mut(), &mut progress)?;
                let verb = if created {
                    "created the history table"
                } else {
                    "the history table already exists:"
                };
                out(format!("{verb} {} in {url}", db.history_location()));
            }
            Err(_) => {
                out("no database URL yet: set `url` under [database], then run `safeshift up`")
            }
        }
    }
    out("Next: `safeshift new <description>` writes a migration; `safeshift up` applies it.");
    Ok(Exit::Success)
}

fn clone_global(global: &GlobalArgs) -> GlobalArgs {
    GlobalArgs {
        chdir: None,
        config: global.config.clone(),
        database_url: global.database_url.clone(),
        migrations_dir: global.migrations_dir.clone(),
        migration_format: global.migration_format,
        variables: global.variables.clone(),
        history_schema: global.history_schema.clone(),
        history_table: global.history_table.clone(),
        lock_mode: global.lock_mode,
        lock_wait: global.lock_wait.clone(),
        lock_timeout: global.lock_timeout.clone(),
        statement_timeout: global.statement_timeout.clone(),
        retries: global.retries,
        environment: global.environment.clone(),
        quiet: global.quiet,
    }
}
