//! What the linter knows about the database at a point in the migration history: which tables
//! exist, their columns and constraints, and which objects are new (created by the migration being
//! linted, or by a pending migration before it) so that changing them blocks nobody.

use std::collections::HashMap;

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableCmd, AlterTableType, ConstrType, ObjectType};

use crate::sql::{
    ColumnType, TableName, alter_commands, constraints, inner, string_value, strings,
};

/// Whether other sessions can be using an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Created by an applied migration, or not seen at all (created outside the history).
    Existing,
    /// Created by the migration being linted or by a pending one: empty and unused.
    New,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub column_type: Option<ColumnType>,
    pub not_null: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKind {
    /// A CHECK; `not_null_of` is the column when the expression is `column IS NOT NULL`.
    Check {
        not_null_of: Option<String>,
    },
    ForeignKey {
        columns: Vec<String>,
        referenced: TableName,
    },
    Unique,
    PrimaryKey,
    Exclusion,
}

#[derive(Debug, Clone)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    pub validated: bool,
}

#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    /// The indexed columns, in order (expressions leave a gap: `None`).
    pub columns: Vec<Option<String>>,
    /// Whether it is a unique index over every row (no `WHERE`), the kind a concurrent
    /// refresh of a materialized view and a backfill's paging need.
    pub unique_over_all_rows: bool,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: TableName,
    pub origin: Origin,
    pub columns: Vec<Column>,
    pub constraints: Vec<Constraint>,
    pub indexes: Vec<Index>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        self.columns.iter_mut().find(|c| c.name == name)
    }

    pub fn constraint(&self, name: &str) -> Option<&Constraint> {
        self.constraints.iter().find(|c| c.name == name)
    }

    /// The other tables its foreign keys reference.
    pub fn referenced_tables(&self) -> Vec<TableName> {
        let mut tables: Vec<TableName> = Vec::new();
        for constraint in &self.constraints {
            if let ConstraintKind::ForeignKey { referenced, .. } = &constraint.kind
                && referenced.key() != self.name.key()
                && !tables.iter().any(|t| t.key() == referenced.key())
            {
                tables.push(referenced.clone());
            }
        }
        tables
    }

    /// Whether a validated `CHECK (column IS NOT NULL)` exists, which lets PostgreSQL 12+ skip
    /// the scan of `SET NOT NULL`.
    pub fn has_validated_not_null_check(&self, column: &str) -> bool {
        self.constraints.iter().any(|c| {
            c.validated && matches!(&c.kind, ConstraintKind::Check { not_null_of: Some(col) } if col == column)
        })
    }

    /// Whether some index (or unique/primary key) starts with these columns.
    pub fn has_index_leading_with(&self, columns: &[String]) -> bool {
        self.indexes.iter().any(|index| {
            index.columns.len() >= columns.len()
                && index
                    .columns
                    .iter()
                    .zip(columns)
                    .all(|(indexed, wanted)| indexed.as_deref() == Some(wanted))
        })
    }
}

/// The column types a database has, for tables the linted history does not create (made before
/// the migrations, or by a baseline): the caller reads them from the catalog.
#[derive(Debug, Clone, Default)]
pub struct DatabaseColumns {
    /// Table key (`schema.table`) → column → type as the catalog spells it (`character
    /// varying(100)`), parsed when a statement needs it.
    tables: HashMap<String, HashMap<String, String>>,
}

impl DatabaseColumns {
    pub fn new() -> DatabaseColumns {
        DatabaseColumns::default()
    }

    /// Records a column; `type_text` as `format_type` writes it.
    pub fn insert(&mut self, schema: &str, table: &str, column: &str, type_text: &str) {
        self.tables
            .entry(TableName::new(Some(schema), table).key().to_owned())
            .or_default()
            .insert(column.to_owned(), type_text.to_owned());
    }

    fn column_type(&self, table: &TableName, column: &str) -> Option<ColumnType> {
        let text = self.tables.get(table.key())?.get(column)?;
        ColumnType::parse(text)
    }
}

