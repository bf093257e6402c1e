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

/// How much SQL text goes to the parser in one call: enough statements (a hundred or two) that
/// the call's fixed cost is shared, little enough that the protobuf encoding of the trees and its
/// decoding stay in the processor's cache. On `bench/lint.sh`'s corpus (10, 100 and 1,000
/// files), 16 KiB chunks with 128 KiB of files parsed ahead per worker used 14–27% less CPU time
/// than 128 KiB chunks with 1 MiB ahead.
const CHUNK_BYTES: usize = 16 << 10;

/// A section larger than this is not parsed whole: its trees are made a chunk at a time on a
/// thread of their own, a few chunks ahead of the linter, so a large file (a data seed of 50,000
/// INSERTs) never has every tree in memory at once. Smaller sections, the usual migration, are
/// parsed whole on a worker thread.
const PARSE_AHEAD_BYTES: usize = 512 << 10;

/// One statement's tree: `Ok(None)` for a statement with no tree (only comments).
pub type ParsedStatement = Result<Option<NodeEnum>, ParseFailure>;

/// Parses the statements of a section. Statements go to the parser in chunks of [`CHUNK_BYTES`]
/// (one round trip through libpg_query's protobuf encoding per chunk instead of one per
/// statement, while the parser's memory per call stays small: a whole large file in one call
/// builds trees of hundreds of megabytes in fresh memory); when a chunk fails, or does not
/// yield the statements the splitter found, each of its statements is parsed on its own so a
/// syntax error is located and does not hide the others.
pub fn parse_section(statements: &[safeshift_source::Statement]) -> Vec<ParsedStatement> {
    let sql: Vec<&str> = statements.iter().map(|s| s.sql.as_str()).collect();
    let mut parsed = Vec::with_capacity(statements.len());
    let mut start = 0;
    while start < sql.len() {
        start = parse_chunk(&sql, start, &mut parsed);
    }
    parsed
}

/// Parses one chunk of `sql` from `start` into `parsed`; returns where the next chunk starts.
fn parse_chunk<S: AsRef<str>>(
    sql: &[S],
    start: usize,
    parsed: &mut impl Extend<ParsedStatement>,
) -> usize {
    let mut end = start;
    let mut text = String::new();
    while end < sql.len() && (end == start || text.len() < CHUNK_BYTES) {
        text.push_str(sql[end].as_ref());
        // The newline ends a trailing `--` comment, which would hide the semicolon.
        text.push_str("\n;\n");
        end += 1;
    }
    match trees(&text) {
        Some(tree) if tree.stmts.len() == end - start => parsed.extend(
            tree.stmts
                .into_iter()
                .map(|raw| Ok(raw.stmt.and_then(|stmt| stmt.node))),
        ),
        _ => parsed.extend(sql[start..end].iter().map(|s| parse_statement(s.as_ref()))),
    }
    end
}

