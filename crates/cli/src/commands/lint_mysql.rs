//! `safeshift lint` on a MySQL or MariaDB project: the MySQL rules (online DDL algorithms and
//! metadata locks), for the connected server's version or the one given with
//! `--mysql-version`.

use std::path::{Path, PathBuf};

use safeshift_driver::{ConnectOptions, DatabaseUrl, Driver, Engine, MysqlDriver};
use safeshift_lint::mysql::{MysqlLintReport, MysqlTarget, Server, lint_mysql_set};
use safeshift_runner::{EntryState, Migrator};
use safeshift_source::MigrationSet;

use crate::cli::LintArgs;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::lint::{Format, mysql as render};
use crate::output::out;

/// Whether the project lints as MySQL: its database URL is a MySQL one, or a MySQL version is
/// given.
pub fn applies(context: &Context, args: &LintArgs) -> bool {
    args.mysql_version.is_some()
        || context
            .project
            .url
            .as_ref()
            .and_then(|(url, _)| DatabaseUrl::parse(url).ok())
            .is_some_and(|url| url.engine() == Engine::Mysql)
}

/// Lints the project's migrations (or the directories given) with the MySQL rules.
pub fn run(context: &Context, args: &LintArgs) -> Result<Exit, CliError> {
    if args.fix {
        return Err(CliError::usage_with_help(
            "--fix rewrites PostgreSQL statements; this project's database is MySQL",
            "each MySQL finding shows its safe form; edit the migration, or add `-- safeshift:online-schema-change` above a copying ALTER",
        ));
    }
    if !matches!(
        args.format,
        Format::Human | Format::Json | Format::JsonReport
    ) {
        return Err(CliError::usage(
            "on MySQL, lint reports in the human and the JSON formats",
        ));
    }
    let mut database = connect_if_given(context, args)?;
    let target = match (&args.mysql_version, &database) {
        (Some(version), _) => MysqlTarget::from_version_string(version),
        (None, Some(db)) => MysqlTarget::from_version_string(&db.server().version),
        (None, None) => MysqlTarget::default_for(default_server(context)),
    };
    let directories: Vec<(PathBuf, Option<PathBuf>)> = if args.paths.is_empty() {
        vec![(context.project.migrations_dir.clone(), None)]
    } else {
        args.paths
            .iter()
            .map(|path| {
                if path.is_dir() {
                    (path.clone(), None)
                } else {
                    let parent = path
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."));
                    (parent.to_path_buf(), Some(path.clone()))
                }
            })
            .collect()
    };
    let mut report = MysqlLintReport {
        target,
        server: target.describe(),
        files: Vec::new(),
    };
    for (directory, only) in directories {
        let set = MigrationSet::load_with(&directory, &context.load_options())?;
        let applied: Vec<String> = match database.as_mut() {
            Some(db) if !args.all && directory == context.project.migrations_dir => {
                let migrator = Migrator::new(set.clone(), context.settings(true));
                migrator
                    .status(db)?
                    .entries
                    .into_iter()
                    .filter(|entry| entry.state == EntryState::Applied)
                    .map(|entry| entry.version)
                    .collect()
            }
            _ => Vec::new(),
        };
        let files = lint_mysql_set(&set, &target, |version| {
            let chosen = match &only {
                Some(file) => set
                    .migrations
                    .iter()
                    .any(|m| m.version.as_str() == version && same_file(&m.up.path, file)),
                None => true,
            };
            chosen && !applied.iter().any(|a| a == version)
        })
        .files;
        report.files.extend(files);
    }
    match args.format {
        Format::Human => out(render::human(&report).trim_end()),
        _ => out(serde_json::to_string_pretty(&report).map_err(|e| CliError::usage(e.to_string()))?),
    }
    Ok(if report.fails(args.fail_on) {
        Exit::LintFindings
    } else {
        Exit::Success
    })
}

/// MariaDB for a `mariadb://` URL, else MySQL.
fn default_server(context: &Context) -> Server {
    match &context.project.url {
        Some((url, _)) if url.trim_start().starts_with("mariadb://") => Server::Mariadb,
        _ => Server::Mysql,
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// A connection for the server's version and the applied history, from the database `up` uses
/// (the same URL rule as PostgreSQL's lint), unless `--no-database`.
fn connect_if_given(context: &Context, args: &LintArgs) -> Result<Option<MysqlDriver>, CliError> {
    if args.no_database {
        return Ok(None);
    }
    let Some((url, _)) = &context.project.url else {
        return Ok(None);
    };
    let url = DatabaseUrl::parse(url)?;
    if url.engine() != Engine::Mysql {
        return Ok(None);
    }
    let options = ConnectOptions {
        base_dir: context.project.root.clone(),
        history: context.project.history.clone(),
        create: false,
        ..ConnectOptions::default()
    };
    Ok(Some(MysqlDriver::connect(&url, &options)?))
}
