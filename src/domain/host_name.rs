/// The pattern `is_host_name` checks, as the API's schema states it.
pub const HOST_NAME_PATTERN: &str = "^([a-z0-9][a-z0-9-]{0,62}[.])+[a-z][a-z0-9-]{0,62}$";

/// Whether `name` is a lowercase DNS host name with at least two labels:
/// labels of 1 to 63 letters, digits or '-', not starting with '-'. The
/// last label starts with a letter, so an IPv4 address is never a host
/// name. At most 253 characters.
pub fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.starts_with(|c: char| c.is_ascii_lowercase()))
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_lowercase_dotted_labels() {
        assert!(is_host_name("support.acme.example"));
        for bad in [
            "localhost",
            "Acme.example",
            "-a.example",
            "a..example",
            "a b.example",
            "127.0.0.1",
            "10.0.0.300",
            &format!("{}.example", "a".repeat(64)),
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }
}
