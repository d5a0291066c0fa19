//! Input checks shared by every backend, run before any SQL so that a bad request never opens
//! a transaction. Bounds keep every stored value small enough for an indexed `VARCHAR` column
//! on PostgreSQL and MySQL too.

use std::collections::HashSet;

use crate::{CatalogError, KeyDef, KeyFilter};

/// Most keys a catalog may have.
pub const MAX_KEYS: usize = 32;
/// Longest key name.
pub const MAX_KEY_NAME_CHARS: usize = 64;
/// Longest key description.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Longest key value (bytes of UTF-8): fits MySQL's indexed `VARCHAR(255)` in any charset.
pub const MAX_KEY_VALUE_BYTES: usize = 255;
/// Most values one [`KeyFilter`] may list.
pub const MAX_FILTER_VALUES: usize = 256;
/// Largest page of a listing.
pub const MAX_PAGE_LIMIT: u32 = 10_000;
/// Longest source URI.
pub(crate) const MAX_URI_BYTES: usize = 4096;

/// `[A-Za-z_][A-Za-z0-9_]*`, 1..=MAX_KEY_NAME_CHARS: safe in URLs, query strings and SQL.
pub(crate) fn key_name(name: &str) -> Result<(), CatalogError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(CatalogError::bad(
            "key name",
            format!("{name:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"),
        ));
    }
    if name.len() > MAX_KEY_NAME_CHARS {
        return Err(CatalogError::bad(
            "key name",
            format!("{name:?} is longer than {MAX_KEY_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn description(name: &str, description: &str) -> Result<(), CatalogError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(CatalogError::bad(
            "key description",
            format!(
                "the description of {name:?} is longer than {MAX_DESCRIPTION_CHARS} characters"
            ),
        ));
    }
    Ok(())
}

/// The key list of a new catalog: 1..=MAX_KEYS keys with distinct names.
pub(crate) fn key_defs(keys: &[KeyDef]) -> Result<(), CatalogError> {
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(CatalogError::bad(
            "keys",
            format!("a catalog needs 1 to {MAX_KEYS} keys, got {}", keys.len()),
        ));
    }
    let mut seen = HashSet::new();
    for key in keys {
        // `KeyDef::new` checked these, but the fields could come from a stored catalog.
        key_name(key.name())?;
        description(key.name(), key.description())?;
        if !seen.insert(key.name()) {
            return Err(CatalogError::bad(
                "keys",
                format!("key {:?} is given twice", key.name()),
            ));
        }
    }
    Ok(())
}

/// One key value: non-empty, bounded, no control characters and no `/` (values are path
/// segments of the HTTP API, so a `/` could never be addressed).
pub(crate) fn key_value(value: &str) -> Result<(), CatalogError> {
    if value.is_empty() {
        return Err(CatalogError::bad(
            "key value",
            "key values must not be empty",
        ));
    }
    if value.len() > MAX_KEY_VALUE_BYTES {
        return Err(CatalogError::bad(
            "key value",
            format!("{value:?} is longer than {MAX_KEY_VALUE_BYTES} bytes"),
        ));
    }
    if value.chars().any(|c| c == '/' || c.is_control()) {
        return Err(CatalogError::bad(
            "key value",
            format!("{value:?} contains '/' or a control character"),
        ));
    }
    Ok(())
}

/// A full set of key values for a catalog with `key_count` keys.
pub(crate) fn key_values(values: &[String], key_count: usize) -> Result<(), CatalogError> {
    if values.len() != key_count {
        return Err(CatalogError::bad(
            "keys",
            format!(
                "the catalog has {key_count} keys but {} values were given",
                values.len()
            ),
        ));
    }
    values.iter().try_for_each(|v| key_value(v))
}

pub(crate) fn uri(uri: &str) -> Result<(), CatalogError> {
    if uri.is_empty() || uri.len() > MAX_URI_BYTES || uri.chars().any(char::is_control) {
        return Err(CatalogError::bad(
            "uri",
            format!("must be 1 to {MAX_URI_BYTES} bytes without control characters"),
        ));
    }
    Ok(())
}

/// Longest collection name.
pub const MAX_COLLECTION_NAME_CHARS: usize = 64;

