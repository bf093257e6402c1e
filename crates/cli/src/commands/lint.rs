//! `safeshift lint`: check migrations for dangerous patterns before they run, with the
//! evaluation `plan` and the check `up` runs first share (safeshift_deploy::evaluation).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use safeshift_deploy::evaluation::{DatabaseSizes, applied_migrations, lint_options};
use safeshift_driver::{ConnectOptions, DatabaseUrl, Engine, PostgresDriver};
use safeshift_lint::{
    AppliedMigrations, FileFix, FileReport, Grading, LintReport, Linter, PgVersion, Risk, Scope,
    TableStatistics,
};
use safeshift_runner::Migrator;
use safeshift_source::{LoadOptions, LooseFile, MigrationSet};

use crate::cli::LintArgs;
use crate::context::Context;
use crate::exit::{CliError, Exit};
use crate::lint::{Format, render};
use crate::output::{err, out};

/// Lints the given files and directories (default: the project's migrations), prints the report
/// in the chosen format, and fails when a finding at or above `--fail-on` remains.
pub fn run(context: &Context, args: &LintArgs) -> Result<Exit, CliError> {
    if super::lint_mysql::applies(context, args) {
        return super::lint_mysql::run(context, args);
    }
    let mut database = if args.no_database {
        None
    } else {
        connect_if_given(context)?
    };
    let mut options = lint_options(
        context.project.risk_policy,
        &context.project.history.schema,
        database.as_mut(),
    )?;
    if let Some(version) = &args.pg_version {
        options.pg_version = version.parse::<PgVersion>().map_err(CliError::usage)?;
    }
    options.disabled_rules = args.disable.clone();
    let linter = Linter::new(options).map_err(|error| {
        CliError::usage_with_help(error.to_string(), "`safeshift explain` lists the rules")
    })?;

    if args.paths.is_empty()
        && let Some((url, _)) = &context.project.url
        && DatabaseUrl::parse(url).is_ok_and(|url| url.engine() == Engine::Sqlite)
    {
        return Err(CliError::usage_with_help(
            "safeshift lint checks PostgreSQL migrations, and this project's database is SQLite",
            "pass the PostgreSQL migration files or directories to lint: `safeshift lint <PATH>…`",
        ));
    }
    if args.fix && !matches!(args.format, Format::Human | Format::JsonReport) {
        return Err(CliError::usage_with_help(
            "--fix prints what it rewrote in the human or the JSON report format only",
            "run `safeshift lint --fix` (or `--fix --format json-report`), then lint again in the format you need",
        ));
    }
    let fixes = if args.fix {
        let targets = read_targets(context, args, database.as_mut())?;
        Some(fix_targets(&linter, &targets))
    } else {
        None
    };
    let targets = read_targets(context, args, database.as_mut())?;
    // On one line unless a person is reading: a report on a large corpus is tens of megabytes.
    let pretty = std::io::stdout().is_terminal();
    if args.format == Format::Json && !pretty && database.is_none() && fixes.is_none() {
        // Nothing to grade the findings by: each file can be written as soon as it is linted.
        return Ok(stream_list(context, &linter, targets, args.fail_on));
    }
    let mut report = LintReport::default();
    lint_targets(context, &linter, targets, |file| report.files.push(file));
    let mut sizes = database.as_mut().map(DatabaseSizes);
    let grading = linter.grade(
        &mut report,
        sizes.as_mut().map(|s| s as &mut dyn TableStatistics),
    );
    if let Grading::SizesUnavailable { reason } = &grading {
        warn_sizes_unavailable(reason);
    }
    let color = matches!(args.format, Format::Human)
        && anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
    match args.format {
        Format::Human => {
            if let Some(fixes) = &fixes {
                out(crate::lint::render_fixes(fixes, color).trim_end());
            }
            out(render(&report, args.format, color).trim_end())
        }
        Format::Json | Format::JsonReport => {
            use std::io::Write;
            let stdout = std::io::stdout();
            let mut writer = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
            let written = if args.format == Format::Json {
                crate::lint::json::write_list(&report, &mut writer, pretty)
            } else {
                crate::lint::json::write(&report, fixes.as_deref(), &mut writer, pretty)
            };
            let _ = written.and_then(|()| writer.flush());
        }
        // Machine formats carry no styles: skip the colour-stripping adapter, which costs more
        // than the rendering on a large report.
        _ => write_plain(render(&report, args.format, color).trim_end()),
    }
    if report.fails(args.fail_on) {
        Ok(Exit::LintFindings)
    } else {
        Ok(Exit::Success)
    }
}

