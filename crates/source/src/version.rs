//! Migration versions: text, ordered by their numbers (`2` < `10`, `0004` < `20240101120000`,
//! `1.2` < `1.10`), and the names of repeatable migrations (Flyway's `R__views.sql` is `R__views`),
//! which come after every numbered version, in the order of their names.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Serialize, Serializer};

/// A migration version as written in its file name. Versions are text, compared by the numbers
/// they hold, so `0004` and `4` are the same version and `9` comes before `10`.
#[derive(Debug, Clone)]
pub struct Version(String);

/// What a repeatable migration's version starts with: `R__` and its description.
const REPEATABLE_PREFIX: &str = "R__";

impl Version {
    /// Accepts digits, optionally in dot-separated groups (`0004`, `20240101120000`, `1.2`), and
    /// the versions of repeatable migrations (`R__views`, see [`Version::repeatable`]).
    pub fn parse(text: &str) -> Option<Version> {
        if let Some(description) = text.strip_prefix(REPEATABLE_PREFIX) {
            return (!description.is_empty()).then(|| Version(text.to_owned()));
        }
        let valid = !text.is_empty()
            && text
                .split('.')
                .all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()));
        valid.then(|| Version(text.to_owned()))
    }

    /// The version of a repeatable migration (Flyway's `R__<description>.sql`): it has no number,
    /// runs after every numbered migration, and runs again whenever its file changes.
    pub fn repeatable(description: &str) -> Version {
        Version(format!("{REPEATABLE_PREFIX}{description}"))
    }

    /// Whether this is a repeatable migration's version.
    pub fn is_repeatable(&self) -> bool {
        self.0.starts_with(REPEATABLE_PREFIX)
    }

    /// The version exactly as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn groups(&self) -> impl Iterator<Item = &str> {
        self.0.split('.').map(|g| {
            let trimmed = g.trim_start_matches('0');
            if trimmed.is_empty() { "0" } else { trimmed }
        })
    }

    /// Whether every group is a plain number of 14 digits, the `YYYYMMDDHHMMSS` scheme.
    pub fn is_timestamp(&self) -> bool {
        self.0.len() == 14 && self.0.bytes().all(|b| b.is_ascii_digit())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.is_repeatable(), other.is_repeatable()) {
            (true, true) => return self.0.cmp(&other.0),
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        let mut left = self.groups();
        let mut right = other.groups();
        loop {
            match (left.next(), right.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(a), Some(b)) => {
                    let ordering = a.len().cmp(&b.len()).then_with(|| a.cmp(b));
                    if ordering != Ordering::Equal {
                        return ordering;
                    }
                }
            }
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.is_repeatable() {
            self.0.hash(state);
            return;
        }
        for group in self.groups() {
            group.hash(state);
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn numbers_order_numerically() {
        assert!(v("9") < v("10"));
        assert!(v("0004") < v("20240101120000"));
        assert!(v("1.2") < v("1.10"));
        assert!(v("1") < v("1.1"));
        assert_eq!(v("0004"), v("4"));
    }

    #[test]
    fn repeatables_come_after_numbers_in_name_order() {
        let views = Version::repeatable("views");
        assert!(views.is_repeatable());
        assert_eq!(Version::parse("R__views"), Some(views.clone()));
        assert!(v("99999999999999") < views);
        assert!(Version::repeatable("functions") < views);
        assert!(!v("0001").is_repeatable());
        assert!(Version::parse("R__").is_none());
    }

    #[test]
    fn rejects_non_numeric_versions() {
        for bad in ["", "a1", "1a", "1..2", ".1", "1_2", "R_x"] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }
}
