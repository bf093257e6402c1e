//! Starting, watching and stopping server processes (PostgreSQL here; the testkit's PgBouncer
//! uses the same pieces).

use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::PgServerError;

/// How long a spawned server may live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// It must die with this process. It is spawned from a dedicated thread that lives as long as
    /// the process, with `PR_SET_PDEATHSIG` set to the given signal, so the kernel signals it
    /// even when this process is killed and no exit hook runs.
    Process(libc::c_int),
    /// It outlives this process: it gets its own session and no parent-death signal.
    Detached,
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` with the given lifetime.
pub fn spawn(mut command: Command, lifetime: Lifetime) -> io::Result<Child> {
    match lifetime {
        Lifetime::Process(death_signal) => {
            let parent = std::process::id() as libc::pid_t;
            // SAFETY: the closure only makes async-signal-safe system calls. It runs after the
            // uid switch, which matters: changing credentials clears the parent-death signal.
            unsafe {
                command.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // The parent may have died between fork and prctl.
                    if libc::getppid() != parent {
                        return Err(io::Error::other("the parent process exited during spawn"));
                    }
                    Ok(())
                });
            }
            spawn_from_long_lived_thread(command)
        }
        Lifetime::Detached => {
            // SAFETY: setsid is async-signal-safe.
            unsafe {
                command.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            command.spawn()
        }
    }
}

/// Spawns on a thread that never exits, because the parent-death signal fires when the *thread*
/// that forked the child ends, and callers' threads (test threads, worker threads) may end long
/// before the process does.
fn spawn_from_long_lived_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<io::Result<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("safeshift-server-spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })?;
        Ok(requests)
    });
    let spawner = spawner
        .as_ref()
        .map_err(|error| io::Error::new(error.kind(), error.to_string()))?;
    let (reply, result) = mpsc::channel();
    spawner
        .send((command, reply))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    result
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// Whether a process exists and is not a zombie (an orphaned zombie may never be reaped when
/// PID 1 does not reap, so "exists" alone is not enough).
pub fn is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).is_some_and(|fields| fields.first() != Some(&"Z")),
        Err(_) => false,
    }
}

/// The start time (in clock ticks since boot) of a process, which together with its pid
/// identifies it even after the pid is reused.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 of /proc/PID/stat; the fields after the command name start at field 3.
    stat_fields(&stat)?.get(22 - 3)?.parse().ok()
}

/// The fields of /proc/PID/stat after the command name, which may itself contain spaces.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().collect())
}

/// Sends `signal` to a process, ignoring a process that is already gone.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Stops a child: `signal`, then SIGKILL after `grace`, and reaps it.
pub fn stop_child(child: &mut Child, stop_signal: libc::c_int, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    signal(child.id(), stop_signal);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops a process that is not our child: `signal`, then SIGKILL after `grace`. Returns whether
/// it is gone.
pub fn stop_pid(pid: u32, stop_signal: libc::c_int, grace: Duration) -> bool {
    if !is_alive(pid) {
        return true;
    }
    signal(pid, stop_signal);
    if wait_until_gone(pid, grace) {
        return true;
    }
    signal(pid, libc::SIGKILL);
    wait_until_gone(pid, Duration::from_secs(5))
}

fn wait_until_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    !is_alive(pid)
}

/// A TCP port on 127.0.0.1 that was free a moment ago. Another process may take it before the
/// server binds it, so callers retry on "address in use".
pub fn free_port() -> Result<u16, PgServerError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|source| PgServerError::io("finding a free port on 127.0.0.1", source))
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a short helper command to completion and fails with its output if it fails.
pub fn run_to_completion(mut command: Command, program: &str) -> Result<(), PgServerError> {
    let output = command
        .output()
        .map_err(|source| PgServerError::io(format!("running {program}"), source))?;
    if output.status.success() {
        return Ok(());
    }
    Err(PgServerError::CommandFailed {
        program: program.to_owned(),
        status: output.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}
