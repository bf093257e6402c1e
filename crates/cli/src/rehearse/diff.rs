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
        (property, before, after) => format!(
            "{} {object}: {} is {} {left}, {} {right}",
            styled(YELLOW, "~"),
            property.as_deref().unwrap_or("definition"),
            shorten(before.as_deref().unwrap_or("(none)")),
            shorten(after.as_deref().unwrap_or("(none)"))
        ),
    }
}

/// Long definitions (view bodies) cut to one readable line.
fn shorten(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
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
