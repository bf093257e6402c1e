//! A schema diff as lines a person reads top to bottom.

use safeshift_rehearse::{Difference, SchemaDiff};

use crate::output::{BOLD, DIM, GREEN, RED, YELLOW, styled};

/// One line per difference, with `left` and `right` naming the two sides (`before up`,
/// `after down`).
pub fn difference_lines(diff: &SchemaDiff, left: &str, right: &str) -> Vec<String> {
    let mut lines: Vec<String> = diff
        .differences
        .iter()
        .map(|difference| describe(difference, left, right))
        .collect();
    for order in &diff.column_order {
        lines.push(format!(
            "{} {}: columns in another order: ({}) {left}, ({}) {right}",
            styled(YELLOW, "~"),
            order.object,
            order.left.join(", "),
            order.right.join(", ")
        ));
    }
    lines
}

fn describe(difference: &Difference, left: &str, right: &str) -> String {
    let object = styled(BOLD, difference.object());
    match (&difference.property, &difference.left, &difference.right) {
        (None, None, Some(value)) => format!(
            "{} {object}: only {right}: {}",
            styled(GREEN, "+"),
            styled(DIM, shorten(value))
        ),
        (None, Some(value), None) => format!(
            "{} {object}: only {left}: {}",
            styled(RED, "-"),
            styled(DIM, shorten(value))
        ),
        (property, before, after) => {
            let (before, after) = changed_part(
                before.as_deref().unwrap_or("(none)"),
                after.as_deref().unwrap_or("(none)"),
            );
            format!(
                "{} {object}: {} is {before} {left}, {after} {right}",
                styled(YELLOW, "~"),
                property.as_deref().unwrap_or("definition"),
            )
        }
    }
}

/// Characters of unchanged text kept on each side of a change.
const CONTEXT: usize = 30;

/// Two versions of a value, each cut to the part that differs with a little context around it
/// (`…WHERE (c40 > 0)` and `…WHERE (c40 >= 0)`), so that a change deep inside a long view
/// definition is seen rather than cut off. Short values are shown whole.
pub(crate) fn changed_part(before: &str, after: &str) -> (String, String) {
    let before: Vec<char> = flatten(before).chars().collect();
    let after: Vec<char> = flatten(after).chars().collect();
    if before.len() <= 80 && after.len() <= 80 {
        return (before.iter().collect(), after.iter().collect());
    }
    let prefix = before
        .iter()
        .zip(&after)
        .take_while(|(a, b)| a == b)
        .count();
    let room = before.len().min(after.len()) - prefix;
    let suffix = before
        .iter()
        .rev()
        .zip(after.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    let start = prefix.saturating_sub(CONTEXT);
    let cut = |text: &[char]| -> String {
        let end = (text.len() - suffix + CONTEXT)
            .min(text.len())
            .min(start + 2 * CONTEXT + 120);
        format!(
            "{}{}{}",
            if start > 0 { "…" } else { "" },
            text[start..end].iter().collect::<String>(),
            if end < text.len() { "…" } else { "" }
        )
    };
    (cut(&before), cut(&after))
}

fn flatten(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Long definitions (view bodies) cut to one readable line.
fn shorten(text: &str) -> String {
    let flat = flatten(text);
    if flat.chars().count() > 160 {
        format!("{}…", flat.chars().take(159).collect::<String>())
    } else {
        flat
    }
}

/// `safeshift diff`: the differences between two databases, or a line saying there are none.
pub fn render(diff: &SchemaDiff, left: &str, right: &str) -> String {
    if diff.is_empty() {
        return "the schemas are the same".to_owned();
    }
    let mut lines = vec![format!(
        "{} difference{} ({} in column order) between A ({left}) and B ({right}):",
        diff.differences.len() + diff.column_order.len(),
        if diff.differences.len() + diff.column_order.len() == 1 {
            ""
        } else {
            "s"
        },
        diff.column_order.len()
    )];
    lines.extend(
        difference_lines(diff, "in A", "in B")
            .into_iter()
            .map(|line| format!("  {line}")),
    );
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_deep_in_a_long_value_is_shown_with_its_context() {
        let columns: String = (1..=60).map(|i| format!("c{i}, ")).collect();
        let before = format!("SELECT {columns}id FROM wide WHERE (c40 > 0)");
        let after = format!("SELECT {columns}id FROM wide WHERE (c40 >= 0)");
        let (left, right) = changed_part(&before, &after);
        assert!(
            left.starts_with('…') && left.ends_with("WHERE (c40 > 0)"),
            "{left}"
        );
        assert!(
            right.starts_with('…') && right.ends_with("WHERE (c40 >= 0)"),
            "{right}"
        );
        assert!(left.chars().count() < 40, "{left}");
    }

    #[test]
    fn short_values_are_whole() {
        assert_eq!(
            changed_part("integer", "bigint"),
            ("integer".to_owned(), "bigint".to_owned())
        );
    }

    #[test]
    fn a_long_change_is_cut() {
        let before = "a".repeat(500);
        let after = "b".repeat(500);
        let (left, right) = changed_part(&before, &after);
        assert!(left.chars().count() < 200 && left.ends_with('…'), "{left}");
        assert!(right.starts_with('b'), "{right}");
    }
}