/// The trees of `sql`, or `None` when it does not parse (the caller then parses statement by
/// statement, which says where). libpg_query is called as `pg_query::parse` calls it, without
/// the summary `pg_query::parse` then builds of every tree (the tables, functions, aliases and
/// filter columns, in hash sets of new strings), which the linter never reads: on
/// `bench/lint.sh`'s corpus that summary was a twentieth of the parsing time.
fn trees(sql: &str) -> Option<pg_query::protobuf::ParseResult> {
    use prost::Message;
    use std::ffi::{c_char, c_int};

    /// `PgQueryProtobuf` in libpg_query's `pg_query.h`.
    #[repr(C)]
    struct Protobuf {
        len: usize,
        data: *mut c_char,
    }
    /// `PgQueryProtobufParseResult` in `pg_query.h`; `error` is a `PgQueryError*`, only tested
    /// for null here.
    #[repr(C)]
    struct ProtobufParseResult {
        parse_tree: Protobuf,
        stderr_buffer: *mut c_char,
        error: *mut std::ffi::c_void,
    }
    unsafe extern "C" {
        fn pg_query_parse_protobuf_opts(
            input: *const c_char,
            options: c_int,
        ) -> ProtobufParseResult;
        fn pg_query_free_protobuf_parse_result(result: ProtobufParseResult);
    }

    let input = std::ffi::CString::new(sql).ok()?;
    // SAFETY: the same calls `pg_query::parse` makes, on the library the `pg_query` crate links:
    // a NUL-terminated input, the default options, and the result freed once, after its bytes
    // are decoded into owned trees.
    unsafe {
        let options = pg_query::ParserOptions::default().bits();
        let result = pg_query_parse_protobuf_opts(input.as_ptr(), options);
        let trees = if result.error.is_null() {
            let bytes = std::slice::from_raw_parts(
                result.parse_tree.data as *const u8,
                result.parse_tree.len,
            );
            pg_query::protobuf::ParseResult::decode(bytes).ok()
        } else {
            None
        };
        pg_query_free_protobuf_parse_result(result);
        trees
    }
}

/// How many parsed chunks of a large section may wait for the linter: enough that the parser
/// thread is rarely idle, few enough that a large file's trees never pile up in memory.
const STREAMED_CHUNKS_AHEAD: usize = 8;

/// The trees of a section's statements, in order: parsed ahead, or parsed a chunk at a time on
/// a thread of their own, at most [`STREAMED_CHUNKS_AHEAD`] chunks ahead of the linter (see
/// [`PARSE_AHEAD_BYTES`]).
pub(crate) enum SectionTrees {
    Ahead(std::vec::IntoIter<ParsedStatement>),
    Streamed {
        chunks: Chunks,
        ready: std::vec::IntoIter<ParsedStatement>,
    },
}

/// Where a streamed section's chunks come from.
pub(crate) enum Chunks {
    /// A parser thread, sending chunks through `trees`; `parser` is joined once it has finished.
    Thread {
        trees: std::sync::mpsc::Receiver<Vec<ParsedStatement>>,
        parser: Option<std::thread::JoinHandle<()>>,
    },
    /// No thread could be started: the chunks are parsed here, as they are taken.
    Here { sql: Vec<String>, next: usize },
}

impl SectionTrees {
    /// The trees of `sql`, parsed a chunk at a time on a thread of their own.
    pub(crate) fn streamed(sql: Vec<String>) -> SectionTrees {
        let (sender, trees) = std::sync::mpsc::sync_channel(STREAMED_CHUNKS_AHEAD);
        let shared = std::sync::Arc::new(sql);
        let for_parser = std::sync::Arc::clone(&shared);
        let parser = std::thread::Builder::new()
            .name("safeshift-parse".into())
            .spawn(move || {
                crate::ahead::yield_to_the_consumer();
                let sql = for_parser;
                let mut start = 0;
                while start < sql.len() {
                    let mut chunk = Vec::new();
                    start = parse_chunk(sql.as_slice(), start, &mut chunk);
                    if sender.send(chunk).is_err() {
                        // The linter stopped taking trees.
                        return;
                    }
                }
            });
        let chunks = match parser {
            Ok(parser) => Chunks::Thread {
                trees,
                parser: Some(parser),
            },
            // The closure (and its reference to the text) is dropped with the failed spawn.
            Err(_) => Chunks::Here {
                sql: std::sync::Arc::try_unwrap(shared).unwrap_or_else(|sql| (*sql).clone()),
                next: 0,
            },
        };
        SectionTrees::Streamed {
            chunks,
            ready: Vec::new().into_iter(),
        }
    }
}

impl Iterator for SectionTrees {
    type Item = ParsedStatement;

    fn next(&mut self) -> Option<ParsedStatement> {
        match self {
            SectionTrees::Ahead(trees) => trees.next(),
            SectionTrees::Streamed { chunks, ready } => loop {
                if let Some(tree) = ready.next() {
                    return Some(tree);
                }
                *ready = chunks.next_chunk()?.into_iter();
            },
        }
    }
}

