//! The catalog queries behind a snapshot, sent as one multi-statement simple query.

use std::collections::{BTreeMap, HashMap};

use crate::connection::{Connection, Rows, flag, literal, number, text};
use crate::error::RehearseError;

use super::{
    Column, Constraint, Extension, Function, Index, Policy, SYSTEM_SCHEMAS, Schema, Sequence,
    Snapshot, SnapshotScope, Table, Trigger, Type, View,
};

/// Separates list items inside one text value (a character no name contains).
const SEPARATOR: char = '\u{1f}';

/// The catalog queries, in the order their result sets are read. `{namespaces}` filters on
/// `n.nspname`, `{member}` tests extension membership of the row's object.
const QUERIES: &str = r#"
SELECT quote_ident(n.nspname), pg_get_userbyid(n.nspowner),
       {acl(coalesce(n.nspacl, acldefault('n', n.nspowner)))},
       coalesce(obj_description(n.oid, 'pg_namespace'), '')
FROM pg_namespace n
WHERE {namespaces} AND NOT {member('pg_namespace', 'n.oid')};

SELECT c.oid, format('%I.%I', n.nspname, c.relname), c.relkind, c.relpersistence,
       pg_get_userbyid(c.relowner),
       {acl(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)))},
       coalesce(obj_description(c.oid, 'pg_class'), ''),
       coalesce(array_to_string(c.reloptions, chr(31)), ''),
       coalesce((SELECT string_agg(format('%I.%I', pn.nspname, p.relname), chr(31) ORDER BY i.inhseqno)
                 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                 JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid), ''),
       coalesce(pg_get_expr(c.relpartbound, c.oid), ''),
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) ELSE '' END,
       c.relrowsecurity, c.relforcerowsecurity,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE '' END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND {namespaces}
  AND NOT {member('pg_class', 'c.oid')}
  AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d
           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i'));

SELECT a.attrelid, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,
       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN
            coalesce((SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co
                      JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation), '')
       ELSE '' END,
       {acl(a.attacl)}, coalesce(col_description(a.attrelid, a.attnum), ''),
       row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'v', 'm') AND {namespaces};

SELECT con.conrelid, quote_ident(con.conname), con.contype, pg_get_constraintdef(con.oid),
       con.convalidated, coalesce(obj_description(con.oid, 'pg_constraint'), '')
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.conrelid <> 0 AND {namespaces};

SELECT i.indrelid, quote_ident(ic.relname), pg_get_indexdef(i.indexrelid), i.indisunique,
       i.indisprimary, i.indisvalid, coalesce(obj_description(i.indexrelid, 'pg_class'), '')
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {namespaces};

SELECT t.tgrelid, quote_ident(t.tgname), pg_get_triggerdef(t.oid), t.tgenabled,
       coalesce(obj_description(t.oid, 'pg_trigger'), '')
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND {namespaces};

SELECT p.polrelid, quote_ident(p.polname), p.polcmd, p.polpermissive,
       array_to_string(ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(r)) END
                             FROM unnest(p.polroles) r ORDER BY 1), chr(31)),
       coalesce(pg_get_expr(p.polqual, p.polrelid), ''), coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {namespaces};

SELECT s.seqrelid, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
       s.seqcache, s.seqcycle,
       coalesce((SELECT format('%I.%I.%I', tn.nspname, t.relname, a.attname) FROM pg_depend d
                 JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
                 JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                 WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.deptype = 'a'
                   AND d.refobjsubid > 0 LIMIT 1), '')
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {namespaces};

SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
       p.prokind, pg_get_function_arguments(p.oid), coalesce(pg_get_function_result(p.oid), ''),
       l.lanname,
       CASE WHEN p.prokind = 'a' THEN md5(p.prosrc) ELSE md5(pg_get_functiondef(p.oid)) END,
       p.provolatile, p.proisstrict, p.prosecdef, p.proparallel, p.proleakproof,
       coalesce(array_to_string(p.proconfig, chr(31)), ''), pg_get_userbyid(p.proowner),
       {acl(coalesce(p.proacl, acldefault('f', p.proowner)))},
       coalesce(obj_description(p.oid, 'pg_proc'), '')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE {namespaces} AND NOT {member('pg_proc', 'p.oid')};

