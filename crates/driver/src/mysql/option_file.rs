//! A `[client]` option file for the MySQL client programs (`mariadb-dump`, `mariadb`,
//! `pt-online-schema-change`): host, port, user and password of the driver's connection, in a
//! private directory with mode 0600, removed when dropped. The password never reaches a command
//! line or the environment, where other users could read it.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::MysqlDriver;
use crate::error::{DriverError, ErrorKind};

/// See the module documentation.
#[derive(Debug)]
pub struct ClientOptionFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ClientOptionFile {
    /// The file's path, for `--defaults-extra-file=` or a DSN's `F=`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ClientOptionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl MysqlDriver {
    /// Writes the connection's settings into a fresh [`ClientOptionFile`].
    pub fn client_option_file(&self) -> Result<ClientOptionFile, DriverError> {
        let failed = |what: &str, error: std::io::Error| {
            DriverError::new(
                ErrorKind::Connect,
                format!("cannot write the client option file ({what}): {error}"),
            )
        };
        remove_files_of_dead_processes();
        let dir = std::env::temp_dir().join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            fastrand_suffix()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| failed("directory", e))?;
        let file = ClientOptionFile {
            path: dir.join("client.cnf"),
            dir,
        };
        let opts = &self.opts;
        let value = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
        let mut text = String::from("[client]\n");
        text.push_str(&format!("host={}\n", value(&opts.get_ip_or_hostname())));
        text.push_str(&format!("port={}\n", opts.get_tcp_port()));
        if let Some(user) = opts.get_user() {
            text.push_str(&format!("user={}\n", value(user)));
        }
        if let Some(password) = opts.get_pass() {
            text.push_str(&format!("password={}\n", value(password)));
        }
        if let Some(socket) = opts.get_socket() {
            text.push_str(&format!("socket={}\n", value(socket)));
        }
        text.push_str("default-character-set=utf8mb4\n");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| failed("file", e))?;
        Ok(file)
    }
}

/// The start of the directories' names, before the owning process's id.
const PREFIX: &str = "safeshift-mysql-";

/// Removes the directories a killed process left (its `Drop` never ran), so a password does not
/// stay on disk longer than the next run.
fn remove_files_of_dead_processes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // Another user's directory cannot be removed; that is theirs to clean.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A few random hex digits, so concurrent runs in one process get their own directory.
fn fastrand_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_process_s_option_file_is_removed_and_a_live_one_s_kept() {
        // A pid far above any Linux pid_max is never alive.
        let dead = std::env::temp_dir().join(format!("{PREFIX}4294967295-test"));
        let live = std::env::temp_dir().join(format!("{PREFIX}{}-test", std::process::id()));
        for dir in [&dead, &live] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("client.cnf"), "[client]\npassword=\"secret\"\n").unwrap();
        }
        remove_files_of_dead_processes();
        assert!(!dead.exists());
        assert!(live.exists());
        std::fs::remove_dir_all(&live).unwrap();
    }
}
