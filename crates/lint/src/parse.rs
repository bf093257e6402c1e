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
/// (one call into libpg_query and one protobuf decoding per chunk instead of one per
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
/// statement, which says where). libpg_query parses, and `csrc/trees.c` writes the trees in the
/// protobuf encoding `pg_query::parse` decodes, straight from the parse nodes: libpg_query's own
/// encoder (upb) spent a fifth of `lint`'s CPU time visiting every member of the 271-member
/// `Node` oneof for every node. Nor is there the summary `pg_query::parse` builds of every tree
/// (the tables, functions, aliases and filter columns), which the linter never reads.
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
        /// `csrc/trees.c`: `pg_query_parse_protobuf_opts` with the trees written directly.
        fn safeshift_parse_protobuf(input: *const c_char, options: c_int) -> ProtobufParseResult;
        fn pg_query_free_protobuf_parse_result(result: ProtobufParseResult);
    }

    let input = std::ffi::CString::new(sql).ok()?;
    // SAFETY: the calls `pg_query::parse` makes, with libpg_query's parse entry point replaced
    // by `csrc/trees.c`'s, which returns the same struct from the same allocator: a
    // NUL-terminated input, the default options, and the result freed once, after its bytes are
    // decoded into owned trees.
    unsafe {
        let options = pg_query::ParserOptions::default().bits();
        let result = safeshift_parse_protobuf(input.as_ptr(), options);
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

    /// The trees `csrc/trees.c` writes decode to the trees libpg_query's own encoder writes
    /// (`pg_query::parse`), statement by statement and a file at a time, on every statement at
    /// hand: the repository's SQL files, its rules' examples, PostgreSQL's own SQL files (the
    /// catalog views, the information schema, the contrib extensions' scripts: thousands
    /// of statements of every kind) and statements chosen for the field kinds the encoding has.
    #[test]
    fn the_trees_are_the_trees_libpg_querys_encoder_writes() {
        let mut texts = chosen_statements();
        texts.extend(repository_sql());
        texts.extend(postgres_sql());
        let (mut statements, mut trees_compared) = (0, 0);
        for (name, text) in &texts {
            let mut pieces = vec![text.clone()];
            if let Ok(split) = pg_query::split_with_scanner(text) {
                pieces.extend(split.iter().map(|s| s.to_string()));
            }
            for sql in &pieces {
                let expected = pg_query::parse(sql, pg_query::ParserOptions::default())
                    .ok()
                    .map(|result| result.protobuf);
                let actual = trees(sql);
                assert!(
                    expected == actual,
                    "{name}: the trees differ for\n{sql}\nlibpg_query: {expected:?}\ntrees.c: {actual:?}"
                );
                statements += 1;
                trees_compared += usize::from(actual.is_some());
            }
        }
        // 4,522 of 4,562 texts parse with PostgreSQL 15's files (the rest are psql variables).
        assert!(
            trees_compared > 4_000,
            "only {trees_compared} of {statements} texts parsed: the corpus is missing"
        );
    }

    /// A tree nested past prost's recursion limit, and one past the parser's own stack,
    /// fail the same way on both paths (no tree; the statement is then parsed alone, which says
    /// why), and neither takes the process down.
    #[test]
    fn deep_trees_fail_as_libpg_querys_do() {
        for depth in [50, 150, 1_000, 100_000] {
            let sql = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
            let expected = pg_query::parse(&sql, pg_query::ParserOptions::default())
                .ok()
                .map(|result| result.protobuf);
            assert_eq!(trees(&sql), expected, "depth {depth}");
        }
        let deepest = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
        let failure = parse_statement(&deepest).unwrap_err();
        assert!(
            failure.message.contains("memory exhausted"),
            "{}",
            failure.message
        );
    }

    /// Statements for the encoding's field kinds: negative numbers (the -1 location of an
    /// implicit node), one-character fields, NULL, boolean, bit-string and float constants,
    /// empty strings, NULL list cells, and the newest grammar (JSON_TABLE, MERGE … RETURNING).
    fn chosen_statements() -> Vec<(String, String)> {
        [
            "SELECT NULL, true, false, B'1010', X'1F', 1.5, -2147483648, 9223372036854775807, '', 'é'",
            "SELECT -1, -1.5e-10, 1e400, '2024-01-01'::date, interval '1 day', ARRAY[1, NULL, 3]",
            "CREATE UNLOGGED TABLE u (id int); CREATE TEMP TABLE t (id int) ON COMMIT DROP",
            "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (a, b) REFERENCES c (x, y) MATCH FULL ON DELETE SET NULL (a) ON UPDATE CASCADE NOT VALID",
            "CREATE TABLE p (id bigint GENERATED ALWAYS AS IDENTITY (START 10 INCREMENT -1), d numeric(10, 2) DEFAULT 0 CHECK (d >= 0) NO INHERIT, g text GENERATED ALWAYS AS (lower(n)) STORED, n text COLLATE \"C\") PARTITION BY RANGE (id)",
            "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (MINVALUE) TO (100); ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t USING btree (lower(a) DESC NULLS LAST, b text_pattern_ops) INCLUDE (c) WITH (fillfactor = 70) WHERE d IS NOT NULL",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SEARCH DEPTH FIRST BY n SET ord SELECT * FROM r",
            "SELECT a, sum(b) FILTER (WHERE c) OVER (PARTITION BY d ORDER BY e ROWS BETWEEN 1 PRECEDING AND CURRENT ROW EXCLUDE TIES) FROM t GROUP BY GROUPING SETS ((a), ROLLUP (b, c), CUBE (d)) HAVING count(*) > 1 ORDER BY 1 USING < LIMIT ALL OFFSET 2 FOR UPDATE OF t SKIP LOCKED",
            "SELECT * FROM JSON_TABLE(jsonb '[1]', '$[*]' AS p COLUMNS (id FOR ORDINALITY, v int PATH '$' DEFAULT 0 ON EMPTY, NESTED PATH '$.x' COLUMNS (y text)))",
            "SELECT JSON_OBJECT('a': 1 RETURNING jsonb), JSON_ARRAYAGG(x ORDER BY x NULL ON NULL), x IS JSON OBJECT WITH UNIQUE KEYS, JSON_QUERY(j, '$.a' WITH WRAPPER), JSON_EXISTS(j, '$.b') FROM t",
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND s.x THEN UPDATE SET v = s.v WHEN NOT MATCHED BY SOURCE THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id, DEFAULT) RETURNING merge_action(), t.*",
            "INSERT INTO t (a, b) OVERRIDING SYSTEM VALUE VALUES (1, DEFAULT), (2, 3) ON CONFLICT (a) WHERE b > 0 DO UPDATE SET b = EXCLUDED.b WHERE t.b <> EXCLUDED.b RETURNING *",
            "UPDATE t SET (a, b) = (SELECT 1, 2), c[1] = 3, d.e = 4 FROM u WHERE CURRENT OF cur; DELETE FROM t USING u WHERE t.id = u.id",
            "CREATE FUNCTION f(a int DEFAULT 1, VARIADIC b text[] = '{}', OUT c int) RETURNS SETOF record LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 5 ROWS 10 SET search_path = pg_catalog AS $$ SELECT 1 $$",
            "CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1; END; CALL p(); DO $$ BEGIN NULL; END $$",
            "CREATE POLICY pol ON t AS RESTRICTIVE FOR UPDATE TO CURRENT_USER, PUBLIC USING (a = current_setting('x')::int) WITH CHECK (true)",
            "CREATE PUBLICATION pub FOR TABLE t (a, b) WHERE (a > 1), TABLES IN SCHEMA s WITH (publish = 'insert'); CREATE SUBSCRIPTION sub CONNECTION '' PUBLICATION pub",
            "GRANT SELECT (a), UPDATE ON ALL TABLES IN SCHEMA s TO r WITH GRANT OPTION GRANTED BY CURRENT_ROLE; REVOKE GRANT OPTION FOR ALL ON t FROM r CASCADE",
            "ALTER TABLE t ALTER COLUMN a TYPE bigint USING a::bigint, ALTER b SET NOT NULL, ALTER c DROP DEFAULT, ADD COLUMN IF NOT EXISTS d int[][3], DROP COLUMN e CASCADE, SET (autovacuum_enabled = off), SET LOGGED, REPLICA IDENTITY FULL",
            "CREATE TRIGGER tr AFTER INSERT OR UPDATE OF a ON t REFERENCING NEW TABLE AS n FOR EACH STATEMENT WHEN (true) EXECUTE FUNCTION f('x', 1)",
            "CREATE TYPE mood AS ENUM ('sad', 'ok'); ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy' BEFORE 'ok'; CREATE DOMAIN d AS int CONSTRAINT pos CHECK (VALUE > 0)",
            "COPY t (a) FROM STDIN WITH (FORMAT csv, HEADER MATCH, FORCE_NULL (a)); VACUUM (VERBOSE, ANALYZE) t (a); CLUSTER t USING i; REINDEX (CONCURRENTLY) TABLE t",
            "LOCK TABLE t IN SHARE ROW EXCLUSIVE MODE NOWAIT; TRUNCATE ONLY t, u RESTART IDENTITY CASCADE; SET LOCAL lock_timeout = '1s'; RESET ALL",
            "SELECT x FROM t TABLESAMPLE BERNOULLI (10) REPEATABLE (1), LATERAL unnest(ARRAY[1]) WITH ORDINALITY AS u(v, o) NATURAL FULL JOIN w USING (v) AS j",
            "SELECT CASE WHEN a THEN 1 ELSE NULL END, COALESCE(a, b), NULLIF(a, b), GREATEST(1, 2), a IS DISTINCT FROM b, a BETWEEN SYMMETRIC 1 AND 2, a SIMILAR TO 'x' ESCAPE '!', EXISTS (SELECT), a = ANY (SELECT 1), ROW(1, 2) < ROW(3, 4), CURRENT_TIMESTAMP(3), COLLATION FOR (a), a AT TIME ZONE 'UTC', t.* FROM t",
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT json) SELECT 1; PREPARE q(int) AS SELECT $1; EXECUTE q(1); DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT 1; FETCH BACKWARD 2 FROM c",
            "CREATE MATERIALIZED VIEW mv AS SELECT 1 WITH NO DATA; REFRESH MATERIALIZED VIEW CONCURRENTLY mv; CREATE OR REPLACE RECURSIVE VIEW v (n) AS SELECT 1",
            "CREATE STATISTICS st (dependencies, mcv) ON a, (b + 1) FROM t; ALTER SEQUENCE s RESTART WITH -5 CACHE 10 NO CYCLE OWNED BY t.a; COMMENT ON COLUMN t.a IS NULL",
            "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE; SAVEPOINT s; ROLLBACK TO SAVEPOINT s; COMMIT AND CHAIN; PREPARE TRANSACTION 'x'",
            "SELECT xmlelement(name foo, xmlattributes(1 AS bar), 'x'), xmlserialize(document x AS text INDENT), '{1,2}'::int[] @> ARRAY[1], (a).b, a[1:2], a[:], $1::text",
        ]
        .iter()
        .enumerate()
        .map(|(i, sql)| (format!("chosen statement {}", i + 1), sql.to_string()))
        .collect()
    }

    /// The repository's SQL files and its rules' examples.
    fn repository_sql() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut texts = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy();
                if path.is_dir() && name != "target" && !name.starts_with('.') {
                    dirs.push(path);
                } else if name.ends_with(".sql") {
                    texts.push((
                        path.display().to_string(),
                        std::fs::read_to_string(&path).unwrap(),
                    ));
                }
            }
        }
        let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        for entry in std::fs::read_dir(&rules).unwrap() {
            let path = entry.unwrap().path();
            let rule: toml::Table =
                toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            if let Some(examples) = rule.get("examples").and_then(|e| e.as_table()) {
                for (key, value) in examples {
                    if let Some(sql) = value.as_str() {
                        texts.push((format!("{} {key}", path.display()), sql.to_owned()));
                    }
                }
            }
        }
        assert!(
            texts.len() > 50,
            "the repository's SQL is missing: {}",
            texts.len()
        );
        texts
    }

    /// The SQL files of the PostgreSQL installation the tests run (`pg_config --sharedir`),
    /// without psql's backslash commands.
    fn postgres_sql() -> Vec<(String, String)> {
        let bin = safeshift_testkit::pg_bin_dir().expect("the tests' PostgreSQL is installed");
        let output = std::process::Command::new(bin.join("pg_config"))
            .arg("--sharedir")
            .output()
            .expect("pg_config runs");
        let share = std::path::PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
        let mut texts = Vec::new();
        for dir in [share.clone(), share.join("extension")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "sql") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let sql: String = text
                        .lines()
                        .filter(|line| !line.starts_with('\\'))
                        .flat_map(|line| [line, "\n"])
                        .collect();
                    texts.push((path.display().to_string(), sql));
                }
            }
        }
        texts
    }

    #[test]
    fn parses_good_statements() {
        assert!(matches!(
            parse_statement("SELECT 1"),
            Ok(Some(NodeEnum::SelectStmt(_)))
        ));
    }
}