SELECT format('%I.%I', n.nspname, t.typname), t.typtype,
       CASE t.typtype
         WHEN 'e' THEN coalesce((SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                 FROM pg_enum e WHERE e.enumtypid = t.oid), '')
         WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)
         WHEN 'c' THEN coalesce((SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
                                 FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '')
         WHEN 'r' THEN coalesce((SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid), '')
       END,
       t.typnotnull, coalesce(t.typdefault, ''),
       coalesce((SELECT string_agg(format('%I %s', c.conname, pg_get_constraintdef(c.oid)), chr(31) ORDER BY c.conname)
                 FROM pg_constraint c WHERE c.contypid = t.oid), ''),
       pg_get_userbyid(t.typowner), {acl(coalesce(t.typacl, acldefault('T', t.typowner)))},
       coalesce(obj_description(t.oid, 'pg_type'), '')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'c', 'r')
  AND (t.typtype <> 'c' OR EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
  AND {namespaces} AND NOT {member('pg_type', 't.oid')};

SELECT quote_ident(e.extname), e.extversion, quote_ident(n.nspname)
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace;
"#;

/// The query text with the filters filled in for `scope`.
fn queries(scope: &SnapshotScope) -> String {
    let excluded: Vec<String> = SYSTEM_SCHEMAS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(scope.excluded_schemas.iter().cloned())
        .map(|schema| literal(&schema))
        .collect();
    let namespaces = format!(
        "n.nspname NOT IN ({}) AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'",
        excluded.join(", ")
    );
    let mut sql = QUERIES.replace("{namespaces}", &namespaces);
    // {member('catalog', 'oid expression')} and {acl(expression)}, expanded in place.
    while let Some(start) = sql.find("{member(") {
        let end = start + sql[start..].find(")}").expect("closed member()");
        let arguments = &sql[start + "{member(".len()..end];
        let (catalog, object) = arguments.split_once(", ").expect("two arguments");
        let expansion = format!(
            "EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = {catalog}::regclass AND d.objid = {} AND d.deptype = 'e')",
            object.trim_matches('\'')
        );
        sql.replace_range(start..end + 2, &expansion);
    }
    while let Some(start) = sql.find("{acl(") {
        let mut depth = 0;
        let mut end = start + "{acl".len();
        for (offset, character) in sql[end..].char_indices() {
            match character {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end += offset;
                        break;
                    }
                }
                _ => {}
            }
        }
        let expression = sql[start + "{acl(".len()..end].to_owned();
        let expansion = format!(
            "coalesce(array_to_string(ARRAY(SELECT item::text FROM unnest({expression}) item ORDER BY 1), chr(31)), '')"
        );
        sql.replace_range(start..end + 2, &expansion);
    }
    sql
}

