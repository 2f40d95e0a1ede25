//! AES-256-GCM under the configured master keys, for the secrets the
//! catalog keeps: tenant role passwords, server admin passwords and
//! integration credentials. A ciphertext is bound to its purpose (the
//! associated data), so one cannot be swapped for another in the catalog,
//! and names the key that sealed it, so keys can rotate.
//!
//! Rule: every value sealed here carries its key's id; the newest configured
//! key seals, and every configured key opens (so does a value sealed before
//! keys had ids).

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

/// Marks a sealed value that names its key: `KEYED || key id || nonce || ct`.
/// Values sealed before keys had ids are `nonce || ct`; they still open.
const KEYED: u8 = 0x6b;
const KEY_ID_LEN: usize = 4;

/// One master key and its id: four bytes of a hash of it, which name the
/// key in every value it seals without telling anything of it.
#[derive(Clone)]
struct Versioned {
    id: [u8; KEY_ID_LEN],
    key: Key<Aes256Gcm>,
}

/// The configured master keys, oldest first. The newest seals; every one
/// opens what it sealed, so keys rotate without re-sealing everything at
/// once (`tenant-plane keys rotate` re-seals in batches, then the old key
/// can go).
#[derive(Clone)]
pub struct MasterKey {
    keys: std::sync::Arc<Vec<Versioned>>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// One key, or several separated by commas or white space, oldest
    /// first, each 64 hex digits.
    pub fn from_hex(hex_keys: &SecretString) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        for part in hex_keys
            .expose_secret()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            let bytes = hex::decode(part).map_err(|_| CryptoError::BadKey)?;
            if bytes.len() != 32 {
                return Err(CryptoError::BadKey);
            }
            let key = *Key::<Aes256Gcm>::from_slice(&bytes);
            let id = key_id(&key);
            if keys.iter().any(|k: &Versioned| k.id == id) {
                return Err(CryptoError::BadKey);
            }
            keys.push(Versioned { id, key });
        }
        if keys.is_empty() {
            return Err(CryptoError::BadKey);
        }
        Ok(Self {
            keys: std::sync::Arc::new(keys),
        })
    }

    fn newest(&self) -> &Versioned {
        self.keys.last().expect("from_hex refuses an empty list")
    }

    /// The newest key's id, as hex: what `keys rotate` moves values to.
    pub fn newest_id(&self) -> String {
        hex::encode(self.newest().id)
    }

    /// The prefix of every value the newest key seals.
    pub fn newest_prefix(&self) -> Vec<u8> {
        let mut prefix = vec![KEYED];
        prefix.extend(self.newest().id);
        prefix
    }

    /// Whether `sealed` is sealed under the newest key already.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed.starts_with(&self.newest_prefix())
    }

    /// A key of its own for `purpose`, derived from the newest key with
    /// HMAC-SHA256 (a PRF): knowing it tells nothing of the master key or
    /// of keys for other purposes.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        derive(&self.newest().key, purpose)
    }

    /// The key for `purpose` derived from every configured key, newest
    /// first: what was derived from an older key (a backup's identity) can
    /// still be used to read.
    pub fn derive_all(&self, purpose: &str) -> Vec<[u8; 32]> {
        self.keys
            .iter()
            .rev()
            .map(|k| derive(&k.key, purpose))
            .collect()
    }

    /// `KEYED || key id || nonce || ciphertext` under the newest key, bound
    /// to `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let newest = self.newest();
        let mut out = self.newest_prefix();
        out.extend(seal_with(&newest.key, purpose, plaintext));
        out
    }

    /// Opens a value sealed under any configured key, with or without a key id.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() > 1 + KEY_ID_LEN && sealed[0] == KEYED {
            let (id, rest) = sealed[1..].split_at(KEY_ID_LEN);
            if let Some(k) = self.keys.iter().find(|k| k.id == id) {
                if let Ok(plain) = open_with(&k.key, purpose, rest) {
                    return Ok(plain);
                }
            }
        }
        // A value from before key ids: its nonce may start like a key id,
        // so it is tried whole, with every key. AES-GCM tells the right one.
        self.keys
            .iter()
            .rev()
            .find_map(|k| open_with(&k.key, purpose, sealed).ok())
            .ok_or(CryptoError::Open)
    }

    pub fn open_string(&self, purpose: &str, sealed: &[u8]) -> Result<SecretString, CryptoError> {
        let bytes = self.open(purpose, sealed)?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Open)
    }
}

fn key_id(key: &Key<Aes256Gcm>) -> [u8; KEY_ID_LEN] {
    let digest = derive(key, "tenant-plane master key id");
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

fn derive(key: &Key<Aes256Gcm>, purpose: &str) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_slice())
        .expect("HMAC takes a key of any length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

/// `nonce || ciphertext`, bound to `purpose`.
fn seal_with(key: &Key<Aes256Gcm>, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = Aes256Gcm::new(key)
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

fn open_with(key: &Key<Aes256Gcm>, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN {
        return Err(CryptoError::Open);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    Aes256Gcm::new(key)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: purpose.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::Open)
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
    fn the_newest_key_seals_every_key_opens_and_values_from_before_key_ids_still_open() {
        let (a, b) = (random_hex_secret(), random_hex_secret());
        let old = MasterKey::from_hex(&a).unwrap();
        let both = MasterKey::from_hex(&SecretString::from(format!(
            "{},{}",
            a.expose_secret(),
            b.expose_secret()
        )))
        .unwrap();
        let new = MasterKey::from_hex(&b).unwrap();
        let under_old = old.seal("p", b"one");
        assert!(under_old.starts_with(&old.newest_prefix()));
        assert_eq!(both.open("p", &under_old).unwrap(), b"one");
        assert!(!both.is_current(&under_old));
        let under_both = both.seal("p", b"two");
        assert!(both.is_current(&under_both) && new.is_current(&under_both));
        assert_eq!(new.open("p", &under_both).unwrap(), b"two");
        assert!(old.open("p", &under_both).is_err());
        // A value sealed before key ids: nonce || ciphertext.
        let legacy = seal_with(&old.newest().key, "p", b"three");
        assert_eq!(both.open("p", &legacy).unwrap(), b"three");
        assert!(new.open("p", &legacy).is_err());
        assert_eq!(both.derive_all("x"), vec![new.derive("x"), old.derive("x")]);
    }

    #[test]
    fn a_master_key_must_be_32_bytes_of_hex() {
        assert!(MasterKey::from_hex(&SecretString::from("abcd")).is_err());
        assert!(MasterKey::from_hex(&SecretString::from("zz".repeat(32))).is_err());
        assert!(MasterKey::from_hex(&SecretString::from(" , ")).is_err());
        let key = "ab".repeat(32);
        assert!(MasterKey::from_hex(&SecretString::from(format!("{key},{key}"))).is_err());
    }
}
