//! Splitting a section into statements and classifying what each needs from a transaction.
//!
//! Splitting uses PostgreSQL's own lexer (through `pg_query`), so semicolons inside strings,
//! quoted identifiers, comments and dollar-quoted bodies never split a statement. Bodies that hold
//! semicolons outside quotes are kept whole: `BEGIN ATOMIC … END` function bodies on PostgreSQL and
//! `CREATE TRIGGER … BEGIN … END` on SQLite. `pg_query::split_with_scanner` is not used: it drops
//! statements that start with an unknown word (a typo such as `SELEC 1;` would vanish instead of
//! failing).

use std::ops::Range;
use std::path::Path;

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableType, ReindexObjectType, Token as TokenKind, TransactionStmtKind,
};
use serde::Serialize;

use crate::error::{SourceError, SourceErrorKind};
use crate::text::SourceText;

/// The SQL dialect of the database a migration will run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Postgres,
    Sqlite,
    /// MySQL and MariaDB.
    Mysql,
}

/// What a statement needs from the transaction around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Transactionality {
    /// Runs inside or outside a transaction.
    Any,
    /// Must run outside a transaction block (`CREATE INDEX CONCURRENTLY`, `VACUUM`, …).
    OutsideTransaction {
        what: String,
        /// Why, in a few words ("cannot run inside a transaction block").
        reason: &'static str,
    },
    /// Begins or ends a transaction itself (`BEGIN`, `COMMIT`, …).
    TransactionControl { what: String },
    /// Commits the open transaction before and after it runs, whatever the migration asks
    /// (MySQL and MariaDB DDL): a section holding one runs statement by statement, each
    /// statement its own recorded step.
    CommitsImplicitly { what: String },
}

/// One statement of a section, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// 0-based position in the section.
    pub index: usize,
    /// The statement text, without the terminating semicolon.
    pub sql: String,
    /// Byte range in the (normalised) file text.
    pub span: Range<usize>,
    /// 1-based line of the statement's first character.
    pub line: u32,
    /// 1-based column of the statement's first character.
    pub column: u32,
    pub transactionality: Transactionality,
    /// `-- safeshift:<name> …` comment lines directly above the statement.
    pub directives: Vec<Directive>,
    /// The file the statement is in, when it is not its section's: a verify script's
    /// statements run with the up section they check.
    pub file: Option<std::path::PathBuf>,
}

/// A `-- safeshift:<name> <arguments>` comment attached to the statement below it, e.g.
/// `-- safeshift:backfill batch=5000` above an `UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// The word after `safeshift:` (`backfill`, `allow`, …).
    pub name: String,
    /// The rest of the line, trimmed.
    pub arguments: String,
    pub line: u32,
}

impl Directive {
    /// Parses a comment's text; `None` when it is not a safeshift directive.
    pub(crate) fn parse(comment: &str, line: u32) -> Option<Directive> {
        let body = comment
            .strip_prefix("--")?
            .trim_start()
            .strip_prefix("safeshift:")?;
        let (name, arguments) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
        (!name.is_empty()).then(|| Directive {
            name: name.to_owned(),
            arguments: arguments.trim().to_owned(),
            line,
        })
    }
}

impl Statement {
    /// The directive with this name, if the statement has one.
    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().find(|d| d.name == name)
    }
}

/// The index a `CREATE INDEX CONCURRENTLY` statement builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConcurrentIndex {
    /// The schema, when the table is schema-qualified (the index lives in its table's schema).
    pub schema: Option<String>,
    pub name: String,
    pub if_not_exists: bool,
}

