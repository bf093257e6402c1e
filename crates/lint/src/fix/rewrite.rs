//! The safe form of one flagged statement: which text replaces it, and whether the result must
//! run outside a migration transaction. Every rewrite starts from the statement's syntax tree
//! (parsed from the statement's own text, so node locations are offsets into it) and edits the
//! original text only where the tree says, so the statement keeps its spelling and comments.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableStmt, AlterTableType, ConstrType, Constraint, DropBehavior,
    ObjectType, RangeVar, ReindexObjectType,
};
use safeshift_source::Statement;

use crate::context::Execution;
use crate::naming;
use crate::options::PgVersion;
use crate::rules::{BACKFILL_DIRECTIVE, RuleId};
use crate::schema::{ConstraintKind, Schema};
use crate::sql::{self, TableName, insert_after_keyword, quote_ident, strings};

/// What `--fix` does with one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// The text that replaces the statement (its span, without the semicolon), when it changes.
    pub replacement: Option<String>,
    /// A line inserted above the statement (a directive), when one is needed.
    pub line_above: Option<String>,
    /// Whether the section must run without a migration transaction afterwards.
    pub needs_no_transaction: bool,
    /// What was done, in a few words, for the report.
    pub summary: &'static str,
    /// Something the user should check that the fixer cannot know.
    pub caveat: Option<String>,
}

impl Plan {
    fn replace(replacement: String, summary: &'static str) -> Plan {
        Plan {
            replacement: Some(replacement),
            line_above: None,
            needs_no_transaction: true,
            summary,
            caveat: None,
        }
    }

    fn caveat(mut self, caveat: impl Into<String>) -> Plan {
        self.caveat = Some(caveat.into());
        self
    }
}

/// What a rewrite sees of its statement.
pub(super) struct Input<'a> {
    pub statement: &'a Statement,
    /// The statement's tree, parsed from `statement.sql` alone.
    pub node: &'a NodeEnum,
    /// The schema before the statement.
    pub schema: &'a Schema,
    pub pg_version: PgVersion,
    pub execution: Execution,
    /// Whether the statement is inside the file's own `BEGIN` … `COMMIT`.
    pub in_file_transaction: bool,
    /// The whitespace before the statement on its line, repeated before the statements a
    /// rewrite adds.
    pub indent: &'a str,
}

/// The rules `--fix` knows a safe form for, in the order it prefers them when several flag one
/// statement.
pub(super) const FIXABLE_RULES: &[RuleId] = &[
    RuleId::RequireConcurrentIndexCreation,
    RuleId::RequireConcurrentIndexDeletion,
    RuleId::AddingCheckWithoutNotValid,
    RuleId::AddingForeignKeyWithoutNotValid,
    RuleId::SettingNotNullOnExistingColumn,
    RuleId::AddingUniqueConstraint,
    RuleId::AddingPrimaryKey,
    RuleId::RequireConcurrentReindex,
    RuleId::RequireConcurrentPartitionDetach,
    RuleId::RefreshMaterializedViewWithoutConcurrently,
    RuleId::UnbatchedDataChange,
    RuleId::ConcurrentlyInTransaction,
    RuleId::ValidateInSameTransaction,
];

