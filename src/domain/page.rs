//! A page's size, as the API's `limit` query and the CLI's `--limit` take
//! it: a whole number from 1 to `MAX_PAGE`. Anything else is refused with
//! the same words on both, never clamped.

/// The largest page a list returns.
pub const MAX_PAGE: u16 = 500;

/// Parses a page size from text: `"50"`, or `"50.0"` for a whole number.
pub fn parse_page_limit(text: &str) -> Result<u16, String> {
    let n: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("limit must be a number, got {text:?}"))?;
    if n.fract() != 0.0 || !(1.0..=f64::from(MAX_PAGE)).contains(&n) {
        return Err(format!("limit must be a whole number from 1 to {MAX_PAGE}"));
    }
    Ok(n as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_limit_is_a_whole_number_from_one_to_the_largest_page() {
        assert_eq!(parse_page_limit("1"), Ok(1));
        assert_eq!(parse_page_limit("500.0"), Ok(500));
        for bad in ["0", "501", "2.5", "-1", "ten"] {
            assert!(parse_page_limit(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_page_limit("0").unwrap_err(),
            "limit must be a whole number from 1 to 500"
        );
    }
}