impl Statement {
    /// For a PostgreSQL `CREATE INDEX CONCURRENTLY` with an explicit index name, that index.
    pub fn concurrent_index(&self) -> Option<ConcurrentIndex> {
        if !matches!(&self.transactionality, Transactionality::OutsideTransaction { what, .. } if what == "CREATE INDEX CONCURRENTLY")
        {
            return None;
        }
        let parsed = pg_query::parse(&self.sql, pg_query::ParserOptions::default()).ok()?;
        let node = parsed
            .protobuf
            .stmts
            .first()?
            .stmt
            .as_ref()?
            .node
            .as_ref()?;
        let NodeEnum::IndexStmt(index) = node else {
            return None;
        };
        if index.idxname.is_empty() {
            return None;
        }
        let schema = index
            .relation
            .as_ref()
            .map(|r| r.schemaname.clone())
            .filter(|s| !s.is_empty());
        Some(ConcurrentIndex {
            schema,
            name: index.idxname.clone(),
            if_not_exists: index.if_not_exists,
        })
    }
}

/// A lexer token with its byte range in the file text. Twelve bytes: a file of many small
/// statements has hundreds of thousands of tokens, and this size lets the lexer's own token list
/// be turned into these in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    start: u32,
    end: u32,
    pub kind: TokenKind,
}

impl Token {
    pub fn is_comment(&self) -> bool {
        matches!(self.kind, TokenKind::SqlComment | TokenKind::CComment)
    }

    /// Byte offset of the token's first character in the file text.
    pub fn start(&self) -> usize {
        self.start as usize
    }

    /// Byte offset just after the token in the file text.
    pub fn end(&self) -> usize {
        self.end as usize
    }
}

/// PostgreSQL's lexer over `sql`, comments included, without `pg_query::scan`'s protobuf round
/// trip. Input that is only whitespace has no tokens; it is answered here, because
/// `pg_query::scan_tokens` builds a slice from the null pointer libpg_query returns for zero
/// tokens (undefined behaviour, which debug builds abort on).
pub fn scan_tokens(sql: &str) -> Result<Vec<pg_query::protobuf::ScanToken>, pg_query::Error> {
    // PostgreSQL's `space`: [ \t\n\r\f\v]. Anything else is a token or a lexer error.
    if sql
        .bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
    {
        return Ok(Vec::new());
    }
    pg_query::scan_tokens(sql)
}

/// Tokenises `range` of the file text.
pub(crate) fn scan(
    path: &Path,
    source: &SourceText,
    range: Range<usize>,
) -> Result<Vec<Token>, SourceError> {
    let sql = &source.as_str()[range.clone()];
    let lexer_error = |offset: Option<usize>, message: String| {
        let help = lexer_help(&message);
        let error = SourceError::new(SourceErrorKind::Lexer, path, message).help(help);
        match offset {
            Some(offset) => {
                let (line, column) = source.line_col(range.start + offset);
                error.at(line, column)
            }
            None => {
                let (line, _) = source.line_col(range.start);
                error.at_line(line)
            }
        }
    };
    if let Some(nul) = sql.find('\0') {
        return Err(lexer_error(
            Some(nul),
            "the file contains a NUL character".into(),
        ));
    }
    // Offsets fit in u32: the lexer's own are i32.
    let base = range.start as u32;
    match scan_tokens(sql) {
        // `into_iter` … `collect` reuses the lexer's list (the standard library collects in
        // place when the new items are no larger), instead of holding two lists at once.
        Ok(tokens) => Ok(tokens
            .into_iter()
            .map(|token| Token {
                start: base + token.start as u32,
                end: base + token.end as u32,
                kind: token.token(),
            })
            .collect()),
        Err(error) => {
            let message = match error {
                pg_query::Error::Scan(message) => message,
                other => other.to_string(),
            };
            Err(lexer_error(locate_near_fragment(sql, &message), message))
        }
    }
}

