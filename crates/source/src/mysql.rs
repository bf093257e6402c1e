//! Splitting a section into statements for MySQL and MariaDB, with `sqlparser`'s MySQL lexer:
//! backslash escapes in strings, backtick-quoted identifiers and `#` comments are MySQL's, not
//! PostgreSQL's, so a `;` inside any of them never splits a statement. The bodies of stored
//! programs (`CREATE PROCEDURE … BEGIN … END`, triggers, functions, events) hold semicolons of
//! their own and are kept whole, as the `mysql` client would with `DELIMITER`.
//!
//! Statements are classified by their leading words: MySQL commits the open transaction before
//! and after every DDL statement (and a few others), so such a statement can never share a
//! transaction with the history row; the runner runs its section statement by statement.

use std::ops::Range;
use std::path::Path;

use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token as SqlToken, Tokenizer, Whitespace};

use crate::error::{SourceError, SourceErrorKind};
use crate::statements::{Directive, Statement, Transactionality};
use crate::text::SourceText;

/// A lexer token with its byte range in the file text.
struct Token {
    range: Range<usize>,
    token: SqlToken,
}

impl Token {
    fn is_comment(&self) -> bool {
        matches!(
            self.token,
            SqlToken::Whitespace(
                Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)
            )
        )
    }

    fn is_whitespace(&self) -> bool {
        matches!(self.token, SqlToken::Whitespace(_)) && !self.is_comment()
    }

    /// The word, upper-cased, when the token is an unquoted word.
    fn keyword(&self) -> Option<String> {
        match &self.token {
            SqlToken::Word(word) if word.quote_style.is_none() => {
                Some(word.value.to_ascii_uppercase())
            }
            _ => None,
        }
    }
}

/// MySQL's lexer over `range` of the file text: every token but plain whitespace, with byte
/// ranges.
fn scan(path: &Path, source: &SourceText, range: Range<usize>) -> Result<Vec<Token>, SourceError> {
    let sql = &source.as_str()[range.clone()];
    let tokens = Tokenizer::new(&MySqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|error| {
            let offset = offset_of(sql, error.location.line, error.location.column);
            let (line, column) = source.line_col(range.start + offset.min(sql.len()));
            SourceError::new(SourceErrorKind::Lexer, path, error.message.clone())
                .at(line, column)
                .help("close the string, quoted identifier or comment that starts here")
        })?;
    let mut offsets = LineOffsets::new(sql);
    Ok(tokens
        .into_iter()
        .map(|token| {
            let start = offsets.offset(token.span.start.line, token.span.start.column);
            let end = offsets.offset(token.span.end.line, token.span.end.column);
            Token {
                range: range.start + start..range.start + end,
                token: token.token,
            }
        })
        .filter(|token| !token.is_whitespace())
        .collect())
}

/// Byte offsets of the lexer's 1-based line and character column, walking forward.
struct LineOffsets<'a> {
    text: &'a str,
    line: u64,
    line_start: usize,
}

impl<'a> LineOffsets<'a> {
    fn new(text: &'a str) -> Self {
        LineOffsets {
            text,
            line: 1,
            line_start: 0,
        }
    }

    fn offset(&mut self, line: u64, column: u64) -> usize {
        if line < self.line {
            self.line = 1;
            self.line_start = 0;
        }
        while self.line < line {
            match self.text[self.line_start..].find('\n') {
                Some(newline) => self.line_start += newline + 1,
                None => return self.text.len(),
            }
            self.line += 1;
        }
        let rest = &self.text[self.line_start..];
        let chars = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
        self.line_start
            + rest
                .char_indices()
                .nth(chars)
                .map_or(rest.len(), |(offset, _)| offset)
    }
}

fn offset_of(text: &str, line: u64, column: u64) -> usize {
    LineOffsets::new(text).offset(line, column)
}

/// What a single MySQL statement needs from the transaction around it (see [`split`]); a
/// statement the lexer rejects is left to the server, which reports it.
pub fn classify_mysql(sql: &str) -> Transactionality {
    let source = SourceText::from_normalized(sql);
    match scan(Path::new(""), &source, 0..sql.len()) {
        Ok(tokens) => classify(&leading_words(&tokens.iter().collect::<Vec<_>>())),
        Err(_) => Transactionality::Any,
    }
}

/// The first token in `range` that is not a comment, if any.
pub(crate) fn first_code(
    path: &Path,
    source: &SourceText,
    range: Range<usize>,
) -> Result<Option<usize>, SourceError> {
    Ok(scan(path, source, range)?
        .into_iter()
        .find(|t| !t.is_comment())
        .map(|t| t.range.start))
}

