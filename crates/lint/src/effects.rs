//! What a statement does to the tables it names, decided statically: the lock mode it takes on
//! each, whether it rewrites them, and whether it scans them under that lock. This is the lock
//! model the rules share; `tests/lock_verification.rs` checks it against a real server.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ConstrType, ObjectType, ReindexObjectType,
};

use crate::coercion::{self, TypeChange};
use crate::lock::LockMode;
use crate::options::PgVersion;
use crate::schema::{ConstraintKind, Schema};
use crate::sql::{ColumnType, TableName, alter_commands, constraints, inner, range_vars};
use crate::volatility::{self, Volatility};

/// A lock a statement takes on a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableLock {
    pub table: TableName,
    pub mode: LockMode,
}

/// The statement's effect on the tables it touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// The strongest lock taken on each table, in the order the tables appear.
    pub locks: Vec<TableLock>,
    /// Tables whose every row is rewritten (their files replaced).
    pub rewrites: Vec<TableName>,
    /// Tables read in full while the lock is held (validation, `SET NOT NULL`, index builds).
    pub scans: Vec<TableName>,
}

impl Effects {
    fn lock(&mut self, table: TableName, mode: LockMode) {
        match self.locks.iter_mut().find(|l| l.table == table) {
            Some(existing) => existing.mode = existing.mode.max(mode),
            None => self.locks.push(TableLock { table, mode }),
        }
    }

    fn rewrite(&mut self, table: &TableName) {
        if !self.rewrites.contains(table) {
            self.rewrites.push(table.clone());
        }
    }

    fn scan(&mut self, table: &TableName) {
        if !self.scans.contains(table) {
            self.scans.push(table.clone());
        }
    }

    /// The mode taken on `table`, if any.
    pub fn mode_on(&self, table: &TableName) -> Option<LockMode> {
        self.locks
            .iter()
            .find(|l| &l.table == table)
            .map(|l| l.mode)
    }
}

/// What one statement of a file does to tables other sessions use, as the lock model claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementEffects {
    /// 0-based index in the section.
    pub index: usize,
    pub line: u32,
    pub sql: String,
    /// Whether the statement cannot run inside a transaction block.
    pub outside_transaction: bool,
    /// The strongest lock on each pre-existing table.
    pub locks: Vec<TableLock>,
    /// Pre-existing tables rewritten.
    pub rewrites: Vec<TableName>,
}