/// The safe form of the statement for `rule`, or why there is none that `--fix` can write.
pub(super) fn plan(rule: RuleId, input: &Input<'_>) -> Result<Plan, String> {
    let sql = input.statement.sql.as_str();
    match (rule, input.node) {
        (RuleId::RequireConcurrentIndexCreation, NodeEnum::IndexStmt(index)) => {
            let relation = index.relation.as_ref().ok_or("the index names no table")?;
            if !relation.inh {
                return Err("`CREATE INDEX … ON ONLY` builds a partitioned table's parent index, which cannot be built concurrently: build each partition's index concurrently and attach them".into());
            }
            let mut text = insert_after_keyword(sql, "index", " CONCURRENTLY")
                .ok_or("cannot find the INDEX keyword")?;
            if index.idxname.is_empty() {
                let columns: Vec<Option<&str>> = index
                    .index_params
                    .iter()
                    .map(|param| match &param.node {
                        Some(NodeEnum::IndexElem(element)) if !element.name.is_empty() => {
                            Some(element.name.as_str())
                        }
                        _ => None,
                    })
                    .collect();
                let name = naming::object_name(
                    &relation.relname,
                    Some(&naming::column_part(columns)),
                    "idx",
                );
                text = insert_after_keyword(
                    &text,
                    "concurrently",
                    &format!(" IF NOT EXISTS {}", quote_ident(&name)),
                )
                .ok_or("cannot find the CONCURRENTLY keyword")?;
            } else if !index.if_not_exists {
                text = insert_after_keyword(&text, "concurrently", " IF NOT EXISTS")
                    .ok_or("cannot find the CONCURRENTLY keyword")?;
            }
            Ok(Plan::replace(text, "built concurrently"))
        }
        (RuleId::RequireConcurrentIndexDeletion, NodeEnum::DropStmt(drop))
            if drop.remove_type() == ObjectType::ObjectIndex =>
        {
            if drop.objects.len() != 1 {
                return Err("DROP INDEX CONCURRENTLY drops one index at a time: give each index a statement of its own, then run --fix again".into());
            }
            if drop.behavior() == DropBehavior::DropCascade {
                return Err("DROP INDEX CONCURRENTLY cannot CASCADE: drop the dependent objects first, then the index".into());
            }
            let mut text = insert_after_keyword(sql, "index", " CONCURRENTLY")
                .ok_or("cannot find the INDEX keyword")?;
            if !drop.missing_ok {
                text = insert_after_keyword(&text, "concurrently", " IF EXISTS")
                    .ok_or("cannot find the CONCURRENTLY keyword")?;
            }
            Ok(Plan::replace(text, "dropped concurrently"))
        }
        (RuleId::AddingCheckWithoutNotValid, NodeEnum::AlterTableStmt(alter)) => {
            not_valid_then_validate(input, alter, ConstrType::ConstrCheck)
        }
        (RuleId::AddingForeignKeyWithoutNotValid, NodeEnum::AlterTableStmt(alter)) => {
            not_valid_then_validate(input, alter, ConstrType::ConstrForeign)
        }
        (RuleId::SettingNotNullOnExistingColumn, NodeEnum::AlterTableStmt(alter)) => {
            not_null_through_check(input, alter)
        }
        (RuleId::AddingUniqueConstraint, NodeEnum::AlterTableStmt(alter)) => {
            index_then_constraint(input, alter, ConstrType::ConstrUnique)
        }
        (RuleId::AddingPrimaryKey, NodeEnum::AlterTableStmt(alter)) => {
            index_then_constraint(input, alter, ConstrType::ConstrPrimary)
        }
        (RuleId::RequireConcurrentReindex, NodeEnum::ReindexStmt(reindex)) => {
            if input.pg_version.0 < 12 {
                return Err(format!(
                    "PostgreSQL {} has no REINDEX CONCURRENTLY: build a replacement index concurrently and drop the old one concurrently",
                    input.pg_version
                ));
            }
            let keyword = match reindex.kind() {
                ReindexObjectType::ReindexObjectIndex => "index",
                ReindexObjectType::ReindexObjectTable => "table",
                _ => return Err("only REINDEX INDEX and REINDEX TABLE are rewritten".into()),
            };
            let text = insert_after_keyword(sql, keyword, " CONCURRENTLY")
                .ok_or("cannot find the INDEX or TABLE keyword")?;
            Ok(Plan::replace(text, "reindexed concurrently"))
        }
        (RuleId::RequireConcurrentPartitionDetach, NodeEnum::AlterTableStmt(alter)) => {
            if input.pg_version.0 < 14 {
                return Err(format!(
                    "PostgreSQL {} has no DETACH PARTITION CONCURRENTLY",
                    input.pg_version
                ));
            }
            single_command(alter, AlterTableType::AtDetachPartition)?;
            Ok(Plan::replace(format!("{sql} CONCURRENTLY"), "detached concurrently").caveat(
                "DETACH PARTITION CONCURRENTLY fails when the table has a DEFAULT partition; if it is interrupted, finish it with `ALTER TABLE … DETACH PARTITION … FINALIZE`",
            ))
        }
        (RuleId::RefreshMaterializedViewWithoutConcurrently, NodeEnum::RefreshMatViewStmt(refresh)) => {
            let relation = refresh.relation.as_ref().ok_or("the statement names no view")?;
            let view = TableName::from_range_var(relation);
            let has_unique_index = input.schema.table(&view).is_some_and(|known| {
                known.indexes.iter().any(|index| {
                    index.unique_over_all_rows && index.columns.iter().all(Option::is_some)
                })
            });
            if !has_unique_index {
                return Err(format!(
                    "REFRESH … CONCURRENTLY needs a unique index on plain columns of `{view}` covering every row, and the migration history shows none: create one (concurrently) first, or keep the blocking refresh"
                ));
            }
            let text = insert_after_keyword(sql, "view", " CONCURRENTLY")
                .ok_or("cannot find the VIEW keyword")?;
            Ok(Plan {
                needs_no_transaction: false,
                ..Plan::replace(text, "refreshed concurrently")
            }
            .caveat("REFRESH … CONCURRENTLY fails on a view that was never populated (created WITH NO DATA and not refreshed since)"))
        }
        (RuleId::UnbatchedDataChange, NodeEnum::UpdateStmt(update)) => {
            if input.execution == Execution::Script {
                return Err("this file is not run by safeshift's runner, which is what batches a `-- safeshift:backfill` UPDATE".into());
            }
            if update
                .returning_clause
                .as_ref()
                .is_some_and(|returning| !returning.exprs.is_empty())
            {
                return Err("a backfill cannot return rows: drop RETURNING first".into());
            }
            let relation = update.relation.as_ref().ok_or("the UPDATE names no table")?;
            let table = TableName::from_range_var(relation);
            if let Some(known) = input.schema.table(&table)
                && !has_paging_key(known)
            {
                return Err(format!(
                    "a backfill pages through `{table}` by its primary key (or a unique index on NOT NULL columns), and the migration history gives it none"
                ));
            }
            let line_above = (input.statement.directive(BACKFILL_DIRECTIVE).is_none())
                .then(|| format!("-- safeshift:{BACKFILL_DIRECTIVE}"));
            Ok(Plan {
                replacement: None,
                line_above,
                needs_no_transaction: true,
                summary: "runs as a batched backfill",
                caveat: None,
            })
        }
        (RuleId::UnbatchedDataChange, NodeEnum::DeleteStmt(_)) => Err(
            "a backfill batches UPDATE statements only: delete in batches by hand (a job, or repeated DELETE … WHERE ctid IN (SELECT ctid … LIMIT n))".into(),
        ),
        (RuleId::ConcurrentlyInTransaction | RuleId::ValidateInSameTransaction, _) => {
            if input.in_file_transaction
                || input.execution != (Execution::Runner { transaction: true })
            {
                return Err("the statement is inside the file's own BEGIN … COMMIT: move it after COMMIT".into());
            }
            Ok(Plan {
                replacement: None,
                line_above: None,
                needs_no_transaction: true,
                summary: "runs outside the migration's transaction",
                caveat: None,
            })
        }
        _ => Err("`--fix` has no rewrite for this form of the statement".into()),
    }
}

