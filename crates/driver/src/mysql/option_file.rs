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
        let dir = std::env::temp_dir().join(format!(
            "safeshift-mysql-{}-{}",
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
