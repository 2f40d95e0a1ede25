//! The settings a client asks for in its start-up message (`DateStyle`,
//! `TimeZone`, `search_path`, `-c name=value` in `options`, …), applied to
//! whichever pooled session serves its transaction.
//!
//! Rules:
//! - A setting the server already reports with the same value (a driver's
//!   `client_encoding=UTF8`, say) is dropped at login: most clients then
//!   ask for nothing, and their transactions pay nothing.
//! - The rest are applied with `set_config`, names and values passed as
//!   quoted literals, on a session that does not hold exactly them yet; a
//!   session keeps them for the next client that asks for the same, and
//!   any other client's transaction resets them first (`apply`).
//! - Applying them is not pipelined with the client's messages: a value
//!   the server refuses ends the client's connection before anything of
//!   its transaction ran, as a direct connection would refuse the login.
//! - `application_name` is reported to the client, not applied: the pool's
//!   sessions keep the gateway's name. `user` and `database` name the
//!   tenant (`login.rs`). A replication connection is refused.
//! - A setting the server reports to the client during a transaction
//!   (`TRACKED`: a `SET TimeZone`, say, which the client now believes) is
//!   kept as if asked for at start-up (`keep`), as PgBouncer keeps them:
//!   the client's next transactions, on any session, hold it too. Other
//!   session settings last their transaction.

use std::sync::Arc;

use crate::pg::RawError;
use crate::router::WireConnection;

/// Longest setting name and value taken.
const MAX_NAME: usize = 63;
const MAX_VALUE: usize = 4096;

/// Start-up parameters that are not settings to apply.
const NOT_SETTINGS: &[&str] = &["user", "database", "application_name", "options"];

/// The settings PostgreSQL reports to the client when they change, that a
/// client may set and that the gateway keeps for it. Not the read-only
/// default, the session's user, nor `application_name` (see above).
const TRACKED: &[&str] = &[
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "standard_conforming_strings",
];

/// What a client's start-up message asked for that the gateway cannot do.
#[derive(Debug)]
pub(super) struct Unsupported(pub String);

/// A client's settings, as one statement that applies them all; `None`
/// when it asked for nothing the server does not already report.
#[derive(Debug)]
pub(super) struct ClientSettings {
    pub apply: Option<Arc<str>>,
    /// Each setting applied, to report to the client at login.
    pub asked: Vec<(String, String)>,
}

impl ClientSettings {
    /// The settings in `params` that differ from what the server reports
    /// in `reported`.
    pub(super) fn from_startup(
        params: &[(String, String)],
        reported: &[(String, String)],
    ) -> Result<Self, Unsupported> {
        let mut asked: Vec<(String, String)> = Vec::new();
        for (name, value) in params {
            if name == "replication" {
                if !matches!(
                    value.to_ascii_lowercase().as_str(),
                    "false" | "off" | "no" | "0"
                ) {
                    return Err(Unsupported(
                        "replication connections are not served by the gateway".into(),
                    ));
                }
            } else if name == "options" {
                asked.extend(options(value)?);
            } else if !NOT_SETTINGS.contains(&name.as_str()) && !name.starts_with("_pq_.") {
                asked.push((name.clone(), value.clone()));
            }
        }
        for (name, value) in &asked {
            check(name, value)?;
        }
        // Only a later value of the same name counts, as in PostgreSQL.
        let mut kept: Vec<(String, String)> = Vec::new();
        for (name, value) in asked {
            kept.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            kept.push((name, value));
        }
        let differ: Vec<(String, String)> = kept
            .into_iter()
            .filter(|(name, value)| !already(reported, name, value))
            .collect();
        Ok(Self {
            apply: statement(&differ),
            asked: differ,
        })
    }

