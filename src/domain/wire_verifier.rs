//! What the catalog keeps of an API key for logins on the PostgreSQL wire:
//! its SCRAM-SHA-256 StoredKey and ServerKey (`auth::scram` makes them).

/// A key's SCRAM verifier, under its tenant's salt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireVerifier {
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}
