//! SCRAM-SHA-256 (RFC 5802, RFC 7677) for API keys on the PostgreSQL wire:
//! the verifier kept when a key is minted, and the server's side of one
//! login.
//!
//! Why not a crate: the server must send the salt before it knows which of
//! the tenant's keys the client holds (the user name names the tenant), so
//! every key of a tenant shares one salt and the proof is tried against
//! each key's StoredKey. The SCRAM crates we know of look one verifier up
//! by user name first. The arithmetic is HMAC and SHA-256 from RustCrypto.
//!
//! Rules:
//! - A proof is compared in constant time, and every candidate key is
//!   tried, so the time says nothing about which key came close.
//! - An unknown tenant gets a salt too (derived from its name), and fails
//!   only at the proof: a login cannot tell which tenants exist.
//! - No channel binding is offered (`SCRAM-SHA-256` only); a client that
//!   demands it (`p=`) is refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::TenantId;
pub use crate::domain::WireVerifier;

/// Iterations of a key's verifier: PostgreSQL's own default. A key's secret
/// is 256 random bits, so this is for clients' expectations, not strength;
/// the client runs them at each login (about a millisecond).
pub const ITERATIONS: u32 = 4096;

/// The salt of every key of `tenant`.
pub fn tenant_salt(tenant: TenantId) -> [u8; 16] {
    salt_of(b"tenant", tenant.as_uuid().as_bytes())
}

/// The salt shown for a user name that names no tenant.
pub fn unknown_salt(user: &str) -> [u8; 16] {
    salt_of(b"unknown", user.as_bytes())
}

fn salt_of(kind: &[u8], what: &[u8]) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(b"tenant-plane wire salt\0")
        .chain_update(kind)
        .chain_update(b"\0")
        .chain_update(what)
        .finalize();
    digest[..16].try_into().expect("16 of 32 bytes")
}

/// The verifier of `key` (the whole `tpk_…` string, ASCII, so SASLprep
/// leaves it as it is) under `salt`.
pub fn verifier(key: &str, salt: &[u8]) -> WireVerifier {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(key.as_bytes(), salt, ITERATIONS, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    WireVerifier {
        stored_key: Sha256::digest(client_key).into(),
        server_key: hmac(&salted, b"Server Key"),
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("the SCRAM nonce does not match")]
    Nonce,
    #[error("password authentication failed")]
    Refused,
}

/// One login after the server's first message: what the proof is checked
/// against.
pub struct Exchange {
    client_first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
}

impl Exchange {
    /// Reads the client's first message and makes the server's answer.
    pub fn start(client_first: &str, salt: &[u8]) -> Result<(Self, String), ScramError> {
        let (gs2_header, bare) = split_gs2(client_first)?;
        let client_nonce = attribute(bare, 'r').ok_or(ScramError::Malformed("no client nonce"))?;
        if client_nonce.is_empty() || client_nonce.contains(',') {
            return Err(ScramError::Malformed("bad client nonce"));
        }
        let mut ours = [0u8; 18];
        rand::rng().fill_bytes(&mut ours);
        let nonce = format!("{client_nonce}{}", STANDARD.encode(ours));
        let server_first = format!("r={nonce},s={},i={ITERATIONS}", STANDARD.encode(salt));
        Ok((
            Self {
                client_first_bare: bare.to_string(),
                server_first: server_first.clone(),
                nonce,
                gs2_header: gs2_header.to_string(),
            },
            server_first,
        ))
    }

    /// Checks the client's proof against each candidate verifier; the index
    /// of the one it matches and the server's final message (its signature).
    pub fn finish(
        &self,
        client_final: &str,
        candidates: &[&WireVerifier],
    ) -> Result<(usize, String), ScramError> {
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let binding = attribute(without_proof, 'c').ok_or(ScramError::Malformed("no binding"))?;
        if STANDARD.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::ChannelBinding);
        }
        if attribute(without_proof, 'r') != Some(self.nonce.as_str()) {
            return Err(ScramError::Nonce);
        }
        let proof: [u8; 32] = STANDARD
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed("bad proof"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let mut matched = None;
        for (i, candidate) in candidates.iter().enumerate() {
            let signature = hmac(&candidate.stored_key, auth_message.as_bytes());
            let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
            let stored = Sha256::digest(&client_key);
            if bool::from(stored.as_slice().ct_eq(&candidate.stored_key)) && matched.is_none() {
                matched = Some(i);
            }
        }
        let index = matched.ok_or(ScramError::Refused)?;
        let signature = hmac(&candidates[index].server_key, auth_message.as_bytes());
        Ok((index, format!("v={}", STANDARD.encode(signature))))
    }
}

/// Splits `gs2-header` from `client-first-message-bare`. Only `n` and `y`
/// (no channel binding) are taken, and no authorization identity.
fn split_gs2(message: &str) -> Result<(&str, &str), ScramError> {
    let mut parts = message.splitn(3, ',');
    let flag = parts.next().ok_or(ScramError::Malformed("empty"))?;
    let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    let bare = parts
        .next()
        .ok_or(ScramError::Malformed("no first message"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed("bad channel binding flag")),
    }
    if !authzid.is_empty() {
        return Err(ScramError::Malformed(
            "an authorization identity is not supported",
        ));
    }
    let header = &message[..flag.len() + authzid.len() + 2];
    Ok((header, bare))
}

/// The value of attribute `name` in a comma-separated SCRAM message.
fn attribute(message: &str, name: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(name) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

#[cfg(test)]
mod tests;
