//! Which column type changes PostgreSQL makes without rewriting the table: the binary-coercible
//! ones (`varchar(n)` → `varchar(m ≥ n)`, `varchar` → `text`, wider `numeric`, …).

use crate::sql::ColumnType;

/// Whether a time zone name or offset, as `SET TIME ZONE` takes it, is fixed at UTC: then
/// PostgreSQL 12+ converts between `timestamp` and `timestamptz` without a rewrite.
pub fn is_utc(zone: &str) -> bool {
    let zone = zone.trim().to_ascii_lowercase();
    let zone = zone.strip_prefix("etc/").unwrap_or(&zone);
    matches!(
        zone,
        "utc"
            | "uct"
            | "gmt"
            | "gmt0"
            | "gmt+0"
            | "gmt-0"
            | "greenwich"
            | "universal"
            | "zulu"
            | "z"
    ) || zone
        .trim_start_matches(['+', '-'])
        .split(':')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b == b'0'))
}

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

/// Classifies a change of `old` to `new`; `using` is whether a `USING` expression is given;
/// `utc` is whether the session's time zone has a fixed zero offset on PostgreSQL 12 or later,
/// where converting between `timestamp` and `timestamptz` changes no stored value.
pub fn classify(old: Option<&ColumnType>, new: &ColumnType, using: bool, utc: bool) -> TypeChange {
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
        ("timestamp", "timestamptz") | ("timestamptz", "timestamp") if utc => {
            widened(old.modifiers.first(), new.modifiers.first())
        }
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
            classify(
                Some(&ty("varchar", &[50])),
                &ty("varchar", &[100]),
                false,
                false
            ),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(
                Some(&ty("varchar", &[50])),
                &ty("varchar", &[]),
                false,
                false
            ),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(Some(&ty("varchar", &[50])), &ty("text", &[]), false, false),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(Some(&ty("text", &[])), &ty("varchar", &[]), false, false),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(
                Some(&ty("numeric", &[10, 2])),
                &ty("numeric", &[12, 2]),
                false,
                false
            ),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(Some(&ty("cidr", &[])), &ty("inet", &[]), false, false),
            TypeChange::MetadataOnly
        );
    }

    #[test]
    fn timestamps_convert_in_place_in_utc() {
        let plain = ty("timestamp", &[]);
        let zoned = ty("timestamptz", &[]);
        assert_eq!(
            classify(Some(&plain), &zoned, false, true),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(Some(&zoned), &plain, false, true),
            TypeChange::MetadataOnly
        );
        assert_eq!(
            classify(Some(&plain), &zoned, false, false),
            TypeChange::Rewrite
        );
        for zone in ["UTC", "Etc/UTC", "gmt", "Zulu", "+00", "0", "00:00"] {
            assert!(is_utc(zone), "{zone}");
        }
        for zone in ["Europe/London", "+01", "America/New_York", "", "local"] {
            assert!(!is_utc(zone), "{zone}");
        }
    }

    #[test]
    fn narrowing_and_other_types_rewrite() {
        assert_eq!(
            classify(
                Some(&ty("varchar", &[50])),
                &ty("varchar", &[10]),
                false,
                false
            ),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(Some(&ty("text", &[])), &ty("varchar", &[10]), false, false),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(Some(&ty("int4", &[])), &ty("int8", &[]), false, false),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(Some(&ty("bpchar", &[4])), &ty("bpchar", &[8]), false, false),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(
                Some(&ty("numeric", &[10, 2])),
                &ty("numeric", &[12, 3]),
                false,
                false
            ),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(
                Some(&ty("varchar", &[50])),
                &ty("varchar", &[100]),
                true,
                false
            ),
            TypeChange::Rewrite
        );
        assert_eq!(
            classify(None, &ty("text", &[]), false, false),
            TypeChange::Unknown
        );
    }
}
