//! Hooks: commands an environment runs before and after `up` (a maintenance-mode switch, smoke
//! tests). Each is an argument vector run without a shell, with a timeout, and told about the run
//! through `SAFESHIFT_*` variables — never the database password. The outcome is returned for the
//! events log.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use safeshift_driver::redact;

/// How a hook ended.
#[derive(Debug, Clone, Serialize)]
pub struct HookOutcome {
    pub phase: &'static str,
    pub command: Vec<String>,
    pub ok: bool,
    pub exit_code: Option<i32>,
    /// Why it failed, when it did (could not start, timed out, exit code).
    pub problem: Option<String>,
    /// The last lines of its output (stdout and stderr), redacted.
    pub output: String,
    pub duration_ms: u64,
}

/// What a hook is told about the run.
pub struct HookContext<'a> {
    pub environment: &'a str,
    pub run_id: &'a str,
    /// The database URL with its password redacted.
    pub database: &'a str,
    /// `ok` or `failed` for `after` hooks.
    pub outcome: Option<&'a str>,
    /// Environment variables the hook is not handed: every one a database password may be read
    /// from (`Project::credential_variables`).
    pub withheld: &'a [String],
}

/// The variables libpq and safeshift read credentials from, whatever the configuration says.
pub const CREDENTIAL_VARIABLES: &[&str] = &["PGPASSWORD", "DATABASE_URL", "SAFESHIFT_DATABASE_URL"];

/// Runs one hook to completion or until `timeout` (then kills it).
pub fn run(
    phase: &'static str,
    argv: &[String],
    context: &HookContext<'_>,
    timeout: Duration,
) -> HookOutcome {
    let started = Instant::now();
    let mut outcome = HookOutcome {
        phase,
        command: argv.iter().map(|a| redact(a)).collect(),
        ok: false,
        exit_code: None,
        problem: None,
        output: String::new(),
        duration_ms: 0,
    };
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("SAFESHIFT_ENV", context.environment)
        .env("SAFESHIFT_RUN_ID", context.run_id)
        .env("SAFESHIFT_DATABASE", context.database)
        .env("SAFESHIFT_HOOK_PHASE", phase);
    // The hook does not need our credentials.
    for name in context.withheld {
        command.env_remove(name);
    }
    if let Some(result) = context.outcome {
        command.env("SAFESHIFT_OUTCOME", result);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            outcome.problem = Some(format!("could not start `{}`: {error}", argv[0]));
            outcome.duration_ms = started.elapsed().as_millis() as u64;
            return outcome;
        }
    };
    let stdout = child
        .stdout
        .take()
        .map(|s| std::thread::spawn(move || read_all(s)));
    let stderr = child
        .stderr
        .take()
        .map(|s| std::thread::spawn(move || read_all(s)));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let mut output = String::new();
    for handle in [stdout, stderr].into_iter().flatten() {
        output.push_str(&handle.join().unwrap_or_default());
    }
    outcome.output = last_lines(&redact(&output), 10);
    outcome.duration_ms = started.elapsed().as_millis() as u64;
    match status {
        Some(status) if status.success() => outcome.ok = true,
        Some(status) => {
            outcome.exit_code = status.code();
            outcome.problem = Some(match status.code() {
                Some(code) => format!("exited with code {code}"),
                None => "killed by a signal".to_owned(),
            });
        }
        None => outcome.problem = Some(format!("did not finish within {timeout:?}; killed")),
    }
    outcome
}

fn read_all(mut stream: impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> HookContext<'static> {
        HookContext {
            environment: "staging",
            run_id: "r1",
            database: "postgres://app:***@db/shop",
            outcome: None,
            withheld: &[],
        }
    }

    #[test]
    fn runs_without_a_shell_and_reports_failures() {
        let ok = run(
            "before",
            &[
                "sh".into(),
                "-c".into(),
                "echo \"$SAFESHIFT_ENV $SAFESHIFT_HOOK_PHASE\"".into(),
            ],
            &context(),
            Duration::from_secs(10),
        );
        assert!(ok.ok, "{ok:?}");
        assert_eq!(ok.output, "staging before");
        let failed = run(
            "after",
            &["false".into()],
            &context(),
            Duration::from_secs(10),
        );
        assert!(!failed.ok);
        assert_eq!(failed.exit_code, Some(1));
        let missing = run(
            "before",
            &["/nonexistent/hook; rm -rf /".into()],
            &context(),
            Duration::from_secs(10),
        );
        assert!(missing.problem.unwrap().starts_with("could not start"));
    }

    #[test]
    fn a_hook_that_hangs_is_killed() {
        let outcome = run(
            "before",
            &["sleep".into(), "30".into()],
            &context(),
            Duration::from_millis(200),
        );
        assert!(!outcome.ok);
        assert!(outcome.problem.unwrap().contains("killed"));
    }
}