/// Lints the targets in order, handing each file's report to `each` as soon as it is linted:
/// the migrations directories first, then the files outside one, which come after the
/// project's migrations.
fn lint_targets(
    context: &Context,
    linter: &Linter,
    targets: Vec<Target>,
    mut each: impl FnMut(FileReport),
) {
    let mut loose: Vec<LooseFile> = Vec::new();
    for target in targets {
        match target {
            Target::Set(set, scope, applied) => {
                linter.lint_set_each(&set, applied.as_ref(), &scope, &mut each)
            }
            Target::Loose(file) => loose.push(*file),
        }
    }
    if !loose.is_empty() {
        let project = context.migrations().ok();
        linter.lint_files_each(&loose, project.as_ref(), &mut each);
    }
}

/// `--format json` on one line, without a database: each file's entries are written (and its
/// report dropped) on a thread of their own as soon as the file is linted, so the output
/// overlaps the linting and the whole report is never held. The bytes are those
/// `json::write_list` writes for the whole report. A closed pipe ends the output quietly; the
/// exit code still says whether a finding at or above `fail_on` remains.
fn stream_list(context: &Context, linter: &Linter, targets: Vec<Target>, fail_on: Risk) -> Exit {
    // A few files ahead of the writer at most, so reports do not pile up when it is slower.
    let (sender, linted) = std::sync::mpsc::sync_channel::<FileReport>(4);
    let fails = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let stdout = std::io::stdout();
            let out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
            let mut list = crate::lint::json::ListWriter::new(out).ok();
            let mut fails = false;
            for file in linted {
                fails |= file.fails(fail_on);
                if list.as_mut().is_some_and(|list| list.file(&file).is_err()) {
                    list = None;
                }
            }
            if let Some(list) = list {
                let _ = list.finish();
            }
            fails
        });
        lint_targets(context, linter, targets, |file| {
            // The writer only stops early by panicking, which the join below hands on.
            let _ = sender.send(file);
        });
        drop(sender);
        writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    if fails {
        Exit::LintFindings
    } else {
        Exit::Success
    }
}

/// Writes `text` to stdout as it is; a closed pipe ends the output quietly.
fn write_plain(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
}

/// Reads what the command line names (default: the project's migrations directory), with the
/// applied history of the project's directory when a database is given: then only pending
/// migrations are in scope unless `--all`.
fn read_targets(
    context: &Context,
    args: &LintArgs,
    mut database: Option<&mut PostgresDriver>,
) -> Result<Vec<Target>, CliError> {
    let paths: Vec<PathBuf> = if args.paths.is_empty() {
        vec![context.project.migrations_dir.clone()]
    } else {
        args.paths.clone()
    };
    let mut directories = Directories {
        options: context.load_options(),
        loaded: HashMap::new(),
    };
    let mut named: Vec<Named> = Vec::new();
    for path in &paths {
        for found in directories.classify(path)? {
            match found {
                // Files of one directory are linted in one pass over its history.
                Named::MigrationFiles { directory, files } => match named.iter_mut().find(
                    |n| matches!(n, Named::MigrationFiles { directory: d, .. } if *d == directory),
                ) {
                    Some(Named::MigrationFiles { files: all, .. }) => all.extend(files),
                    _ => named.push(Named::MigrationFiles { directory, files }),
                },
                other => named.push(other),
            }
        }
    }
    let mut targets = Vec::new();
    for found in named {
        let (set, scope) = match found {
            Named::Directory(set) => (set, Scope::All),
            Named::MigrationFiles { directory, files } => {
                (directories.take(&directory), Scope::Files(files))
            }
            Named::Loose(file) => {
                targets.push(Target::Loose(file));
                continue;
            }
        };
        let applied = match database.as_deref_mut() {
            Some(db) if same_file(&set.directory, &context.project.migrations_dir) => {
                let migrator = Migrator::new(set.clone(), context.settings(true));
                Some(applied_migrations(&migrator.status(db)?))
            }
            _ => None,
        };
        let scope = match (&scope, &applied, args.all) {
            (Scope::All, Some(_), false) => Scope::Pending,
            _ => scope,
        };
        targets.push(Target::Set(set, scope, applied));
    }
    Ok(targets)
}

