//! Timestamps in responses. chrono's own `Serialize` writes RFC 3339 in a
//! dozen small pieces through `collect_str`, and serde_json runs its string
//! escaper on every piece; formatting into one string first and writing that
//! once is cheaper (see docs/BENCHMARKS.md), with the same text.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `#[serde(serialize_with = "timestamp::rfc3339")]`: the text chrono's
/// `Serialize` writes for a `DateTime<Utc>`.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[derive(serde::Serialize)]
    struct Ours(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);

    #[test]
    fn writes_exactly_what_chronos_own_serialize_writes() {
        let whole = Utc.with_ymd_and_hms(2026, 11, 29, 9, 5, 7).unwrap();
        for at in [
            whole,
            whole + chrono::Duration::milliseconds(120),
            whole + chrono::Duration::microseconds(123_456),
            whole + chrono::Duration::nanoseconds(1),
            Utc.with_ymd_and_hms(1999, 1, 1, 0, 0, 0).unwrap(),
        ] {
            assert_eq!(
                serde_json::to_string(&Ours(at)).unwrap(),
                serde_json::to_string(&at).unwrap()
            );
        }
    }
}