    /// Keeps `value` of `name`, which the server reported to the client
    /// inside a transaction, when it is one of `TRACKED`: the client's next
    /// transactions are served with it.
    pub(super) fn keep(&mut self, name: &str, value: &str) {
        if !TRACKED.iter().any(|t| t.eq_ignore_ascii_case(name)) || check(name, value).is_err() {
            return;
        }
        if self
            .asked
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
        {
            return;
        }
        self.asked.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.asked.push((name.to_string(), value.to_string()));
        self.apply = statement(&self.asked);
    }
}

/// One statement that applies `settings`; `None` for none.
fn statement(settings: &[(String, String)]) -> Option<Arc<str>> {
    (!settings.is_empty()).then(|| {
        let calls: Vec<String> = settings
            .iter()
            .map(|(name, value)| {
                format!(
                    "pg_catalog.set_config({}, {}, false)",
                    literal(name),
                    literal(value)
                )
            })
            .collect();
        Arc::from(format!("SELECT {}", calls.join(", ")))
    })
}

/// Why a client's settings could not be applied to a session.
pub(super) enum Unapplied {
    /// The server refused one: its SQLSTATE and message.
    Refused(String, String),
    /// The session broke.
    Lost,
}

/// Makes `session` hold exactly the settings `wanted` before a client's
/// transaction: applies them (after a reset, when it held something
/// else) on a session that does not hold them yet. A session that must
/// lose settings of another client's, and gets none, is left for the
/// relay's pipelined reset.
pub(super) async fn apply(
    session: &mut WireConnection,
    wanted: Option<&Arc<str>>,
) -> Result<(), Unapplied> {
    let Some(wanted) = wanted else {
        if session.settings.take().is_some() {
            session.leaves_state = true;
        }
        return Ok(());
    };
    if !session.leaves_state && session.settings.as_ref() == Some(wanted) {
        return Ok(());
    }
    let sql = if session.leaves_state || session.settings.is_some() {
        format!("{}; {wanted}", super::transaction::reset(session))
    } else {
        wanted.to_string()
    };
    session.settings = None;
    session.leaves_state = true;
    match session.raw().query_value(&sql).await {
        Ok(_) => {
            session.leaves_state = false;
            session.settings = Some(wanted.clone());
            Ok(())
        }
        Err(RawError::Refused { code, message }) => Err(Unapplied::Refused(code, message)),
        Err(_) => Err(Unapplied::Lost),
    }
}

/// An escape-string literal: read alike whatever the session's
/// `standard_conforming_strings` (a client may have turned it off).
fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Whether the server reports `name` with `value` already. Encodings are
/// compared as PostgreSQL names them (`utf8`, `UTF-8` and `UTF8` alike).
fn already(reported: &[(String, String)], name: &str, value: &str) -> bool {
    let simple = |text: &str| {
        text.chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .collect::<String>()
            .to_ascii_lowercase()
    };
    reported.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case(name)
            && if name.eq_ignore_ascii_case("client_encoding") {
                simple(v) == simple(value)
            } else {
                v == value
            }
    })
}

fn check(name: &str, value: &str) -> Result<(), Unsupported> {
    let mut chars = name.chars();
    let named = name.len() <= MAX_NAME
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !named {
        return Err(Unsupported(format!(
            "\"{}\" is not a setting the gateway can apply",
            name.chars().take(MAX_NAME).collect::<String>()
        )));
    }
    if value.len() > MAX_VALUE {
        return Err(Unsupported(format!(
            "the value of \"{name}\" is longer than {MAX_VALUE} bytes"
        )));
    }
    Ok(())
}