/// Splits `range` of the file text into MySQL statements.
pub(crate) fn split(
    path: &Path,
    source: &SourceText,
    range: Range<usize>,
) -> Result<Vec<Statement>, SourceError> {
    let tokens = scan(path, source, range)?;
    let text = source.as_str();
    let mut statements = Vec::new();
    let mut current: Vec<&Token> = Vec::new();
    let mut directives: Vec<Directive> = Vec::new();
    let mut depth = 0u32;

    let mut finish = |tokens: &mut Vec<&Token>,
                      directives: &mut Vec<Directive>|
     -> Result<(), SourceError> {
        let first = tokens.first();
        let last = tokens.iter().rev().find(|t| !t.is_comment());
        if let (Some(first), Some(last)) = (first, last) {
            let span = first.range.start..last.range.end;
            let (line, column) = source.line_col(span.start);
            let words = leading_words(tokens);
            if words.first().map(String::as_str) == Some("DELIMITER") {
                return Err(SourceError::new(
                    SourceErrorKind::Lexer,
                    path,
                    "`DELIMITER` is a command of the mysql client, not SQL the server understands",
                )
                .at(line, column)
                .help(
                    "remove the DELIMITER lines and end each statement with `;`: safeshift keeps the \
                     BEGIN … END body of a procedure, function, trigger or event whole by itself",
                ));
            }
            statements.push(Statement {
                index: statements.len(),
                sql: text[span.clone()].to_owned(),
                span,
                line,
                column,
                transactionality: classify(&words),
                directives: std::mem::take(directives),
                file: None,
            });
        }
        tokens.clear();
        Ok(())
    };

    // Inside a stored program: BEGIN and CASE open a block, END closes one. `END IF`, `END
    // LOOP`, `END WHILE` and `END REPEAT` close blocks that are not counted, and the CASE of
    // `END CASE` opens nothing.
    let mut in_program = false;
    let mut case_closes = false;
    for (position, token) in tokens.iter().enumerate() {
        if token.is_comment() {
            // Comments between statements belong to neither, except directives, which belong to
            // the statement below them; comments inside a statement stay in its text.
            if !current.is_empty() {
                current.push(token);
            } else if let Some(directive) = Directive::parse(
                &text[token.range.clone()],
                source.line_col(token.range.start).0,
            ) {
                directives.push(directive);
            }
            continue;
        }
        if token.token == SqlToken::SemiColon && depth == 0 {
            finish(&mut current, &mut directives)?;
            in_program = false;
            continue;
        }
        current.push(token);
        if !in_program {
            in_program = opens_stored_program(&leading_words(&current));
            continue;
        }
        match token.keyword().as_deref() {
            Some("CASE") if case_closes => case_closes = false,
            Some("BEGIN" | "CASE") => depth += 1,
            Some("END") => {
                let next = tokens[position + 1..]
                    .iter()
                    .find(|t| !t.is_comment())
                    .and_then(Token::keyword);
                if !matches!(next.as_deref(), Some("IF" | "LOOP" | "WHILE" | "REPEAT")) {
                    depth = depth.saturating_sub(1);
                    case_closes = next.as_deref() == Some("CASE");
                }
            }
            _ => {}
        }
    }
    finish(&mut current, &mut directives)?;
    Ok(statements)
}

/// The unquoted words among the first tokens of a statement, upper-cased.
fn leading_words(tokens: &[&Token]) -> Vec<String> {
    tokens
        .iter()
        .filter(|t| !t.is_comment())
        .take(12)
        .filter_map(|t| t.keyword())
        .collect()
}

/// The kind of object a `CREATE`, `ALTER` or `DROP` acts on: the first word that names one
/// (`CREATE OR REPLACE DEFINER = … PROCEDURE` → `PROCEDURE`).
fn object_kind(words: &[String]) -> Option<&str> {
    words.iter().skip(1).map(String::as_str).find(|word| {
        matches!(
            *word,
            "TABLE"
                | "INDEX"
                | "VIEW"
                | "DATABASE"
                | "SCHEMA"
                | "PROCEDURE"
                | "FUNCTION"
                | "TRIGGER"
                | "EVENT"
                | "USER"
                | "ROLE"
                | "SEQUENCE"
                | "SERVER"
                | "TABLESPACE"
                | "LOGFILE"
        )
    })
}

/// Whether a statement beginning with these words is a stored program whose body may hold
/// semicolons: `CREATE … PROCEDURE | FUNCTION | TRIGGER | EVENT`.
fn opens_stored_program(words: &[String]) -> bool {
    words.first().map(String::as_str) == Some("CREATE")
        && matches!(
            object_kind(words),
            Some("PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT")
        )
}