/// Works out the effects of one statement, given the schema before it; `utc` is whether the
/// session converts between `timestamp` and `timestamptz` in place (see [`coercion::classify`]).
pub fn of(node: &NodeEnum, schema: &Schema, pg_version: PgVersion, utc: bool) -> Effects {
    let mut effects = Effects::default();
    match node {
        NodeEnum::AlterTableStmt(alter) => {
            let Some(relation) = &alter.relation else {
                return effects;
            };
            let table = TableName::from_range_var(relation);
            if alter.objtype() == ObjectType::ObjectIndex {
                // ALTER INDEX … SET / RENAME: on the index only.
                return effects;
            }
            for command in alter_commands(alter) {
                alter_table_command(&mut effects, &table, command, schema, pg_version, utc);
            }
        }
        NodeEnum::CreateStmt(create) => {
            let created = create.relation.as_ref().map(TableName::from_range_var);
            for element in create.table_elts.iter().filter_map(|e| e.node.as_ref()) {
                let constraints: Vec<&pg_query::protobuf::Constraint> = match element {
                    NodeEnum::Constraint(constraint) => vec![constraint],
                    NodeEnum::ColumnDef(column) => constraints(&column.constraints).collect(),
                    _ => Vec::new(),
                };
                for constraint in constraints {
                    if constraint.contype() == ConstrType::ConstrForeign
                        && let Some(referenced) = &constraint.pktable
                    {
                        let referenced = TableName::from_range_var(referenced);
                        // A self-reference is on the new table, which nobody else can see.
                        if created.as_ref().is_none_or(|c| c.key() != referenced.key()) {
                            effects.lock(referenced, LockMode::ShareRowExclusive);
                        }
                    }
                }
            }
            if create.partbound.is_some()
                && let Some(parent) = create.inh_relations.first().and_then(|n| match &n.node {
                    Some(NodeEnum::RangeVar(range)) => Some(range),
                    _ => None,
                })
            {
                effects.lock(TableName::from_range_var(parent), LockMode::AccessExclusive);
            }
        }
        NodeEnum::IndexStmt(index) => {
            if let Some(relation) = &index.relation {
                let table = TableName::from_range_var(relation);
                let mode = if index.concurrent {
                    LockMode::ShareUpdateExclusive
                } else {
                    LockMode::Share
                };
                effects.scan(&table);
                effects.lock(table, mode);
            }
        }
        NodeEnum::DropStmt(drop) if drop.remove_type() == ObjectType::ObjectSchema => {
            for schema_name in drop.objects.iter().filter_map(crate::sql::string_value) {
                for table in schema.tables_in_schema(schema_name) {
                    effects.lock(table, LockMode::AccessExclusive);
                }
            }
        }
        NodeEnum::DropStmt(drop) => {
            for names in drop.objects.iter().filter_map(|o| match &o.node {
                Some(NodeEnum::List(list)) => Some(&list.items),
                _ => None,
            }) {
                let Some(name) = TableName::from_names(names) else {
                    continue;
                };
                match drop.remove_type() {
                    ObjectType::ObjectTable => {
                        // Its foreign keys go too, with their triggers on the referenced tables.
                        let referenced = schema
                            .table(&name)
                            .map(|table| table.referenced_tables())
                            .unwrap_or_default();
                        effects.lock(name, LockMode::AccessExclusive);
                        for table in referenced {
                            effects.lock(table, LockMode::AccessExclusive);
                        }
                    }
                    ObjectType::ObjectView | ObjectType::ObjectMatview => {
                        effects.lock(name, LockMode::AccessExclusive)
                    }
                    ObjectType::ObjectIndex => {
                        if let Some(table) = schema.table_of_index(&name) {
                            let mode = if drop.concurrent {
                                LockMode::ShareUpdateExclusive
                            } else {
                                LockMode::AccessExclusive
                            };
                            effects.lock(table.clone(), mode);
                        }
                    }
                    ObjectType::ObjectTrigger
                    | ObjectType::ObjectRule
                    | ObjectType::ObjectPolicy => {
                        // The object's name is last; the table's name comes before it.
                        if let Some(table) =
                            TableName::from_names(&names[..names.len().saturating_sub(1)])
                        {
                            effects.lock(table, LockMode::AccessExclusive);
                        }
                    }
                    _ => {}
                }
            }
        }
        NodeEnum::RenameStmt(rename) => {
            if let Some(relation) = &rename.relation {
                let mode = match rename.rename_type() {
                    ObjectType::ObjectIndex => return effects,
                    _ => LockMode::AccessExclusive,
                };
                effects.lock(TableName::from_range_var(relation), mode);
            }
        }
        NodeEnum::TruncateStmt(truncate) => {
            let cascade = truncate.behavior() == pg_query::protobuf::DropBehavior::DropCascade;
            for relation in range_vars(&truncate.relations) {
                let table = TableName::from_range_var(relation);
                let referencing = if cascade {
                    schema.referencing_tables(&table)
                } else {
                    Vec::new()
                };
                for emptied in std::iter::once(table).chain(referencing) {
                    effects.rewrite(&emptied);
                    effects.lock(emptied, LockMode::AccessExclusive);
                }
            }
        }
        NodeEnum::VacuumStmt(vacuum) => {
            let full = vacuum
                .options
                .iter()
                .any(|o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname == "full"));
            for relation in vacuum.rels.iter().filter_map(|r| match &r.node {
                Some(NodeEnum::VacuumRelation(v)) => v.relation.as_ref(),
                _ => None,
            }) {
                let table = TableName::from_range_var(relation);
                if full && vacuum.is_vacuumcmd {
                    effects.rewrite(&table);
                    effects.lock(table, LockMode::AccessExclusive);
                } else {
                    effects.lock(table, LockMode::ShareUpdateExclusive);
                }
            }
        }
        NodeEnum::ClusterStmt(cluster) => {
            if let Some(relation) = &cluster.relation {
                let table = TableName::from_range_var(relation);
                effects.rewrite(&table);
                effects.lock(table, LockMode::AccessExclusive);
            }
        }
        NodeEnum::ReindexStmt(reindex) => {
            let concurrently = reindex.params.iter().any(
                |p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"),
            );
            let mode = if concurrently {
                LockMode::ShareUpdateExclusive
            } else {
                LockMode::Share
            };
            if let Some(relation) = &reindex.relation {
                let name = TableName::from_range_var(relation);
                let table = match reindex.kind() {
                    ReindexObjectType::ReindexObjectIndex => schema.table_of_index(&name).cloned(),
                    ReindexObjectType::ReindexObjectTable => Some(name),
                    _ => None,
                };
                if let Some(table) = table {
                    effects.lock(table, mode);
                }
            }
        }
        NodeEnum::CreateTrigStmt(trigger) => {
            if let Some(relation) = &trigger.relation {
                effects.lock(
                    TableName::from_range_var(relation),
                    LockMode::ShareRowExclusive,
                );
            }
        }
        NodeEnum::RefreshMatViewStmt(refresh) => {
            if let Some(relation) = &refresh.relation {
                let table = TableName::from_range_var(relation);
                // A concurrent refresh updates the rows in place; a plain one swaps in new files.
                let mode = if refresh.concurrent {
                    LockMode::Exclusive
                } else {
                    effects.rewrite(&table);
                    LockMode::AccessExclusive
                };
                effects.lock(table, mode);
            }
        }
        NodeEnum::UpdateStmt(update) => {
            if let Some(relation) = &update.relation {
                effects.lock(TableName::from_range_var(relation), LockMode::RowExclusive);
            }
        }
        NodeEnum::DeleteStmt(delete) => {
            if let Some(relation) = &delete.relation {
                effects.lock(TableName::from_range_var(relation), LockMode::RowExclusive);
            }
        }
        NodeEnum::InsertStmt(insert) => {
            if let Some(relation) = &insert.relation {
                effects.lock(TableName::from_range_var(relation), LockMode::RowExclusive);
            }
        }
        NodeEnum::CommentStmt(comment) => {
            if matches!(
                comment.objtype(),
                ObjectType::ObjectTable | ObjectType::ObjectColumn
            ) && let Some(NodeEnum::List(list)) = inner(&comment.object)
            {
                let names = if comment.objtype() == ObjectType::ObjectColumn {
                    &list.items[..list.items.len().saturating_sub(1)]
                } else {
                    &list.items[..]
                };
                if let Some(table) = TableName::from_names(names) {
                    effects.lock(table, LockMode::ShareUpdateExclusive);
                }
            }
        }
        NodeEnum::LockStmt(lock) => {
            let mode = LockMode::ALL
                .get(usize::try_from(lock.mode).unwrap_or(8).wrapping_sub(1))
                .copied();
            for relation in range_vars(&lock.relations) {
                if let Some(mode) = mode {
                    effects.lock(TableName::from_range_var(relation), mode);
                }
            }
        }
        _ => {}
    }
    effects
}