/// What to do about a lexer error, by its message.
fn lexer_help(message: &str) -> &'static str {
    if message.contains("unterminated") {
        "close the string, quoted identifier, comment or dollar quote that starts here"
    } else if message.contains("NUL character") {
        "remove the NUL character: PostgreSQL cannot take one in SQL text"
    } else if message.contains("invalid byte sequence") || message.contains("Unicode") {
        "an escape here makes text that is not valid UTF-8, which PostgreSQL rejects too: write \
         the character itself, or a bytea literal ('\\xff'::bytea) for binary data"
    } else if message.contains("trailing junk") {
        "separate the number from the word after it with a space (PostgreSQL 15 and later \
         reject them joined)"
    } else {
        "PostgreSQL's lexer rejects this text as it stands: change it where the error points"
    }
}

/// PostgreSQL's lexer errors say `… at or near "<rest of input>"` but carry no offset; an
/// unterminated literal runs to the end of the input, so the fragment is a suffix.
fn locate_near_fragment(sql: &str, message: &str) -> Option<usize> {
    let start = message.find("at or near \"")? + "at or near \"".len();
    let fragment = message[start..].strip_suffix('"')?;
    if fragment.is_empty() {
        return None;
    }
    if sql.ends_with(fragment) {
        Some(sql.len() - fragment.len())
    } else {
        sql.find(fragment)
    }
}

/// Whether `range` holds anything but whitespace and comments.
pub(crate) fn has_code(
    path: &Path,
    source: &SourceText,
    range: Range<usize>,
) -> Result<Option<Token>, SourceError> {
    Ok(scan(path, source, range)?
        .into_iter()
        .find(|t| !t.is_comment()))
}

/// Splits `range` of the file text into statements.
pub(crate) fn split(
    path: &Path,
    source: &SourceText,
    range: Range<usize>,
    dialect: Dialect,
) -> Result<Vec<Statement>, SourceError> {
    split_statements(path, source, range, dialect, true)
}

