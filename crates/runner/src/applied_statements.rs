//! The statements a migration without a transaction applied before it stopped, kept in the
//! run-events log: the history row keeps only their checksum, which says that they changed
//! before a resume but not which one, nor how. With these, the refusal names the statement, its
//! line, the text that ran and the text now.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use safeshift_driver::{Direction, Driver, EventKind, EventOutcome, NewEvent};
use safeshift_source::{Checksum, Statement};

use crate::settings::Settings;
use crate::state::HistoryState;

/// One applied statement as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedStatement {
    /// 1-based, in its section.
    pub number: usize,
    pub line: u32,
    /// The text as it ran (URLs' passwords redacted), for people.
    pub sql: String,
    /// The checksum of the text as it ran, for the comparison.
    pub checksum: String,
}

/// What the event's `detail` holds.
#[derive(Debug, Serialize, Deserialize)]
struct Detail {
    version: String,
    /// `up` or `down`.
    direction: String,
    file: String,
    statements: Vec<AppliedStatement>,
}

/// The statements recorded for each version and direction stopped part-way.
#[derive(Debug, Default)]
pub(crate) struct AppliedTexts(HashMap<(String, Direction), Vec<AppliedStatement>>);

impl AppliedTexts {
    pub fn get(&self, version: &str, direction: Direction) -> Option<&[AppliedStatement]> {
        self.0
            .get(&(version.to_owned(), direction))
            .map(Vec::as_slice)
    }
}

/// Records the first `applied` statements of a section that stopped part-way. Best effort: the
/// run's outcome does not depend on it, and a resume without it says less.
pub(crate) fn record(
    db: &mut dyn Driver,
    settings: &Settings,
    version: &str,
    direction: Direction,
    file: &str,
    statements: &[Statement],
    applied: usize,
) {
    let applied = applied.min(statements.len());
    if applied == 0 {
        return;
    }
    let detail = Detail {
        version: version.to_owned(),
        direction: direction.as_str().to_owned(),
        file: file.to_owned(),
        statements: statements[..applied]
            .iter()
            .enumerate()
            .map(|(index, statement)| AppliedStatement {
                number: index + 1,
                line: statement.line,
                sql: safeshift_driver::redact(&statement.sql),
                checksum: Checksum::of_statements([statement.sql.as_str()]).to_string(),
            })
            .collect(),
    };
    let Ok(detail) = serde_json::to_string(&detail) else {
        return;
    };
    let event = NewEvent {
        run_id: settings.identity.run_id.clone(),
        kind: EventKind::PartialAttempt,
        outcome: EventOutcome::Warning,
        environment: None,
        summary: format!(
            "{version} ({direction}) stopped after {applied} statement(s) of {file}, which stay applied"
        ),
        detail: Some(detail),
        backup_ref: settings.backup_ref.clone(),
        installed_by: settings.identity.installed_by.clone(),
        tool_version: settings.identity.tool_version.clone(),
        at: None,
    };
    let _ = db.ensure_events().and_then(|()| db.append_event(&event));
}

/// The statements recorded for the versions the history shows stopped part-way (none read
/// when nothing is).
pub(crate) fn read(db: &mut dyn Driver, state: &HistoryState) -> AppliedTexts {
    let mut texts = AppliedTexts::default();
    let partial: Vec<(String, Direction)> = state
        .versions
        .values()
        .filter_map(|v| v.partial.as_ref().map(|p| (v.version.clone(), p.direction)))
        .collect();
    if partial.is_empty() {
        return texts;
    }
    let Ok(events) = db.read_events() else {
        return texts;
    };
    // Oldest first: a later attempt's record replaces an earlier one's.
    for event in events
        .iter()
        .filter(|event| event.kind == EventKind::PartialAttempt)
    {
        let Some(detail) = event
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<Detail>(d).ok())
        else {
            continue;
        };
        let direction = match detail.direction.as_str() {
            "up" => Direction::Up,
            "down" => Direction::Down,
            _ => continue,
        };
        let key = (detail.version, direction);
        if partial.contains(&key) {
            texts.0.insert(key, detail.statements);
        }
    }
    texts
}

/// The refusal of a resume whose applied statements changed: which ones, with both texts when
/// they were recorded. Returns the message and the help.
pub(crate) fn changed_since_applied(
    version: &str,
    file: &str,
    applied: usize,
    now: &[Statement],
    recorded: Option<&[AppliedStatement]>,
) -> (String, String) {
    let help = format!(
        "restore the applied statement(s) as they ran: only statement {} (where the run stopped) and those after it may change \
         before `safeshift up` resumes. If you finished the migration by hand instead, record that with \
         `safeshift resolve {version} --applied`",
        applied + 1
    );
    let Some(recorded) = recorded.filter(|r| r.len() >= applied) else {
        return (
            format!(
                "{file}: the {applied} statement(s) of migration {version} applied before it stopped (statements 1 to {applied}) \
                 have changed since; the texts that ran were not recorded (the runner was killed), so safeshift cannot say which"
            ),
            help,
        );
    };
    let mut parts = Vec::new();
    for (ran, current) in recorded.iter().zip(now).take(applied) {
        if ran.checksum != Checksum::of_statements([current.sql.as_str()]).to_string() {
            parts.push(format!(
                "{file}: statement {} (line {}) of migration {version} was applied before it changed\n  applied: {}\n  now:     {}",
                ran.number,
                current.line,
                one_line(&ran.sql),
                one_line(&current.sql)
            ));
        }
    }
    if parts.is_empty() {
        // The statements are the same one by one, yet the checksum of all of them differs
        // (they were split differently): say so rather than nothing.
        parts.push(format!(
            "{file}: the first {applied} statement(s) of migration {version} were applied before the file changed how they split"
        ));
    }
    (parts.join("\n"), help)
}

/// A statement on one line, whitespace runs folded, cut at 200 characters.
fn one_line(sql: &str) -> String {
    let folded = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() > 200 {
        format!("{}…", folded.chars().take(199).collect::<String>())
    } else {
        folded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safeshift_source::Transactionality;

    fn statement(line: u32, sql: &str) -> Statement {
        Statement {
            index: line as usize,
            sql: sql.to_owned(),
            span: 0..0,
            line,
            column: 1,
            transactionality: Transactionality::Any,
            directives: Vec::new(),
            file: None,
        }
    }

    fn ran(number: usize, sql: &str) -> AppliedStatement {
        AppliedStatement {
            number,
            line: number as u32,
            sql: sql.to_owned(),
            checksum: Checksum::of_statements([sql]).to_string(),
        }
    }

    #[test]
    fn names_each_changed_statement_with_both_texts() {
        let now = [statement(2, "SELECT 1"), statement(3, "SELECT  20")];
        let recorded = [ran(1, "SELECT 1"), ran(2, "SELECT 2")];
        let (message, help) = changed_since_applied("0007", "m.sql", 2, &now, Some(&recorded));
        assert_eq!(
            message,
            "m.sql: statement 2 (line 3) of migration 0007 was applied before it changed\n  applied: SELECT 2\n  now:     SELECT 20"
        );
        assert!(
            help.contains("only statement 3 (where the run stopped)"),
            "{help}"
        );
        assert!(
            help.contains("`safeshift resolve 0007 --applied`"),
            "{help}"
        );
    }

    #[test]
    fn without_a_record_says_it_cannot_tell_which() {
        let now = [statement(2, "SELECT 1")];
        let (message, _) = changed_since_applied("0007", "m.sql", 1, &now, None);
        assert!(message.contains("cannot say which"), "{message}");
    }
}
