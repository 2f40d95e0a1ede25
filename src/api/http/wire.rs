//! Wire types for the request fields the spec bounds, so that what
//! `/openapi.json` allows is exactly what the server accepts:
//! - JSON integers: JSON Schema counts `3186.0` as an integer, so an
//!   integral float is accepted wherever the spec says `integer`
//!   (`domain::whole`, which the settings types use too);
//! - page limits: one rule for the whole API, bounded in the spec
//!   (`minimum: 1`, `maximum: 500`), and anything else refused with 400.

use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

/// The largest page any list answers.
pub use crate::domain::MAX_PAGE;

pub use crate::domain::whole::{opt_i32, opt_u32, usize_field};

/// A field that may be absent (`None`, with `#[serde(default)]`), `null`
/// (`Some(None)`: clear it) or a value (`Some(Some(_))`).
pub fn nullable<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// A `date-time` from the query string, as RFC 3339 says (`#[serde(default,
/// deserialize_with = "date_time")]`): a year of four digits. chrono's own
/// parsing takes any signed year, past what PostgreSQL stores (4713 BC) or
/// chrono can count from (a 500, or a panic, where a range is worked out).
pub fn date_time<'de, D>(de: D) -> Result<Option<chrono::DateTime<chrono::Utc>>, D::Error>
where
    D: Deserializer<'de>,
{
    let Some(text) = Option::<String>::deserialize(de)? else {
        return Ok(None);
    };
    chrono::DateTime::parse_from_rfc3339(&text)
        .map(|at| Some(at.with_timezone(&chrono::Utc)))
        .map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an RFC 3339 date-time, such as 2026-01-31T00:00:00Z"
            ))
        })
}

/// A page's size from the query string: 1 to `MAX_PAGE`; anything else is
/// refused (400 `invalid_query`), never clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(pub u16);

impl PageLimit {
    pub fn get(limit: Option<PageLimit>, default: u16) -> i64 {
        i64::from(limit.map_or(default, |l| l.0))
    }
}

/// A page cut from `rows`, read with one more than `limit`, and the cursor
/// of the next page: its last row's, when there was more.
pub fn page<T, C>(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> C) -> (Vec<T>, Option<C>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last().map(cursor)).flatten();
    (rows, next)
}

/// A query string that takes only a page size (`?limit=`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LimitQuery {
    limit: Option<PageLimit>,
}

impl LimitQuery {
    /// The page size asked for, or `default`.
    pub fn limit(&self, default: u16) -> i64 {
        PageLimit::get(self.limit, default)
    }
}

impl<'de> Deserialize<'de> for PageLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Query values arrive as text: "50", or "50.0" for a whole number.
        let text = String::deserialize(d)?;
        crate::domain::parse_page_limit(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for PageLimit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_PAGE))
            .description(Some(format!(
                "Page size, 1 to {MAX_PAGE}; out of range is refused with 400"
            )))
            .into()
    }
}

impl utoipa::ToSchema for PageLimit {}

/// The largest sequence number the API takes: the largest integer a JSON
/// number holds exactly (2^53 - 1), which clients in any language can send.
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;

/// An event or delivery number from the query string or a header: a whole
/// number from 0 to `MAX_SEQUENCE` ("42" or "42.0"); anything else is 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence(pub i64);

impl Sequence {
    pub fn parse(text: &str) -> Option<Self> {
        let n: f64 = text.trim().parse().ok()?;
        (n.fract() == 0.0 && (0.0..=MAX_SEQUENCE as f64).contains(&n)).then_some(Self(n as i64))
    }
}

impl<'de> Deserialize<'de> for Sequence {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("must be a whole number from 0 to {MAX_SEQUENCE}"))
        })
    }
}

impl utoipa::PartialSchema for Sequence {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(MAX_SEQUENCE))
            .into()
    }
}

impl utoipa::ToSchema for Sequence {}

/// A server's admin DSN as the API takes it: the URL form that parses, with
/// a user, one host, an optional port and database, an optional `sslmode`,
/// and no characters that need percent-encoding. (The CLI also takes the
/// `host=… user=…` form, and `sslrootcert=<file>`.)
pub const DSN_PATTERN: &str = concat!(
    "^postgres(ql)?://[A-Za-z0-9._-]+(:[A-Za-z0-9._-]*)?@[A-Za-z0-9.-]+",
    "(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?",
    "(/[A-Za-z0-9_-]*)?",
    "(\\?sslmode=(disable|prefer|require|verify-ca|verify-full))?$"
);

/// The longest DSN the API takes.
const MAX_DSN: usize = 1024;

/// A DSN that matches `DSN_PATTERN`; held as a secret from the start.
pub struct Dsn(pub secrecy::SecretString);

impl std::fmt::Debug for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dsn(********)")
    }
}

impl<'de> Deserialize<'de> for Dsn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(DSN_PATTERN).expect("DSN_PATTERN compiles")
        });
        let text = String::deserialize(d)?;
        if text.len() > MAX_DSN || !PATTERN.is_match(&text) {
            // The DSN may hold a password: never echo it.
            return Err(serde::de::Error::custom(
                "dsn must be postgres://user[:password]@host[:port][/database][?sslmode=…]",
            ));
        }
        Ok(Self(text.into()))
    }
}

impl utoipa::PartialSchema for Dsn {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_DSN))
            .pattern(Some(DSN_PATTERN))
            .into()
    }
}

impl utoipa::ToSchema for Dsn {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_is_the_url_form_and_is_never_echoed() {
        let parse = |s: &str| serde_json::from_value::<Dsn>(serde_json::json!(s));
        for good in [
            "postgres://admin:pw@db.internal:5432/postgres",
            "postgresql://admin@127.0.0.1",
            "postgres://a@h:65535/",
        ] {
            assert!(parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "host=x user=y",
            "postgres://h:5432",
            "postgres://a:pw@h:0",
            "postgres://a:pw@h:65536",
            "postgres://a:p%20w@h",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(!bad.contains("pw") || !err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn a_page_limit_is_refused_out_of_range_not_clamped() {
        let parse = |s: &str| serde_json::from_value::<PageLimit>(serde_json::json!(s));
        assert_eq!(parse("50").unwrap(), PageLimit(50));
        assert_eq!(parse("500.0").unwrap(), PageLimit(500));
        for bad in ["0", "501", "420151", "2147483646", "1.5", "x", "-1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
