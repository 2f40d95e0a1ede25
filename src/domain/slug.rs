use std::fmt;

use serde::{Deserialize, Serialize};

/// A tenant's human handle: `^[a-z][a-z0-9-]{1,62}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z][a-z0-9-]{1,62}$")]
pub struct Slug(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "slug must be 2 to 63 characters: a lowercase letter, then lowercase letters, digits or '-'"
)]
pub struct InvalidSlug;

impl Slug {
    pub fn parse(s: &str) -> Result<Self, InvalidSlug> {
        let bytes = s.as_bytes();
        let ok = (2..=63).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes[1..]
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(InvalidSlug)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Slug::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant's display name: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TenantName(String);

/// A name's characters as the API's schema states them: at least one that
/// is not white space, and no control characters (C0, DEL, C1).
pub const NAME_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

impl utoipa::PartialSchema for TenantName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(200))
            .pattern(Some(NAME_PATTERN))
            .into()
    }
}

impl utoipa::ToSchema for TenantName {}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("name must be 1 to 200 characters without control characters")]
pub struct InvalidName;

impl TenantName {
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        let trimmed = s.trim();
        let len = trimmed.chars().count();
        if (1..=200).contains(&len) && !trimmed.chars().any(char::is_control) {
            Ok(Self(trimmed.to_string()))
        } else {
            Err(InvalidName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TenantName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantName::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_documented_pattern() {
        for good in ["ab", "acme", "acme-corp-2", &format!("a{}", "b".repeat(62))] {
            assert!(Slug::parse(good).is_ok(), "{good}");
        }
        let too_long = format!("a{}", "b".repeat(63));
        for bad in [
            "a",
            "1abc",
            "-abc",
            "Acme",
            "ac me",
            "acme_corp",
            "acme\0",
            "acmé",
            "x'; DROP DATABASE x; --",
            &too_long,
        ] {
            assert_eq!(Slug::parse(bad), Err(InvalidSlug), "{bad:?}");
        }
    }

    #[test]
    fn names_refuse_control_characters_and_overlong_input() {
        assert!(TenantName::parse("Acme Support, Inc.").is_ok());
        assert_eq!(TenantName::parse("  ").unwrap_err(), InvalidName);
        assert_eq!(TenantName::parse("a\0b").unwrap_err(), InvalidName);
        assert_eq!(
            TenantName::parse(&"x".repeat(10_000)).unwrap_err(),
            InvalidName
        );
    }
}