/// The tables and indexes known at one point in the history.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    tables: HashMap<String, Table>,
    /// Index name → the table it belongs to.
    index_tables: HashMap<String, TableName>,
    /// Enum types created in the history: `schema.name` → origin.
    enums: HashMap<String, Origin>,
    /// Keys of the tables and enums made `New` since the last [`Schema::settle`], so settling
    /// costs what the migration created, not the size of the whole history.
    fresh: Vec<String>,
    /// Column types from the database, for tables the history does not create.
    database: Option<std::sync::Arc<DatabaseColumns>>,
    /// Type changes the history made to columns of such tables: table key → column → type.
    changed_in_database_tables: HashMap<String, HashMap<String, Option<ColumnType>>>,
}

impl Schema {
    /// An empty schema that knows the database's column types for tables the history does not
    /// create.
    pub fn with_database(database: Option<std::sync::Arc<DatabaseColumns>>) -> Schema {
        Schema {
            database,
            ..Schema::default()
        }
    }

    pub fn table(&self, name: &TableName) -> Option<&Table> {
        self.tables.get(name.key())
    }

    /// Whether the database's column types were given.
    pub fn knows_database(&self) -> bool {
        self.database.is_some()
    }

    /// A column's type at this point: from the history when it creates the table, else from the
    /// database (with the history's own changes to it); `None` when nobody knows it.
    pub fn column_type(&self, table: &TableName, column: &str) -> Option<ColumnType> {
        if let Some(known) = self.table(table) {
            return known.column(column).and_then(|c| c.column_type.clone());
        }
        if let Some(changed) = self
            .changed_in_database_tables
            .get(table.key())
            .and_then(|columns| columns.get(column))
        {
            return changed.clone();
        }
        self.database.as_ref()?.column_type(table, column)
    }

    /// Whether other sessions may be using the relation: true for relations the history does
    /// not create (they were made some other way), false for ones new in this run.
    pub fn is_existing(&self, name: &TableName) -> bool {
        self.table(name)
            .is_none_or(|t| t.origin == Origin::Existing)
    }

    /// The tables the history created in a schema.
    pub fn tables_in_schema(&self, schema: &str) -> Vec<TableName> {
        let mut names: Vec<TableName> = self
            .tables
            .values()
            .filter(|t| t.name.schema_or_public() == schema)
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        names
    }

    /// The tables with a foreign key to `table`, followed transitively (what `TRUNCATE … CASCADE`
    /// empties).
    pub fn referencing_tables(&self, table: &TableName) -> Vec<TableName> {
        let mut found: Vec<TableName> = Vec::new();
        let mut queue = vec![table.key().to_owned()];
        while let Some(key) = queue.pop() {
            for candidate in self.tables.values() {
                let references = candidate.constraints.iter().any(
                    |c| matches!(&c.kind, ConstraintKind::ForeignKey { referenced, .. } if referenced.key() == key),
                );
                if references
                    && candidate.name.key() != table.key()
                    && !found.iter().any(|f| f.key() == candidate.name.key())
                {
                    found.push(candidate.name.clone());
                    queue.push(candidate.name.key().to_owned());
                }
            }
        }
        found.sort();
        found
    }

    /// The table an index belongs to, when the history created the index.
    pub fn table_of_index(&self, index: &TableName) -> Option<&TableName> {
        self.index_tables.get(index.key())
    }

    pub fn enum_origin(&self, names: &[pg_query::Node]) -> Option<Origin> {
        TableName::from_names(names).and_then(|name| self.enums.get(name.key()).copied())
    }

    /// Marks everything new as existing: the migration that created it has been applied.
    pub fn settle(&mut self) {
        for key in std::mem::take(&mut self.fresh) {
            if let Some(table) = self.tables.get_mut(&key) {
                table.origin = Origin::Existing;
            }
            if let Some(origin) = self.enums.get_mut(&key) {
                *origin = Origin::Existing;
            }
        }
    }

    fn insert_table(&mut self, table: Table) {
        let key = table.name.key().to_owned();
        if table.origin == Origin::New {
            self.fresh.push(key.clone());
        }
        self.tables.insert(key, table);
    }

