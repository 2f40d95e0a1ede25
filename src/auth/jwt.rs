//! HS256 access tokens. The algorithm is pinned and `exp` is required, so a
//! token with `alg: none` or another algorithm is rejected before its claims
//! are read.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};

use super::{AuthError, Claims};

/// Seconds of clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 30;
/// Verified tokens remembered; a client sends the same token on every
/// request until it expires.
const VERIFIED_TOKENS: u64 = 4096;

type VerifiedTokens = moka::sync::Cache<Arc<str>, Arc<Claims>, foldhash::fast::RandomState>;

/// Signs and verifies access tokens with one shared secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens whose signature and claims already checked out, by their
    /// exact text: the HMAC and the claims' JSON cost more than the rest of
    /// a data-plane read. Expiry is still checked on every use.
    verified: VerifiedTokens,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([REDACTED])")
    }
}

impl JwtKeys {
    pub fn hs256(secret: &SecretString) -> Result<Self, AuthError> {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes).map_err(AuthError::Key)?,
            decoding: DecodingKey::from_secret(bytes).map_err(AuthError::Key)?,
            validation,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .build_with_hasher(foldhash::fast::RandomState::default()),
        })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(AuthError::Key)
    }

    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        if let Some(claims) = self.verified.get(token) {
            if claims.exp < now_secs().saturating_sub(LEEWAY_SECS as i64) {
                self.verified.invalidate(token);
                return Err(AuthError::Expired);
            }
            return Ok(claims);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::InvalidToken(e),
            })?;
        data.claims
            .check_shape()
            .map_err(AuthError::InvalidCredential)?;
        let claims = Arc::new(data.claims);
        self.verified.insert(Arc::from(token), claims.clone());
        Ok(claims)
    }
}

/// Seconds since the epoch, as `exp` counts them.
fn now_secs() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn keys() -> JwtKeys {
        JwtKeys::hs256(&SecretString::from("unit-test-secret-0123456789abcdef")).unwrap()
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "operator".into(),
            tenant_id: None,
            subtenant_id: None,
            role: Role::SuperAdmin,
            permissions: vec![],
            exp,
            iat: None,
        }
    }

    #[test]
    fn a_token_verified_twice_gives_the_same_claims_and_is_remembered() {
        let keys = keys();
        let token = keys.sign(&claims(now_secs() + 600)).unwrap();
        let first = keys.verify(&token).unwrap();
        assert!(keys.verified.contains_key(token.as_str()));
        let second = keys.verify(&token).unwrap();
        assert!(
            Arc::ptr_eq(&first, &second),
            "the second use is served from memory"
        );
        assert_eq!(*second, claims(first.exp));
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires_and_forgotten() {
        let keys = keys();
        let token = keys.sign(&claims(now_secs() + 600)).unwrap();
        keys.verify(&token).unwrap();
        // As if its expiry had passed since it was remembered.
        let expired = now_secs() - LEEWAY_SECS as i64 - 1;
        keys.verified
            .insert(Arc::from(token.as_str()), Arc::new(claims(expired)));
        assert!(matches!(keys.verify(&token), Err(AuthError::Expired)));
        assert!(!keys.verified.contains_key(token.as_str()));
    }

    #[test]
    fn a_remembered_token_with_one_signature_byte_changed_is_refused() {
        let keys = keys();
        let token = keys.sign(&claims(now_secs() + 600)).unwrap();
        keys.verify(&token).unwrap();
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(matches!(
            keys.verify(&forged),
            Err(AuthError::InvalidToken(_))
        ));
        assert!(!keys.verified.contains_key(forged.as_str()));
    }

    #[test]
    fn another_secret_does_not_accept_a_token_this_one_remembers() {
        let keys = keys();
        let token = keys.sign(&claims(now_secs() + 600)).unwrap();
        keys.verify(&token).unwrap();
        let other =
            JwtKeys::hs256(&SecretString::from("another-secret-0123456789abcdef0")).unwrap();
        assert!(other.verify(&token).is_err());
    }
}
