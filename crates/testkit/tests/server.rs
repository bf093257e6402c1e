//! A server of one's own: who it runs as, and that it never outlives its owner.

use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use safeshift_testkit::PgServer;

mod common;
use common::is_alive;

/// Set in a re-executed copy of this test binary to make `helper_holds_a_server` act.
const HELPER_ENV: &str = "SAFESHIFT_TESTKIT_HELPER";

#[test]
fn the_server_runs_as_the_postgres_user_when_root_and_as_the_caller_otherwise() {
    let server = PgServer::start().unwrap();
    let mut client = server.connect("postgres").unwrap();
    let data_directory: String = client
        .query_one("SELECT current_setting('data_directory')", &[])
        .unwrap()
        .get(0);
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let expected_uid = if euid == 0 { uid_of("postgres") } else { euid };
    assert_eq!(
        PathBuf::from(&data_directory),
        server.base_dir().join("data")
    );
    let meta = fs::metadata(&data_directory).unwrap();
    assert_eq!(meta.uid(), expected_uid, "owner of {data_directory}");
    assert_eq!(meta.mode() & 0o777, 0o700, "mode of {data_directory}");
    let postmaster = server.pid().unwrap();
    assert_eq!(process_uid(postmaster), Some(expected_uid));
    let listen: String = client
        .query_one("SELECT current_setting('listen_addresses')", &[])
        .unwrap()
        .get(0);
    assert_eq!(listen, "127.0.0.1");
}

#[test]
fn dropping_a_server_stops_it_and_removes_its_directory() {
    let server = PgServer::start().unwrap();
    let pid = server.pid().unwrap();
    let base_dir = server.base_dir().to_path_buf();
    let url = server.url("postgres");
    assert!(is_alive(pid));
    drop(server);
    assert!(!is_alive(pid), "postmaster {pid} still runs");
    assert!(!base_dir.exists(), "{} still exists", base_dir.display());
    assert!(postgres::Client::connect(&url, postgres::NoTls).is_err());
}

#[test]
fn two_servers_get_different_ports_and_directories() {
    let first = PgServer::start().unwrap();
    let second = PgServer::start().unwrap();
    assert_ne!(first.port(), second.port());
    assert_ne!(first.base_dir(), second.base_dir());
    assert!(first.bin_dir().join("pg_dump").exists());
    first
        .connect("postgres")
        .unwrap()
        .simple_query("SELECT 1")
        .unwrap();
    second
        .connect("postgres")
        .unwrap()
        .simple_query("SELECT 1")
        .unwrap();
}

#[test]
fn a_process_that_exits_stops_its_servers() {
    let mut helper = spawn_helper("exit");
    let (pid, base_dir) = read_helper_server(&mut helper);
    let status = helper.wait().unwrap();
    assert!(status.success(), "helper failed: {status}");
    // The exit hook ran before the process was gone, so nothing is left to wait for.
    assert!(!is_alive(pid), "postmaster {pid} survived its process");
    assert!(
        !base_dir.exists(),
        "{} survived its process",
        base_dir.display()
    );
}

#[test]
fn a_killed_process_leaves_no_server_running_and_the_next_start_removes_its_files() {
    let mut helper = spawn_helper("hang");
    let (pid, base_dir) = read_helper_server(&mut helper);
    assert!(is_alive(pid));
    helper.kill().unwrap();
    helper.wait().unwrap();
    // No exit hook runs on SIGKILL; the parent-death signal must stop the server.
    let deadline = Instant::now() + Duration::from_secs(20);
    while is_alive(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !is_alive(pid),
        "postmaster {pid} outlived its killed process"
    );
    let _next = PgServer::start().unwrap();
    assert!(
        !base_dir.exists(),
        "stale {} was not removed",
        base_dir.display()
    );
}

/// Not a test: a helper process for the two tests above, which run this binary again with
/// `SAFESHIFT_TESTKIT_HELPER` set.
#[test]
#[ignore = "helper process for the exit tests; runs only when re-executed by them"]
fn helper_holds_a_server() {
    let Ok(mode) = std::env::var(HELPER_ENV) else {
        return;
    };
    let server = PgServer::start().unwrap();
    println!(
        "SERVER {} {}",
        server.pid().unwrap(),
        server.base_dir().display()
    );
    // Leaked like the per-process shared server, so only the exit hook or the parent-death
    // signal can stop it.
    std::mem::forget(server);
    if mode == "hang" {
        thread::sleep(Duration::from_secs(600));
    }
}

fn spawn_helper(mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "helper_holds_a_server",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(HELPER_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn read_helper_server(helper: &mut std::process::Child) -> (u32, PathBuf) {
    let mut lines = BufReader::new(helper.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("SERVER ") {
            let (pid, dir) = rest.split_once(' ').unwrap();
            // Keep reading, or the helper fails writing its test summary to a closed pipe.
            thread::spawn(move || lines.for_each(drop));
            return (pid.parse().unwrap(), PathBuf::from(dir));
        }
    }
    panic!("the helper printed no SERVER line");
}

fn process_uid(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn uid_of(user: &str) -> u32 {
    let name = CString::new(user).unwrap();
    // SAFETY: getpwnam returns null or a pointer to a valid static entry; tests here do not
    // call it concurrently on another thread with a different name that matters.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!entry.is_null(), "no {user} user");
    // SAFETY: checked non-null above.
    unsafe { (*entry).pw_uid }
}