    /// Updates the model with the effect of one statement.
    pub fn apply(&mut self, node: &NodeEnum) {
        match node {
            NodeEnum::CreateStmt(create) => {
                let Some(relation) = &create.relation else {
                    return;
                };
                let name = TableName::from_range_var(relation);
                let mut table = Table {
                    name: name.clone(),
                    origin: Origin::New,
                    columns: Vec::new(),
                    constraints: Vec::new(),
                    indexes: Vec::new(),
                };
                for element in create.table_elts.iter().filter_map(|e| e.node.as_ref()) {
                    match element {
                        NodeEnum::ColumnDef(column) => add_column(&mut table, column),
                        NodeEnum::Constraint(constraint) => {
                            add_constraint(&mut table, constraint, None)
                        }
                        _ => {}
                    }
                }
                register_indexes(&mut self.index_tables, &table);
                self.insert_table(table);
            }
            NodeEnum::CreateTableAsStmt(create) => {
                let Some(relation) = create.into.as_ref().and_then(|into| into.rel.as_ref()) else {
                    return;
                };
                let name = TableName::from_range_var(relation);
                self.insert_empty(name);
            }
            NodeEnum::ViewStmt(view) => {
                if let Some(relation) = &view.view {
                    self.insert_empty(TableName::from_range_var(relation));
                }
            }
            NodeEnum::IndexStmt(index) => {
                let Some(relation) = &index.relation else {
                    return;
                };
                let table_name = TableName::from_range_var(relation);
                let columns = index
                    .index_params
                    .iter()
                    .map(|p| match &p.node {
                        Some(NodeEnum::IndexElem(element)) if !element.name.is_empty() => {
                            Some(element.name.clone())
                        }
                        _ => None,
                    })
                    .collect();
                let index_name = TableName::new(table_name.schema.as_deref(), &index.idxname);
                if let Some(table) = self.tables.get_mut(table_name.key()) {
                    table.indexes.push(Index {
                        name: index.idxname.clone(),
                        columns,
                        unique_over_all_rows: index.unique && index.where_clause.is_none(),
                    });
                }
                if !index.idxname.is_empty() {
                    self.index_tables
                        .insert(index_name.key().to_owned(), table_name);
                }
            }
            NodeEnum::AlterTableStmt(alter) => {
                let Some(relation) = &alter.relation else {
                    return;
                };
                let name = TableName::from_range_var(relation);
                let Some(table) = self.tables.get_mut(name.key()) else {
                    self.alter_database_table(&name, alter);
                    return;
                };
                for command in alter_commands(alter) {
                    alter_table(table, command);
                }
                register_indexes(&mut self.index_tables, table);
            }
            NodeEnum::RenameStmt(rename) => self.rename(rename),
            NodeEnum::DropStmt(drop) => {
                for object in &drop.objects {
                    let names = match &object.node {
                        Some(NodeEnum::List(list)) => &list.items,
                        _ => continue,
                    };
                    let Some(name) = TableName::from_names(names) else {
                        continue;
                    };
                    match drop.remove_type() {
                        ObjectType::ObjectTable
                        | ObjectType::ObjectView
                        | ObjectType::ObjectMatview => {
                            self.tables.remove(name.key());
                        }
                        ObjectType::ObjectIndex => {
                            if let Some(table) = self.index_tables.remove(name.key())
                                && let Some(table) = self.tables.get_mut(table.key())
                            {
                                table.indexes.retain(|i| i.name != name.name);
                            }
                        }
                        ObjectType::ObjectType => {
                            self.enums.remove(name.key());
                        }
                        _ => {}
                    }
                }
            }
            NodeEnum::CreateEnumStmt(create) => {
                if let Some(name) = TableName::from_names(&create.type_name) {
                    self.enums.insert(name.key().to_owned(), Origin::New);
                    self.fresh.push(name.key().to_owned());
                }
            }
            _ => {}
        }
    }

    /// Follows the type changes the history makes to a table it does not create, so a later
    /// change compares with the type the earlier one left.
    fn alter_database_table(
        &mut self,
        name: &TableName,
        alter: &pg_query::protobuf::AlterTableStmt,
    ) {
        if self.database.is_none() {
            return;
        }
        for command in alter_commands(alter) {
            if command.subtype() == AlterTableType::AtAlterColumnType
                && let Some(NodeEnum::ColumnDef(definition)) = inner(&command.def)
            {
                self.changed_in_database_tables
                    .entry(name.key().to_owned())
                    .or_default()
                    .insert(
                        command.name.clone(),
                        definition
                            .type_name
                            .as_ref()
                            .map(ColumnType::from_type_name),
                    );
            }
        }
    }

