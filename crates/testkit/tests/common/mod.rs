//! Helpers shared by the testkit's own tests.

/// Whether a process exists and is not a zombie (PID 1 may never reap orphans here).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let after_name = stat.rsplit(')').next().unwrap_or_default();
        !after_name.trim_start().starts_with('Z')
    })
}
