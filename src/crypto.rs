//! AES-256-GCM under the configured master key, for the secrets the catalog
//! keeps: tenant role passwords and integration credentials. A ciphertext is
//! bound to its purpose (the associated data), so one cannot be swapped for
//! another in the catalog.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum CryptoError {
    #[error("the master key must be 64 hex digits (32 bytes)")]
    BadKey,
    #[error("a sealed secret did not decrypt: wrong master key, or corrupted")]
    Open,
}

#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    pub fn from_hex(hex_key: &SecretString) -> Result<Self, CryptoError> {
        let bytes = hex::decode(hex_key.expose_secret().trim()).map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        Ok(Self(*Key::<Aes256Gcm>::from_slice(&bytes)))
    }

    /// A key of its own for `purpose`, derived from this one with
    /// HMAC-SHA256 (a PRF): knowing it tells nothing of the master key or
    /// of keys for other purposes.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// `nonce || ciphertext`, bound to `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(&self.0);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        Aes256Gcm::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Open)
    }

    pub fn open_string(&self, purpose: &str, sealed: &[u8]) -> Result<SecretString, CryptoError> {
        let bytes = self.open(purpose, sealed)?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Open)
    }
}

/// 32 random bytes as 64 hex digits: passwords and keys.
pub fn random_hex_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_purpose() {
        let key = MasterKey::from_hex(&random_hex_secret()).unwrap();
        let sealed = key.seal("tenant-role:a", b"pw");
        assert_eq!(key.open("tenant-role:a", &sealed).unwrap(), b"pw");
        assert!(key.open("tenant-role:b", &sealed).is_err());
        let other = MasterKey::from_hex(&random_hex_secret()).unwrap();
        assert!(other.open("tenant-role:a", &sealed).is_err());
        assert!(key.open("tenant-role:a", &sealed[..5]).is_err());
    }

    #[test]
    fn a_master_key_must_be_32_bytes_of_hex() {
        assert!(MasterKey::from_hex(&SecretString::from("abcd")).is_err());
        assert!(MasterKey::from_hex(&SecretString::from("zz".repeat(32))).is_err());
    }
}
