//! Small helpers over `pg_query`'s syntax tree: names, types, constants, and quoting for the SQL
//! that findings suggest.

use std::fmt;

use pg_query::NodeEnum;
use pg_query::protobuf::{self, a_const::Val};

/// A table, index or other relation name as written, schema optional.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
    /// `schema.name` with the schema defaulting to `public`: what the schema model is keyed by,
    /// computed once because lookups are frequent.
    #[serde(skip)]
    key: String,
}

impl TableName {
    pub fn new(schema: Option<&str>, name: &str) -> TableName {
        let schema = schema.filter(|s| !s.is_empty());
        TableName {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
            key: format!("{}.{name}", schema.unwrap_or("public")),
        }
    }

    pub fn from_range_var(range: &protobuf::RangeVar) -> TableName {
        TableName::new(Some(&range.schemaname), &range.relname)
    }

    /// From a dotted name list (`[schema,] name`), as `DROP` and `COMMENT` give them.
    pub fn from_names(names: &[pg_query::Node]) -> Option<TableName> {
        let parts: Vec<&str> = names.iter().filter_map(string_value).collect();
        match parts.as_slice() {
            [name] => Some(TableName::new(None, name)),
            [.., schema, name] => Some(TableName::new(Some(schema), name)),
            [] => None,
        }
    }

    /// The key the schema model stores it under: `schema.name`, the schema defaulting to `public`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The schema, `public` when none is written.
    pub fn schema_or_public(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }

