//! Rows as text through the simple query protocol.

pub(crate) type Row = Vec<Option<String>>;

/// Rows as text through the simple query protocol, errors classified as the driver's own.
pub(crate) use safeshift_driver::simple_query_rows as rows;

pub(crate) fn text(row: &Row, index: usize) -> String {
    row.get(index).cloned().flatten().unwrap_or_default()
}

pub(crate) fn number(row: &Row, index: usize) -> Option<f64> {
    row.get(index)
        .cloned()
        .flatten()
        .and_then(|v| v.parse::<f64>().ok())
}

pub(crate) fn millis(row: &Row, index: usize) -> Option<u64> {
    number(row, index).map(|v| v.max(0.0) as u64)
}

/// A PostgreSQL array of integers as text (`{1,2}`).
pub(crate) fn pids(row: &Row, index: usize) -> Vec<i64> {
    text(row, index)
        .trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// A string literal, escaped for any `standard_conforming_strings`.
pub(crate) fn literal(text: &str) -> String {
    postgres_literal(text)
}

fn postgres_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    if text.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_arrays() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\b"), "E'a\\\\b'");
        assert_eq!(pids(&vec![Some("{12,34}".into())], 0), [12, 34]);
        assert!(pids(&vec![Some("{}".into())], 0).is_empty());
    }
}
