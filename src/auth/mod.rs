//! Who is calling and what they may do: JWT verification (the
//! installation's keys, and each tenant's own identity provider in
//! `providers`), API keys, roles, permissions and scopes. This module never
//! looks at request bodies.

pub mod api_key;
mod claims;
pub mod console_sessions;
mod error;
pub mod jwks;
mod jwt;
mod principal;
pub mod providers;
pub mod reach;
pub mod scram;
pub mod wire_keys;

pub use claims::{Action, Claims, Permission, Resource, Role, Scope};
pub use error::AuthError;
pub use jwt::{ClaimRules, JwtKeys, SigningKey};
pub use principal::{authenticate, authenticate_with, Principal, Verifiers};

/// The token keys the settings describe: the HS256 `secret`, the JWKS
/// file's public keys (whose watcher the caller starts), and the `iss` and
/// `aud` rules.
pub fn keys_from_settings(
    settings: &crate::config::Settings,
    secret: &secrecy::SecretString,
) -> anyhow::Result<(JwtKeys, Option<std::sync::Arc<jwks::PublicKeys>>)> {
    let mut keys = JwtKeys::hs256(secret)?.with_rules(ClaimRules {
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
    });
    let public = match &settings.jwt_public_keys {
        Some(path) => {
            let public = jwks::PublicKeys::load(path)?;
            keys = keys.with_public_keys(public.clone());
            Some(public)
        }
        None => None,
    };
    Ok((keys, public))
}

/// The newest key of the JWKS (the last in the file) whose private key is
/// in `dir` as `<kid>.pem`.
pub fn newest_signing_key(
    public: &jwks::PublicKeys,
    dir: &std::path::Path,
) -> anyhow::Result<SigningKey> {
    let set = public.current();
    let keys = set.newest_first();
    for key in &keys {
        // A kid names a file only when it is a plain name.
        let plain = !key.kid.is_empty()
            && key
                .kid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !key.kid.starts_with('.');
        if !plain {
            continue;
        }
        let path = dir.join(format!("{}.pem", key.kid));
        match std::fs::read(&path) {
            Ok(pem) => return Ok(SigningKey::from_pem(&key.kid, key.alg, &pem)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())))
            }
        }
    }
    let kids: Vec<_> = keys.iter().map(|k| k.kid.as_str()).collect();
    anyhow::bail!(
        "no private key in {} for any key of the JWKS (looked for <kid>.pem with kid in {kids:?})",
        dir.display()
    )
}