    fn insert_empty(&mut self, name: TableName) {
        self.insert_table(Table {
            name,
            origin: Origin::New,
            columns: Vec::new(),
            constraints: Vec::new(),
            indexes: Vec::new(),
        });
    }

    fn rename(&mut self, rename: &pg_query::protobuf::RenameStmt) {
        let Some(relation) = &rename.relation else {
            return;
        };
        let name = TableName::from_range_var(relation);
        match rename.rename_type() {
            ObjectType::ObjectTable | ObjectType::ObjectView | ObjectType::ObjectMatview => {
                if let Some(mut table) = self.tables.remove(name.key()) {
                    table.name = TableName::new(name.schema.as_deref(), &rename.newname);
                    self.insert_table(table);
                }
            }
            ObjectType::ObjectColumn => {
                if let Some(column) = self
                    .tables
                    .get_mut(name.key())
                    .and_then(|t| t.column_mut(&rename.subname))
                {
                    column.name = rename.newname.clone();
                }
            }
            _ => {}
        }
    }
}

/// Records which table each of `table`'s indexes belongs to.
fn register_indexes(index_tables: &mut HashMap<String, TableName>, table: &Table) {
    for index in &table.indexes {
        let name = TableName::new(table.name.schema.as_deref(), &index.name);
        index_tables.insert(name.key().to_owned(), table.name.clone());
    }
}

fn add_column(table: &mut Table, column: &pg_query::protobuf::ColumnDef) {
    let column_type = column.type_name.as_ref().map(ColumnType::from_type_name);
    let mut not_null = column.is_not_null;
    for constraint in constraints(&column.constraints) {
        match constraint.contype() {
            ConstrType::ConstrNotnull | ConstrType::ConstrPrimary => not_null = true,
            _ => {}
        }
        add_constraint(table, constraint, Some(&column.colname));
    }
    table.columns.push(Column {
        name: column.colname.clone(),
        column_type,
        not_null,
    });
}

/// Records a table or column constraint; `column` is set for column constraints.
fn add_constraint(
    table: &mut Table,
    constraint: &pg_query::protobuf::Constraint,
    column: Option<&str>,
) {
    let keys = match column {
        Some(column) => vec![column.to_owned()],
        None => strings(&constraint.keys),
    };
    let (kind, suffix) = match constraint.contype() {
        ConstrType::ConstrCheck => (
            ConstraintKind::Check {
                not_null_of: inner(&constraint.raw_expr).and_then(is_not_null_test),
            },
            "check",
        ),
        ConstrType::ConstrForeign => {
            let columns = match column {
                Some(column) => vec![column.to_owned()],
                None => strings(&constraint.fk_attrs),
            };
            let Some(referenced) = constraint.pktable.as_ref().map(TableName::from_range_var)
            else {
                return;
            };
            (
                ConstraintKind::ForeignKey {
                    columns,
                    referenced,
                },
                "fkey",
            )
        }
        ConstrType::ConstrUnique => (ConstraintKind::Unique, "key"),
        ConstrType::ConstrPrimary => (ConstraintKind::PrimaryKey, "pkey"),
        ConstrType::ConstrExclusion => (ConstraintKind::Exclusion, "excl"),
        _ => return,
    };
    let name = if constraint.conname.is_empty() {
        generated_constraint_name(&table.name.name, &keys, &kind, suffix)
    } else {
        constraint.conname.clone()
    };
    if matches!(kind, ConstraintKind::Unique | ConstraintKind::PrimaryKey) {
        let columns = if constraint.indexname.is_empty() {
            keys.iter().cloned().map(Some).collect()
        } else {
            Vec::new()
        };
        table.indexes.push(Index {
            name: name.clone(),
            columns,
            unique_over_all_rows: true,
        });
    }
    if kind == ConstraintKind::PrimaryKey {
        for key in &keys {
            if let Some(column) = table.column_mut(key) {
                column.not_null = true;
            }
        }
    }
    table.constraints.push(Constraint {
        name,
        kind,
        validated: !constraint.skip_validation,
    });
}

/// PostgreSQL's default names: `orders_pkey`, `orders_user_id_fkey`, `orders_total_check`.
fn generated_constraint_name(
    table: &str,
    keys: &[String],
    kind: &ConstraintKind,
    suffix: &str,
) -> String {
    let columns = match kind {
        ConstraintKind::PrimaryKey => None,
        ConstraintKind::ForeignKey { columns, .. } => Some(columns.join("_")),
        _ if keys.is_empty() => None,
        _ => Some(keys.join("_")),
    };
    crate::naming::object_name(table, columns.as_deref(), suffix)
}

