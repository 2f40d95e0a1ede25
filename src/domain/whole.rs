//! Whole numbers from JSON: JSON Schema counts `3186.0` as an integer, so
//! wherever the API's spec says `integer`, an integral float is accepted
//! too. Used with `#[serde(deserialize_with = …)]`.

use serde::{Deserialize, Deserializer};

/// A JSON number that is a whole number within `T`, `3186.0` included.
fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f <= i64::MAX as f64 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!(
            "expected a whole number, got {n}"
        ))),
    }
}

/// `deserialize_with` for an optional unsigned 32-bit integer field.
pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<Whole>::deserialize(d)? {
        None => Ok(None),
        Some(Whole(n)) => u32::try_from(n)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{n} is out of range"))),
    }
}

/// `deserialize_with` for an optional signed 32-bit integer field.
pub fn opt_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    match Option::<Whole>::deserialize(d)? {
        None => Ok(None),
        Some(Whole(n)) => i32::try_from(n)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{n} is out of range"))),
    }
}

/// `deserialize_with` for an unsigned size field with a default.
pub fn usize_field<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let Whole(n) = Whole::deserialize(d)?;
    usize::try_from(n).map_err(|_| serde::de::Error::custom(format!("{n} is out of range")))
}

struct Whole(i64);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole(d).map(Whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "opt_u32")]
        n: Option<u32>,
    }

    #[test]
    fn a_whole_number_written_as_a_float_is_an_integer() {
        let parse = |s: &str| serde_json::from_str::<Body>(s).map(|b| b.n);
        assert_eq!(parse(r#"{"n": 3186}"#).unwrap(), Some(3186));
        assert_eq!(parse(r#"{"n": 3186.0}"#).unwrap(), Some(3186));
        assert_eq!(parse(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(parse(r#"{}"#).unwrap(), None);
        assert!(parse(r#"{"n": 3186.5}"#).is_err());
        assert!(parse(r#"{"n": -1}"#).is_err());
        assert!(parse(r#"{"n": "5"}"#).is_err());
    }
}
