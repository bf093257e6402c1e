//! Rule metadata: what each rule is about, kept as data in `crates/lint/rules/<id>.toml`, apart
//! from the rule's logic. `safeshift explain` and the docs are generated from it, and tests check
//! every example against the rule, so the documentation cannot drift from the behaviour.

use serde::Deserialize;

use crate::lock::LockMode;
use crate::risk::Risk;

/// How the time a statement holds its lock grows with the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cost {
    /// Every row is rewritten and every index rebuilt.
    Rewrite,
    /// Every row is read (validation, `SET NOT NULL`).
    Scan,
    /// An index is built from every row.
    IndexBuild,
    /// Every row is changed by DML.
    DataChange,
    /// A catalog change: instant once the lock is granted.
    Metadata,
    /// Not about locks or time (naming, types, data loss, ordering).
    None,
}

/// How an example runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExampleMode {
    /// A migration the runner wraps in a transaction and sets timeouts for.
    #[default]
    Migration,
    /// A `transaction:false` migration.
    MigrationWithoutTransaction,
    /// A plain SQL script run by another tool (psql): no implicit transaction, no timeouts.
    Script,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    /// SQL run (and applied) before the examples: the tables they need.
    #[serde(default)]
    pub setup: String,
    pub bad: String,
    #[serde(default)]
    pub bad_mode: ExampleMode,
    pub good: String,
    #[serde(default)]
    pub good_mode: ExampleMode,
    /// The PostgreSQL major version the examples target, when not the default.
    pub pg_version: Option<u32>,
}

/// Everything said about a rule, apart from how it decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMetadata {
    pub id: String,
    /// A one-line summary.
    pub title: String,
    /// The risk before table sizes are known.
    pub risk: Risk,
    /// The lock the bad pattern takes, if the rule is about one.
    pub lock: Option<LockMode>,
    /// Which tables the lock is on, in words.
    #[serde(default)]
    pub tables: String,
    pub cost: Cost,
    /// What the pattern does that no table size makes harmless: its findings' floor.
    pub hazard: Option<crate::policy::Hazard>,
    /// Why the pattern is dangerous.
    pub why: String,
    /// What to do instead, in a sentence (the findings' `help`).
    pub help: String,
    /// The safe alternative as a SQL template, for the documentation.
    pub safe_alternative: String,
    pub examples: Examples,
    /// Why the lock verification test cannot observe this rule's claim, if it cannot.
    pub unverifiable: Option<String>,
    /// What PostgreSQL answers when the bad example runs, for patterns that fail outright.
    pub server_error: Option<String>,
    /// The rule fires only with the database's history (`--database-url`), so its examples alone
    /// cannot show it; its own tests give the history.
    #[serde(default)]
    pub needs_history: bool,
    /// The catalogue pattern(s) the rule covers (section A of the lint analysis).
    pub catalogue: Vec<u32>,
}

impl RuleMetadata {
    pub(crate) fn parse(text: &str) -> Result<RuleMetadata, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// The rule's page, as `safeshift explain` prints it.
    pub fn explain(&self) -> String {
        let mut page = format!("{} — {}\n\nrisk: {}\n", self.id, self.title, self.risk);
        match self.lock {
            Some(lock) => {
                page.push_str(&format!("lock: {lock}"));
                if !self.tables.is_empty() {
                    page.push_str(&format!(" on {}", self.tables));
                }
                page.push_str(&format!("\nblocks: {}\n", lock.blocks().describe()));
            }
            None => page.push_str("lock: none that blocks traffic\n"),
        }
        page.push_str(&format!("duration: {}\n", cost_words(self.cost)));
        if let Some(hazard) = self.hazard {
            page.push_str(&format!("risk floor: {}\n", hazard.describe()));
        }
        page.push_str(&format!("\nWhy it matters\n{}\n", indent(&self.why)));
        page.push_str(&format!("\nWhat to do\n{}\n", indent(&self.help)));
        page.push_str(&format!(
            "\nSafe alternative\n{}\n",
            indent(&self.safe_alternative)
        ));
        page.push_str(&format!("\nFlagged\n{}\n", indent(&self.examples.bad)));
        page.push_str(&format!("\nNot flagged\n{}\n", indent(&self.examples.good)));
        page
    }
}

fn cost_words(cost: Cost) -> &'static str {
    match cost {
        Cost::Rewrite => "grows with the table: every row and index is rewritten",
        Cost::Scan => "grows with the table: every row is read",
        Cost::IndexBuild => "grows with the table: an index is built from every row",
        Cost::DataChange => "grows with the rows changed",
        Cost::Metadata => {
            "instant once the lock is granted (but waiting for it queues everyone behind)"
        }
        Cost::None => "not about time",
    }
}

fn indent(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