/// Splits `range` of the file text into statements; with `classify` false, PostgreSQL statements
/// are not parsed to classify them and come back as [`Transactionality::Any`] (for callers that
/// parse every statement anyway and classify the tree with [`transactionality_of`]).
pub(crate) fn split_statements(
    path: &Path,
    source: &SourceText,
    range: Range<usize>,
    dialect: Dialect,
    classify: bool,
) -> Result<Vec<Statement>, SourceError> {
    if dialect == Dialect::Mysql {
        return crate::mysql::split(path, source, range);
    }
    let tokens = scan(path, source, range)?;
    let text = source.as_str();
    let mut statements = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    let mut depth = 0u32;
    let mut directives: Vec<Directive> = Vec::new();

    let finish = |tokens: &mut Vec<Token>,
                  directives: &mut Vec<Directive>,
                  statements: &mut Vec<Statement>| {
        if let (Some(first), Some(last)) = (
            tokens.first(),
            tokens.iter().rev().find(|t| !t.is_comment()),
        ) {
            let span = first.start()..last.end();
            let sql = text[span.clone()].to_owned();
            let (line, column) = source.line_col(span.start);
            let transactionality = match dialect {
                Dialect::Postgres if !classify => Transactionality::Any,
                Dialect::Postgres => classify_postgres(&sql),
                Dialect::Sqlite => classify_sqlite(text, tokens),
                Dialect::Mysql => unreachable!("MySQL statements are split by crate::mysql"),
            };
            statements.push(Statement {
                index: statements.len(),
                sql,
                span,
                line,
                column,
                transactionality,
                directives: std::mem::take(directives),
                file: None,
            });
        }
        tokens.clear();
    };

    for token in tokens {
        if token.is_comment() {
            // Comments between statements belong to neither, except directives, which belong to
            // the statement below them; comments inside a statement stay in its text.
            if !current.is_empty() {
                current.push(token);
            } else if let Some(directive) = Directive::parse(
                &text[token.start()..token.end()],
                source.line_col(token.start()).0,
            ) {
                directives.push(directive);
            }
            continue;
        }
        if token.kind == TokenKind::Ascii59 && depth == 0 {
            finish(&mut current, &mut directives, &mut statements);
            continue;
        }
        if opens_block(dialect, &current) {
            match token.kind {
                TokenKind::Atomic
                    if dialect == Dialect::Postgres
                        && last_code(&current) == Some(TokenKind::BeginP) =>
                {
                    depth += 1
                }
                TokenKind::BeginP if dialect == Dialect::Sqlite => depth += 1,
                TokenKind::Case => depth += 1,
                TokenKind::EndP => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        current.push(token);
    }
    finish(&mut current, &mut directives, &mut statements);
    Ok(statements)
}

fn last_code(tokens: &[Token]) -> Option<TokenKind> {
    tokens
        .iter()
        .rev()
        .find(|t| !t.is_comment())
        .map(|t| t.kind)
}

/// Whether the statement begun by `tokens` can hold semicolons in a body: a PostgreSQL function or
/// procedure (`BEGIN ATOMIC … END`) or a SQLite trigger (`BEGIN … END`).
fn opens_block(dialect: Dialect, tokens: &[Token]) -> bool {
    let mut code = tokens.iter().filter(|t| !t.is_comment()).map(|t| t.kind);
    if code.next() != Some(TokenKind::Create) {
        return false;
    }
    let mut next = code.next();
    match dialect {
        Dialect::Postgres => {
            if next == Some(TokenKind::Or) {
                code.next(); // REPLACE
                next = code.next();
            }
            matches!(next, Some(TokenKind::Function | TokenKind::Procedure))
        }
        Dialect::Sqlite => {
            if matches!(next, Some(TokenKind::Temp | TokenKind::Temporary)) {
                next = code.next();
            }
            next == Some(TokenKind::Trigger)
        }
        Dialect::Mysql => unreachable!("MySQL statements are split by crate::mysql"),
    }
}

const NOT_IN_TRANSACTION_BLOCK: &str = "cannot run inside a transaction block";

fn outside(what: &str) -> Transactionality {
    Transactionality::OutsideTransaction {
        what: what.to_owned(),
        reason: NOT_IN_TRANSACTION_BLOCK,
    }
}

fn control(what: &str) -> Transactionality {
    Transactionality::TransactionControl {
        what: what.to_owned(),
    }
}

/// Classifies a PostgreSQL statement with the real parser. A statement that does not parse is
/// left to the server, which reports the syntax error with its position when it runs.
fn classify_postgres(sql: &str) -> Transactionality {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::default()) else {
        return Transactionality::Any;
    };
    let Some(node) = parsed
        .protobuf
        .stmts
        .first()
        .and_then(|raw| raw.stmt.as_ref())
        .and_then(|stmt| stmt.node.as_ref())
    else {
        return Transactionality::Any;
    };
    transactionality_of(node)
}

/// What a parsed PostgreSQL statement needs from the transaction around it.
pub fn transactionality_of(node: &NodeEnum) -> Transactionality {
    match node {
        NodeEnum::IndexStmt(index) if index.concurrent => outside("CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(drop) if drop.concurrent => outside("DROP INDEX CONCURRENTLY"),
        NodeEnum::ReindexStmt(reindex) => {
            let concurrently = reindex.params.iter().any(|param| {
                matches!(&param.node, Some(NodeEnum::DefElem(element)) if element.defname == "concurrently")
            });
            match reindex.kind() {
                _ if concurrently => outside("REINDEX CONCURRENTLY"),
                ReindexObjectType::ReindexObjectSystem => outside("REINDEX SYSTEM"),
                ReindexObjectType::ReindexObjectDatabase => outside("REINDEX DATABASE"),
                _ => Transactionality::Any,
            }
        }
        NodeEnum::VacuumStmt(vacuum) if vacuum.is_vacuumcmd => outside("VACUUM"),
        NodeEnum::AlterSystemStmt(_) => outside("ALTER SYSTEM"),
        NodeEnum::CreatedbStmt(_) => outside("CREATE DATABASE"),
        NodeEnum::DropdbStmt(_) => outside("DROP DATABASE"),
        NodeEnum::CreateTableSpaceStmt(_) => outside("CREATE TABLESPACE"),
        NodeEnum::DropTableSpaceStmt(_) => outside("DROP TABLESPACE"),
        NodeEnum::CreateSubscriptionStmt(_) => outside("CREATE SUBSCRIPTION"),
        NodeEnum::DropSubscriptionStmt(_) => outside("DROP SUBSCRIPTION"),
        NodeEnum::ClusterStmt(cluster) if cluster.relation.is_none() => {
            outside("CLUSTER without a table")
        }
        NodeEnum::AlterTableStmt(alter) => {
            let detach_concurrently = alter.cmds.iter().any(|cmd| match &cmd.node {
                Some(NodeEnum::AlterTableCmd(cmd)) => {
                    cmd.subtype() == AlterTableType::AtDetachPartition
                        && matches!(
                            cmd.def.as_deref().and_then(|def| def.node.as_ref()),
                            Some(NodeEnum::PartitionCmd(partition)) if partition.concurrent
                        )
                }
                _ => false,
            });
            if detach_concurrently {
                outside("DETACH PARTITION CONCURRENTLY")
            } else {
                Transactionality::Any
            }
        }
        NodeEnum::TransactionStmt(transaction) => match transaction.kind() {
            TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart => {
                control("BEGIN")
            }
            TransactionStmtKind::TransStmtCommit => control("COMMIT"),
            TransactionStmtKind::TransStmtRollback => control("ROLLBACK"),
            TransactionStmtKind::TransStmtPrepare => control("PREPARE TRANSACTION"),
            TransactionStmtKind::TransStmtCommitPrepared => outside("COMMIT PREPARED"),
            TransactionStmtKind::TransStmtRollbackPrepared => outside("ROLLBACK PREPARED"),
            _ => Transactionality::Any,
        },
        _ => Transactionality::Any,
    }
}

/// Classifies a SQLite statement by its leading words.
fn classify_sqlite(text: &str, tokens: &[Token]) -> Transactionality {
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| !t.is_comment())
        .take(3)
        .map(|t| text[t.start()..t.end()].to_ascii_uppercase())
        .collect();
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match word(0) {
        "VACUUM" => outside("VACUUM"),
        "ATTACH" => outside("ATTACH"),
        "DETACH" => outside("DETACH"),
        "PRAGMA" if matches!(word(1), "FOREIGN_KEYS" | "JOURNAL_MODE") => {
            Transactionality::OutsideTransaction {
                what: format!("PRAGMA {}", word(1).to_ascii_lowercase()),
                reason: "has no effect inside a transaction",
            }
        }
        "BEGIN" => control("BEGIN"),
        "COMMIT" | "END" => control("COMMIT"),
        "ROLLBACK" if word(1) != "TO" => control("ROLLBACK"),
        _ => Transactionality::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_has_no_tokens_and_comments_are_tokens() {
        assert!(scan_tokens("").unwrap().is_empty());
        assert!(scan_tokens(" \t\r\n\x0b\x0c").unwrap().is_empty());
        let tokens = scan_tokens("  -- note\nSELECT 1").unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens[0].token(), TokenKind::SqlComment);
        assert_eq!((tokens[0].start, tokens[0].end), (2, 9));
        assert!(scan_tokens("SELECT 'open").is_err());
    }

    fn split_text(sql: &str, dialect: Dialect) -> Vec<Statement> {
        let source = SourceText::from_bytes(Path::new("t.sql"), sql.as_bytes()).unwrap();
        split(Path::new("t.sql"), &source, 0..sql.len(), dialect).unwrap()
    }

    fn texts(statements: &[Statement]) -> Vec<&str> {
        statements.iter().map(|s| s.sql.as_str()).collect()
    }

    #[test]
    fn keeps_statements_that_start_with_an_unknown_word() {
        let statements = split_text("select 1;\nSELEC broken;\nselect 2;", Dialect::Postgres);
        assert_eq!(texts(&statements), ["select 1", "SELEC broken", "select 2"]);
        assert_eq!((statements[1].line, statements[1].column), (2, 1));
    }

    #[test]
    fn semicolons_inside_literals_do_not_split() {
        let sql = "select 'a;b'; select $q$;$q$; select \"x;y\" from t; -- c;\nselect E'\\';';";
        assert_eq!(
            texts(&split_text(sql, Dialect::Postgres)),
            [
                "select 'a;b'",
                "select $q$;$q$",
                "select \"x;y\" from t",
                "select E'\\';'"
            ]
        );
    }

    #[test]
    fn comments_between_statements_are_dropped_and_inner_ones_kept() {
        let sql = "-- header\nselect /* inner */ 1; -- trailing\n/* block */\n";
        let statements = split_text(sql, Dialect::Postgres);
        assert_eq!(texts(&statements), ["select /* inner */ 1"]);
        assert_eq!(statements[0].line, 2);
    }

    #[test]
    fn last_statement_may_lack_a_semicolon() {
        assert_eq!(
            texts(&split_text("select 1;\nselect 2\n", Dialect::Postgres)),
            ["select 1", "select 2"]
        );
    }

    #[test]
    fn begin_atomic_bodies_stay_whole() {
        let sql = "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END;\nselect 3;";
        let statements = split_text(sql, Dialect::Postgres);
        assert_eq!(statements.len(), 2, "{:?}", texts(&statements));
        assert!(statements[0].sql.ends_with("SELECT 2; END"));
    }

    #[test]
    fn sqlite_trigger_bodies_stay_whole() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); UPDATE c SET x = CASE WHEN 1 THEN 2 END; END;\nCREATE TABLE d (x);";
        let statements = split_text(sql, Dialect::Sqlite);
        assert_eq!(statements.len(), 2, "{:?}", texts(&statements));
        // The same text on PostgreSQL is not a trigger body and splits at every semicolon.
        assert_eq!(split_text(sql, Dialect::Postgres).len(), 4);
    }

    #[test]
    fn classifies_statements_that_cannot_run_in_a_transaction() {
        let sql = "CREATE INDEX CONCURRENTLY i ON t (a); DROP INDEX CONCURRENTLY i; REINDEX TABLE CONCURRENTLY t; \
                   REINDEX TABLE t; VACUUM t; ANALYZE t; ALTER SYSTEM SET work_mem = '1MB'; CREATE DATABASE d; \
                   ALTER TABLE p DETACH PARTITION c CONCURRENTLY; BEGIN; COMMIT; SAVEPOINT s; CREATE INDEX i2 ON t (a)";
        let kinds: Vec<String> = split_text(sql, Dialect::Postgres)
            .iter()
            .map(|s| match &s.transactionality {
                Transactionality::Any => "any".to_owned(),
                Transactionality::OutsideTransaction { what, .. } => format!("outside:{what}"),
                Transactionality::TransactionControl { what } => format!("control:{what}"),
                Transactionality::CommitsImplicitly { what } => format!("implicit:{what}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "outside:CREATE INDEX CONCURRENTLY",
                "outside:DROP INDEX CONCURRENTLY",
                "outside:REINDEX CONCURRENTLY",
                "any",
                "outside:VACUUM",
                "any",
                "outside:ALTER SYSTEM",
                "outside:CREATE DATABASE",
                "outside:DETACH PARTITION CONCURRENTLY",
                "control:BEGIN",
                "control:COMMIT",
                "any",
                "any",
            ]
        );
    }

    #[test]
    fn finds_the_index_a_concurrent_build_creates() {
        let statements = split_text(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON shop.orders (customer_id); CREATE INDEX CONCURRENTLY ON t (a); CREATE INDEX i ON t (a)",
            Dialect::Postgres,
        );
        let index = statements[0].concurrent_index().unwrap();
        assert_eq!(index.schema.as_deref(), Some("shop"));
        assert_eq!(index.name, "orders_customer_idx");
        assert!(index.if_not_exists);
        assert_eq!(statements[1].concurrent_index(), None, "unnamed index");
        assert_eq!(statements[2].concurrent_index(), None, "not concurrent");
    }

    #[test]
    fn directives_attach_to_the_statement_below() {
        let statements = split_text(
            "-- safeshift:backfill batch=500 pause=10ms\n-- plain comment\nUPDATE t SET a = 1;\nSELECT 1; -- safeshift:late\n",
            Dialect::Postgres,
        );
        assert_eq!(
            statements[0].directives,
            [Directive {
                name: "backfill".into(),
                arguments: "batch=500 pause=10ms".into(),
                line: 1
            }]
        );
        assert_eq!(statements[0].directive("backfill").unwrap().line, 1);
        assert!(statements[1].directives.is_empty());
    }

    #[test]
    fn classifies_sqlite_statements() {
        let statements = split_text(
            "PRAGMA foreign_keys = off; VACUUM; BEGIN; ROLLBACK TO s; create table t (a)",
            Dialect::Sqlite,
        );
        assert!(
            matches!(&statements[0].transactionality, Transactionality::OutsideTransaction { what, .. } if what == "PRAGMA foreign_keys")
        );
        assert!(matches!(
            &statements[1].transactionality,
            Transactionality::OutsideTransaction { .. }
        ));
        assert!(matches!(
            &statements[2].transactionality,
            Transactionality::TransactionControl { .. }
        ));
        assert_eq!(statements[3].transactionality, Transactionality::Any);
        assert_eq!(statements[4].transactionality, Transactionality::Any);
    }

    /// Each lexer error says what to do about it: the advice to close a string is for an
    /// unterminated one only.
    #[test]
    fn lexer_errors_say_what_to_do_about_them() {
        let help_for = |sql: &str| {
            let source = SourceText::from_bytes(Path::new("t.sql"), sql.as_bytes()).unwrap();
            let error =
                split(Path::new("t.sql"), &source, 0..sql.len(), Dialect::Postgres).unwrap_err();
            assert_eq!(error.kind, SourceErrorKind::Lexer);
            (error.message, error.help.unwrap_or_default())
        };
        let (message, help) = help_for("select 'oops;\n");
        assert!(message.contains("unterminated"), "{message}");
        assert!(help.starts_with("close the string"), "{help}");

        let (message, help) = help_for("insert into t values (E'\\xff');\n");
        assert!(message.contains("invalid byte sequence"), "{message}");
        assert!(help.contains("not valid UTF-8"), "{help}");
        assert!(!help.contains("close the string"), "{help}");

        let (message, help) = help_for("select 1;\0\n");
        assert!(message.contains("NUL"), "{message}");
        assert!(help.contains("remove"), "{help}");

        let (message, help) = help_for("select 1a;\n");
        assert!(message.contains("trailing junk"), "{message}");
        assert!(help.contains("separate"), "{help}");
    }

    #[test]
    fn unterminated_literals_are_located() {
        let sql = "select 1;\nselect 'oops;\nselect 2;\n";
        let source = SourceText::from_bytes(Path::new("t.sql"), sql.as_bytes()).unwrap();
        let error =
            split(Path::new("t.sql"), &source, 0..sql.len(), Dialect::Postgres).unwrap_err();
        assert_eq!(error.kind, SourceErrorKind::Lexer);
        assert_eq!((error.line, error.column), (Some(2), Some(8)));
        assert!(
            error.message.contains("unterminated quoted string"),
            "{}",
            error.message
        );
    }
}