/// `column IS NOT NULL` → the column.
pub fn is_not_null_test(node: &NodeEnum) -> Option<String> {
    let NodeEnum::NullTest(test) = node else {
        return None;
    };
    if test.nulltesttype() != pg_query::protobuf::NullTestType::IsNotNull {
        return None;
    }
    match inner(&test.arg) {
        Some(NodeEnum::ColumnRef(column)) => column
            .fields
            .last()
            .and_then(string_value)
            .map(str::to_owned),
        _ => None,
    }
}

fn alter_table(table: &mut Table, command: &AlterTableCmd) {
    match command.subtype() {
        AlterTableType::AtAddColumn => {
            if let Some(NodeEnum::ColumnDef(column)) = inner(&command.def) {
                add_column(table, column);
            }
        }
        AlterTableType::AtDropColumn => table.columns.retain(|c| c.name != command.name),
        AlterTableType::AtAlterColumnType => {
            if let Some(NodeEnum::ColumnDef(definition)) = inner(&command.def)
                && let Some(column) = table.column_mut(&command.name)
            {
                column.column_type = definition
                    .type_name
                    .as_ref()
                    .map(ColumnType::from_type_name);
            }
        }
        AlterTableType::AtSetNotNull => {
            if let Some(column) = table.column_mut(&command.name) {
                column.not_null = true;
            }
        }
        AlterTableType::AtDropNotNull => {
            if let Some(column) = table.column_mut(&command.name) {
                column.not_null = false;
            }
        }
        AlterTableType::AtAddConstraint => {
            if let Some(NodeEnum::Constraint(constraint)) = inner(&command.def) {
                add_constraint(table, constraint, None);
            }
        }
        AlterTableType::AtValidateConstraint => {
            if let Some(constraint) = table
                .constraints
                .iter_mut()
                .find(|c| c.name == command.name)
            {
                constraint.validated = true;
            }
        }
        AlterTableType::AtDropConstraint => {
            table.constraints.retain(|c| c.name != command.name);
            table.indexes.retain(|i| i.name != command.name);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_all(schema: &mut Schema, sql: &str) {
        let parsed = pg_query::parse(sql, pg_query::ParserOptions::default()).unwrap();
        for statement in &parsed.protobuf.stmts {
            schema.apply(statement.stmt.as_ref().unwrap().node.as_ref().unwrap());
        }
    }

    #[test]
    fn tracks_tables_columns_and_constraints() {
        let mut schema = Schema::default();
        apply_all(
            &mut schema,
            "CREATE TABLE users (id bigint PRIMARY KEY, email text);
             ALTER TABLE users ADD CONSTRAINT email_present CHECK (email IS NOT NULL) NOT VALID;
             CREATE TABLE orders (id bigint, user_id bigint REFERENCES users);
             CREATE INDEX orders_user_idx ON orders (user_id);",
        );
        let users = TableName::new(None, "users");
        assert!(!schema.is_existing(&users));
        assert!(
            !schema
                .table(&users)
                .unwrap()
                .has_validated_not_null_check("email")
        );
        apply_all(
            &mut schema,
            "ALTER TABLE users VALIDATE CONSTRAINT email_present",
        );
        assert!(
            schema
                .table(&users)
                .unwrap()
                .has_validated_not_null_check("email")
        );
        let orders = schema.table(&TableName::new(None, "orders")).unwrap();
        assert!(orders.constraint("orders_user_id_fkey").is_some());
        assert!(orders.has_index_leading_with(&["user_id".to_owned()]));
        assert_eq!(
            schema
                .table_of_index(&TableName::new(None, "orders_user_idx"))
                .unwrap()
                .name,
            "orders"
        );
        schema.settle();
        assert!(schema.is_existing(&users));
        assert!(schema.is_existing(&TableName::new(Some("public"), "never_created")));
        apply_all(
            &mut schema,
            "ALTER TABLE users RENAME TO customers; DROP TABLE orders",
        );
        assert!(schema.table(&TableName::new(None, "customers")).is_some());
        assert!(schema.table(&TableName::new(None, "orders")).is_none());
    }
}
