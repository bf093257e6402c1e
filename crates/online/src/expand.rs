//! Expand/contract: renaming a column, or changing its type, without breaking code that runs
//! while it happens. The expand migration adds the new column, keeps the two equal with a
//! trigger (whichever one a statement writes), backfills it in batches and copies NOT NULL and
//! simple indexes; code is then deployed to use the new column; the contract migration drops the
//! old column and the trigger. A prepared statement never sees a column change type under it:
//! old code keeps reading the old column, new code prepares against the new one.
//!
//! The migrations are SQL for people to review and edit, generated from the column's definition.

use crate::catalog::ColumnFacts;
use crate::session::quote_ident;

/// The change to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Rename the column to `new_name`.
    Rename { new_name: String },
    /// Move the column's data to `new_name` of type `new_type`, converting with `to_new` (and
    /// back, for writes by old code, with `to_old`); `{}` in them stands for the value.
    ChangeType {
        new_name: String,
        new_type: String,
        to_new: Option<String>,
        to_old: Option<String>,
    },
}

/// The two migrations' sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandContract {
    /// What the files are about, e.g. `accounts.abalance → abalance_new bigint`.
    pub title: String,
    pub new_column: String,
    pub expand_up: String,
    pub expand_down: String,
    pub contract_up: String,
    pub contract_down: String,
    /// Things a reviewer must handle by hand (constraints and indexes that cannot be copied).
    pub review: Vec<String>,
}

