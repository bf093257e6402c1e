//! The names PostgreSQL gives constraints and indexes created without one (`orders_pkey`,
//! `orders_user_id_fkey`, `orders_total_check`, `orders_email_key`, `orders_status_idx`),
//! truncated to fit an identifier the way PostgreSQL truncates them, so that a name safeshift
//! writes into a migration is the name the server would have chosen.

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`), in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// `{table}_{columns}_{label}`, or `{table}_{label}` without columns: PostgreSQL's
/// `makeObjectName`. When the result is too long, the longer of the table part and the column
/// part loses a byte at a time until it fits, and each part is cut at a character boundary.
pub fn object_name(table: &str, columns: Option<&str>, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(columns.is_some());
    let available = MAX_IDENTIFIER_BYTES.saturating_sub(overhead);
    let mut table_bytes = table.len();
    let mut column_bytes = columns.map_or(0, str::len);
    while table_bytes + column_bytes > available {
        if table_bytes > column_bytes {
            table_bytes -= 1;
        } else {
            column_bytes -= 1;
        }
    }
    let mut name = clip(table, table_bytes).to_owned();
    if let Some(columns) = columns {
        name.push('_');
        name.push_str(clip(columns, column_bytes));
    }
    name.push('_');
    name.push_str(label);
    name
}

/// The column part of a generated name: the column names joined with `_` (an expression counts
/// as `expr`, as PostgreSQL writes it).
pub fn column_part<'a>(columns: impl IntoIterator<Item = Option<&'a str>>) -> String {
    columns
        .into_iter()
        .map(|column| column.unwrap_or("expr"))
        .collect::<Vec<_>>()
        .join("_")
}

/// A CHECK constraint's name: `{table}_{column}_check` when the expression reads exactly one
/// column, else `{table}_check`.
pub fn check_name(table: &str, columns_read: &[String]) -> String {
    match columns_read {
        [column] => object_name(table, Some(column), "check"),
        _ => object_name(table, None, "check"),
    }
}

/// The longest prefix of `text` of at most `bytes` bytes that ends at a character boundary
/// (PostgreSQL's `pg_mbcliplen`).
fn clip(text: &str, bytes: usize) -> &str {
    let mut end = bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_joined() {
        assert_eq!(object_name("orders", None, "pkey"), "orders_pkey");
        assert_eq!(
            object_name("orders", Some("user_id"), "fkey"),
            "orders_user_id_fkey"
        );
        assert_eq!(
            object_name("orders", Some(&column_part([Some("a"), None])), "idx"),
            "orders_a_expr_idx"
        );
        assert_eq!(
            check_name("orders", &["total".to_owned()]),
            "orders_total_check"
        );
        assert_eq!(
            check_name("orders", &["a".to_owned(), "b".to_owned()]),
            "orders_check"
        );
    }

    #[test]
    fn long_names_lose_bytes_from_the_longer_part_first() {
        // What PostgreSQL 15 names `ALTER TABLE <40 a's> ADD UNIQUE (<40 b's>)`.
        let table = "a".repeat(40);
        let column = "b".repeat(40);
        let name = object_name(&table, Some(&column), "key");
        assert_eq!(name.len(), MAX_IDENTIFIER_BYTES);
        assert_eq!(name, format!("{}_{}_key", "a".repeat(29), "b".repeat(29)));
        let name = object_name(&"t".repeat(70), None, "pkey");
        assert_eq!(name, format!("{}_pkey", "t".repeat(58)));
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        let table = "é".repeat(40);
        let name = object_name(&table, None, "pkey");
        assert!(name.len() <= MAX_IDENTIFIER_BYTES);
        assert!(name.ends_with("_pkey"));
        assert_eq!(name, format!("{}_pkey", "é".repeat(29)));
    }
}