/// The lock level PostgreSQL's `AlterTableGetLockLevel` gives a subcommand, with its rewrite and
/// scan effects.
fn alter_table_command(
    effects: &mut Effects,
    table: &TableName,
    command: &AlterTableCmd,
    schema: &Schema,
    pg_version: PgVersion,
    utc: bool,
) {
    use AlterTableType as At;
    let existing_table = schema.table(table);
    let mode = match command.subtype() {
        At::AtSetStatistics
        | At::AtSetOptions
        | At::AtResetOptions
        | At::AtSetRelOptions
        | At::AtResetRelOptions
        | At::AtClusterOn
        | At::AtDropCluster
        | At::AtAttachPartition => LockMode::ShareUpdateExclusive,
        At::AtValidateConstraint => {
            if let Some(constraint) = existing_table.and_then(|t| t.constraint(&command.name))
                && let ConstraintKind::ForeignKey { referenced, .. } = &constraint.kind
            {
                effects.lock(referenced.clone(), LockMode::RowShare);
            }
            effects.scan(table);
            LockMode::ShareUpdateExclusive
        }
        At::AtEnableTrig
        | At::AtEnableAlwaysTrig
        | At::AtEnableReplicaTrig
        | At::AtEnableTrigAll
        | At::AtEnableTrigUser
        | At::AtDisableTrig
        | At::AtDisableTrigAll
        | At::AtDisableTrigUser
        | At::AtEnableRule
        | At::AtEnableAlwaysRule
        | At::AtEnableReplicaRule
        | At::AtDisableRule => LockMode::ShareRowExclusive,
        At::AtDetachPartition => {
            let concurrent = matches!(inner(&command.def), Some(NodeEnum::PartitionCmd(partition)) if partition.concurrent);
            if let Some(NodeEnum::PartitionCmd(partition)) = inner(&command.def)
                && let Some(name) = &partition.name
            {
                let mode = if concurrent {
                    LockMode::ShareUpdateExclusive
                } else {
                    LockMode::AccessExclusive
                };
                effects.lock(TableName::from_range_var(name), mode);
            }
            if concurrent {
                LockMode::ShareUpdateExclusive
            } else {
                LockMode::AccessExclusive
            }
        }
        At::AtAddConstraint => match inner(&command.def) {
            Some(NodeEnum::Constraint(constraint)) => {
                constraint_effects(effects, table, constraint)
            }
            _ => LockMode::AccessExclusive,
        },
        At::AtAddColumn => {
            if let Some(NodeEnum::ColumnDef(column)) = inner(&command.def) {
                add_column_effects(effects, table, column, pg_version);
            }
            LockMode::AccessExclusive
        }
        At::AtAlterColumnType => {
            if let Some(NodeEnum::ColumnDef(definition)) = inner(&command.def)
                && let Some(new_type) = definition
                    .type_name
                    .as_ref()
                    .map(ColumnType::from_type_name)
            {
                let old = schema.column_type(table, &command.name);
                if coercion::classify(
                    old.as_ref(),
                    &new_type,
                    definition.raw_default.is_some(),
                    utc,
                ) != TypeChange::MetadataOnly
                {
                    effects.rewrite(table);
                }
            }
            LockMode::AccessExclusive
        }
        At::AtSetNotNull => {
            let skips_scan = pg_version.0 >= 12
                && existing_table.is_some_and(|t| t.has_validated_not_null_check(&command.name));
            if !skips_scan {
                effects.scan(table);
            }
            LockMode::AccessExclusive
        }
        At::AtDropConstraint => {
            // Dropping a foreign key drops its triggers on the referenced table too, which takes
            // ACCESS EXCLUSIVE there (verified on PostgreSQL 15).
            if let Some(constraint) = existing_table.and_then(|t| t.constraint(&command.name))
                && let ConstraintKind::ForeignKey { referenced, .. } = &constraint.kind
                && referenced.key() != table.key()
            {
                effects.lock(referenced.clone(), LockMode::AccessExclusive);
            }
            LockMode::AccessExclusive
        }
        At::AtDropColumn => {
            // So does dropping a column a foreign key is on.
            if let Some(existing) = existing_table {
                for constraint in &existing.constraints {
                    if let ConstraintKind::ForeignKey {
                        columns,
                        referenced,
                    } = &constraint.kind
                        && columns.contains(&command.name)
                        && referenced.key() != table.key()
                    {
                        effects.lock(referenced.clone(), LockMode::AccessExclusive);
                    }
                }
            }
            LockMode::AccessExclusive
        }
        At::AtSetLogged | At::AtSetUnLogged | At::AtSetAccessMethod | At::AtSetTableSpace => {
            effects.rewrite(table);
            LockMode::AccessExclusive
        }
        _ => LockMode::AccessExclusive,
    };
    effects.lock(table.clone(), mode);
}