/// Writes the migrations for `change` on the column `facts` describes.
pub fn generate(facts: &ColumnFacts, change: &Change) -> Result<ExpandContract, String> {
    let old = &facts.column;
    let (new_name, new_type, to_new, to_old) = match change {
        Change::Rename { new_name } => (
            new_name.clone(),
            facts.type_sql.clone(),
            "{}".to_owned(),
            "{}".to_owned(),
        ),
        Change::ChangeType {
            new_name,
            new_type,
            to_new,
            to_old,
        } => (
            new_name.clone(),
            new_type.clone(),
            to_new
                .clone()
                .unwrap_or_else(|| format!("({{}})::{new_type}")),
            to_old
                .clone()
                .unwrap_or_else(|| format!("({{}})::{}", facts.type_sql)),
        ),
    };
    if &new_name == old {
        return Err(format!(
            "the new column must have another name than `{old}`"
        ));
    }
    if !to_new.contains("{}") || !to_old.contains("{}") {
        return Err("the conversion expressions must contain {} where the value goes".into());
    }
    if facts.in_primary_key {
        return Err(format!(
            "`{old}` is part of the primary key; expand/contract through a second column cannot replace a key (foreign keys and the table's identity depend on it)"
        ));
    }
    if facts.referenced {
        return Err(format!(
            "a foreign key of another table references `{old}`; move that reference first"
        ));
    }
    let table = facts.table.sql();
    let quoted_old = quote_ident(old);
    let quoted_new = quote_ident(&new_name);
    let convert = |template: &str, value: &str| template.replace("{}", value);
    let base = truncate(&format!("{}_{old}", facts.table.name), 40);
    let function = match &facts.table.schema {
        Some(schema) => format!(
            "{}.{}",
            quote_ident(schema),
            quote_ident(&format!("safeshift_sync_{base}"))
        ),
        None => quote_ident(&format!("safeshift_sync_{base}")),
    };
    let trigger = quote_ident(&truncate(&format!("safeshift_sync_{old}_{new_name}"), 63));
    let check = quote_ident(&truncate(
        &format!("{}_{new_name}_not_null", facts.table.name),
        63,
    ));

    let sync = |from: &str, to: &str, from_type_to: &str, to_type_to: &str| {
        // `from`: the column code already writes; `to`: its twin. On INSERT the twin is
        // filled from whichever column was given (the new one has no default while both
        // exist, so a non-NULL new value was written by new code). On UPDATE the column the
        // statement changed wins; a backfill that sets the twin to the converted value changes
        // nothing else.
        let new_f = format!("NEW.{from}");
        let new_t = format!("NEW.{to}");
        format!(
            "CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n\
             BEGIN\n\
             \x20 IF TG_OP = 'INSERT' THEN\n\
             \x20   IF {new_t} IS NULL THEN\n\
             \x20     {new_t} := {to_from};\n\
             \x20   ELSE\n\
             \x20     {new_f} := {from_to};\n\
             \x20   END IF;\n\
             \x20 ELSIF {new_t} IS DISTINCT FROM OLD.{to} AND {new_t} IS DISTINCT FROM {to_from} THEN\n\
             \x20   {new_f} := {from_to};\n\
             \x20 ELSIF {new_f} IS DISTINCT FROM OLD.{from} THEN\n\
             \x20   {new_t} := {to_from};\n\
             \x20 END IF;\n\
             \x20 RETURN NEW;\n\
             END\n\
             $$;\n\n\
             CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {table}\n\
             \x20 FOR EACH ROW EXECUTE FUNCTION {function}();\n",
            to_from = convert(from_type_to, &new_f),
            from_to = convert(to_type_to, &new_t),
        )
    };
    let mut review = Vec::new();
    // Copies of NOT NULL and of simple indexes onto `target`, built online.
    let copy_extras = |target: &str, quoted_target: &str, review: &mut Vec<String>| {
        let mut sql = String::new();
        if facts.not_null {
            let note = if facts.server_version_num >= 120_000 {
                "-- SET NOT NULL skips its scan thanks to the validated CHECK (PostgreSQL 12+).\n"
            } else {
                "-- Before PostgreSQL 12, SET NOT NULL scans the table under ACCESS EXCLUSIVE: keep the CHECK instead if the table is large.\n"
            };
            sql.push_str(&format!(
                "\nALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({quoted_target} IS NOT NULL) NOT VALID;\n\
                 ALTER TABLE {table} VALIDATE CONSTRAINT {check};\n\
                 {note}ALTER TABLE {table} ALTER COLUMN {quoted_target} SET NOT NULL;\n\
                 ALTER TABLE {table} DROP CONSTRAINT {check};\n"
            ));
        }
        for index in &facts.indexes {
            if index.simple {
                let name =
                    quote_ident(&truncate(&format!("{}_{target}_idx", facts.table.name), 63));
                sql.push_str(&format!(
                    "\nCREATE {}INDEX CONCURRENTLY {name} ON {table} ({quoted_target});\n",
                    if index.unique { "UNIQUE " } else { "" }
                ));
            } else {
                review.push(format!(
                    "index {} uses `{old}`: {} — recreate it on `{new_name}` if it is still needed",
                    index.name, index.definition
                ));
            }
        }
        sql
    };
    let expand_extras = copy_extras(&new_name, &quoted_new, &mut review);
    for constraint in &facts.constraints {
        review.push(format!(
            "constraint {constraint} uses `{old}` — add the equivalent on `{new_name}` (NOT VALID, then VALIDATE) before the contract step"
        ));
    }
    let backfill = |target: &str, value: &str| {
        format!(
            "-- safeshift:backfill\n\
             UPDATE {table} SET {target} = {value}\n\
             WHERE {target} IS DISTINCT FROM {value};\n"
        )
    };
    let drop_sync = format!(
        "DROP TRIGGER IF EXISTS {trigger} ON {table};\n\
         DROP FUNCTION IF EXISTS {function}();\n"
    );

    let expand_up = format!(
        "ALTER TABLE {table} ADD COLUMN {quoted_new} {new_type};\n\n{}\n{}{expand_extras}",
        sync(&quoted_old, &quoted_new, &to_new, &to_old),
        backfill(&quoted_new, &convert(&to_new, &quoted_old)),
    );
    let expand_down =
        format!("{drop_sync}ALTER TABLE {table} DROP COLUMN IF EXISTS {quoted_new};\n");
    let default = facts.default.as_ref().map(|default| match change {
        Change::Rename { .. } => default.clone(),
        Change::ChangeType { .. } => convert(&to_new, default),
    });
    let contract_up = format!(
        "{drop_sync}-- safeshift:allow dropping-column expand/contract: running code uses {new_name} since the expand migration\n\
         ALTER TABLE {table} DROP COLUMN {quoted_old};\n{}",
        default
            .as_ref()
            .map(|d| format!("ALTER TABLE {table} ALTER COLUMN {quoted_new} SET DEFAULT {d};\n"))
            .unwrap_or_default()
    );
    let mut ignored = Vec::new();
    let restore_extras = copy_extras(old, &quoted_old, &mut ignored);
    let contract_down = format!(
        "{}ALTER TABLE {table} ADD COLUMN {quoted_old} {};\n{}\n{}\n{}{restore_extras}",
        if default.is_some() {
            // While both columns exist the new one has no default (see the trigger).
            format!("ALTER TABLE {table} ALTER COLUMN {quoted_new} DROP DEFAULT;\n")
        } else {
            String::new()
        },
        facts.type_sql,
        facts
            .default
            .as_ref()
            .map(|d| format!("ALTER TABLE {table} ALTER COLUMN {quoted_old} SET DEFAULT {d};\n"))
            .unwrap_or_default(),
        sync(&quoted_old, &quoted_new, &to_new, &to_old),
        backfill(&quoted_old, &convert(&to_old, &quoted_new)),
    );
    let title = match change {
        Change::Rename { .. } => format!("{}.{old} → {new_name}", facts.table.name),
        Change::ChangeType { new_type, .. } => format!(
            "{}.{old} ({}) → {new_name} ({new_type})",
            facts.table.name, facts.type_sql
        ),
    };
    Ok(ExpandContract {
        title,
        new_column: new_name,
        expand_up,
        expand_down,
        contract_up,
        contract_down,
        review,
    })
}