fn list(value: String) -> Vec<String> {
    value
        .split(SEPARATOR)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Where a relation's sub-objects go.
enum Owner {
    Table(String),
    View(String),
    Sequence(String),
}

pub(super) fn capture(
    connection: &mut Connection,
    scope: &SnapshotScope,
) -> Result<Snapshot, RehearseError> {
    let sets = connection.result_sets("schema snapshot", &queries(scope))?;
    let [
        schemas,
        relations,
        columns,
        constraints,
        indexes,
        triggers,
        policies,
        sequences,
        functions,
        types,
        extensions,
    ]: [Rows; 11] = sets
        .try_into()
        .map_err(|sets: Vec<Rows>| RehearseError::Catalog {
            what: "schema snapshot",
            message: format!("expected 11 result sets, got {}", sets.len()),
        })?;
    let mut snapshot = Snapshot::default();
    for row in schemas {
        snapshot.schemas.insert(
            text(&row, 0),
            Schema {
                owner: text(&row, 1),
                grants: list(text(&row, 2)),
                comment: text(&row, 3),
            },
        );
    }
    let mut owners: HashMap<String, Owner> = HashMap::new();
    for row in relations {
        let oid = text(&row, 0);
        let name = text(&row, 1);
        let kind = text(&row, 2);
        let owner = text(&row, 4);
        let grants = list(text(&row, 5));
        let comment = text(&row, 6);
        let options = list(text(&row, 7));
        match kind.as_str() {
            "v" | "m" => {
                snapshot.views.insert(
                    name.clone(),
                    View {
                        materialized: kind == "m",
                        definition: text(&row, 13).trim().to_owned(),
                        owner,
                        grants,
                        comment,
                        options,
                        ..View::default()
                    },
                );
                owners.insert(oid, Owner::View(name));
            }
            "S" => {
                snapshot.sequences.insert(
                    name.clone(),
                    Sequence {
                        owner,
                        grants,
                        comment,
                        ..Sequence::default()
                    },
                );
                owners.insert(oid, Owner::Sequence(name));
            }
            _ => {
                snapshot.tables.insert(
                    name.clone(),
                    Table {
                        kind: match kind.as_str() {
                            "p" => "partitioned table",
                            "f" => "foreign table",
                            _ => "table",
                        }
                        .to_owned(),
                        persistence: match text(&row, 3).as_str() {
                            "u" => "unlogged",
                            _ => "logged",
                        }
                        .to_owned(),
                        owner,
                        grants,
                        comment,
                        options,
                        parents: list(text(&row, 8)),
                        partition_bound: text(&row, 9),
                        partition_key: text(&row, 10),
                        row_level_security: flag(&row, 11),
                        force_row_level_security: flag(&row, 12),
                        ..Table::default()
                    },
                );
                owners.insert(oid, Owner::Table(name));
            }
        }
    }
    for row in columns {
        let generated = text(&row, 6) == "s";
        let expression = text(&row, 4);
        let column = Column {
            position: number(&row, 10) as u32,
            data_type: text(&row, 2),
            not_null: flag(&row, 3),
            default: if generated {
                String::new()
            } else {
                expression.clone()
            },
            identity: match text(&row, 5).as_str() {
                "a" => "always",
                "d" => "by default",
                _ => "",
            }
            .to_owned(),
            generated: if generated { expression } else { String::new() },
            collation: text(&row, 7),
            grants: list(text(&row, 8)),
            comment: text(&row, 9),
        };
        match owners.get(&text(&row, 0)) {
            Some(Owner::Table(name)) => {
                if let Some(table) = snapshot.tables.get_mut(name) {
                    table.columns.insert(text(&row, 1), column);
                }
            }
            Some(Owner::View(name)) => {
                if let Some(view) = snapshot.views.get_mut(name) {
                    view.columns.insert(text(&row, 1), column);
                }
            }
            _ => {}
        }
    }
    for row in constraints {
        let Some(Owner::Table(name)) = owners.get(&text(&row, 0)) else {
            continue;
        };
        if let Some(table) = snapshot.tables.get_mut(name) {
            table.constraints.insert(
                text(&row, 1),
                Constraint {
                    kind: match text(&row, 2).as_str() {
                        "p" => "primary key",
                        "u" => "unique",
                        "c" => "check",
                        "f" => "foreign key",
                        "x" => "exclusion",
                        "n" => "not null",
                        "t" => "trigger",
                        _ => "other",
                    }
                    .to_owned(),
                    definition: text(&row, 3),
                    validated: flag(&row, 4),
                    comment: text(&row, 5),
                },
            );
        }
    }
    for row in indexes {
        let index = Index {
            definition: text(&row, 2),
            unique: flag(&row, 3),
            primary: flag(&row, 4),
            valid: flag(&row, 5),
            comment: text(&row, 6),
        };
        match owners.get(&text(&row, 0)) {
            Some(Owner::Table(name)) => {
                if let Some(table) = snapshot.tables.get_mut(name) {
                    table.indexes.insert(text(&row, 1), index);
                }
            }
            Some(Owner::View(name)) => {
                if let Some(view) = snapshot.views.get_mut(name) {
                    view.indexes.insert(text(&row, 1), index);
                }
            }
            _ => {}
        }
    }
    for row in triggers {
        let trigger = Trigger {
            definition: text(&row, 2),
            enabled: match text(&row, 3).as_str() {
                "D" => "disabled",
                "R" => "replica",
                "A" => "always",
                _ => "origin",
            }
            .to_owned(),
            comment: text(&row, 4),
        };
        match owners.get(&text(&row, 0)) {
            Some(Owner::Table(name)) => {
                if let Some(table) = snapshot.tables.get_mut(name) {
                    table.triggers.insert(text(&row, 1), trigger);
                }
            }
            Some(Owner::View(name)) => {
                if let Some(view) = snapshot.views.get_mut(name) {
                    view.triggers.insert(text(&row, 1), trigger);
                }
            }
            _ => {}
        }
    }
    for row in policies {
        let Some(Owner::Table(name)) = owners.get(&text(&row, 0)) else {
            continue;
        };
        if let Some(table) = snapshot.tables.get_mut(name) {
            table.policies.insert(
                text(&row, 1),
                Policy {
                    command: match text(&row, 2).as_str() {
                        "r" => "SELECT",
                        "a" => "INSERT",
                        "w" => "UPDATE",
                        "d" => "DELETE",
                        _ => "ALL",
                    }
                    .to_owned(),
                    permissive: flag(&row, 3),
                    roles: list(text(&row, 4)),
                    using: text(&row, 5),
                    with_check: text(&row, 6),
                },
            );
        }
    }
    for row in sequences {
        let Some(Owner::Sequence(name)) = owners.get(&text(&row, 0)) else {
            continue;
        };
        if let Some(sequence) = snapshot.sequences.get_mut(name) {
            sequence.data_type = text(&row, 1);
            sequence.start = number(&row, 2);
            sequence.increment = number(&row, 3);
            sequence.minimum = number(&row, 4);
            sequence.maximum = number(&row, 5);
            sequence.cache = number(&row, 6);
            sequence.cycle = flag(&row, 7);
            sequence.owned_by = text(&row, 8);
        }
    }
    for row in functions {
        snapshot.functions.insert(
            text(&row, 0),
            Function {
                kind: match text(&row, 1).as_str() {
                    "p" => "procedure",
                    "a" => "aggregate",
                    "w" => "window",
                    _ => "function",
                }
                .to_owned(),
                arguments: text(&row, 2),
                returns: text(&row, 3),
                language: text(&row, 4),
                body_md5: text(&row, 5),
                volatility: match text(&row, 6).as_str() {
                    "i" => "immutable",
                    "s" => "stable",
                    _ => "volatile",
                }
                .to_owned(),
                strict: flag(&row, 7),
                security_definer: flag(&row, 8),
                parallel: match text(&row, 9).as_str() {
                    "s" => "safe",
                    "r" => "restricted",
                    _ => "unsafe",
                }
                .to_owned(),
                leakproof: flag(&row, 10),
                settings: list(text(&row, 11)),
                owner: text(&row, 12),
                grants: list(text(&row, 13)),
                comment: text(&row, 14),
            },
        );
    }
    for row in types {
        snapshot.types.insert(
            text(&row, 0),
            Type {
                kind: match text(&row, 1).as_str() {
                    "e" => "enum",
                    "d" => "domain",
                    "c" => "composite",
                    _ => "range",
                }
                .to_owned(),
                definition: text(&row, 2),
                not_null: flag(&row, 3),
                default: text(&row, 4),
                constraints: list(text(&row, 5)),
                owner: text(&row, 6),
                grants: list(text(&row, 7)),
                comment: text(&row, 8),
            },
        );
    }
    for row in extensions {
        snapshot.extensions.insert(
            text(&row, 0),
            Extension {
                version: text(&row, 1),
                schema: text(&row, 2),
            },
        );
    }
    Ok(snapshot)
}

/// The tables a snapshot describes, with their columns in position order.
pub(crate) fn ordered_columns(columns: &BTreeMap<String, Column>) -> Vec<&str> {
    let mut ordered: Vec<(&String, &Column)> = columns.iter().collect();
    ordered.sort_by_key(|(_, column)| column.position);
    ordered.into_iter().map(|(name, _)| name.as_str()).collect()
}
