//! SHA-256 checksums of migration sections.
//!
//! The checksum covers a section's text after normalisation: the byte-order mark is dropped,
//! CRLF and CR become LF (see [`crate::SourceText`]), and trailing whitespace at the end of the
//! section is ignored. So a file checked out with Windows line endings, saved by an editor that
//! adds a BOM, or given a final newline keeps its checksum; any other edit, comments included,
//! changes it.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `sha256:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Checksum(String);

impl Checksum {
    /// The checksum of normalised section text.
    pub fn of(text: &str) -> Checksum {
        Checksum::of_parts([text.trim_end()])
    }

    /// The checksum of the first `count` statements of a section, used to make sure a resumed
    /// migration still starts from the statements that were already applied.
    pub fn of_statements<'a>(statements: impl IntoIterator<Item = &'a str>) -> Checksum {
        let mut hasher = Sha256::new();
        for statement in statements {
            hasher.update(statement.as_bytes());
            hasher.update(b"\0");
        }
        Checksum::from_digest(hasher)
    }

    /// The checksums of every prefix of a statement list: element `k` covers the first `k`
    /// statements (so the list is one longer than the statements), computed in one pass.
    pub fn of_statement_prefixes<'a>(
        statements: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Checksum> {
        let mut hasher = Sha256::new();
        let mut prefixes = vec![Checksum::from_digest(hasher.clone())];
        for statement in statements {
            hasher.update(statement.as_bytes());
            hasher.update(b"\0");
            prefixes.push(Checksum::from_digest(hasher.clone()));
        }
        prefixes
    }

    fn of_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> Checksum {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part.as_bytes());
        }
        Checksum::from_digest(hasher)
    }

    fn from_digest(hasher: Sha256) -> Checksum {
        let digest = hasher.finalize();
        let mut text = String::with_capacity(7 + 64);
        text.push_str("sha256:");
        for byte in digest.iter() {
            // Writing to a String cannot fail.
            let _ = write!(text, "{byte:02x}");
        }
        Checksum(text)
    }

    /// Wraps a checksum read back from the history.
    pub fn from_stored(text: impl Into<String>) -> Checksum {
        Checksum(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for tables.
    pub fn short(&self) -> &str {
        let hex = self.0.strip_prefix("sha256:").unwrap_or(&self.0);
        &hex[..hex.len().min(12)]
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_whitespace_does_not_count() {
        assert_eq!(
            Checksum::of("create table t ();"),
            Checksum::of("create table t ();\n\n")
        );
        assert_ne!(
            Checksum::of("create table t ();"),
            Checksum::of("create table u ();")
        );
    }

    #[test]
    fn known_value() {
        // sha256("abc")
        assert_eq!(
            Checksum::of("abc").as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Checksum::of("abc").short(), "ba7816bf8f01");
    }

    #[test]
    fn prefixes_match_whole_list_checksums() {
        let statements = ["create table a ()", "create table b ()"];
        let prefixes = Checksum::of_statement_prefixes(statements);
        assert_eq!(prefixes.len(), 3);
        assert_eq!(prefixes[0], Checksum::of_statements([]));
        assert_eq!(prefixes[1], Checksum::of_statements(["create table a ()"]));
        assert_eq!(prefixes[2], Checksum::of_statements(statements));
    }

    #[test]
    fn statement_boundaries_matter() {
        assert_ne!(
            Checksum::of_statements(["ab", "c"]),
            Checksum::of_statements(["a", "bc"])
        );
    }
}
