//! The rules: one file per rule, named after its id, with its logic and its tests. Each rule's
//! metadata lives in `crates/lint/rules/<id>.toml`.

use std::sync::OnceLock;

#[cfg(test)]
mod testing;

use crate::context::{MigrationEnd, StatementContext};
use crate::effects::TableLock;
use crate::metadata::RuleMetadata;
use crate::risk::Risk;

pub(crate) use unbatched_data_change::BACKFILL_DIRECTIVE;

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
    /// Overrides the metadata's hazard: `Some(None)` for none.
    pub hazard: Option<Option<crate::policy::Hazard>>,
    /// The locks the finding is about; the statement's locks on existing tables when `None`.
    pub locks: Option<Vec<TableLock>>,
    pub rewrite: Option<bool>,
    /// The safe alternative for this statement.
    pub safe_alternative: Option<String>,
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

    pub fn hazard(mut self, hazard: Option<crate::policy::Hazard>) -> Violation {
        self.hazard = Some(hazard);
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

    pub fn at_statement(mut self, statement: usize) -> Violation {
        self.statement = Some(statement);
        self
    }
}

/// The column as it should be written with another type: an `ADD COLUMN` for an added column,
/// the column definition for one in `CREATE TABLE`.
pub(crate) fn column_with_type(
    table: &crate::sql::TableName,
    column: &str,
    added: bool,
    column_type: &str,
) -> String {
    let name = crate::sql::quote_ident(column);
    if added {
        format!(
            "ALTER TABLE {} ADD COLUMN {name} {column_type}",
            table.sql()
        )
    } else {
        format!("{name} {column_type}  -- in CREATE TABLE {}", table.sql())
    }
}

/// The two-step replacement for a UNIQUE or PRIMARY KEY constraint that would build its index
/// under the table lock: build the index concurrently, then attach it.
pub(crate) fn index_backed_constraint_alternative(
    table: &crate::sql::TableName,
    name: &str,
    columns: &[String],
    kind: &str,
) -> String {
    let index = crate::sql::quote_ident(&format!("{name}_idx"));
    format!(
        "-- migration 1, marked `-- migrate:up transaction:false`:\n\
         CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {table} ({columns});\n\
         -- migration 2:\nALTER TABLE {table} ADD CONSTRAINT {name} {kind} USING INDEX {index};",
        table = table.sql(),
        columns = crate::sql::column_list(columns),
        name = crate::sql::quote_ident(name),
    )
}

/// Findings for locks held in a transaction while later statements did slow work (a scan, a
/// rewrite, an index build, a data change), for the modes `select` picks. Quick statements after
/// the lock (comments, views, functions, other catalog changes) extend it by milliseconds and are
/// not reported.
pub(crate) fn held_lock_violations(
    end: &crate::context::MigrationEnd<'_>,
    violations: &mut Vec<Violation>,
    select: impl Fn(crate::lock::LockMode) -> bool,
) {
    for held in end
        .state
        .released
        .iter()
        .filter(|h| h.later_slow_work && select(h.lock.mode))
    {
        violations.push(
            Violation::new(format!(
                "{} on `{}` taken here is held until the transaction ends, through {} more statement{} including slow work: {} on `{}` wait all that time",
                held.lock.mode,
                held.lock.table,
                held.later_statements,
                if held.later_statements == 1 { "" } else { "s" },
                held.lock.mode.blocks().describe(),
                held.lock.table,
            ))
            .locks(vec![held.lock.clone()])
            .at_statement(held.statement)
            .alternative(
                "-- move this statement to the end of the migration, or into a migration of its own",
            ),
        );
    }
}

/// A rule: its id, its metadata text and its logic.
pub(crate) struct RuleEntry {
    pub id: RuleId,
    pub metadata_text: &'static str,
    pub logic: &'static dyn Rule,
}

macro_rules! rules {
    ($($variant:ident: $module:ident => $id:literal,)*) => {
        $(mod $module;)*

        /// A rule, by its id: every rule there is. Its kebab-case name (`as_str`) is what files,
        /// reports and `-- safeshift:allow` write.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $($variant,)*
        }

        impl RuleId {
            /// Every rule, in the order they run.
            pub const ALL: &[RuleId] = &[$(RuleId::$variant,)*];

            /// The kebab-case id: `require-concurrent-index-creation`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $id,)*
                }
            }
        }

        /// Every rule, in the order they run.
        pub(crate) static RULES: &[RuleEntry] = &[
            $(RuleEntry {
                id: RuleId::$variant,
                metadata_text: include_str!(concat!("../../rules/", $id, ".toml")),
                logic: &$module::Check,
            },)*
        ];
    };
}

