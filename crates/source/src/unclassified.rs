//! Splitting a section without classifying each statement, for callers (the linter) that parse
//! every statement themselves and classify the tree with [`crate::transactionality_of`]: it
//! spares a second parse of every statement.

use crate::error::SourceError;
use crate::migration::Section;
use crate::statements::{self, Dialect, Statement};

impl Section {
    /// Like [`Section::statements`], but PostgreSQL statements come back with
    /// [`crate::Transactionality::Any`]: the caller classifies them.
    pub fn statements_unclassified(&self, dialect: Dialect) -> Result<Vec<Statement>, SourceError> {
        statements::split_statements(&self.path, &self.source, self.body.clone(), dialect, false)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Dialect, LooseFile, Transactionality, transactionality_of};

    #[test]
    fn splits_the_same_statements_and_classifies_from_the_tree() {
        let file = LooseFile::from_bytes(
            Path::new("x.sql"),
            b"CREATE INDEX CONCURRENTLY i ON t (a);\nSELECT 1;\n",
        )
        .unwrap();
        let classified = file.up.statements(Dialect::Postgres).unwrap();
        let unclassified = file.up.statements_unclassified(Dialect::Postgres).unwrap();
        assert_eq!(classified.len(), unclassified.len());
        for (a, b) in classified.iter().zip(&unclassified) {
            assert_eq!(
                (&a.sql, &a.span, a.line, a.column),
                (&b.sql, &b.span, b.line, b.column)
            );
            assert_eq!(b.transactionality, Transactionality::Any);
            let parsed = pg_query::parse(&b.sql, pg_query::ParserOptions::default()).unwrap();
            let node = parsed.protobuf.stmts[0]
                .stmt
                .as_ref()
                .and_then(|s| s.node.as_ref())
                .unwrap();
            assert_eq!(transactionality_of(node), a.transactionality);
        }
    }
}
