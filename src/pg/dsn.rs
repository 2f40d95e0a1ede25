//! Takes `sslmode` and `sslrootcert` out of a DSN before tokio-postgres
//! parses the rest: it knows only three sslmodes and no root certificates.
//! Both libpq forms: `postgres://…?sslmode=verify-full` and
//! `host=… sslmode=verify-full`.

use percent_encoding::percent_decode_str;

use super::PgError;

/// The DSN without the TLS options, and those options' values.
#[derive(Debug, Default, PartialEq)]
pub struct Split {
    pub rest: String,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
}

pub fn split(dsn: &str) -> Result<Split, PgError> {
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        Ok(split_url(dsn))
    } else {
        split_key_values(dsn)
    }
}

fn split_url(dsn: &str) -> Split {
    let Some((base, query)) = dsn.split_once('?') else {
        return Split {
            rest: dsn.to_string(),
            ..Split::default()
        };
    };
    let mut out = Split::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key_text = percent_decode_str(key).decode_utf8_lossy();
        let value_text = percent_decode_str(value).decode_utf8_lossy().into_owned();
        match key_text.as_ref() {
            "sslmode" => out.sslmode = Some(value_text),
            "sslrootcert" => out.sslrootcert = Some(value_text),
            _ => kept.push(pair),
        }
    }
    out.rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    out
}

/// libpq's key/value syntax: `key = value` pairs, values optionally in
/// single quotes with `\'` and `\\` escapes.
fn split_key_values(dsn: &str) -> Result<Split, PgError> {
    let mut out = Split::default();
    let mut kept = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(PgError::Dsn(format!("`{key}` has no value")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(PgError::Dsn("an unfinished escape".into())),
                    },
                    Some(c) => value.push(c),
                    None => return Err(PgError::Dsn("an unclosed quote".into())),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        match key.as_str() {
            "sslmode" => out.sslmode = Some(value),
            "sslrootcert" => out.sslrootcert = Some(value),
            _ => kept.push(format!("{key}='{}'", escape(&value))),
        }
    }
    out.rest = kept.join(" ");
    Ok(out)
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_keeps_its_other_options_and_gives_up_the_tls_ones() {
        let s = split("postgres://u:p@db.example:5433/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(
            s.rest,
            "postgres://u:p@db.example:5433/app?application_name=x"
        );
        assert_eq!(s.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(s.sslrootcert.as_deref(), Some("/etc/ca.pem"));
        let plain = split("postgresql://u@h/db").unwrap();
        assert_eq!(plain.rest, "postgresql://u@h/db");
        assert_eq!(plain.sslmode, None);
    }

    #[test]
    fn key_values_with_quotes_and_escapes_survive_the_split() {
        let s = split(r"host=db.example  password='it\'s a \\secret' sslmode = verify-ca sslrootcert='/a b/ca.pem'").unwrap();
        assert_eq!(s.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(s.sslrootcert.as_deref(), Some("/a b/ca.pem"));
        let config: tokio_postgres::Config = s.rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"it's a \\secret"[..]));
        assert!(matches!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Tcp(h)] if h == "db.example"
        ));
    }

    #[test]
    fn a_broken_key_value_dsn_is_refused_not_guessed() {
        assert!(split("host").is_err());
        assert!(split("host='db").is_err());
        assert!(split(r"host=db password='x\").is_err());
    }
}
