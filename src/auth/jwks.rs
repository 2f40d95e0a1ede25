//! Public keys for asymmetric access tokens (RS256, ES256, EdDSA), read from
//! a JWKS file (`TENANT_PLANE_JWT_PUBLIC_KEYS`) and read again whenever its
//! content changes, so keys rotate without a restart: add the new key, let
//! tokens move to it, then remove the old one.
//!
//! Rule: a JWKS edit that does not parse keeps the last good keys (and is
//! logged), so a half-written edit never locks everyone out; a key removed
//! from the file stops verifying at once (`jwt.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio_util::sync::CancellationToken;

/// The algorithms a JWKS key may have.
pub const ASYMMETRIC: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a JWKS (a JSON object with `keys`)")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("key {index} of {path}: {why}")]
    Key {
        path: PathBuf,
        index: usize,
        why: String,
    },
}

/// One trusted public key.
pub struct PublicKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// SHA-256 of the key's parameters and algorithm: a key replaced under
    /// the same `kid` has another fingerprint.
    pub fingerprint: [u8; 32],
}

/// The keys of one reading of the file, by `kid`; `order` is the file's.
#[derive(Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<PublicKey>>,
    order: Vec<String>,
}

impl KeySet {
    /// Every key must have a `kid` (unique) and be RS256, ES256 (P-256) or
    /// EdDSA (Ed25519); `alg`, when present, must agree with the key.
    pub fn parse(path: &Path, json: &[u8]) -> Result<Self, JwksError> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|source| JwksError::Parse {
            path: path.into(),
            source,
        })?;
        let mut keys = KeySet::default();
        for (index, jwk) in set.keys.iter().enumerate() {
            let why = |why: &str| JwksError::Key {
                path: path.into(),
                index,
                why: why.into(),
            };
            let kid = jwk.common.key_id.clone().ok_or_else(|| why("no `kid`"))?;
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    Algorithm::EdDSA
                }
                _ => return Err(why("not an RSA, P-256 or Ed25519 public key")),
            };
            let stated = jwk.common.key_algorithm;
            if stated.is_some_and(|a| KeyAlgorithm::from(alg) != a) {
                return Err(why(
                    "its `alg` does not fit its key (RS256, ES256 or EdDSA)",
                ));
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|e| why(&e.to_string()))?;
            if keys.by_kid.contains_key(&kid) {
                return Err(why("its `kid` is used twice"));
            }
            let fingerprint = fingerprint(alg, &jwk.algorithm);
            keys.order.push(kid.clone());
            keys.by_kid.insert(
                kid.clone(),
                Arc::new(PublicKey {
                    kid,
                    alg,
                    key,
                    fingerprint,
                }),
            );
        }
        Ok(keys)
    }

    pub fn get(&self, kid: &str) -> Option<Arc<PublicKey>> {
        self.by_kid.get(kid).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The set's key when it has exactly one (a token may then name none).
    pub fn only(&self) -> Option<Arc<PublicKey>> {
        match self.order.as_slice() {
            [kid] => self.by_kid.get(kid).cloned(),
            _ => None,
        }
    }

    /// The keys, the newest (the last in the file) first.
    pub fn newest_first(&self) -> Vec<Arc<PublicKey>> {
        self.order
            .iter()
            .rev()
            .map(|kid| self.by_kid[kid].clone())
            .collect()
    }
}

/// The key material as it stands in the file: the same key always gives
/// the same fingerprint, another key under the same `kid` another one.
fn fingerprint(alg: Algorithm, params: &AlgorithmParameters) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let params = serde_json::to_vec(params).expect("key parameters serialise");
    let mut hash = Sha256::new();
    hash.update(format!("{alg:?}\n").as_bytes());
    hash.update(&params);
    hash.finalize().into()
}

struct Loaded {
    bytes: Vec<u8>,
    set: Arc<KeySet>,
}

/// The JWKS file and its last good reading.
pub struct PublicKeys {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

impl PublicKeys {
    /// Reads the file; a file that is missing or not a valid JWKS stops start-up.
    pub fn load(path: &Path) -> Result<Arc<Self>, JwksError> {
        let bytes = read(path)?;
        let set = Arc::new(KeySet::parse(path, &bytes)?);
        Ok(Arc::new(Self {
            path: path.into(),
            loaded: RwLock::new(Loaded { bytes, set }),
        }))
    }

    pub fn get(&self, kid: &str) -> Option<Arc<PublicKey>> {
        self.current().by_kid.get(kid).cloned()
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.current().by_kid.contains_key(kid)
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.loaded
            .read()
            .expect("no panic holds this lock")
            .set
            .clone()
    }

    /// Reads the file again; takes its keys when its content changed and is
    /// a valid JWKS. A broken file keeps the last good keys (and is logged),
    /// so a half-written edit never locks everyone out.
    pub fn reload(&self) -> Result<bool, JwksError> {
        let bytes = read(&self.path)?;
        if self.loaded.read().expect("no panic holds this lock").bytes == bytes {
            return Ok(false);
        }
        let set = Arc::new(KeySet::parse(&self.path, &bytes)?);
        *self.loaded.write().expect("no panic holds this lock") = Loaded { bytes, set };
        Ok(true)
    }

    /// Re-reads the file every `every` until `shutdown`.
    pub fn spawn_watcher(
        self: Arc<Self>,
        every: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_error = None;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let keys = self.clone();
                match tokio::task::spawn_blocking(move || keys.reload()).await {
                    Ok(Ok(true)) => {
                        last_error = None;
                        let kids: Vec<_> = self.current().order.clone();
                        tracing::info!(
                            ?kids,
                            "read the JWKS file again: these keys verify tokens now"
                        );
                    }
                    Ok(Ok(false)) => last_error = None,
                    Ok(Err(e)) => {
                        // The whole cause chain, logged once per distinct error.
                        let text = format!("{:#}", anyhow::Error::new(e));
                        if last_error.as_ref() != Some(&text) {
                            tracing::warn!(error = %text, "the JWKS file cannot be used; the previous keys stay");
                            last_error = Some(text);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading the JWKS file stopped"),
                }
            }
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, JwksError> {
    std::fs::read(path).map_err(|source| JwksError::Read {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JWKS of one Ed25519 key named `kid` whose public half is 32 bytes of `byte`.
    fn jwks(kid: &str, byte: u8) -> Vec<u8> {
        use base64::Engine;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([byte; 32]);
        serde_json::to_vec(&serde_json::json!({
            "keys": [{ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x }]
        }))
        .unwrap()
    }

    fn fingerprint_of(json: &[u8], kid: &str) -> [u8; 32] {
        KeySet::parse(Path::new("jwks.json"), json).unwrap().by_kid[kid].fingerprint
    }

    #[test]
    fn a_key_keeps_its_fingerprint_across_readings_and_another_key_under_its_kid_has_another() {
        let first = fingerprint_of(&jwks("k", 1), "k");
        assert_eq!(first, fingerprint_of(&jwks("k", 1), "k"));
        assert_ne!(first, fingerprint_of(&jwks("k", 2), "k"));
    }
}