fn truncate(name: &str, max: usize) -> String {
    name.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use safeshift_lint::TableName;

    use super::*;
    use crate::catalog::IndexDefinition;

    fn facts() -> ColumnFacts {
        ColumnFacts {
            table: TableName::new(None, "accounts"),
            column: "abalance".into(),
            type_sql: "integer".into(),
            not_null: true,
            default: Some("0".into()),
            indexes: vec![
                IndexDefinition {
                    name: "accounts_abalance_idx".into(),
                    definition: "CREATE INDEX accounts_abalance_idx ON public.accounts USING btree (abalance)".into(),
                    simple: true,
                    unique: false,
                },
                IndexDefinition {
                    name: "accounts_lower_idx".into(),
                    definition: "CREATE INDEX accounts_lower_idx ON public.accounts USING btree (abs(abalance))".into(),
                    simple: false,
                    unique: false,
                },
            ],
            constraints: vec!["positive: CHECK ((abalance > '-1000'::integer))".into()],
            in_primary_key: false,
            referenced: false,
            server_version_num: 150_000,
        }
    }

    #[test]
    fn a_type_change_adds_a_synced_column_and_drops_the_old_one_later() {
        let generated = generate(
            &facts(),
            &Change::ChangeType {
                new_name: "abalance_new".into(),
                new_type: "bigint".into(),
                to_new: None,
                to_old: None,
            },
        )
        .unwrap();
        let up = &generated.expand_up;
        assert!(up.starts_with("ALTER TABLE accounts ADD COLUMN \"abalance_new\" bigint;"));
        assert!(up.contains("NEW.\"abalance_new\" := (NEW.\"abalance\")::bigint;"));
        assert!(up.contains("NEW.\"abalance\" := (NEW.\"abalance_new\")::integer;"));
        assert!(up.contains("-- safeshift:backfill\nUPDATE accounts SET \"abalance_new\" = (\"abalance\")::bigint\nWHERE \"abalance_new\" IS DISTINCT FROM (\"abalance\")::bigint;"));
        assert!(up.contains("CHECK (\"abalance_new\" IS NOT NULL) NOT VALID"));
        assert!(up.contains(
            "CREATE INDEX CONCURRENTLY \"accounts_abalance_new_idx\" ON accounts (\"abalance_new\")"
        ));
        assert!(
            generated
                .expand_down
                .contains("DROP COLUMN IF EXISTS \"abalance_new\"")
        );
        assert!(
            generated
                .contract_up
                .contains("ALTER TABLE accounts DROP COLUMN \"abalance\";")
        );
        assert!(generated.contract_up.contains("SET DEFAULT (0)::bigint"));
        assert!(
            generated
                .contract_down
                .starts_with("ALTER TABLE accounts ALTER COLUMN \"abalance_new\" DROP DEFAULT;")
        );
        assert!(
            generated
                .contract_down
                .contains("UPDATE accounts SET \"abalance\" = (\"abalance_new\")::integer")
        );
        assert_eq!(generated.review.len(), 2, "{:?}", generated.review);
    }

    #[test]
    fn a_rename_copies_without_casts() {
        let generated = generate(
            &facts(),
            &Change::Rename {
                new_name: "balance".into(),
            },
        )
        .unwrap();
        assert!(
            generated
                .expand_up
                .contains("ADD COLUMN \"balance\" integer;")
        );
        assert!(
            generated
                .expand_up
                .contains("NEW.\"balance\" := NEW.\"abalance\";")
        );
        assert!(generated.contract_up.contains("SET DEFAULT 0;"));
    }

    #[test]
    fn refuses_keys() {
        let mut facts = facts();
        facts.in_primary_key = true;
        assert!(
            generate(
                &facts,
                &Change::Rename {
                    new_name: "x".into()
                }
            )
            .unwrap_err()
            .contains("primary key")
        );
        let facts = self::facts();
        assert!(
            generate(
                &facts,
                &Change::Rename {
                    new_name: "abalance".into()
                }
            )
            .unwrap_err()
            .contains("another name")
        );
    }
}
