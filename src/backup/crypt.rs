//! The whole archive is encrypted with age (X25519, ChaCha20-Poly1305 in
//! 64 KiB chunks): it streams both ways, a changed or cut-short file fails
//! its authentication, and an operator holding the master key can decrypt
//! one with the stock `age` tool (`tenant-plane backup --print-age-identity`
//! prints the identity from the master key alone, no catalog needed). The
//! identity is derived from the master key, so the service that writes
//! backups can restore them over the API. Input that is not an age file is
//! refused.

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

/// The backup identity of the master key(s) given in hex, as configured
/// (`TENANT_PLANE_MASTER_KEY`): what an operator needs with no catalog.
pub fn identity_string_from_hex(
    hex: &SecretString,
) -> Result<SecretString, crate::crypto::CryptoError> {
    MasterKey::from_hex(hex).map(|key| identity_string(&key))
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

/// The plaintext of `input`, an age file. Anything else is refused as
/// `NotAnArchive`: every archive this service writes is encrypted, so a
/// plaintext one was made or changed by someone else. A file this
/// installation cannot decrypt is `Unsealed`.
pub fn decrypt<'a, R: Read + 'a>(
    key: &MasterKey,
    input: R,
) -> Result<Box<dyn Read + 'a>, BackupError> {
    let mut input = BufReader::new(input);
    let head = input.fill_buf()?;
    if !head.starts_with(AGE_MAGIC) {
        return Err(BackupError::NotAnArchive(
            "it is not an age-encrypted file (backups are always encrypted)".into(),
        ));
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_hex(&SecretString::from("ab".repeat(32))).unwrap()
    }

    #[test]
    fn decrypting_bytes_that_are_not_an_age_file_is_refused_with_a_clear_error() {
        for input in [&b"ustar plain tar bytes"[..], &b""[..], &b"age-encrypt"[..]] {
            let refused = decrypt(&key(), input).err().expect("refused");
            assert!(
                matches!(&refused, BackupError::NotAnArchive(m) if m.contains("not an age-encrypted file")),
                "{refused}"
            );
        }
    }

    #[test]
    fn what_encrypt_writes_decrypt_reads_back() {
        let mut sealed = Vec::new();
        let mut writer = encrypt(&key(), &mut sealed).unwrap();
        writer.write_all(b"rows").unwrap();
        writer.finish().unwrap();
        let mut plain = String::new();
        decrypt(&key(), sealed.as_slice())
            .unwrap()
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, "rows");
    }
}