/// Rewrites the flagged statements of the targets into their safe forms and writes the files
/// that changed; what could not be written is reported with the rest of what was left alone.
fn fix_targets(linter: &Linter, targets: &[Target]) -> Vec<FileFix> {
    let mut fixes = Vec::new();
    for target in targets {
        match target {
            Target::Set(set, scope, applied) => {
                fixes.extend(linter.fix_set(set, applied.as_ref(), scope))
            }
            Target::Loose(file) => {
                let fix = linter.fix_file(file);
                if !fix.is_empty() {
                    fixes.push(fix);
                }
            }
        }
    }
    for fix in &mut fixes {
        if let Err(reason) = write_fixed(fix) {
            let rewrites = std::mem::take(&mut fix.rewrites);
            fix.left_alone.extend(
                rewrites
                    .into_iter()
                    .map(|rewrite| safeshift_lint::LeftAlone {
                        rule: rewrite.rule,
                        line: rewrite.line,
                        reason: reason.clone(),
                    }),
            );
            fix.fixed = None;
            fix.section_change = None;
            fix.warnings.clear();
        }
    }
    fixes
}

/// Writes a fixed file in place of the original, atomically (a temporary file in the same
/// directory, renamed over it) and with the original's permissions, line endings and byte-order
/// mark. Refuses when the file changed since it was read.
fn write_fixed(fix: &FileFix) -> Result<(), String> {
    use std::io::Write;
    let Some(fixed) = &fix.fixed else {
        return Ok(());
    };
    let path = &fix.path;
    let original =
        std::fs::read(path).map_err(|error| format!("cannot read the file again: {error}"))?;
    let unchanged = safeshift_source::SourceText::from_bytes(path, &original)
        .is_ok_and(|text| text.as_str() == fix.original);
    if !unchanged {
        return Err("the file changed while it was being fixed; run --fix again".into());
    }
    let bytes = safeshift_lint::encode_like(&original, fixed)?;
    let permissions = std::fs::metadata(path)
        .map_err(|error| format!("cannot read the file's permissions: {error}"))?
        .permissions();
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary =
        path.with_file_name(format!(".{file_name}.safeshift-fix-{}", std::process::id()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::set_permissions(&temporary, permissions))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(format!("cannot write the file: {error}"));
    }
    Ok(())
}

/// What a path on the command line stands for.
enum Target {
    /// A migrations directory (or one migration file of it, with the rest read for context),
    /// with the database's applied history when it is the project's directory.
    Set(MigrationSet, Scope, Option<AppliedMigrations>),
    /// A SQL file outside any migrations directory.
    Loose(Box<LooseFile>),
}

/// What one path on the command line names.
enum Named {
    /// A directory of migrations.
    Directory(MigrationSet),
    /// Migration files of a directory (loaded in [`Directories`]), linted with the rest of the
    /// directory read for context.
    MigrationFiles {
        directory: PathBuf,
        files: Vec<PathBuf>,
    },
    /// A SQL file outside any migrations directory.
    Loose(Box<LooseFile>),
}