/// `ADD CONSTRAINT … CHECK/FOREIGN KEY … NOT VALID`, then `VALIDATE CONSTRAINT` as a statement
/// of its own (its own transaction in a `transaction:false` section), which scans without
/// blocking writes.
fn not_valid_then_validate(
    input: &Input<'_>,
    alter: &AlterTableStmt,
    kind: ConstrType,
) -> Result<Plan, String> {
    let relation = alter
        .relation
        .as_ref()
        .ok_or("the statement names no table")?;
    if kind == ConstrType::ConstrForeign && added_column(alter).is_some() {
        return Err("the foreign key is declared on the added column: add the column in one statement, then the key with `ADD CONSTRAINT … FOREIGN KEY … NOT VALID` in another, and run --fix again".into());
    }
    let command = single_command(alter, AlterTableType::AtAddConstraint)?;
    let constraint = constraint_of(command)
        .filter(|c| c.contype() == kind)
        .ok_or("the statement adds something else than the flagged constraint")?;
    let table = &relation.relname;
    let name = if !constraint.conname.is_empty() {
        constraint.conname.clone()
    } else if kind == ConstrType::ConstrCheck {
        naming::check_name(table, &columns_read(constraint))
    } else {
        naming::object_name(
            table,
            Some(&strings(&constraint.fk_attrs).join("_")),
            "fkey",
        )
    };
    let sql = &input.statement.sql;
    let named = name_constraint(sql, constraint, &name)?;
    let target = alter_target(alter, relation);
    let indent = input.indent;
    Ok(Plan::replace(
        format!(
            "{named} NOT VALID;\n{indent}ALTER TABLE {target} VALIDATE CONSTRAINT {}",
            quote_ident(&name)
        ),
        "added NOT VALID, then validated in its own transaction",
    ))
}