/// What a MySQL statement needs from the transaction around it, by its leading words (MySQL's
/// list of statements that cause an implicit commit).
fn classify(words: &[String]) -> Transactionality {
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let implicit = |what: String| Transactionality::CommitsImplicitly { what };
    let control = |what: &str| Transactionality::TransactionControl {
        what: what.to_owned(),
    };
    match word(0) {
        "BEGIN" => control("BEGIN"),
        "START" if word(1) == "TRANSACTION" => control("BEGIN"),
        "COMMIT" => control("COMMIT"),
        "ROLLBACK" if word(1) != "TO" => control("ROLLBACK"),
        // CREATE TEMPORARY TABLE and DROP TEMPORARY TABLE do not commit.
        "CREATE" | "DROP" if word(1) == "TEMPORARY" => Transactionality::Any,
        "CREATE" | "ALTER" | "DROP" => implicit(match object_kind(words) {
            Some(object) => format!("{} {object}", word(0)),
            None => word(0).to_owned(),
        }),
        "RENAME" => implicit(format!("RENAME {}", word(1))),
        "TRUNCATE" => implicit("TRUNCATE TABLE".to_owned()),
        "GRANT" | "REVOKE" | "LOCK" | "UNLOCK" | "FLUSH" | "ANALYZE" | "OPTIMIZE" | "REPAIR"
        | "CHECK" | "INSTALL" | "UNINSTALL" | "CACHE" => {
            implicit(format!("{} {}", word(0), word(1)).trim_end().to_owned())
        }
        "LOAD" if word(1) == "DATA" => implicit("LOAD DATA".to_owned()),
        _ => Transactionality::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_text(sql: &str) -> Vec<Statement> {
        let source = SourceText::from_normalized(sql);
        split(Path::new("m.sql"), &source, 0..sql.len()).unwrap()
    }

    fn texts(statements: &[Statement]) -> Vec<&str> {
        statements.iter().map(|s| s.sql.as_str()).collect()
    }

    #[test]
    fn semicolons_in_mysql_strings_identifiers_and_comments_do_not_split() {
        let sql = "INSERT INTO t VALUES ('it\\'s; fine');\n\
                   # a comment; with 'a quote\n\
                   CREATE TABLE `odd;name` (id int);\n\
                   SELECT \"double; quoted\";";
        let statements = split_text(sql);
        assert_eq!(
            texts(&statements),
            [
                "INSERT INTO t VALUES ('it\\'s; fine')",
                "CREATE TABLE `odd;name` (id int)",
                "SELECT \"double; quoted\""
            ]
        );
        assert_eq!(statements[1].line, 3);
        assert_eq!(statements[1].column, 1);
    }

    #[test]
    fn stored_program_bodies_stay_whole() {
        let sql = "CREATE DEFINER = CURRENT_USER PROCEDURE p()\nBEGIN\n  DECLARE x INT DEFAULT 0;\n  \
                   IF x = 0 THEN SET x = 1; END IF;\n  CASE x WHEN 1 THEN SET x = 2; ELSE SET x = 3; END CASE;\n  \
                   SET x = CASE WHEN x > 1 THEN 1 ELSE 0 END;\n  lbl: LOOP LEAVE lbl; END LOOP;\nEND;\n\
                   CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END;\n\
                   SELECT 1;";
        let statements = split_text(sql);
        assert_eq!(statements.len(), 3, "{:#?}", texts(&statements));
        assert!(statements[0].sql.ends_with("END"));
        assert!(statements[1].sql.starts_with("CREATE TRIGGER"));
        assert_eq!(statements[2].sql, "SELECT 1");
    }

    #[test]
    fn ddl_commits_implicitly_and_dml_does_not() {
        let kinds: Vec<Transactionality> = split_text(
            "ALTER TABLE t ADD COLUMN c int; CREATE UNIQUE INDEX i ON t (c); INSERT INTO t VALUES (1); \
             CREATE TEMPORARY TABLE x (a int); START TRANSACTION; COMMIT; RENAME TABLE a TO b; \
             TRUNCATE t; UPDATE t SET c = 2",
        )
        .into_iter()
        .map(|s| s.transactionality)
        .collect();
        let implicit = |what: &str| Transactionality::CommitsImplicitly { what: what.into() };
        assert_eq!(
            kinds,
            [
                implicit("ALTER TABLE"),
                implicit("CREATE INDEX"),
                Transactionality::Any,
                Transactionality::Any,
                Transactionality::TransactionControl {
                    what: "BEGIN".into()
                },
                Transactionality::TransactionControl {
                    what: "COMMIT".into()
                },
                implicit("RENAME TABLE"),
                implicit("TRUNCATE TABLE"),
                Transactionality::Any,
            ]
        );
    }

    #[test]
    fn directives_attach_to_the_statement_below() {
        let statements =
            split_text("-- safeshift:online-schema-change\nALTER TABLE t ADD COLUMN c int;");
        assert_eq!(statements[0].directives[0].name, "online-schema-change");
    }

    #[test]
    fn delimiter_lines_are_refused_with_what_to_do() {
        let sql = "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END//\nDELIMITER ;";
        let source = SourceText::from_normalized(sql);
        let error = split(Path::new("m.sql"), &source, 0..sql.len()).unwrap_err();
        assert!(error.to_string().contains("DELIMITER"), "{error}");
    }

    #[test]
    fn an_unterminated_string_is_located() {
        let sql = "SELECT 1;\nSELECT 'open;";
        let source = SourceText::from_normalized(sql);
        let error = split(Path::new("m.sql"), &source, 0..sql.len()).unwrap_err();
        assert_eq!(error.kind, SourceErrorKind::Lexer);
        assert_eq!(error.line, Some(2), "{error}");
    }
}
