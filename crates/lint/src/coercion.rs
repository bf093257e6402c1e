//! Which column type changes PostgreSQL makes without rewriting the table: the binary-coercible
//! ones (`varchar(n)` → `varchar(m ≥ n)`, `varchar` → `text`, wider `numeric`, …).

use crate::sql::ColumnType;

/// What `ALTER COLUMN … TYPE` does to the table's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeChange {
    /// Only the catalog changes.
    MetadataOnly,
    /// Every row is rewritten (and every index rebuilt).
    Rewrite,
    /// The old type is not known (the table was not created in the linted history).
    Unknown,
}

/// Classifies a change of `old` to `new`; `using` is whether a `USING` expression is given.
pub fn classify(old: Option<&ColumnType>, new: &ColumnType, using: bool) -> TypeChange {
    if using {
        return TypeChange::Rewrite;
    }
    let Some(old) = old else {
        return TypeChange::Unknown;
    };
    if old.array != new.array {
        return TypeChange::Rewrite;
    }
    if old == new {
        return TypeChange::MetadataOnly;
    }
    let widened = |old_limit: Option<&i64>, new_limit: Option<&i64>| match (old_limit, new_limit) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(old), Some(new)) => new >= old,
    };
    let coercible = match (old.name.as_str(), new.name.as_str()) {
        ("varchar", "varchar") | ("varbit", "varbit") => {
            widened(old.modifiers.first(), new.modifiers.first())
        }
        ("varchar", "text") | ("text", "varchar") => new.modifiers.is_empty(),
        ("numeric", "numeric") => match (old.modifiers.as_slice(), new.modifiers.as_slice()) {
            (_, []) => true,
            ([], _) => false,
            ([old_precision, rest_old @ ..], [new_precision, rest_new @ ..]) => {
                new_precision >= old_precision
                    && rest_old.first().unwrap_or(&0) == rest_new.first().unwrap_or(&0)
            }
        },
        ("timestamp", "timestamp")
        | ("timestamptz", "timestamptz")
        | ("time", "time")
        | ("interval", "interval") => widened(old.modifiers.first(), new.modifiers.first()),
        ("cidr", "inet") => true,
        _ => false,
    };
    if coercible {
        TypeChange::MetadataOnly
    } else {
        TypeChange::Rewrite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name: &str, modifiers: &[i64]) -> ColumnType {
        ColumnType {
            name: name.to_owned(),
            modifiers: modifiers.to_vec(),
            array: false,
        }
    }

    #[test]
    fn widening_is_metadata_only() {
        assert_eq!(
            classify(Some(&ty("varchar", &[50])), &ty("varchar", &[100]), false),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(Some(&ty("varchar", &[50])), &ty("varchar", &[]), false),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(Some(&ty("varchar", &[50])), &ty("text", &[]), false),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(Some(&ty("text", &[])), &ty("varchar", &[]), false),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(
                Some(&ty("numeric", &[10, 2])),
                &ty("numeric", &[12, 2]),
                false
            ),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(Some(&ty("cidr", &[])), &ty("inet", &[]), false),
            TypeChange::MetadataOnly
        );
    }

    #[test]
    fn narrowing_and_other_types_rewrite() {
        assert_eq!(
            classify(Some(&ty("varchar", &[50])), &ty("varchar", &[10]), false),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(Some(&ty("text", &[])), &ty("varchar", &[10]), false),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(Some(&ty("int4", &[])), &ty("int8", &[]), false),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(Some(&ty("bpchar", &[4])), &ty("bpchar", &[8]), false),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(
                Some(&ty("numeric", &[10, 2])),
                &ty("numeric", &[12, 3]),
                false
            ),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(Some(&ty("varchar", &[50])), &ty("varchar", &[100]), true),
            TypeChange::Rewrite
        );
        assert_eq!(classify(None, &ty("text", &[]), false), TypeChange::Unknown);
    }
}
