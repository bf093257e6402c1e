//! Which server a MySQL migration is linted for: what ALTER TABLE can do online depends on the
//! server and its version (INSTANT ADD COLUMN arrived in MySQL 8.0.12 and MariaDB 10.3, and at
//! any position in 8.0.29 and 10.4).

use serde::Serialize;

/// MySQL or MariaDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    Mysql,
    Mariadb,
}

/// A server and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MysqlTarget {
    pub server: Server,
    /// `(major, minor, patch)`.
    pub version: (u32, u32, u32),
}

impl MysqlTarget {
    /// The version assumed when no server is reachable: a current long-term release.
    pub fn default_for(server: Server) -> MysqlTarget {
        MysqlTarget {
            server,
            version: match server {
                Server::Mysql => (8, 0, 36),
                Server::Mariadb => (10, 11, 0),
            },
        }
    }

    /// From a server's version string (`10.11.14-MariaDB-0+deb12u2`, `8.0.36`).
    pub fn from_version_string(version: &str) -> MysqlTarget {
        let server = if version.to_ascii_lowercase().contains("mariadb") {
            Server::Mariadb
        } else {
            Server::Mysql
        };
        let mut numbers = version
            .split(|c: char| !c.is_ascii_digit())
            .filter(|part| !part.is_empty())
            .map(|part| part.parse().unwrap_or(0));
        MysqlTarget {
            server,
            version: (
                numbers.next().unwrap_or(0),
                numbers.next().unwrap_or(0),
                numbers.next().unwrap_or(0),
            ),
        }
    }

    /// `MariaDB 10.11.0`.
    pub fn describe(&self) -> String {
        let (major, minor, patch) = self.version;
        let name = match self.server {
            Server::Mysql => "MySQL",
            Server::Mariadb => "MariaDB",
        };
        format!("{name} {major}.{minor}.{patch}")
    }

    /// Whether this is `server` at `version` or newer.
    pub fn is_at_least(&self, server: Server, version: (u32, u32, u32)) -> bool {
        self.server == server && self.version >= version
    }

    /// `ADD COLUMN` is instant as the table's last column.
    pub fn instant_add_last(&self) -> bool {
        self.is_at_least(Server::Mysql, (8, 0, 12)) || self.is_at_least(Server::Mariadb, (10, 3, 2))
    }

    /// `ADD COLUMN` is instant at any position, and `DROP COLUMN` is instant.
    pub fn instant_add_anywhere_and_drop(&self) -> bool {
        self.is_at_least(Server::Mysql, (8, 0, 29)) || self.is_at_least(Server::Mariadb, (10, 4, 0))
    }

    /// `RENAME COLUMN` changes only metadata.
    pub fn instant_rename_column(&self) -> bool {
        self.is_at_least(Server::Mysql, (8, 0, 28)) || self.is_at_least(Server::Mariadb, (10, 5, 2))
    }

    /// Changing a column's position (`FIRST`, `AFTER`) without changing it is instant.
    pub fn instant_reorder(&self) -> bool {
        self.is_at_least(Server::Mariadb, (10, 4, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_the_server_string() {
        let target = MysqlTarget::from_version_string("10.11.14-MariaDB-0+deb12u2");
        assert_eq!(target.server, Server::Mariadb);
        assert_eq!(target.version, (10, 11, 14));
        assert!(target.instant_add_anywhere_and_drop());
        let old = MysqlTarget::from_version_string("8.0.20");
        assert!(old.instant_add_last() && !old.instant_add_anywhere_and_drop());
    }
}
