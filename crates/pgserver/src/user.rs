//! The account the servers run as.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::error::PgServerError;

/// The system user the servers run as when this process runs as root.
const SERVER_USER_NAME: &str = "postgres";

/// The account that owns the data directories and runs `initdb` and `postgres` (and, in the
/// testkit, `pgbouncer`).
///
/// PostgreSQL and PgBouncer refuse to run as root, so as root this is the `postgres` system
/// user; otherwise it is the current user and nothing is switched.
#[derive(Clone, Copy, Debug)]
pub struct ServerUser {
    uid: u32,
    gid: u32,
    switch: bool,
}

impl ServerUser {
    /// The user for this process, looked up once.
    pub fn get() -> Result<ServerUser, PgServerError> {
        static USER: OnceLock<Result<ServerUser, String>> = OnceLock::new();
        USER.get_or_init(|| ServerUser::detect().map_err(|_| SERVER_USER_NAME.to_owned()))
            .clone()
            .map_err(|user| PgServerError::ServerUserMissing { user })
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
    pub fn configure(&self, command: &mut Command) {
        if self.switch {
            command.uid(self.uid).gid(self.gid);
        }
    }

    /// Hands `path` to this user (a no-op when not root).
    pub fn give(&self, path: &Path) -> Result<(), PgServerError> {
        if !self.switch {
            return Ok(());
        }
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid)).map_err(|source| {
            PgServerError::io(
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
