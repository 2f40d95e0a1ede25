//! The whole archive is encrypted with age (X25519, ChaCha20-Poly1305 in
//! 64 KiB chunks): it streams both ways, a changed or cut-short file fails
//! its authentication, and an operator holding the master key can decrypt
//! one with the stock `age` tool (`tenant-plane backup key` prints the
//! identity). The identity is derived from the master key, so the service
//! that writes backups can restore them over the API.

use std::io::{BufRead, BufReader, Read, Write};
use std::str::FromStr;

use bech32::ToBase32;
use secrecy::{ExposeSecret, SecretString};

use super::BackupError;
use crate::crypto::MasterKey;

/// What the derivation of the identity is bound to.
const IDENTITY_PURPOSE: &str = "tenant-plane backup age identity v1";

/// The first bytes of every age file.
const AGE_MAGIC: &[u8] = b"age-encryption.org/";

/// The installation's backup identity, as the `age` tool reads it
/// (`AGE-SECRET-KEY-1…`).
pub fn identity_string(key: &MasterKey) -> SecretString {
    identity_string_of(key.derive(IDENTITY_PURPOSE))
}

fn identity_string_of(bytes: [u8; 32]) -> SecretString {
    let encoded = bech32::encode(
        "age-secret-key-",
        bytes.to_base32(),
        bech32::Variant::Bech32,
    )
    .expect("a valid human-readable part");
    SecretString::from(encoded.to_uppercase())
}

fn identity(key: &MasterKey) -> age::x25519::Identity {
    age::x25519::Identity::from_str(identity_string(key).expose_secret())
        .expect("a derived identity parses")
}

/// Encrypts everything written to the returned writer into `out`; call
/// `finish` on it to write the last chunk.
pub fn encrypt<W: Write>(
    key: &MasterKey,
    out: W,
) -> Result<age::stream::StreamWriter<W>, BackupError> {
    let recipient = identity(key).to_public();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| BackupError::Io(std::io::Error::other(e.to_string())))?;
    Ok(encryptor.wrap_output(out)?)
}

/// The plaintext of `input`: decrypted when it is an age file, as it is
/// otherwise (an archive from before encryption, whose manifest seal still
/// guards it). A file this installation cannot decrypt is `Unsealed`.
pub fn decrypt<'a, R: Read + 'a>(
    key: &MasterKey,
    input: R,
) -> Result<Box<dyn Read + 'a>, BackupError> {
    let mut input = BufReader::new(input);
    let head = input.fill_buf()?;
    if !head.starts_with(AGE_MAGIC) {
        return Ok(Box::new(input));
    }
    let decryptor = age::Decryptor::new_buffered(input)
        .map_err(|e| BackupError::Corrupt(format!("the encryption header: {e}")))?;
    // Every configured master key's identity: a backup taken before a key
    // rotation opens while its key is still configured.
    let identities: Vec<age::x25519::Identity> = key
        .derive_all(IDENTITY_PURPOSE)
        .into_iter()
        .map(|bytes| {
            age::x25519::Identity::from_str(identity_string_of(bytes).expose_secret())
                .expect("a derived identity parses")
        })
        .collect();
    match decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity)) {
        Ok(reader) => Ok(Box::new(reader)),
        Err(age::DecryptError::NoMatchingKeys) => Err(BackupError::Unsealed),
        Err(e) => Err(BackupError::Corrupt(format!("the encryption header: {e}"))),
    }
}
