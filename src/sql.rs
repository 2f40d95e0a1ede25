//! Quoting for the few SQL identifiers that cannot be bind parameters
//! (database and role names in DDL). Values always travel as parameters.

/// Quotes `ident` as a PostgreSQL identifier. Callers pass names that were
/// generated or validated; quoting is the second line of defence.
pub fn quote_ident(ident: &str) -> String {
    debug_assert!(!ident.contains('\0'), "identifiers never contain NUL");
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes `value` as a string literal, for the rare DDL that takes no
/// parameters (`CREATE ROLE … PASSWORD '…'`).
pub fn quote_literal(value: &str) -> String {
    debug_assert!(!value.contains('\0'), "literals never contain NUL");
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_with_quotes_are_escaped_not_terminated() {
        assert_eq!(quote_ident("plain"), "\"plain\"");
        assert_eq!(
            quote_ident("a\"; DROP DATABASE x; --"),
            "\"a\"\"; DROP DATABASE x; --\""
        );
    }

    #[test]
    fn literals_with_quotes_are_escaped_not_terminated() {
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
