//! Access tokens. HS256 with the installation's secret is the embedded
//! default; RS256, ES256 and EdDSA tokens are verified by their `kid`
//! against the JWKS file (`jwks.rs`). The algorithm is taken from the key,
//! never from the token alone, and `exp` is required, so `alg: none` or a
//! token signed with a public key as an HMAC secret is refused before its
//! claims are read. `nbf` is honoured, and `iss` and `aud` are checked when
//! configured.
//!
//! Rules:
//! - a token whose header names a `kid` is verified by that JWKS key alone,
//!   with that key's algorithm; an unknown `kid` is refused. An HS256 token
//!   names no `kid` (the secret has none), so it can never borrow a JWKS
//!   key's name, nor outlive that key's removal.
//! - a remembered token is used again only while the key that verified it
//!   is still in the JWKS with the same material (its fingerprint); a key
//!   removed or replaced under the same `kid` sends the token back through
//!   full verification.
//! - only a token whose signature verified is remembered, by its exact
//!   text, and its `exp` is checked again on every use.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};

use super::jwks::{PublicKeys, ASYMMETRIC};
use super::{AuthError, Claims};

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// Verified tokens remembered; a client sends the same token on every
/// request until it expires.
const VERIFIED_TOKENS: u64 = 4096;

/// The JWKS key that verified a token, by `kid` and fingerprint.
#[derive(Clone, PartialEq, Eq)]
struct VerifiedBy {
    kid: Arc<str>,
    fingerprint: [u8; 32],
}

/// A verified token's claims, and the JWKS key that verified it (none for
/// HS256): a key that leaves the JWKS, or is replaced under its `kid`,
/// takes its tokens' memory with it.
type Verified = (Arc<Claims>, Option<VerifiedBy>);
type VerifiedTokens = moka::sync::Cache<Arc<str>, Verified, foldhash::fast::RandomState>;

/// What a token must say of itself, when configured.
#[derive(Debug, Default, Clone)]
pub struct ClaimRules {
    /// `TENANT_PLANE_JWT_ISSUER`: the only accepted `iss`.
    pub issuer: Option<String>,
    /// `TENANT_PLANE_JWT_AUDIENCE`: the `aud` a token must name.
    pub audience: Option<String>,
}

/// A private key `token` signs with, named by its `kid` in the JWKS.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    key: EncodingKey,
}

impl SigningKey {
    /// A PKCS#8 (or, for RSA, PKCS#1) PEM private key for `alg`.
    pub fn from_pem(kid: &str, alg: Algorithm, pem: &[u8]) -> Result<Self, AuthError> {
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => {
                return Err(AuthError::InvalidCredential(
                    "not an RS256, ES256 or EdDSA key",
                ))
            }
        }
        .map_err(AuthError::Key)?;
        Ok(Self {
            kid: kid.into(),
            alg,
            key,
        })
    }
}

