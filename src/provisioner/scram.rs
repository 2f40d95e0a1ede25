//! SCRAM-SHA-256 verifiers for tenant roles. PostgreSQL's default of 4096
//! iterations slows a guessed password; a tenant role's password is 256
//! random bits, which no guessing reaches at any count. The iterations
//! would only cost every new session: the client runs them at each login
//! (about a millisecond of CPU at 4096). So tenant roles get few.
//!
//! Rule: a role password reaches PostgreSQL only as a SCRAM verifier, never
//! as plain text (so the server never sees or logs it).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Iterations for a tenant role's verifier.
pub const TENANT_SCRAM_ITERATIONS: u32 = 16;

/// A verifier (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`)
/// for `password`, which must already be ASCII (tenant passwords are hex):
/// SASLprep changes nothing in it.
pub fn verifier(password: &[u8], iterations: u32) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    verifier_with_salt(password, &salt, iterations)
}

fn verifier_with_salt(password: &[u8], salt: &[u8], iterations: u32) -> String {
    // SCRAM's Hi() is PBKDF2 with HMAC-SHA-256 and a 32-byte output.
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
    let key = |label: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&salted).expect("any key length");
        mac.update(label);
        mac.finalize().into_bytes()
    };
    let stored_key = Sha256::digest(key(b"Client Key"));
    let server_key = key(b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_matches_one_computed_independently() {
        // Python's hashlib and hmac on RFC 7677's password and salt.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        assert_eq!(
            verifier_with_salt(b"pencil", &salt, 16),
            "SCRAM-SHA-256$16:W22ZaJ0SNY7soEsUEjb6gQ==$E31herPhjIOTVCX7LjVuiaoFyFvb0RROPq3YM3VVrD8=:vtOdW3IRp9Qxq7MV3joF+UQqwGm6/yuYYDB6xnA/BZE="
        );
    }

    #[test]
    fn each_verifier_has_its_own_salt() {
        assert_ne!(verifier(b"same", 16), verifier(b"same", 16));
    }
}