/// `SET NOT NULL` after a validated `CHECK (column IS NOT NULL)`, which PostgreSQL 12+ takes as
/// proof and skips the scan under ACCESS EXCLUSIVE; the check is dropped afterwards.
fn not_null_through_check(input: &Input<'_>, alter: &AlterTableStmt) -> Result<Plan, String> {
    if input.pg_version.0 < 12 {
        return Err(format!(
            "PostgreSQL {} scans for SET NOT NULL even with a validated CHECK: enforce the rule with a CHECK (column IS NOT NULL) NOT VALID constraint instead",
            input.pg_version
        ));
    }
    let relation = alter
        .relation
        .as_ref()
        .ok_or("the statement names no table")?;
    let command = single_command(alter, AlterTableType::AtSetNotNull)?;
    let check = naming::object_name(&relation.relname, Some(&command.name), "not_null");
    if input
        .schema
        .table(&TableName::from_range_var(relation))
        .is_some_and(|known| known.constraint(&check).is_some())
    {
        return Err(format!(
            "the table already has a constraint named `{check}`, the name the rewrite would use"
        ));
    }
    let target = alter_target(alter, relation);
    let check = quote_ident(&check);
    let column = quote_ident(&command.name);
    let indent = input.indent;
    Ok(Plan::replace(
        format!(
            "ALTER TABLE {target} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID;\n\
             {indent}ALTER TABLE {target} VALIDATE CONSTRAINT {check};\n\
             {indent}{};\n\
             {indent}ALTER TABLE {target} DROP CONSTRAINT {check}",
            input.statement.sql
        ),
        "NOT NULL proven by a validated CHECK first",
    ))
}

/// `CREATE UNIQUE INDEX CONCURRENTLY`, then `ADD CONSTRAINT … UNIQUE/PRIMARY KEY USING INDEX`,
/// which only attaches the built index. The index gets the constraint's name, which is what
/// attaching it would rename it to.
fn index_then_constraint(
    input: &Input<'_>,
    alter: &AlterTableStmt,
    kind: ConstrType,
) -> Result<Plan, String> {
    let relation = alter
        .relation
        .as_ref()
        .ok_or("the statement names no table")?;
    if added_column(alter).is_some() {
        return Err("the constraint is declared on the added column: add the column in one statement, then the constraint with `ADD CONSTRAINT … UNIQUE (…)` in another, and run --fix again".into());
    }
    let command = single_command(alter, AlterTableType::AtAddConstraint)?;
    let constraint = constraint_of(command)
        .filter(|c| c.contype() == kind)
        .ok_or("the statement adds something else than the flagged constraint")?;
    if !relation.inh {
        return Err("`ALTER TABLE ONLY` names a partitioned table's parent, whose index cannot be built concurrently".into());
    }
    let keys = strings(&constraint.keys);
    if keys.is_empty() {
        return Err("the constraint names no columns".into());
    }
    if !constraint.including.is_empty()
        || !constraint.options.is_empty()
        || !constraint.indexspace.is_empty()
    {
        return Err("the constraint has INCLUDE, WITH or USING INDEX TABLESPACE options: write the CREATE UNIQUE INDEX CONCURRENTLY by hand".into());
    }
    let table = TableName::from_range_var(relation);
    let (keyword, name) = if kind == ConstrType::ConstrPrimary {
        if let Some(known) = input.schema.table(&table) {
            let nullable: Vec<&str> = keys
                .iter()
                .filter(|key| known.column(key).is_some_and(|column| !column.not_null))
                .map(String::as_str)
                .collect();
            if !nullable.is_empty() {
                return Err(format!(
                    "`{}` may hold NULLs, and attaching the primary key would SET NOT NULL with a scan under ACCESS EXCLUSIVE: make the column NOT NULL first (--fix rewrites SET NOT NULL), then run --fix again",
                    nullable.join("`, `")
                ));
            }
        }
        let name = non_empty_or(&constraint.conname, || {
            naming::object_name(&relation.relname, None, "pkey")
        });
        ("PRIMARY KEY", name)
    } else {
        let name = non_empty_or(&constraint.conname, || {
            naming::object_name(&relation.relname, Some(&keys.join("_")), "key")
        });
        ("UNIQUE", name)
    };
    let name = quote_ident(&name);
    let target = alter_target(alter, relation);
    let nulls = if constraint.nulls_not_distinct {
        " NULLS NOT DISTINCT"
    } else {
        ""
    };
    let mut timing = String::new();
    if constraint.deferrable {
        timing.push_str(" DEFERRABLE");
    }
    if constraint.initdeferred {
        timing.push_str(" INITIALLY DEFERRED");
    }
    let indent = input.indent;
    let plan = Plan::replace(
        format!(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {} ({}){nulls};\n\
             {indent}ALTER TABLE {target} ADD CONSTRAINT {name} {keyword} USING INDEX {name}{timing}",
            table.sql(),
            sql::column_list(&keys),
        ),
        "index built concurrently, then attached",
    );
    Ok(
        if kind == ConstrType::ConstrPrimary && input.schema.table(&table).is_none() {
            plan.caveat("the key columns must already be NOT NULL, or attaching the key scans the table under ACCESS EXCLUSIVE")
        } else {
            plan
        },
    )
}