/// A collection name: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`, safe as a URL path segment and a file
/// name, and short enough for an indexed `VARCHAR(64)` anywhere.
pub(crate) fn collection_name(name: &str) -> Result<(), CatalogError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || name.len() > MAX_COLLECTION_NAME_CHARS {
        return Err(CatalogError::bad(
            "collection name",
            format!(
                "{name:?} is not a collection name: 1 to {MAX_COLLECTION_NAME_CHARS} ASCII \
                 letters, digits, '_', '.' or '-', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn collection_description(description: &str) -> Result<(), CatalogError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(CatalogError::bad(
            "collection description",
            format!("longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

/// An ISO calendar date `YYYY-MM-DD` (years 0001..=9999, real days, leap years counted).
pub(crate) fn iso_date(field: &'static str, date: &str) -> Result<(), CatalogError> {
    let bad = || {
        CatalogError::bad(
            field,
            format!("{date:?} is not a calendar date written YYYY-MM-DD"),
        )
    };
    let bytes = date.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = bytes.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(bad());
    }
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return Err(bad());
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if year == 0 || day == 0 || day > days {
        return Err(bad());
    }
    Ok(())
}

/// Resolves filters to `(key position, values)`; unknown keys and empty value lists are
/// errors rather than silently matching everything or nothing.
pub(crate) fn filters<'f>(
    filters: &'f [KeyFilter],
    keys: &[KeyDef],
) -> Result<Vec<(usize, &'f KeyFilter)>, CatalogError> {
    filters
        .iter()
        .map(|f| {
            let position = keys.iter().position(|k| k.name() == f.key).ok_or_else(|| {
                CatalogError::bad("filter", format!("the catalog has no key {:?}", f.key))
            })?;
            if f.values.is_empty() || f.values.len() > MAX_FILTER_VALUES {
                return Err(CatalogError::bad(
                    "filter",
                    format!(
                        "key {:?} needs 1 to {MAX_FILTER_VALUES} values, got {}",
                        f.key,
                        f.values.len()
                    ),
                ));
            }
            f.values.iter().try_for_each(|v| key_value(v))?;
            Ok((position, f))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_identifiers() {
        for good in ["a", "_", "sensor", "band_2", "B2", "_x9"] {
            assert!(key_name(good).is_ok(), "{good}");
        }
        let long = "k".repeat(MAX_KEY_NAME_CHARS + 1);
        for bad in [
            "",
            "2band",
            "a-b",
            "a b",
            "é",
            "a;drop",
            "a\"",
            long.as_str(),
        ] {
            assert!(
                matches!(
                    key_name(bad),
                    Err(CatalogError::BadRequest {
                        field: "key name",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_values_are_bounded_path_segments() {
        assert!(key_value("LC08_224077").is_ok());
        assert!(key_value("état 1").is_ok());
        assert!(key_value(&"v".repeat(MAX_KEY_VALUE_BYTES)).is_ok());
        for bad in ["", "a/b", "a\nb", "\u{0}"] {
            assert!(key_value(bad).is_err(), "{bad:?}");
        }
        assert!(key_value(&"v".repeat(MAX_KEY_VALUE_BYTES + 1)).is_err());
        assert!(key_values(&["a".into()], 2).is_err());
        assert!(key_values(&["a".into(), "b".into()], 2).is_ok());
    }

    #[test]
    fn collection_names() {
        let longest = "c".repeat(MAX_COLLECTION_NAME_CHARS);
        for good in ["a", "0", "srtm-30m", "Terrain_v2.1", longest.as_str()] {
            assert!(collection_name(good).is_ok(), "{good}");
        }
        let long = "c".repeat(MAX_COLLECTION_NAME_CHARS + 1);
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "a b",
            "a/b",
            "é",
            "a\n",
            long.as_str(),
        ] {
            assert!(
                matches!(
                    collection_name(bad),
                    Err(CatalogError::BadRequest {
                        field: "collection name",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn iso_dates_are_real_days() {
        for good in [
            "2020-02-29",
            "2000-02-29",
            "0001-01-01",
            "9999-12-31",
            "2021-04-30",
        ] {
            assert!(iso_date("acquired", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "2021-02-29",
            "1900-02-29",
            "2021-04-31",
            "2021-13-01",
            "2021-00-10",
            "2021-01-00",
            "0000-01-01",
            "20210101",
            "2021-1-01",
            "2021/01/01",
            "2021-01-01T00",
            "+021-01-01",
            "2021-0a-01",
            "２０２１-01-01",
        ] {
            assert!(
                matches!(
                    iso_date("acquired", bad),
                    Err(CatalogError::BadRequest {
                        field: "acquired",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn key_lists_need_distinct_names() -> Result<(), CatalogError> {
        let a = KeyDef::new("a", "")?;
        assert!(key_defs(&[a.clone(), KeyDef::new("b", "")?]).is_ok());
        assert!(key_defs(&[a.clone(), a]).is_err());
        assert!(key_defs(&[]).is_err());
        let many: Vec<KeyDef> = (0..=MAX_KEYS)
            .map(|i| KeyDef::new(format!("k{i}"), ""))
            .collect::<Result<_, _>>()?;
        assert!(key_defs(&many).is_err());
        assert!(key_defs(&many[..MAX_KEYS]).is_ok());
        Ok(())
    }
}
