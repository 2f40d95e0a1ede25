//! One tenant's backup archive: a tar file holding the tenant's database
//! (`pg_dump -Fc`), its catalog records (the tenant, its subtenants and
//! domains), and a manifest with a SHA-256 for each part, the whole of it
//! encrypted with age (`crypt.rs`). The manifest is also sealed with the
//! installation's master key, so an archive that was changed anywhere, cut
//! short, or written by another installation is refused before anything
//! is touched. Archives are kept in the backup location (`store.rs`).

mod archive;
mod crypt;
mod scratch;
mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use archive::{
    read_archive, read_archive_from, read_archive_in, write_archive, write_archive_to,
    VerifiedArchive,
};
pub use crypt::{decrypt, encrypt, identity_string, identity_string_from_hex};
pub use scratch::{
    dead_folders as dead_scratch_folders, sweep as sweep_scratch, Scratch, SCRATCH_PREFIX,
};
pub use store::{BackupStore, StoredObject};

use crate::domain::TenantId;

/// The directory a file at `path` goes in (`.` for a bare file name):
/// temporary files are made there, so the final rename stays on one disk.
pub fn directory_of(path: &std::path::Path) -> &std::path::Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
}

/// The archive layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_SEAL: &str = "manifest.sealed";
pub const TENANT_PART: &str = "tenant.json";
pub const DATABASE_PART: &str = "database.dump";

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum BackupError {
    #[error("cannot read or write the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("the archive is not a tenant backup: {0}")]
    NotAnArchive(String),
    #[error("the archive is damaged: {0}")]
    Corrupt(String),
    #[error(
        "the archive's manifest was not sealed by this installation's master key (or was changed)"
    )]
    Unsealed,
    #[error("archive format {0} is not supported (this build reads format {FORMAT_VERSION})")]
    UnsupportedFormat(u32),
    /// The backup location cannot be opened, written or read.
    #[error("the backup location: {0}")]
    Location(String),
    /// The catalog records a backup whose object is gone.
    #[error("the backup object {0} is missing from the backup location")]
    Missing(String),
}

/// A part of the archive and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartDigest {
    pub sha256: String,
    pub bytes: u64,
}

/// What the archive holds, and how to check it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub tool_version: String,
    pub pg_dump_version: String,
    pub server_version: String,
    pub tenant_id: TenantId,
    pub slug: String,
    pub schema_version: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub parts: BTreeMap<String, PartDigest>,
}

/// A tenant's catalog record as backed up (no database credentials).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantSnapshot {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub tier: crate::domain::Tier,
    pub status: crate::domain::TenantStatus,
    pub schema_version: i32,
    pub settings: serde_json::Value,
    /// Integration secrets, still sealed with the master key (hex).
    pub settings_secrets_enc: Option<String>,
}

/// The `tenant.json` part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantDocument {
    pub tenant: TenantSnapshot,
    pub subtenants: Vec<TenantSnapshot>,
    pub domains: Vec<String>,
}