/// A migrations directory read once, with its files' canonical paths to recognise them.
struct LoadedSet {
    set: MigrationSet,
    files: std::collections::HashSet<PathBuf>,
}

/// Reads what the command line names, loading each migrations directory once.
struct Directories {
    /// How to read them (`--format`, `--var`).
    options: LoadOptions,
    /// Directories already loaded: `None` when the directory holds no migrations.
    loaded: HashMap<PathBuf, Option<LoadedSet>>,
}

impl Directories {
    fn load(&mut self, directory: &Path) -> Option<&LoadedSet> {
        self.loaded
            .entry(directory.to_path_buf())
            .or_insert_with(|| {
                let set = MigrationSet::load_with(directory, &self.options)
                    .ok()
                    .filter(|set| !set.migrations.is_empty())?;
                let files = set
                    .migrations
                    .iter()
                    .map(|m| canonical(&m.up.path))
                    .collect();
                Some(LoadedSet { set, files })
            })
            .as_ref()
    }

    /// The set loaded for `directory` by [`Directories::classify`].
    fn take(&mut self, directory: &Path) -> MigrationSet {
        match self.loaded.get_mut(directory).and_then(Option::take) {
            Some(loaded) => loaded.set,
            None => unreachable!("classify loaded {} before naming it", directory.display()),
        }
    }

    /// A directory of migrations is linted as one history; a directory of other SQL files file by
    /// file; a migration file with its directory's history for context; any other file on its own.
    fn classify(&mut self, path: &Path) -> Result<Vec<Named>, CliError> {
        if path.is_dir() {
            let set = MigrationSet::load_with(path, &self.options)?;
            if !set.migrations.is_empty() {
                return Ok(vec![Named::Directory(set)]);
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|error| CliError::usage(format!("{}: {error}", path.display())))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "sql") && p.is_file())
                .collect();
            files.sort();
            return files.iter().map(|file| read_loose(file)).collect();
        }
        if !path.is_file() {
            return Err(CliError::usage(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Some(loaded) = self.load(parent)
            && loaded.files.contains(&canonical(path))
        {
            return Ok(vec![Named::MigrationFiles {
                directory: parent.to_path_buf(),
                files: vec![path.to_path_buf()],
            }]);
        }
        Ok(vec![read_loose(path)?])
    }
}

fn read_loose(path: &Path) -> Result<Named, CliError> {
    let file = LooseFile::read(path)
        .map_err(|error| CliError::Source(safeshift_source::SourceErrors(vec![error])))?;
    Ok(Named::Loose(Box::new(file)))
}

/// The path with symbolic links and `..` resolved, or as given when it cannot be.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// A connection for size lookups and the applied history, to the database `up` and `plan`
/// would use (--database-url, the environment's url, safeshift.toml, DATABASE_URL), when that
/// is a PostgreSQL database.
fn connect_if_given(context: &Context) -> Result<Option<PostgresDriver>, CliError> {
    let Some((url, _)) = &context.project.url else {
        return Ok(None);
    };
    let url = DatabaseUrl::parse(url)?;
    if url.engine() != Engine::Postgres {
        return Ok(None);
    }
    let options = ConnectOptions {
        base_dir: context.project.root.clone(),
        history: context.project.history.clone(),
        create: false,
        ..ConnectOptions::default()
    };
    match PostgresDriver::connect(&url, &options) {
        Ok(db) => Ok(Some(db)),
        Err(mut error) => {
            let advice = "lint reads the applied history and the table sizes from the database `up` uses: \
                          start it, fix the URL, or pass --no-database to lint the files alone";
            let hint = match error.hint.take() {
                Some(hint) => format!("{hint}\n{advice}"),
                None => advice.to_owned(),
            };
            Err(error.with_hint(hint).into())
        }
    }
}

/// Says that the findings were graded without table sizes, and why.
fn warn_sizes_unavailable(reason: &str) {
    err(format!(
        "{} could not read the table sizes ({reason}); risks are graded without them",
        crate::output::styled(crate::output::YELLOW, "warning:")
    ));
}