rules! {
    AccessExclusiveHeldAcrossStatements: access_exclusive_held_across_statements => "access-exclusive-held-across-statements",
    AddingAutoIncrementColumn: adding_auto_increment_column => "adding-auto-increment-column",
    AddingCheckWithoutNotValid: adding_check_without_not_valid => "adding-check-without-not-valid",
    AddingColumnWithDefaultBeforePg11: adding_column_with_default_before_pg11 => "adding-column-with-default-before-pg11",
    AddingColumnWithVolatileDefault: adding_column_with_volatile_default => "adding-column-with-volatile-default",
    AddingExclusionConstraint: adding_exclusion_constraint => "adding-exclusion-constraint",
    AddingForeignKeyWithoutNotValid: adding_foreign_key_without_not_valid => "adding-foreign-key-without-not-valid",
    AddingPrimaryKey: adding_primary_key => "adding-primary-key",
    AddingRequiredColumn: adding_required_column => "adding-required-column",
    AddingStoredGeneratedColumn: adding_stored_generated_column => "adding-stored-generated-column",
    AddingUniqueConstraint: adding_unique_constraint => "adding-unique-constraint",
    AvoidCharType: avoid_char_type => "avoid-char-type",
    BlockingLockHeldAcrossStatements: blocking_lock_held_across_statements => "blocking-lock-held-across-statements",
    ChangingColumnType: changing_column_type => "changing-column-type",
    ConcurrentlyInTransaction: concurrently_in_transaction => "concurrently-in-transaction",
    CreatingEnum: creating_enum => "creating-enum",
    CreatingTriggerOnExistingTable: creating_trigger_on_existing_table => "creating-trigger-on-existing-table",
    DomainWithCheckConstraint: domain_with_check_constraint => "domain-with-check-constraint",
    DroppingColumn: dropping_column => "dropping-column",
    DroppingConstraint: dropping_constraint => "dropping-constraint",
    DroppingNotNull: dropping_not_null => "dropping-not-null",
    DroppingSchemaOrDatabase: dropping_schema_or_database => "dropping-schema-or-database",
    DroppingTable: dropping_table => "dropping-table",
    DuplicateColumnAssignment: duplicate_column_assignment => "duplicate-column-assignment",
    EnumValueWithoutPosition: enum_value_without_position => "enum-value-without-position",
    ForeignKeyWithoutIndex: foreign_key_without_index => "foreign-key-without-index",
    IdentifierTooLong: identifier_too_long => "identifier-too-long",
    LockingTable: locking_table => "locking-table",
    MissingLockTimeout: missing_lock_timeout => "missing-lock-timeout",
    MissingStatementTimeout: missing_statement_timeout => "missing-statement-timeout",
    MultipleAlterTableStatements: multiple_alter_table_statements => "multiple-alter-table-statements",
    NestedTransaction: nested_transaction => "nested-transaction",
    NonIdempotentInNonTransactionalMigration: non_idempotent_in_non_transactional_migration => "non-idempotent-in-non-transactional-migration",
    NonLinearHistory: non_linear_history => "non-linear-history",
    PreferBigint: prefer_bigint => "prefer-bigint",
    PreferIdentity: prefer_identity => "prefer-identity",
    PreferJsonb: prefer_jsonb => "prefer-jsonb",
    PreferTextOverVarchar: prefer_text_over_varchar => "prefer-text-over-varchar",
    PreferTimestamptz: prefer_timestamptz => "prefer-timestamptz",
    RefreshMaterializedViewWithoutConcurrently: refresh_materialized_view_without_concurrently => "refresh-materialized-view-without-concurrently",
    RenamingColumn: renaming_column => "renaming-column",
    RenamingEnumValue: renaming_enum_value => "renaming-enum-value",
    RenamingSchema: renaming_schema => "renaming-schema",
    RenamingTable: renaming_table => "renaming-table",
    RequireConcurrentIndexCreation: require_concurrent_index_creation => "require-concurrent-index-creation",
    RequireConcurrentIndexDeletion: require_concurrent_index_deletion => "require-concurrent-index-deletion",
    RequireConcurrentPartitionDetach: require_concurrent_partition_detach => "require-concurrent-partition-detach",
    RequireConcurrentReindex: require_concurrent_reindex => "require-concurrent-reindex",
    RewritingTable: rewriting_table => "rewriting-table",
    SettingNotNullOnExistingColumn: setting_not_null_on_existing_column => "setting-not-null-on-existing-column",
    TruncateCascade: truncate_cascade => "truncate-cascade",
    TruncatingTable: truncating_table => "truncating-table",
    UnbatchedDataChange: unbatched_data_change => "unbatched-data-change",
    UnclosedTransaction: unclosed_transaction => "unclosed-transaction",
    UninspectableSql: uninspectable_sql => "uninspectable-sql",
    VacuumFullOrCluster: vacuum_full_or_cluster => "vacuum-full-or-cluster",
    ValidateInSameTransaction: validate_in_same_transaction => "validate-in-same-transaction",
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
    RULES.iter().position(|rule| rule.id.as_str() == id)
}

