//! Names longer than PostgreSQL's 63-byte limit, which it truncates silently.

use pg_query::NodeEnum;
use pg_query::protobuf::Token;

use super::{Rule, Violation};
use crate::context::StatementContext;

pub(crate) struct Check;

/// PostgreSQL's `NAMEDATALEN - 1`.
const MAX_IDENTIFIER_BYTES: usize = 63;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        if !matches!(
            context.node,
            NodeEnum::CreateStmt(_)
                | NodeEnum::AlterTableStmt(_)
                | NodeEnum::IndexStmt(_)
                | NodeEnum::RenameStmt(_)
                | NodeEnum::ViewStmt(_)
                | NodeEnum::CreateTableAsStmt(_)
                | NodeEnum::CreateSeqStmt(_)
                | NodeEnum::CreateTrigStmt(_)
        ) {
            return;
        }
        if !has_long_word(context.sql) {
            return;
        }
        // The parser has already truncated the names in the tree, so look at the tokens.
        let Ok(tokens) = safeshift_source::scan_tokens(context.sql) else {
            return;
        };
        let mut seen: Vec<&str> = Vec::new();
        for token in tokens.iter().filter(|t| t.token() == Token::Ident) {
            let Some(text) = context.sql.get(token.start as usize..token.end as usize) else {
                continue;
            };
            let name = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(text);
            if name.len() <= MAX_IDENTIFIER_BYTES || seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let kept = truncate(name);
            violations.push(
                Violation::new(format!(
                    "`{name}` is {} bytes long; PostgreSQL silently keeps only the first 63 (`{kept}`), so later statements naming it in full miss it",
                    name.len()
                ))
                .alternative(format!("-- choose a name of at most 63 bytes, e.g. `{kept}`")),
            );
        }
    }
}

/// Whether the text holds a run of more than 63 bytes that could be an identifier: a cheap test
/// that spares scanning almost every statement.
fn has_long_word(sql: &str) -> bool {
    let mut run = 0;
    for byte in sql.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80 {
            run += 1;
            if run > MAX_IDENTIFIER_BYTES {
                return true;
            }
        } else if byte != b'"' {
            run = 0;
        }
    }
    false
}

fn truncate(name: &str) -> &str {
    let mut end = MAX_IDENTIFIER_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, none, one};

    #[test]
    fn flags_long_names() {
        let long = "a".repeat(70);
        let finding = one(
            "identifier-too-long",
            "",
            &format!("CREATE TABLE {long} (id bigint)"),
        );
        assert!(finding.message.contains("70 bytes"));
        let found = findings_with(
            "identifier-too-long",
            "CREATE TABLE t (id bigint);",
            &format!("CREATE INDEX CONCURRENTLY \"{long}\" ON t (id)"),
            ExampleMode::MigrationWithoutTransaction,
            PgVersion::DEFAULT,
        );
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn passes_names_within_the_limit() {
        none(
            "identifier-too-long",
            "",
            &format!("CREATE TABLE {} (id bigint)", "a".repeat(63)),
        );
    }
}