/// `ADD CONSTRAINT`: FOREIGN KEY takes SHARE ROW EXCLUSIVE on both tables; the rest ACCESS
/// EXCLUSIVE. Without NOT VALID the existing rows are checked (or indexed) under that lock.
fn constraint_effects(
    effects: &mut Effects,
    table: &TableName,
    constraint: &pg_query::protobuf::Constraint,
) -> LockMode {
    let validates = !constraint.skip_validation && constraint.indexname.is_empty();
    if validates {
        effects.scan(table);
    }
    if constraint.contype() == ConstrType::ConstrForeign {
        if let Some(referenced) = &constraint.pktable {
            effects.lock(
                TableName::from_range_var(referenced),
                LockMode::ShareRowExclusive,
            );
        }
        LockMode::ShareRowExclusive
    } else {
        LockMode::AccessExclusive
    }
}

fn add_column_effects(
    effects: &mut Effects,
    table: &TableName,
    column: &pg_query::protobuf::ColumnDef,
    pg_version: PgVersion,
) {
    if column_rewrites_table(column, pg_version).is_some() {
        effects.rewrite(table);
    }
    for constraint in constraints(&column.constraints) {
        match constraint.contype() {
            ConstrType::ConstrForeign => {
                if let Some(referenced) = &constraint.pktable {
                    effects.lock(
                        TableName::from_range_var(referenced),
                        LockMode::ShareRowExclusive,
                    );
                }
            }
            ConstrType::ConstrCheck | ConstrType::ConstrUnique | ConstrType::ConstrPrimary => {
                effects.scan(table)
            }
            _ => {}
        }
    }
}