/// The settings of an `options` parameter: `-c name=value`, `-cname=value`
/// or `--name=value`, split on spaces, a backslash keeping the next
/// character (as PostgreSQL reads it).
fn options(text: &str) -> Result<Vec<(String, String)>, Unsupported> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let setting = if word == "-c" {
            words.next().unwrap_or_default()
        } else if let Some(rest) = word.strip_prefix("-c").or(word.strip_prefix("--")) {
            rest.to_string()
        } else {
            return Err(Unsupported(format!(
                "the option \"{word}\" is not supported by the gateway: only -c name=value"
            )));
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(Unsupported(format!(
                "the option \"{setting}\" has no value: -c name=value"
            )));
        };
        // `--name=value` may spell the name's underscores as dashes.
        settings.push((name.replace('-', "_"), value.to_string()));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_the_server_reports_alike_cost_nothing_and_the_rest_are_one_quoted_statement() {
        let reported = pairs(&[("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY")]);
        let none = ClientSettings::from_startup(
            &pairs(&[
                ("user", "acme"),
                ("database", "acme"),
                ("application_name", "app"),
                ("client_encoding", "utf-8"),
                ("DateStyle", "ISO, MDY"),
            ]),
            &reported,
        )
        .unwrap();
        assert_eq!(none.apply, None);
        let some = ClientSettings::from_startup(
            &pairs(&[
                ("client_encoding", "UTF8"),
                ("DateStyle", "German"),
                ("search_path", "it's, \\public"),
                (
                    "options",
                    "-c statement_timeout=5s --extra-float-digits=3 -cwork_mem=8MB",
                ),
            ]),
            &reported,
        )
        .unwrap();
        assert_eq!(
            some.apply.as_deref(),
            Some(
                "SELECT pg_catalog.set_config(E'DateStyle', E'German', false), \
                 pg_catalog.set_config(E'search_path', E'it''s, \\\\public', false), \
                 pg_catalog.set_config(E'statement_timeout', E'5s', false), \
                 pg_catalog.set_config(E'extra_float_digits', E'3', false), \
                 pg_catalog.set_config(E'work_mem', E'8MB', false)"
            )
        );
    }

    #[test]
    fn the_last_value_of_a_name_counts_and_a_backslash_keeps_a_space() {
        let settings = ClientSettings::from_startup(
            &pairs(&[
                ("TimeZone", "UTC"),
                ("options", r"-c timezone=Europe/Paris -c search_path=a,\ b"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(
            settings.asked,
            pairs(&[("timezone", "Europe/Paris"), ("search_path", "a, b")])
        );
    }

    #[test]
    fn only_settings_the_server_reports_are_kept_and_a_later_value_replaces_the_start_ups() {
        let mut settings =
            ClientSettings::from_startup(&pairs(&[("timezone", "UTC")]), &[]).unwrap();
        settings.keep("search_path", "elsewhere");
        settings.keep("default_transaction_read_only", "off");
        settings.keep("is_superuser", "on");
        assert_eq!(settings.asked, pairs(&[("timezone", "UTC")]));
        settings.keep("TimeZone", "Asia/Tokyo");
        settings.keep("DateStyle", "German, DMY");
        assert_eq!(
            settings.asked,
            pairs(&[("TimeZone", "Asia/Tokyo"), ("DateStyle", "German, DMY")])
        );
        assert_eq!(
            settings.apply.as_deref(),
            Some(
                "SELECT pg_catalog.set_config(E'TimeZone', E'Asia/Tokyo', false), \
                 pg_catalog.set_config(E'DateStyle', E'German, DMY', false)"
            )
        );
    }

    #[test]
    fn replication_odd_options_and_names_that_are_not_settings_are_refused() {
        for params in [
            pairs(&[("replication", "database")]),
            pairs(&[("options", "-B 100")]),
            pairs(&[("options", "-c nothing")]),
            pairs(&[("bad name'); DROP TABLE x; --", "1")]),
            pairs(&[("", "1")]),
            pairs(&[("search_path", &"x".repeat(MAX_VALUE + 1))]),
        ] {
            assert!(
                ClientSettings::from_startup(&params, &[]).is_err(),
                "{params:?}"
            );
        }
        assert!(ClientSettings::from_startup(&pairs(&[("replication", "off")]), &[]).is_ok());
    }
}
