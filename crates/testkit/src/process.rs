//! Starting, watching and stopping the server processes, and the account they run as.

use std::ffi::CString;
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

use crate::error::TestkitError;

/// The system user the servers run as when the tests run as root.
const SERVER_USER_NAME: &str = "postgres";

/// The account that owns the data directories and runs `initdb`, `postgres` and `pgbouncer`.
///
/// PostgreSQL and PgBouncer refuse to run as root, so as root this is the `postgres` system
/// user; otherwise it is the current user and nothing is switched.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServerUser {
    uid: u32,
    gid: u32,
    switch: bool,
}

impl ServerUser {
    /// The user for this process, looked up once.
    pub(crate) fn get() -> Result<ServerUser, TestkitError> {
        static USER: OnceLock<Result<ServerUser, String>> = OnceLock::new();
        USER.get_or_init(|| ServerUser::detect().map_err(|_| SERVER_USER_NAME.to_owned()))
            .clone()
            .map_err(|user| TestkitError::ServerUserMissing { user })
    }

    fn detect() -> Result<ServerUser, ()> {
        // SAFETY: geteuid/getegid cannot fail and touch no memory.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if euid != 0 {
            return Ok(ServerUser {
                uid: euid,
                gid: egid,
                switch: false,
            });
        }
        let (uid, gid) = lookup_user(SERVER_USER_NAME).ok_or(())?;
        Ok(ServerUser {
            uid,
            gid,
            switch: true,
        })
    }

    /// Makes `command` run as this user (a no-op when not root).
    pub(crate) fn configure(&self, command: &mut Command) {
        if self.switch {
            command.uid(self.uid).gid(self.gid);
        }
    }

    /// Hands `path` to this user (a no-op when not root).
    pub(crate) fn give(&self, path: &Path) -> Result<(), TestkitError> {
        if !self.switch {
            return Ok(());
        }
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid)).map_err(|source| {
            TestkitError::io(
                format!("giving {} to the server user", path.display()),
                source,
            )
        })
    }
}

/// Looks a user up in the system's user database (passwd, NSS).
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let name = CString::new(name).ok()?;
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value to be overwritten by getpwnam_r.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the duration of the call and the buffer length is right.
    let status = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    (status == 0 && !found.is_null()).then_some((entry.pw_uid, entry.pw_gid))
}

/// How long a spawned server may live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// It must die with this process. It is spawned from a dedicated thread that lives as long as
    /// the process, with `PR_SET_PDEATHSIG` set to the given signal, so the kernel signals it
    /// even when this process is killed and no exit hook runs.
    Process(libc::c_int),
    /// It outlives this process: it gets its own session and no parent-death signal.
    Detached,
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` with the given lifetime.
pub(crate) fn spawn(mut command: Command, lifetime: Lifetime) -> io::Result<Child> {
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
                        return Err(io::Error::other("the test process exited during spawn"));
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
/// that forked the child ends, and test threads end long before the process does.
fn spawn_from_long_lived_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<io::Result<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("safeshift-testkit-spawner".to_owned())
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
pub(crate) fn is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).is_some_and(|fields| fields.first() != Some(&"Z")),
        Err(_) => false,
    }
}

/// The start time (in clock ticks since boot) of a process, which together with its pid
/// identifies it even after the pid is reused.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
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
pub(crate) fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Stops a child: `signal`, then SIGKILL after `grace`, and reaps it.
pub(crate) fn stop_child(child: &mut Child, stop_signal: libc::c_int, grace: Duration) {
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
pub(crate) fn stop_pid(pid: u32, stop_signal: libc::c_int, grace: Duration) -> bool {
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
pub(crate) fn free_port() -> Result<u16, TestkitError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|source| TestkitError::io("finding a free port on 127.0.0.1", source))
}

/// The last `lines` lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a short helper command to completion and fails with its output if it fails.
pub(crate) fn run_to_completion(mut command: Command, program: &str) -> Result<(), TestkitError> {
    let output = command
        .output()
        .map_err(|source| TestkitError::io(format!("running {program}"), source))?;
    if output.status.success() {
        return Ok(());
    }
    Err(TestkitError::CommandFailed {
        program: program.to_owned(),
        status: output.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}
