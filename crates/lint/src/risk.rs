//! Risk levels, as the runbooks grade a change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How dangerous a statement is for a database serving traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Worth knowing; does not block traffic for long or lose data.
    Low,
    /// Blocks some traffic briefly, or needs a deliberate decision.
    Medium,
    /// Can block traffic for a long time, fail on real data, lose data or break running code.
    High,
}

impl Risk {
    pub const ALL: [Risk; 3] = [Risk::Low, Risk::Medium, Risk::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }

    /// One level up, or `High`.
    pub fn raised(self) -> Risk {
        match self {
            Risk::Low => Risk::Medium,
            _ => Risk::High,
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Risk {
    type Err = String;

    fn from_str(text: &str) -> Result<Risk, String> {
        match text.to_ascii_lowercase().as_str() {
            "low" => Ok(Risk::Low),
            "medium" => Ok(Risk::Medium),
            "high" => Ok(Risk::High),
            _ => Err(format!(
                "`{text}` is not a risk level; use low, medium or high"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_parses() {
        assert!(Risk::Low < Risk::Medium && Risk::Medium < Risk::High);
        assert_eq!("HIGH".parse::<Risk>(), Ok(Risk::High));
        assert!("severe".parse::<Risk>().is_err());
        assert_eq!(Risk::Low.raised(), Risk::Medium);
        assert_eq!(Risk::High.raised(), Risk::High);
    }
}