/// Why adding this column rewrites every row, if it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRewrite {
    VolatileDefault(Volatility),
    DefaultBeforePg11,
    StoredGenerated,
    Identity,
    Serial(String),
}

/// Whether `ADD COLUMN` with this definition rewrites the table, and why.
pub fn column_rewrites_table(
    column: &pg_query::protobuf::ColumnDef,
    pg_version: PgVersion,
) -> Option<ColumnRewrite> {
    if let Some(column_type) = column.type_name.as_ref().map(ColumnType::from_type_name)
        && matches!(
            column_type.name.as_str(),
            "serial" | "bigserial" | "smallserial"
        )
    {
        return Some(ColumnRewrite::Serial(column_type.name));
    }
    for constraint in constraints(&column.constraints) {
        match constraint.contype() {
            ConstrType::ConstrGenerated => return Some(ColumnRewrite::StoredGenerated),
            ConstrType::ConstrIdentity => return Some(ColumnRewrite::Identity),
            ConstrType::ConstrDefault => {
                let Some(expression) = inner(&constraint.raw_expr) else {
                    continue;
                };
                if is_null_constant(expression) {
                    continue;
                }
                match volatility::classify(expression) {
                    Volatility::OneValue if pg_version.0 < 11 => {
                        return Some(ColumnRewrite::DefaultBeforePg11);
                    }
                    Volatility::OneValue => {}
                    other => return Some(ColumnRewrite::VolatileDefault(other)),
                }
            }
            _ => {}
        }
    }
    None
}

fn is_null_constant(node: &NodeEnum) -> bool {
    matches!(node, NodeEnum::AConst(constant) if constant.isnull)
}
