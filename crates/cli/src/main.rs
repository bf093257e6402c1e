//! The `safeshift` command. `main` parses arguments, runs one command, and maps the outcome to
//! a documented exit code (see `cli::EXIT_CODES`).

// `CliError` carries the runner's error (the failed statement and the database's error) so it
// can be rendered in full; it is returned once per command, never in a loop, so its size costs
// nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod cli;
mod commands;
mod context;
mod diagnostics;
mod exit;
mod lint;
mod online;
mod output;
mod production;
mod rehearse;
mod render;
mod signals;

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    keep_freed_memory();
    no_transparent_huge_pages();
    let cli = cli::Cli::from_process();
    let json = cli.wants_json();
    if let Some(directory) = &cli.global.chdir
        && let Err(error) = std::env::set_current_dir(directory)
    {
        let error = exit::CliError::usage(format!("-C {}: {error}", directory.display()));
        return failed(&error, json);
    }
    match commands::run(cli) {
        Ok(exit) => exit.into(),
        Err(error) => failed(&error, json),
    }
}

/// Reports a failure on stderr, and, for a command asked for JSON that printed nothing yet,
/// as `{"ok": false, "error": …}` on stdout, whatever the failure.
fn failed(error: &exit::CliError, json: bool) -> ExitCode {
    if json && !output::stdout_written() {
        commands::print_json(&serde_json::json!({
            "ok": false,
            "error": commands::error_json(error),
        }));
    }
    diagnostics::report(error);
    error.exit().into()
}

/// Turns transparent huge pages off for this process. mimalloc asks for them on the memory it
/// maps, and with the kernel's default `defrag` setting each first touch of a 2 MiB page may
/// compact memory and zeroes the whole page: `lint` on `bench/lint.sh`'s 100-file corpus spent
/// a median 0.44 s of system time with them and 0.13 s without (one core, six runs each, with
/// mimalloc's `MIMALLOC_ALLOW_THP=0`, which makes this same call), and its median wall time
/// fell from 2.71 s to 2.35 s. Commands are short-lived and touch little memory
/// otherwise, so small pages cost nothing worth keeping huge ones for.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a flag of this
    // process; a kernel without it returns an error, which changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Tells mimalloc to keep the memory the program frees instead of returning it to the system
/// after a delay (1 s by default). `lint` parses files on worker threads while the main thread frees their trees:
/// with the default, every file faults fresh zeroed pages in again, which cost a quarter to a
/// third of its CPU time on a large history. A command is short-lived, so nothing is lost.
fn keep_freed_memory() {
    // `mi_option_purge_delay` in mimalloc.h (v2 and v3); the `libmimalloc-sys` bindings do not
    // name it. Its defaults are 10 (v2) and 1000 (v3) milliseconds: any other value means the
    // index moved (or MIMALLOC_PURGE_DELAY chose one), and the option is left alone.
    const PURGE_DELAY: std::ffi::c_int = 15;
    unsafe extern "C" {
        fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // SAFETY: both are plain setters and getters of mimalloc's option table, which is linked
    // into this binary as its global allocator; they take and return integers only.
    unsafe {
        if matches!(mi_option_get(PURGE_DELAY), 10 | 1000) {
            mi_option_set(PURGE_DELAY, -1);
        }
    }
}
