//! A pending migration older than the newest applied one, or an applied migration whose file
//! changed: the history no longer says what the database ran.

use super::{Rule, Violation};
use crate::context::MigrationEnd;

pub(crate) struct Check;

impl Rule for Check {
    fn finish(&self, end: &MigrationEnd<'_>, violations: &mut Vec<Violation>) {
        if let Some(newest) = end.out_of_order {
            violations.push(
                Violation::new(format!(
                    "this pending migration sorts before {newest}, which is already applied: databases that applied them in a different order may now differ"
                ))
                .at_statement(0)
                .locks(Vec::new())
                .alternative("-- renumber the file after the newest applied version (safeshift new picks the next free version),\n-- or apply it deliberately with `safeshift up --allow-out-of-order`"),
            );
        }
        if end.changed_since_applied {
            violations.push(
                Violation::new("this migration was changed after it was applied: the database ran the old text, new databases will run the new one")
                    .at_statement(0)
                    .locks(Vec::new())
                    .alternative("-- restore the applied text and make the change in a new migration,\n-- or accept the change with `safeshift repair` if it only touches comments or formatting"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::linter::{AppliedMigrations, Linter, Scope};
    use crate::options::LintOptions;

    fn write(dir: &std::path::Path, name: &str, sql: &str) {
        std::fs::write(dir.join(name), format!("-- migrate:up\n{sql}\n")).unwrap();
    }

    #[test]
    fn flags_out_of_order_and_edited_migrations() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "0001_a.sql", "CREATE TABLE a (id bigint);");
        write(dir.path(), "0002_b.sql", "CREATE TABLE b (id bigint);");
        write(dir.path(), "0003_c.sql", "CREATE TABLE c (id bigint);");
        let set = safeshift_source::MigrationSet::load(dir.path()).unwrap();
        let mut applied = AppliedMigrations::default();
        applied.versions.insert(
            "0001".into(),
            Some(safeshift_source::Checksum::from_stored("sha256:old")),
        );
        applied
            .versions
            .insert("0003".into(), Some(set.migrations[2].up.checksum.clone()));
        let linter = Linter::new(LintOptions::default()).unwrap();
        let report = linter.lint_set(&set, Some(&applied), &Scope::All);
        let found: Vec<(String, usize)> = report
            .files
            .iter()
            .flat_map(|f| {
                f.findings
                    .iter()
                    .filter(|x| x.rule == "non-linear-history")
                    .map(move |_| (f.version.clone().unwrap(), 0))
            })
            .collect();
        assert_eq!(found, [("0001".to_owned(), 0), ("0002".to_owned(), 0)]);
    }

    #[test]
    fn passes_a_linear_history() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "0001_a.sql", "CREATE TABLE a (id bigint);");
        write(dir.path(), "0002_b.sql", "CREATE TABLE b (id bigint);");
        let set = safeshift_source::MigrationSet::load(dir.path()).unwrap();
        let mut applied = AppliedMigrations::default();
        applied
            .versions
            .insert("0001".into(), Some(set.migrations[0].up.checksum.clone()));
        let linter = Linter::new(LintOptions::default()).unwrap();
        let report = linter.lint_set(&set, Some(&applied), &Scope::All);
        assert!(
            report
                .files
                .iter()
                .all(|f| f.findings.iter().all(|x| x.rule != "non-linear-history"))
        );
    }
}
