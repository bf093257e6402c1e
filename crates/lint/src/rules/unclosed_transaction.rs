//! A file that opens a transaction with `BEGIN` and never commits it.

use super::{Rule, Violation};
use crate::context::MigrationEnd;

pub(crate) struct Check;

impl Rule for Check {
    fn finish(&self, end: &MigrationEnd<'_>, violations: &mut Vec<Violation>) {
        let Some(begin) = end
            .state
            .explicit_begin
            .filter(|_| end.state.in_transaction)
        else {
            return;
        };
        violations.push(
            Violation::new("this BEGIN is never committed: depending on the tool running the file, the changes are rolled back when the session ends, or the session stays idle in transaction holding its locks")
                .at_statement(begin)
                .locks(Vec::new())
                .alternative("-- end the file with\nCOMMIT;"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::findings_with;

    fn script(sql: &str) -> usize {
        findings_with(
            "unclosed-transaction",
            "",
            sql,
            ExampleMode::Script,
            PgVersion::DEFAULT,
        )
        .len()
    }

    #[test]
    fn flags_begin_without_commit() {
        assert_eq!(script("BEGIN; CREATE TABLE t (a int);"), 1);
    }

    #[test]
    fn passes_committed_transactions() {
        assert_eq!(script("BEGIN; CREATE TABLE t (a int); COMMIT;"), 0);
        assert_eq!(script("CREATE TABLE t (a int);"), 0);
    }
}
