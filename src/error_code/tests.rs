//! The list of codes is whole, and each code is one distinct wire string.

use std::collections::HashSet;

use strum::EnumCount;

use super::*;

#[test]
fn all_lists_every_variant_once() {
    let distinct: HashSet<_> = ErrorCode::ALL.iter().collect();
    assert_eq!(
        distinct.len(),
        ErrorCode::ALL.len(),
        "a variant is listed twice"
    );
    assert_eq!(
        ErrorCode::ALL.len(),
        ErrorCode::COUNT,
        "a variant is missing from ALL"
    );
}

#[test]
fn wire_strings_are_distinct_snake_case_and_parse_back() {
    let mut seen = HashSet::new();
    for code in ErrorCode::ALL {
        let s = code.as_str();
        assert!(seen.insert(s), "{s} is used twice");
        assert!(
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{s} is not snake_case"
        );
        assert_eq!(ErrorCode::parse(s), Some(*code));
        assert_eq!(code.to_string(), s);
        assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(s));
    }
    assert_eq!(ErrorCode::parse("no_such_code"), None);
}
