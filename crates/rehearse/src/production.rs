//! `--from-database`: the real database's schema (`pg_dump --schema-only`, by the `pg_dump` of
//! its major version), its roles (names only) and its table sizes. Never its data.

use std::path::Path;
use std::process::Command;

use safeshift_driver::DatabaseUrl;

use crate::connection::{Connection, identifier, literal, text};
use crate::error::RehearseError;

/// Dumps the schema of `source` with `pg_dump` and loads it into `target`. `portable` leaves
/// out owners and grants (for a scratch server whose roles differ).
pub fn copy_schema(
    pg_dump: &Path,
    source: &DatabaseUrl,
    target: &mut Connection,
    excluded_schemas: &[String],
    portable: bool,
) -> Result<(), RehearseError> {
    let sql = dump_schema(pg_dump, source, excluded_schemas, &[], portable)?;
    target
        .execute(&sql)
        .map_err(|error| RehearseError::SchemaCopy {
            source_url: source.redacted().to_owned(),
            message: format!("loading the dump: {}", error.message),
        })
}

/// The schema of `source` as `pg_dump --schema-only` writes it (psql meta-commands left out),
/// without the given schemas and tables (`schema.table`). `portable` leaves out owners and
/// grants.
pub fn dump_schema(
    pg_dump: &Path,
    source: &DatabaseUrl,
    excluded_schemas: &[String],
    excluded_tables: &[String],
    portable: bool,
) -> Result<String, RehearseError> {
    let failed = |message: String| RehearseError::SchemaCopy {
        source_url: source.redacted().to_owned(),
        message,
    };
    let (url, password) = split_password(source.expose_secret());
    let mut command = Command::new(pg_dump);
    command
        .args(["--schema-only", "--no-publications", "--no-subscriptions"])
        .arg("--dbname")
        .arg(&url);
    for schema in excluded_schemas {
        command.arg(format!("--exclude-schema={schema}"));
    }
    for table in excluded_tables {
        command.arg(format!("--exclude-table={table}"));
    }
    if portable {
        command.args(["--no-owner", "--no-privileges"]);
    }
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command
        .output()
        .map_err(|error| failed(format!("running {}: {error}", pg_dump.display())))?;
    if !output.status.success() {
        return Err(failed(format!(
            "{} exited with {}: {}",
            pg_dump.display(),
            output.status,
            safeshift_driver::redact(String::from_utf8_lossy(&output.stderr).trim())
        )));
    }
    let dump = String::from_utf8_lossy(&output.stdout);
    // pg_dump writes psql meta-commands around the dump (`\restrict KEY` since 17.6/16.10/15.14);
    // they mean nothing to the server.
    Ok(dump
        .lines()
        .filter(|line| !line.starts_with("\\restrict ") && !line.starts_with("\\unrestrict "))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The roles of the real database's server, other than PostgreSQL's own.
pub fn roles(source: &mut Connection) -> Result<Vec<String>, RehearseError> {
    Ok(source
        .rows(
            "roles",
            "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname",
        )?
        .iter()
        .map(|row| text(row, 0))
        .collect())
}

/// Creates the roles missing on the target's server, without login or privileges, so owners and
/// grants in the dump and in migrations resolve.
pub fn create_missing_roles(
    target: &mut Connection,
    roles: &[String],
) -> Result<(), RehearseError> {
    for role in roles {
        let sql = format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {}) THEN CREATE ROLE {} NOLOGIN; END IF; END $$",
            literal(role),
            identifier(role)
        );
        target
            .execute(&sql)
            .map_err(|error| RehearseError::database(format!("creating role {role}"), error))?;
    }
    Ok(())
}

/// A URL without its password, and the password (percent-decoded), so the password travels in
/// `PGPASSWORD` rather than on a command line others can read.
fn split_password(url: &str) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://").map(|p| p + 3) else {
        return (url.to_owned(), None);
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |p| scheme_end + p);
    let authority = &url[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return (url.to_owned(), None);
    };
    let user_info = &authority[..at];
    let Some((user, password)) = user_info.split_once(':') else {
        return (url.to_owned(), None);
    };
    let without = format!(
        "{}{user}{}{}",
        &url[..scheme_end],
        &authority[at..],
        &url[authority_end..]
    );
    (without, Some(percent_decode(password)))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(value) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            decoded.push(value);
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_taken_out_of_the_url() {
        assert_eq!(
            split_password("postgres://app:s%40cret@db:5432/shop?sslmode=require"),
            (
                "postgres://app@db:5432/shop?sslmode=require".to_owned(),
                Some("s@cret".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://app@db/shop"),
            ("postgres://app@db/shop".to_owned(), None)
        );
    }
}
