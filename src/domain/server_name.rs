use std::fmt;

use serde::{Deserialize, Serialize};

/// A database server's name: `^[a-z][a-z0-9-]{0,62}$`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z][a-z0-9-]{0,62}$")]
pub struct ServerName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("server name must be 1 to 63 characters: a lowercase letter, then lowercase letters, digits or '-'")]
pub struct InvalidServerName;

impl ServerName {
    pub fn parse(s: &str) -> Result<Self, InvalidServerName> {
        let b = s.as_bytes();
        let ok = (1..=63).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
        ok.then(|| Self(s.to_string())).ok_or(InvalidServerName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ServerName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ServerName::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_lowercase_handles() {
        assert!(ServerName::parse("pg-2").is_ok());
        for bad in ["", "2pg", "Pg", "pg_2", &"a".repeat(64)] {
            assert!(ServerName::parse(bad).is_err(), "{bad}");
        }
    }
}
