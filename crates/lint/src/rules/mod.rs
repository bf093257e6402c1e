//! The rules: one file per rule, named after its id, with its logic and its tests. Each rule's
//! metadata lives in `crates/lint/rules/<id>.toml`.

use std::sync::OnceLock;

#[cfg(test)]
mod testing;

use crate::context::{MigrationEnd, StatementContext};
use crate::effects::TableLock;
use crate::metadata::RuleMetadata;
use crate::risk::Risk;

/// A rule's logic. Both hooks default to finding nothing.
pub(crate) trait Rule: Sync {
    /// Looks at one statement.
    fn check(&self, _context: &StatementContext<'_>, _violations: &mut Vec<Violation>) {}
    /// Looks at the migration once all its statements are seen.
    fn finish(&self, _end: &MigrationEnd<'_>, _violations: &mut Vec<Violation>) {}
}

/// What a rule reports; the linter adds the rule id, position and metadata.
#[derive(Debug, Clone, Default)]
pub(crate) struct Violation {
    pub message: String,
    /// Overrides the metadata's risk.
    pub risk: Option<Risk>,
    /// The locks the finding is about; the statement's locks on existing tables when `None`.
    pub locks: Option<Vec<TableLock>>,
    pub rewrite: Option<bool>,
    /// The safe alternative for this statement.
    pub safe_alternative: Option<String>,
    /// Overrides the metadata's help.
    pub help: Option<String>,
    /// The statement the finding belongs to, when not the current one (end-of-migration rules).
    pub statement: Option<usize>,
}

impl Violation {
    pub fn new(message: impl Into<String>) -> Violation {
        Violation {
            message: message.into(),
            ..Violation::default()
        }
    }

    pub fn risk(mut self, risk: Risk) -> Violation {
        self.risk = Some(risk);
        self
    }

    pub fn locks(mut self, locks: Vec<TableLock>) -> Violation {
        self.locks = Some(locks);
        self
    }

    pub fn rewrite(mut self, rewrite: bool) -> Violation {
        self.rewrite = Some(rewrite);
        self
    }

    pub fn alternative(mut self, sql: impl Into<String>) -> Violation {
        self.safe_alternative = Some(sql.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Violation {
        self.help = Some(help.into());
        self
    }

    pub fn at_statement(mut self, statement: usize) -> Violation {
        self.statement = Some(statement);
        self
    }
}

/// A rule: its id, its metadata text and its logic.
pub(crate) struct RuleEntry {
    pub id: &'static str,
    pub metadata_text: &'static str,
    pub logic: &'static dyn Rule,
}

macro_rules! rules {
    ($($module:ident => $id:literal,)*) => {
        $(mod $module;)*

        /// Every rule, in the order they run.
        pub(crate) static RULES: &[RuleEntry] = &[
            $(RuleEntry {
                id: $id,
                metadata_text: include_str!(concat!("../../rules/", $id, ".toml")),
                logic: &$module::Check,
            },)*
        ];
    };
}

rules! {
    require_concurrent_index_creation => "require-concurrent-index-creation",
}

/// The parsed metadata of every rule, in [`RULES`] order.
pub(crate) fn metadata() -> &'static [RuleMetadata] {
    static METADATA: OnceLock<Vec<RuleMetadata>> = OnceLock::new();
    METADATA.get_or_init(|| {
        RULES
            .iter()
            .map(|rule| {
                RuleMetadata::parse(rule.metadata_text)
                    .unwrap_or_else(|error| panic!("rules/{}.toml is not valid: {error}", rule.id))
            })
            .collect()
    })
}

/// The position of a rule in [`RULES`].
pub(crate) fn position(id: &str) -> Option<usize> {
    RULES.iter().position(|rule| rule.id == id)
}
