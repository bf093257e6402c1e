//! Baselines of databases that were migrated by hand (or by a tool whose migrations are code):
//! the live schema captured as a first migration, and the proof, on a throwaway server of the
//! same major version, that migrations rebuild that schema from an empty database.

use std::time::Instant;

use serde::Serialize;

use safeshift_driver::DatabaseUrl;
use safeshift_source::Section;

use crate::apply::{milliseconds, run_section};
use crate::connection::{Connection, literal, text};
use crate::error::RehearseError;
use crate::production;
use crate::report::{ServerReport, StatementFailure};
use crate::scratch::{APPLICATION_NAME, Scratch, ServerChoice};
use crate::snapshot::{SchemaDiff, Snapshot, SnapshotScope, diff};

/// A database's schema as a migration body.
#[derive(Debug, Clone, Serialize)]
pub struct CapturedSchema {
    /// The SQL of the migration's up section.
    pub sql: String,
    /// The `pg_dump` that dumped it.
    pub pg_dump: String,
    /// The server's version.
    pub server_version: String,
}

/// Dumps the schema of `url` with the `pg_dump` of its server's major version, without the
/// given schemas, the given tables (`(schema, table)`) and the sequences they own, owners and
/// grants, as the body of a migration that runs in one transaction.
pub fn capture_schema(
    url: &DatabaseUrl,
    excluded_schemas: &[String],
    excluded_tables: &[(String, String)],
) -> Result<CapturedSchema, RehearseError> {
    let mut source = Connection::open(url, APPLICATION_NAME)?;
    let major = source.server_version_number() / 10000;
    let pg_dump = safeshift_pgserver::find_client_program("pg_dump", major, None)?;
    let mut excluded = Vec::new();
    for (schema, table) in excluded_tables {
        excluded.push((schema.clone(), table.clone()));
        // pg_dump leaves a serial column's sequence in the dump when its table is excluded.
        let owned = source.rows(
            "sequences owned by excluded tables",
            &format!(
                "SELECT n.nspname, s.relname FROM pg_depend d \
                 JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
                 JOIN pg_namespace n ON n.oid = s.relnamespace \
                 JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace \
                 WHERE d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
                   AND tn.nspname = {} AND t.relname = {}",
                literal(schema),
                literal(table)
            ),
        )?;
        excluded.extend(owned.iter().map(|row| (text(row, 0), text(row, 1))));
    }
    let patterns: Vec<String> = excluded
        .iter()
        .map(|(schema, name)| {
            let quote = |part: &str| format!("\"{}\"", part.replace('"', "\"\""));
            format!("{}.{}", quote(schema), quote(name))
        })
        .collect();
    let dump = production::dump_schema(&pg_dump, url, excluded_schemas, &patterns, true)?;
    Ok(CapturedSchema {
        sql: migration_body(&dump),
        pg_dump: pg_dump.display().to_string(),
        server_version: source.server_version().to_owned(),
    })
}

/// A schema dump as a migration body. The dump's session settings would outlive the
/// migration's transaction, so they become `SET LOCAL`; its own timeouts are left out, so the
/// migration runs under safeshift's.
pub fn migration_body(dump: &str) -> String {
    let mut lines = Vec::new();
    for line in dump.lines() {
        if let Some(setting) = line.strip_prefix("SET ") {
            let name = setting.split([' ', '=']).next().unwrap_or("");
            if matches!(
                name,
                "statement_timeout"
                    | "lock_timeout"
                    | "idle_in_transaction_session_timeout"
                    | "transaction_timeout"
            ) {
                continue;
            }
            lines.push(format!("SET LOCAL {setting}"));
        } else if let Some(call) = line.strip_prefix("SELECT pg_catalog.set_config(")
            && let Some(arguments) = call.strip_suffix(", false);")
        {
            lines.push(format!("SELECT pg_catalog.set_config({arguments}, true);"));
        } else {
            lines.push(line.to_owned());
        }
    }
    let body = lines.join("\n");
    format!("{}\n", body.trim())
}

/// Whether migrations rebuilt the live schema.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineProof {
    pub server: ServerReport,
    /// The statement that failed, and its file, if one did.
    pub failure: Option<(String, StatementFailure)>,
    /// How the rebuilt schema differs from the live one (owners and grants aside).
    pub differences: SchemaDiff,
    pub ms: f64,
}

impl BaselineProof {
    pub fn proven(&self) -> bool {
        self.failure.is_none() && self.differences.differences.is_empty()
    }
}

/// Runs `sections` in order on an empty database of a server like `server` chooses (for a
/// throwaway one, of the live server's major version) and compares the schema they build with
/// the live database's at `url`, owners and grants aside, without the history schemas of
/// `scope` and the tables `excluded_tables` (`schema.table`).
pub fn prove_rebuild(
    url: &DatabaseUrl,
    sections: &[&Section],
    server: &ServerChoice,
    scope: &SnapshotScope,
    excluded_tables: &[String],
) -> Result<BaselineProof, RehearseError> {
    let started = Instant::now();
    let mut live = Connection::open(url, APPLICATION_NAME)?;
    let expected = Snapshot::capture(&mut live, scope)?
        .without_tables(excluded_tables)
        .without_ownership();
    let server = match server {
        ServerChoice::Throwaway {
            preferred_major: None,
        } => ServerChoice::Throwaway {
            preferred_major: Some(live.server_version_number() / 10000),
        },
        other => other.clone(),
    };
    let scratch = Scratch::start(&server)?;
    let outcome = (|| -> Result<BaselineProof, RehearseError> {
        let mut connection = Connection::open(scratch.url(), APPLICATION_NAME)?;
        if scratch.is_throwaway() {
            production::create_missing_roles(&mut connection, &production::roles(&mut live)?)?;
        }
        let mut failure = None;
        for section in sections {
            if let Err(error) = run_section(&mut connection, section)? {
                failure = Some((section.relative_path.display().to_string(), error));
                break;
            }
        }
        let rebuilt = Snapshot::capture(&mut connection, scope)?.without_ownership();
        Ok(BaselineProof {
            server: scratch.report().clone(),
            failure,
            differences: diff(&expected, &rebuilt),
            ms: milliseconds(started),
        })
    })();
    scratch.finish();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_settings_stay_in_the_transaction() {
        let body = migration_body(
            "--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET lock_timeout = 0;\nSET client_encoding = 'UTF8';\nSELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n\nCREATE TABLE public.users (id integer);\n",
        );
        assert!(!body.contains("statement_timeout"));
        assert!(body.contains("SET LOCAL client_encoding = 'UTF8';"));
        assert!(body.contains("SET LOCAL check_function_bodies = false;"));
        assert!(body.contains("SELECT pg_catalog.set_config('search_path', '', true);"));
        assert!(body.contains("CREATE TABLE public.users (id integer);"));
    }
}
