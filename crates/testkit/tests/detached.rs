//! `safeshift-testkit start` / `stop`: servers for a whole test run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_safeshift-testkit");

fn exports(output: &str) -> HashMap<String, String> {
    output
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
        .collect()
}

fn postmaster_pid(base_dir: &std::path::Path) -> u32 {
    let pid_file = std::fs::read_to_string(base_dir.join("data/postmaster.pid")).unwrap();
    pid_file.lines().next().unwrap().parse().unwrap()
}

mod common;
use common::is_alive;

#[test]
fn start_prints_exports_for_servers_that_outlive_it_and_stop_removes_them() {
    let scratch =
        std::env::temp_dir().join(format!("safeshift-testkit-detached-{}", std::process::id()));
    let output = Command::new(BINARY)
        .args(["start", "--pgbouncer", "--dir"])
        .arg(&scratch)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let exports = exports(&String::from_utf8(output.stdout).unwrap());
    let base_dir = PathBuf::from(&exports["SAFESHIFT_TEST_PG_BASE"]);
    assert_eq!(base_dir, std::fs::canonicalize(&scratch).unwrap());

    // The command has exited; both servers still answer.
    let mut direct =
        postgres::Client::connect(&exports["SAFESHIFT_TEST_PG_URL"], postgres::NoTls).unwrap();
    direct.simple_query("SELECT 1").unwrap();
    let mut pooled =
        postgres::Client::connect(&exports["SAFESHIFT_TEST_PGBOUNCER_URL"], postgres::NoTls)
            .unwrap();
    pooled.simple_query("SELECT 1").unwrap();
    let pid = postmaster_pid(&base_dir);

    let stop = Command::new(BINARY)
        .arg("stop")
        .arg(&base_dir)
        .output()
        .unwrap();
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(!base_dir.exists());
    assert!(!is_alive(pid), "postmaster {pid} survived stop");
    assert!(postgres::Client::connect(&exports["SAFESHIFT_TEST_PG_URL"], postgres::NoTls).is_err());
}

#[test]
fn stop_refuses_a_directory_the_testkit_did_not_create() {
    let scratch =
        std::env::temp_dir().join(format!("safeshift-testkit-foreign-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let stop = Command::new(BINARY)
        .arg("stop")
        .arg(&scratch)
        .output()
        .unwrap();
    assert!(!stop.status.success());
    assert!(String::from_utf8_lossy(&stop.stderr).contains("refusing to remove it"));
    assert!(scratch.exists());
    std::fs::remove_dir(&scratch).unwrap();
}

#[test]
fn unknown_arguments_are_usage_errors() {
    let output = Command::new(BINARY)
        .args(["start", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage:"));
}