    /// The name quoted for SQL.
    pub fn sql(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The text of a `String` node.
pub fn string_value(node: &pg_query::Node) -> Option<&str> {
    match &node.node {
        Some(NodeEnum::String(s)) => Some(&s.sval),
        _ => None,
    }
}

/// The names in a list of `String` nodes (column lists, qualified names).
pub fn strings(nodes: &[pg_query::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(string_value)
        .map(str::to_owned)
        .collect()
}

/// Quotes an identifier when PostgreSQL would not read it back unchanged.
pub fn quote_ident(name: &str) -> String {
    let simple = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if simple && !is_reserved_word(name) {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Quotes a string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn is_reserved_word(name: &str) -> bool {
    // Only the words that cannot name a column or table unquoted matter here.
    const RESERVED: &[&str] = &[
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "system_user",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    ];
    RESERVED.contains(&name)
}

/// A column type as written: its base name (catalog spelling, `pg_catalog.` dropped), modifiers
/// and array-ness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    pub name: String,
    pub modifiers: Vec<i64>,
    pub array: bool,
}

impl ColumnType {
    pub fn from_type_name(type_name: &protobuf::TypeName) -> ColumnType {
        let names = strings(&type_name.names);
        let name = match names.as_slice() {
            [schema, name] if schema == "pg_catalog" => name.clone(),
            _ => names.join("."),
        };
        let modifiers = type_name
            .typmods
            .iter()
            .filter_map(|node| match &node.node {
                Some(NodeEnum::AConst(constant)) => match &constant.val {
                    Some(Val::Ival(i)) => Some(i64::from(i.ival)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        ColumnType {
            name: canonical_type_name(&name).to_owned(),
            modifiers,
            array: !type_name.array_bounds.is_empty(),
        }
    }

    /// A type written as SQL (`character varying(100)`, `timestamp without time zone`,
    /// `integer[]`), parsed with the PostgreSQL grammar; `None` when it is not a type.
    pub fn parse(text: &str) -> Option<ColumnType> {
        let parsed = pg_query::parse(
            &format!("SELECT NULL::{text}"),
            pg_query::ParserOptions::default(),
        )
        .ok()?;
        let statement = parsed
            .protobuf
            .stmts
            .first()?
            .stmt
            .as_ref()?
            .node
            .as_ref()?;
        let NodeEnum::SelectStmt(select) = statement else {
            return None;
        };
        let target = select.target_list.first()?.node.as_ref()?;
        let NodeEnum::ResTarget(target) = target else {
            return None;
        };
        match target.val.as_ref()?.node.as_ref()? {
            NodeEnum::TypeCast(cast) => cast.type_name.as_ref().map(ColumnType::from_type_name),
            _ => None,
        }
    }

    /// Whether this is one of the names PostgreSQL spells `name` (after canonicalisation).
    pub fn is(&self, name: &str) -> bool {
        !self.array && self.name == name
    }

    /// The type as SQL: `varchar(20)`, `bigint`, `text[]`.
    pub fn sql(&self) -> String {
        let base = match self.name.as_str() {
            "int2" => "smallint",
            "int4" => "integer",
            "int8" => "bigint",
            "float4" => "real",
            "float8" => "double precision",
            "bool" => "boolean",
            "bpchar" => "char",
            "timestamptz" => "timestamptz",
            other => other,
        };
        let modifiers = if self.modifiers.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self.modifiers.iter().map(i64::to_string).collect();
            format!("({})", list.join(", "))
        };
        format!("{base}{modifiers}{}", if self.array { "[]" } else { "" })
    }
}

/// The catalog name for the spellings the grammar does not already normalise.
fn canonical_type_name(name: &str) -> &str {
    match name {
        "integer" | "int" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "character varying" => "varchar",
        "character" | "char" => "bpchar",
        "decimal" => "numeric",
        "timestamp with time zone" => "timestamptz",
        "serial4" => "serial",
        "serial8" => "bigserial",
        "serial2" => "smallserial",
        other => other,
    }
}

/// The `Constraint` nodes of a list (column or table constraints).
pub fn constraints(nodes: &[pg_query::Node]) -> impl Iterator<Item = &protobuf::Constraint> {
    nodes.iter().filter_map(|node| match &node.node {
        Some(NodeEnum::Constraint(constraint)) => Some(&**constraint),
        _ => None,
    })
}

/// The `AlterTableCmd` nodes of an `ALTER TABLE`.
pub fn alter_commands(
    alter: &protobuf::AlterTableStmt,
) -> impl Iterator<Item = &protobuf::AlterTableCmd> {
    alter.cmds.iter().filter_map(|node| match &node.node {
        Some(NodeEnum::AlterTableCmd(command)) => Some(&**command),
        _ => None,
    })
}

/// The `RangeVar` nodes of a list.
pub fn range_vars(nodes: &[pg_query::Node]) -> impl Iterator<Item = &protobuf::RangeVar> {
    nodes.iter().filter_map(|node| match &node.node {
        Some(NodeEnum::RangeVar(range)) => Some(range),
        _ => None,
    })
}

/// Columns defined by a statement: `CREATE TABLE` columns and `ALTER TABLE … ADD COLUMN`s, with
/// their table and whether they are added to an existing definition (`ADD COLUMN`).
pub fn defined_columns(node: &NodeEnum) -> Vec<(TableName, &protobuf::ColumnDef, bool)> {
    match node {
        NodeEnum::CreateStmt(create) => {
            let Some(relation) = &create.relation else {
                return Vec::new();
            };
            let table = TableName::from_range_var(relation);
            create
                .table_elts
                .iter()
                .filter_map(|e| match &e.node {
                    Some(NodeEnum::ColumnDef(column)) => Some((table.clone(), &**column, false)),
                    _ => None,
                })
                .collect()
        }
        NodeEnum::AlterTableStmt(alter) => {
            let Some(relation) = &alter.relation else {
                return Vec::new();
            };
            let table = TableName::from_range_var(relation);
            alter_commands(alter)
                .filter(|c| c.subtype() == protobuf::AlterTableType::AtAddColumn)
                .filter_map(|c| match inner(&c.def) {
                    Some(NodeEnum::ColumnDef(column)) => Some((table.clone(), &**column, true)),
                    _ => None,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Constraints added by `ALTER TABLE … ADD CONSTRAINT`, with their table.
pub fn added_constraints(node: &NodeEnum) -> Vec<(TableName, &protobuf::Constraint)> {
    let NodeEnum::AlterTableStmt(alter) = node else {
        return Vec::new();
    };
    let Some(relation) = &alter.relation else {
        return Vec::new();
    };
    let table = TableName::from_range_var(relation);
    alter_commands(alter)
        .filter(|c| c.subtype() == protobuf::AlterTableType::AtAddConstraint)
        .filter_map(|c| match inner(&c.def) {
            Some(NodeEnum::Constraint(constraint)) => Some((table.clone(), &**constraint)),
            _ => None,
        })
        .collect()
}

/// `ALTER TABLE` subcommands of one type, with their table.
pub fn alter_commands_of(
    node: &NodeEnum,
    subtype: protobuf::AlterTableType,
) -> Vec<(TableName, &protobuf::AlterTableCmd)> {
    let NodeEnum::AlterTableStmt(alter) = node else {
        return Vec::new();
    };
    let Some(relation) = &alter.relation else {
        return Vec::new();
    };
    if alter.objtype() != protobuf::ObjectType::ObjectTable {
        return Vec::new();
    }
    let table = TableName::from_range_var(relation);
    alter_commands(alter)
        .filter(|c| c.subtype() == subtype)
        .map(|c| (table.clone(), c))
        .collect()
}

/// A comma-separated, quoted column list.
pub fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Foreign keys a statement declares (in `CREATE TABLE` or `ALTER TABLE`): the referencing table,
/// its columns, and the referenced table.
pub fn declared_foreign_keys(node: &NodeEnum) -> Vec<(TableName, Vec<String>, TableName)> {
    // The referenced table of a foreign key; the columns are only collected for one (this runs
    // on every statement).
    let references = |constraint: &protobuf::Constraint| {
        constraint
            .pktable
            .as_ref()
            .filter(|_| constraint.contype() == protobuf::ConstrType::ConstrForeign)
            .map(TableName::from_range_var)
    };
    let mut found = Vec::new();
    for (table, column, _) in defined_columns(node) {
        for constraint in constraints(&column.constraints) {
            if let Some(referenced) = references(constraint) {
                found.push((table.clone(), vec![column.colname.clone()], referenced));
            }
        }
    }
    match node {
        NodeEnum::CreateStmt(create) => {
            if let Some(relation) = &create.relation {
                let table = TableName::from_range_var(relation);
                for constraint in constraints(&create.table_elts) {
                    if let Some(referenced) = references(constraint) {
                        found.push((table.clone(), strings(&constraint.fk_attrs), referenced));
                    }
                }
            }
        }
        NodeEnum::AlterTableStmt(_) => {
            for (table, constraint) in added_constraints(node) {
                if let Some(referenced) = references(constraint) {
                    found.push((table, strings(&constraint.fk_attrs), referenced));
                }
            }
        }
        _ => {}
    }
    found
}

/// A column's type.
pub fn column_type(column: &protobuf::ColumnDef) -> Option<ColumnType> {
    column.type_name.as_ref().map(ColumnType::from_type_name)
}

/// A column's `DEFAULT` expression, unless it is `DEFAULT NULL`.
pub fn column_default(column: &protobuf::ColumnDef) -> Option<&NodeEnum> {
    if let Some(default) = inner(&column.raw_default) {
        return Some(default);
    }
    constraints(&column.constraints)
        .find(|c| c.contype() == protobuf::ConstrType::ConstrDefault)
        .and_then(|c| inner(&c.raw_expr))
        .filter(|e| !matches!(e, NodeEnum::AConst(constant) if constant.isnull))
}

/// Whether the column is declared `NOT NULL` (or `PRIMARY KEY`).
pub fn column_not_null(column: &protobuf::ColumnDef) -> bool {
    column.is_not_null
        || constraints(&column.constraints).any(|c| {
            matches!(
                c.contype(),
                protobuf::ConstrType::ConstrNotnull | protobuf::ConstrType::ConstrPrimary
            )
        })
}

/// Deparses a statement back to SQL.
pub fn deparse(node: &NodeEnum) -> String {
    node.deparse(Default::default()).unwrap_or_default()
}

/// Deparses a statement the caller no longer needs, without the copy [`deparse`] makes
/// (libpg_query reads only the statements of the tree it deparses, not its version).
pub fn deparse_owned(node: NodeEnum) -> String {
    let tree = protobuf::ParseResult {
        version: 0,
        stmts: vec![protobuf::RawStmt {
            stmt: Some(Box::new(pg_query::Node { node: Some(node) })),
            stmt_location: 0,
            stmt_len: 0,
        }],
    };
    pg_query::deparse(&tree, Default::default()).unwrap_or_default()
}

/// Deparses an expression back to SQL.
pub fn deparse_expression(expression: &NodeEnum) -> String {
    let select = NodeEnum::SelectStmt(Box::new(protobuf::SelectStmt {
        target_list: vec![pg_query::Node {
            node: Some(NodeEnum::ResTarget(Box::new(protobuf::ResTarget {
                val: Some(Box::new(pg_query::Node {
                    node: Some(expression.clone()),
                })),
                ..Default::default()
            }))),
        }],
        limit_option: protobuf::LimitOption::Default as i32,
        op: protobuf::SetOperation::SetopNone as i32,
        ..Default::default()
    }));
    deparse(&select)
        .strip_prefix("SELECT ")
        .map(str::to_owned)
        .unwrap_or_default()
}

/// `ALTER TABLE <table> ADD COLUMN <column>` for a column definition, as SQL.
pub fn add_column_sql(table: &TableName, column: &protobuf::ColumnDef) -> String {
    let column_type = column_type(column).map(|t| t.sql()).unwrap_or_default();
    format!(
        "ALTER TABLE {} ADD COLUMN {} {column_type}",
        table.sql(),
        quote_ident(&column.colname)
    )
}

/// The integer or string value of a constant node, for messages.
pub fn constant_text(node: &pg_query::Node) -> Option<String> {
    match &node.node {
        Some(NodeEnum::AConst(constant)) => match &constant.val {
            Some(Val::Ival(i)) => Some(i.ival.to_string()),
            Some(Val::Fval(f)) => Some(f.fval.clone()),
            Some(Val::Sval(s)) => Some(s.sval.clone()),
            Some(Val::Boolval(b)) => Some(b.boolval.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// The node inside an optional box.
pub fn inner(node: &Option<Box<pg_query::Node>>) -> Option<&NodeEnum> {
    node.as_deref().and_then(|n| n.node.as_ref())
}

/// Inserts `text` after the first keyword `word` (outside strings, quoted names and comments)
/// of `sql`.
pub fn insert_after_keyword(sql: &str, word: &str, text: &str) -> Option<String> {
    let end = keyword_end(sql, word)?;
    Some(format!("{}{text}{}", &sql[..end], &sql[end..]))
}

/// The byte offset just after the first bare word `word` of `sql`. Skips string literals,
/// quoted identifiers, dollar quotes and comments; cheap enough to run for every finding.
fn keyword_end(sql: &str, word: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| i + 2 + end + 2);
            }
            b'$' => {
                let tag_end = sql[i + 1..].find('$').map(|end| i + 1 + end)?;
                let tag = &sql[i..=tag_end];
                if tag[1..tag.len() - 1]
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_')
                {
                    i = sql[tag_end + 1..]
                        .find(tag)
                        .map_or(bytes.len(), |end| tag_end + 1 + end + tag.len());
                } else {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$')
                {
                    i += 1;
                }
                if sql[start..i].eq_ignore_ascii_case(word) {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {

    #[test]
    fn parses_types_as_the_catalog_spells_them() {
        let varchar = ColumnType::parse("character varying(100)").unwrap();
        assert_eq!(
            (varchar.name.as_str(), varchar.modifiers.as_slice()),
            ("varchar", &[100][..])
        );
        assert_eq!(
            ColumnType::parse("timestamp without time zone")
                .unwrap()
                .name,
            "timestamp"
        );
        assert_eq!(
            ColumnType::parse("timestamp with time zone").unwrap().name,
            "timestamptz"
        );
        assert!(ColumnType::parse("integer[]").unwrap().array);
        assert_eq!(
            ColumnType::parse("numeric(10,2)").unwrap().modifiers,
            [10, 2]
        );
        assert!(ColumnType::parse("not a type at all").is_none());
    }

    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote_ident("users"), "users");
        assert_eq!(quote_ident("Users"), "\"Users\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn inserts_after_keywords_outside_strings() {
        assert_eq!(
            insert_after_keyword(
                "create index i on t (a) where b = 'index'",
                "index",
                " CONCURRENTLY"
            )
            .unwrap(),
            "create index CONCURRENTLY i on t (a) where b = 'index'"
        );
    }

    #[test]
    fn deparses_expressions() {
        let parsed = pg_query::parse(
            "SELECT gen_random_uuid()::text",
            pg_query::ParserOptions::default(),
        )
        .unwrap();
        let Some(NodeEnum::SelectStmt(select)) = parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .and_then(|s| s.node.as_ref())
        else {
            panic!("not a SELECT");
        };
        let Some(NodeEnum::ResTarget(target)) = &select.target_list[0].node else {
            panic!("no target")
        };
        assert_eq!(
            deparse_expression(inner(&target.val).unwrap()),
            "gen_random_uuid()::text"
        );
    }

    #[test]
    fn reads_types() {
        let parsed = pg_query::parse(
            "CREATE TABLE t (a varchar(20), b integer[], c pg_catalog.int8, d numeric(10, 2))",
            pg_query::ParserOptions::default(),
        )
        .unwrap();
        let Some(NodeEnum::CreateStmt(create)) = parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .and_then(|s| s.node.as_ref())
        else {
            panic!("not a CREATE TABLE");
        };
        let types: Vec<String> = create
            .table_elts
            .iter()
            .filter_map(|e| match &e.node {
                Some(NodeEnum::ColumnDef(c)) => c
                    .type_name
                    .as_ref()
                    .map(|t| ColumnType::from_type_name(t).sql()),
                _ => None,
            })
            .collect();
        assert_eq!(
            types,
            ["varchar(20)", "integer[]", "bigint", "numeric(10, 2)"]
        );
    }
}