impl RuleId {
    /// The rule with this kebab-case id.
    pub fn parse(id: &str) -> Option<RuleId> {
        RuleId::ALL.iter().copied().find(|rule| rule.as_str() == id)
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for RuleId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RuleId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for RuleId {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linter::Linter;
    use crate::options::{LintOptions, PgVersion};

    #[test]
    fn every_rule_has_valid_metadata_named_after_it() {
        for (rule, metadata) in RULES.iter().zip(metadata()) {
            assert_eq!(
                rule.id, metadata.id,
                "rules/{}.toml names another rule",
                rule.id
            );
            assert!(
                rule.id
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{} is not kebab-case",
                rule.id
            );
            for (field, text) in [
                ("title", &metadata.title),
                ("why", &metadata.why),
                ("help", &metadata.help),
                ("safe_alternative", &metadata.safe_alternative),
            ] {
                assert!(!text.trim().is_empty(), "{}: {field} is empty", rule.id);
            }
            assert!(
                metadata
                    .unverifiable
                    .as_ref()
                    .is_none_or(|reason| !reason.trim().is_empty()),
                "{}: empty unverifiable reason",
                rule.id
            );
        }
    }

    #[test]
    fn every_catalogue_pattern_has_a_rule() {
        let covered: Vec<u32> = metadata()
            .iter()
            .flat_map(|m| m.catalogue.iter().copied())
            .collect();
        let missing: Vec<u32> = (1..=48).filter(|n| !covered.contains(n)).collect();
        assert!(
            missing.is_empty(),
            "catalogue patterns without a rule: {missing:?}"
        );
    }

    #[test]
    fn bad_examples_are_flagged_and_good_ones_are_not() {
        for metadata in metadata() {
            let linter = Linter::new(LintOptions {
                pg_version: metadata
                    .examples
                    .pg_version
                    .map_or(PgVersion::DEFAULT, PgVersion),
                ..LintOptions::default()
            })
            .unwrap();
            let examples = &metadata.examples;
            let bad = linter.lint_example(&examples.setup, &examples.bad, examples.bad_mode);
            assert!(
                bad.errors().next().is_none(),
                "{}: bad example has errors: {:?}",
                metadata.id,
                bad.diagnostics
            );
            let flagged = bad.findings.iter().any(|f| f.rule == metadata.id);
            assert_eq!(
                flagged, !metadata.needs_history,
                "{}: bad example flagged = {flagged}",
                metadata.id
            );
            let good = linter.lint_example(&examples.setup, &examples.good, examples.good_mode);
            assert!(
                good.errors().next().is_none(),
                "{}: good example has errors: {:?}",
                metadata.id,
                good.diagnostics
            );
            let wrongly: Vec<_> = good
                .findings
                .iter()
                .filter(|f| f.rule == metadata.id)
                .collect();
            assert!(
                wrongly.is_empty(),
                "{}: good example flagged: {wrongly:#?}",
                metadata.id
            );
        }
    }

    #[test]
    fn the_lock_in_the_metadata_is_the_lock_findings_report() {
        for metadata in metadata().iter().filter(|m| m.lock.is_some()) {
            let linter = Linter::new(LintOptions {
                pg_version: metadata
                    .examples
                    .pg_version
                    .map_or(PgVersion::DEFAULT, PgVersion),
                ..LintOptions::default()
            })
            .unwrap();
            let examples = &metadata.examples;
            let bad = linter.lint_example(&examples.setup, &examples.bad, examples.bad_mode);
            for finding in bad.findings.iter().filter(|f| f.rule == metadata.id) {
                assert_eq!(
                    finding.lock, metadata.lock,
                    "{}: finding on line {} reports {:?}",
                    metadata.id, finding.line, finding.lock
                );
            }
        }
    }

    #[test]
    fn explain_is_generated_from_the_metadata() {
        let page = crate::explain("require-concurrent-index-creation").unwrap();
        let metadata = crate::rule("require-concurrent-index-creation").unwrap();
        assert!(page.contains(metadata.why.lines().next().unwrap()));
        assert!(page.contains("blocks: writes and schema changes"));
        assert!(page.contains(metadata.examples.bad.trim()));
        assert!(crate::explain("no-such-rule").is_err());
    }
}