impl Chunks {
    fn next_chunk(&mut self) -> Option<Vec<ParsedStatement>> {
        match self {
            Chunks::Thread { trees, parser } => match trees.recv() {
                Ok(chunk) => Some(chunk),
                Err(_) => {
                    // The parser has finished, or panicked: its panic is the caller's.
                    if let Some(Err(panic)) = parser.take().map(std::thread::JoinHandle::join) {
                        std::panic::resume_unwind(panic);
                    }
                    None
                }
            },
            Chunks::Here { sql, next } => {
                if *next >= sql.len() {
                    return None;
                }
                let mut chunk = Vec::new();
                *next = parse_chunk(sql, *next, &mut chunk);
                Some(chunk)
            }
        }
    }
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
/// history is followed in order. A large section is only split here, and parsed as it is linted.
/// Statements' transactionality is known once their tree is: the linter sets it as it goes.
pub(crate) struct ParsedSection {
    pub statements: Result<Vec<Statement>, safeshift_source::SourceError>,
    pub parsed: SectionTrees,
}

impl ParsedSection {
    pub(crate) fn of(section: &Section) -> ParsedSection {
        match section.statements_unclassified(Dialect::Postgres) {
            Ok(statements) => {
                let parsed = if section.sql().len() > PARSE_AHEAD_BYTES {
                    SectionTrees::streamed(statements.iter().map(|s| s.sql.clone()).collect())
                } else {
                    SectionTrees::Ahead(parse_section(&statements).into_iter())
                };
                ParsedSection {
                    statements: Ok(statements),
                    parsed,
                }
            }
            Err(error) => ParsedSection {
                statements: Err(error),
                parsed: SectionTrees::Ahead(Vec::new().into_iter()),
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
    fn a_large_section_is_parsed_as_it_is_taken_with_the_same_trees() {
        let sql: Vec<String> = (0..4_000)
            .map(|i| format!("INSERT INTO t VALUES ({i}, 'a row of text') -- trailing comment"))
            .collect();
        let mut ahead = Vec::new();
        let mut start = 0;
        while start < sql.len() {
            start = parse_chunk(&sql, start, &mut ahead);
        }
        let streamed: Vec<_> = SectionTrees::streamed(sql.clone()).collect();
        assert_eq!(streamed.len(), sql.len());
        assert_eq!(ahead, streamed);
        // Parsed here when no thread can be started: the same trees.
        let here: Vec<_> = SectionTrees::Streamed {
            chunks: Chunks::Here { sql, next: 0 },
            ready: Vec::new().into_iter(),
        }
        .collect();
        assert_eq!(ahead, here);
    }

    #[test]
    fn a_streamed_section_stays_a_few_chunks_ahead_of_the_linter() {
        let sql: Vec<String> = (0..40_000)
            .map(|i| format!("INSERT INTO t VALUES ({i}, 'a row of text')"))
            .collect();
        let mut streamed = SectionTrees::streamed(sql.clone());
        assert!(matches!(
            streamed.next(),
            Some(Ok(Some(NodeEnum::InsertStmt(_))))
        ));
        // Give the parser time to run as far ahead as it may.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let SectionTrees::Streamed {
            chunks: Chunks::Thread { trees, .. },
            ready,
        } = &streamed
        else {
            panic!("a thread parses a streamed section");
        };
        let waiting: usize = ready.len() + trees.try_iter().map(|chunk| chunk.len()).sum::<usize>();
        assert!(
            waiting < sql.len() / 2,
            "{waiting} of {} statements parsed ahead of the linter",
            sql.len()
        );
    }

    #[test]
    fn parses_good_statements() {
        assert!(matches!(
            parse_statement("SELECT 1"),
            Ok(Some(NodeEnum::SelectStmt(_)))
        ));
    }
}
