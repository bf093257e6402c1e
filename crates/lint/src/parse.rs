//! Parsing one statement with the PostgreSQL grammar, and finding where a syntax error is:
//! libpg_query knows the cursor position, but `pg_query`'s error carries only the message.

use pg_query::NodeEnum;
use pg_query::protobuf::Token;
use safeshift_source::{Dialect, Section, Statement};

/// A statement the grammar rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub message: String,
    /// Byte offset of the offending token in the statement text.
    pub offset: usize,
}

/// How much SQL text goes to the parser in one call.
const CHUNK_BYTES: usize = 128 << 10;

/// Parses the statements of a section. Statements go to the parser in chunks of about a hundred
/// kilobytes (one round trip through libpg_query's protobuf encoding per chunk instead of one
/// per statement, while the parser's memory per call stays small: a whole large file in one
/// call builds trees of hundreds of megabytes in fresh memory); when a chunk fails, or does not
/// yield the statements the splitter found, each of its statements is parsed on its own so a
/// syntax error is located and does not hide the others.
pub fn parse_section(
    statements: &[safeshift_source::Statement],
) -> Vec<Result<Option<NodeEnum>, ParseFailure>> {
    let mut parsed = Vec::with_capacity(statements.len());
    let mut start = 0;
    while start < statements.len() {
        let mut end = start;
        let mut text = String::new();
        while end < statements.len() && (end == start || text.len() < CHUNK_BYTES) {
            text.push_str(&statements[end].sql);
            // The newline ends a trailing `--` comment, which would hide the semicolon.
            text.push_str("\n;\n");
            end += 1;
        }
        let chunk = &statements[start..end];
        match pg_query::parse(&text, pg_query::ParserOptions::default()) {
            Ok(tree) if tree.protobuf.stmts.len() == chunk.len() => parsed.extend(
                tree.protobuf
                    .stmts
                    .into_iter()
                    .map(|raw| Ok(raw.stmt.and_then(|stmt| stmt.node))),
            ),
            _ => parsed.extend(
                chunk
                    .iter()
                    .map(|statement| parse_statement(&statement.sql)),
            ),
        }
        start = end;
    }
    parsed
}

/// Parses one statement. `Ok(None)` for a statement with no syntax tree (only comments).
pub fn parse_statement(sql: &str) -> Result<Option<NodeEnum>, ParseFailure> {
    match pg_query::parse(sql, pg_query::ParserOptions::default()) {
        Ok(parsed) => Ok(parsed
            .protobuf
            .stmts
            .into_iter()
            .next()
            .and_then(|raw| raw.stmt)
            .and_then(|stmt| stmt.node)),
        Err(error) => {
            let message = match error {
                pg_query::Error::Parse(message) => message,
                other => other.to_string(),
            };
            let offset = locate(sql, &message);
            Err(ParseFailure { message, offset })
        }
    }
}

/// Finds the token a parse error is about. PostgreSQL says `syntax error at or near "X"` for the
/// token it could not accept, or `at end of input`. The grammar rejects a token regardless of
/// what follows it, so of the tokens spelled `X`, the offending one is the first whose prefix
/// (the text up to and including it) fails with the same message.
fn locate(sql: &str, message: &str) -> usize {
    if message.contains("at end of input") {
        return sql.trim_end().len();
    }
    let Some(fragment) = near_fragment(message) else {
        return 0;
    };
    let Ok(tokens) = safeshift_source::scan_tokens(sql) else {
        return sql.find(fragment).unwrap_or(0);
    };
    let candidates: Vec<(usize, usize)> = tokens
        .iter()
        .filter(|token| !matches!(token.token(), Token::SqlComment | Token::CComment))
        .map(|token| (token.start as usize, token.end as usize))
        .filter(|&(start, end)| {
            sql.get(start..end)
                .is_some_and(|text| text.eq_ignore_ascii_case(fragment))
        })
        .collect();
    for &(start, end) in &candidates {
        if let Err(pg_query::Error::Parse(prefix_message)) =
            pg_query::parse(&sql[..end], pg_query::ParserOptions::default())
            && prefix_message == message
        {
            return start;
        }
    }
    candidates
        .first()
        .map_or_else(|| sql.find(fragment).unwrap_or(0), |&(start, _)| start)
}

fn near_fragment(message: &str) -> Option<&str> {
    let start = message.find("at or near \"")? + "at or near \"".len();
    let rest = &message[start..];
    let end = rest.rfind('"')?;
    Some(&rest[..end])
}

/// A section split into statements and parsed with the PostgreSQL grammar: the part of linting
/// that needs no history, so [`crate::Linter`] runs it ahead on other threads while the
/// history is followed in order.
pub(crate) struct ParsedSection {
    pub statements: Result<Vec<Statement>, safeshift_source::SourceError>,
    pub parsed: Vec<Result<Option<NodeEnum>, ParseFailure>>,
}

impl ParsedSection {
    pub(crate) fn of(section: &Section) -> ParsedSection {
        match section.statements_unclassified(Dialect::Postgres) {
            Ok(mut statements) => {
                let parsed = parse_section(&statements);
                for (statement, node) in statements.iter_mut().zip(&parsed) {
                    if let Ok(Some(node)) = node {
                        statement.transactionality = safeshift_source::transactionality_of(node);
                    }
                }
                ParsedSection {
                    statements: Ok(statements),
                    parsed,
                }
            }
            Err(error) => ParsedSection {
                statements: Err(error),
                parsed: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_at(sql: &str) -> (String, usize) {
        let failure = parse_statement(sql).unwrap_err();
        (failure.message, failure.offset)
    }

    #[test]
    fn finds_the_offending_token_among_equal_ones() {
        let sql = "SELECT a, b FROM t WHERE a = 1 b";
        let (message, offset) = error_at(sql);
        assert!(message.contains("\"b\""), "{message}");
        assert_eq!(offset, sql.rfind('b').unwrap());
    }

    #[test]
    fn finds_a_misspelled_keyword() {
        let sql = "ALTER TABLE users ADD COLUMN email text NOT NUL";
        let (_, offset) = error_at(sql);
        assert_eq!(&sql[offset..], "NUL");
    }

    #[test]
    fn end_of_input_is_the_end() {
        let sql = "CREATE TABLE t (id int";
        let (message, offset) = error_at(sql);
        assert!(message.contains("end of input"), "{message}");
        assert_eq!(offset, sql.len());
    }

    #[test]
    fn parses_good_statements() {
        assert!(matches!(
            parse_statement("SELECT 1"),
            Ok(Some(NodeEnum::SelectStmt(_)))
        ));
    }
}