/// The only subcommand of an `ALTER TABLE`, when it is of `subtype`.
fn single_command(
    alter: &AlterTableStmt,
    subtype: AlterTableType,
) -> Result<&AlterTableCmd, String> {
    let commands: Vec<&AlterTableCmd> = sql::alter_commands(alter).collect();
    match commands.as_slice() {
        [command] if command.subtype() == subtype => Ok(command),
        [_] => Err("the statement does something else than the flagged change".into()),
        _ => Err(format!(
            "the ALTER TABLE makes {} changes at once: give the flagged one a statement of its own, then run --fix again",
            commands.len()
        )),
    }
}

fn constraint_of(command: &AlterTableCmd) -> Option<&Constraint> {
    match sql::inner(&command.def) {
        Some(NodeEnum::Constraint(constraint)) => Some(constraint),
        _ => None,
    }
}

fn added_column(alter: &AlterTableStmt) -> Option<&AlterTableCmd> {
    sql::alter_commands(alter).find(|c| c.subtype() == AlterTableType::AtAddColumn)
}

/// The statement with `CONSTRAINT <name>` written before an unnamed constraint, at the position
/// the parser gives for the constraint.
fn name_constraint(sql: &str, constraint: &Constraint, name: &str) -> Result<String, String> {
    if !constraint.conname.is_empty() {
        return Ok(sql.to_owned());
    }
    let at = usize::try_from(constraint.location)
        .ok()
        .filter(|&at| sql.is_char_boundary(at) && at <= sql.len())
        .ok_or("the parser gives no position for the constraint")?;
    let keyword = match constraint.contype() {
        ConstrType::ConstrCheck => "check",
        _ => "foreign",
    };
    if !sql[at..]
        .get(..keyword.len())
        .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
    {
        return Err("the constraint is not where the parser places it".into());
    }
    Ok(format!(
        "{}CONSTRAINT {} {}",
        &sql[..at],
        quote_ident(name),
        &sql[at..]
    ))
}

/// The table of an `ALTER TABLE` as its follow-up statements name it: with `IF EXISTS` and
/// `ONLY` kept.
fn alter_target(alter: &AlterTableStmt, relation: &RangeVar) -> String {
    format!(
        "{}{}{}",
        if alter.missing_ok { "IF EXISTS " } else { "" },
        if relation.inh { "" } else { "ONLY " },
        TableName::from_range_var(relation).sql()
    )
}

/// The distinct columns an expression reads, in order of appearance.
fn columns_read(constraint: &Constraint) -> Vec<String> {
    let Some(expression) = sql::inner(&constraint.raw_expr) else {
        return Vec::new();
    };
    let mut columns: Vec<String> = Vec::new();
    for (node, ..) in expression.nodes() {
        if let pg_query::NodeRef::ColumnRef(column) = node
            && let Some(name) = column.fields.last().and_then(sql::string_value)
            && !columns.iter().any(|c| c == name)
        {
            columns.push(name.to_owned());
        }
    }
    columns
}

/// Whether a backfill can page through the table: a primary key, or a unique index over every
/// row on plain columns that are all NOT NULL.
fn has_paging_key(table: &crate::schema::Table) -> bool {
    table
        .constraints
        .iter()
        .any(|c| c.kind == ConstraintKind::PrimaryKey)
        || table.indexes.iter().any(|index| {
            index.unique_over_all_rows
                && !index.columns.is_empty()
                && index.columns.iter().all(|column| {
                    column
                        .as_deref()
                        .and_then(|name| table.column(name))
                        .is_some_and(|column| column.not_null)
                })
        })
}

fn non_empty_or(name: &str, default: impl FnOnce() -> String) -> String {
    if name.is_empty() {
        default()
    } else {
        name.to_owned()
    }
}