/// Signs and verifies access tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: Option<Arc<PublicKeys>>,
    rules: Arc<ClaimRules>,
    /// Tokens whose signature and claims already checked out, by their
    /// exact text: the signature and the claims' JSON cost more than the
    /// rest of a data-plane read. Expiry is still checked on every use.
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
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes).map_err(AuthError::Key)?,
            decoding: DecodingKey::from_secret(bytes).map_err(AuthError::Key)?,
            public: None,
            rules: Arc::default(),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .build_with_hasher(foldhash::fast::RandomState::default()),
        })
    }

    /// Also accept RS256, ES256 and EdDSA tokens signed by a key of `keys`.
    pub fn with_public_keys(mut self, keys: Arc<PublicKeys>) -> Self {
        self.public = Some(keys);
        self
    }

    /// Check `iss` and `aud` as configured; tokens signed here carry them.
    pub fn with_rules(mut self, rules: ClaimRules) -> Self {
        self.rules = Arc::new(rules);
        self
    }

    /// An HS256 token with the installation's secret.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &self.stamped(claims),
            &self.encoding,
        )
        .map_err(AuthError::Key)
    }

    /// A token signed with a private key, named in its header by `kid`.
    pub fn sign_with(&self, claims: &Claims, key: &SigningKey) -> Result<String, AuthError> {
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &self.stamped(claims), &key.key).map_err(AuthError::Key)
    }

    /// The claims with the configured `iss` and `aud`.
    fn stamped(&self, claims: &Claims) -> serde_json::Value {
        let mut value = serde_json::to_value(claims).expect("claims serialise");
        if let Some(issuer) = &self.rules.issuer {
            value["iss"] = issuer.as_str().into();
        }
        if let Some(audience) = &self.rules.audience {
            value["aud"] = audience.as_str().into();
        }
        value
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &self.rules.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.rules.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// A token this installation's keys verified before and still trust:
    /// its claims, or `Expired`; `None` when it must be verified in full.
    pub fn remembered(&self, token: &str) -> Option<Result<Arc<Claims>, AuthError>> {
        let (claims, by) = self.verified.get(token)?;
        if by.is_none_or(|by| self.still_trusted(&by)) {
            if claims.exp < now_secs().saturating_sub(LEEWAY_SECS as i64) {
                self.verified.invalidate(token);
                return Some(Err(AuthError::Expired));
            }
            return Some(Ok(claims));
        }
        // Its key left the JWKS or changed: verified again from scratch.
        self.verified.invalidate(token);
        None
    }

    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        if let Some(remembered) = self.remembered(token) {
            return remembered;
        }
        let header = jsonwebtoken::decode_header(token).map_err(AuthError::InvalidToken)?;
        let (decoded, by) = match (header.alg, header.kid) {
            (Algorithm::HS256, None) => {
                (self.decode(token, &self.decoding, Algorithm::HS256)?, None)
            }
            (Algorithm::HS256, Some(_)) => {
                return Err(AuthError::InvalidCredential(
                    "an HS256 token names no `kid`",
                ))
            }
            (alg, Some(kid)) if ASYMMETRIC.contains(&alg) => {
                let key = self.public.as_ref().and_then(|keys| keys.get(&kid)).ok_or(
                    AuthError::InvalidCredential("no trusted key has this `kid`"),
                )?;
                // The key decides the algorithm: a token may not pick another.
                if key.alg != alg {
                    return Err(AuthError::InvalidCredential(
                        "the token's `alg` is not its key's",
                    ));
                }
                let by = VerifiedBy {
                    kid: Arc::from(kid),
                    fingerprint: key.fingerprint,
                };
                (self.decode(token, &key.key, key.alg)?, Some(by))
            }
            (alg, None) if ASYMMETRIC.contains(&alg) => {
                return Err(AuthError::InvalidCredential(
                    "an asymmetric token names its key in `kid`",
                ))
            }
            _ => return Err(AuthError::InvalidCredential("an unsupported `alg`")),
        };
        decoded
            .check_shape()
            .map_err(AuthError::InvalidCredential)?;
        let claims = Arc::new(decoded);
        self.verified.insert(Arc::from(token), (claims.clone(), by));
        Ok(claims)
    }

    /// Whether the JWKS still holds the very key that verified a token.
    fn still_trusted(&self, by: &VerifiedBy) -> bool {
        self.public
            .as_ref()
            .and_then(|keys| keys.get(&by.kid))
            .is_some_and(|key| key.fingerprint == by.fingerprint)
    }

    fn decode(&self, token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, key, &self.validation(alg))
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::InvalidToken(e),
            })
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
            .insert(Arc::from(token.as_str()), (Arc::new(claims(expired)), None));
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
    fn an_hs256_token_with_a_kid_in_its_header_is_refused_though_the_secret_signed_it() {
        let keys = keys();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("some-jwks-key".into());
        let secret = EncodingKey::from_secret(b"unit-test-secret-0123456789abcdef").unwrap();
        let token =
            jsonwebtoken::encode(&header, &keys.stamped(&claims(now_secs() + 600)), &secret)
                .unwrap();
        assert!(matches!(
            keys.verify(&token),
            Err(AuthError::InvalidCredential(_))
        ));
        assert!(!keys.verified.contains_key(token.as_str()));
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
