//! Writing and reading the tar archive. Reading verifies everything (the
//! manifest's seal, each part's size and SHA-256) before handing anything out.
//!
//! Rule: an archive is only ever written encrypted (`write_archive_to` wraps
//! its output in age before the first byte), and a restore touches nothing
//! until the manifest's seal and every part's SHA-256 check out.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    BackupError, Manifest, PartDigest, TenantDocument, DATABASE_PART, FORMAT_VERSION, MANIFEST,
    MANIFEST_SEAL, TENANT_PART,
};
use crate::crypto::MasterKey;

const SEAL_PURPOSE: &str = "tenant-backup-manifest";

/// The SHA-256 and size of a file.
pub fn digest_file(path: &Path) -> Result<PartDigest, BackupError> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher)?;
    Ok(PartDigest {
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

fn digest_bytes(data: &[u8]) -> PartDigest {
    PartDigest {
        sha256: hex::encode(Sha256::digest(data)),
        bytes: data.len() as u64,
    }
}

/// Writes the archive to `out` (through a temporary file beside it, renamed
/// at the end, so a failed write never leaves a plausible archive behind).
/// `manifest.parts` is filled in here.
pub fn write_archive(
    out: &Path,
    key: &MasterKey,
    manifest: Manifest,
    document: &TenantDocument,
    dump: &Path,
) -> Result<Manifest, BackupError> {
    let dir = super::directory_of(out);
    let tmp = tempfile::Builder::new()
        .prefix(".tenant-backup-")
        .tempfile_in(dir)?;
    let manifest = {
        let mut file = std::io::BufWriter::new(tmp.as_file());
        let manifest = write_archive_to(&mut file, key, manifest, document, dump)?;
        file.flush()?;
        manifest
    };
    tmp.as_file().sync_all()?;
    tmp.persist(out).map_err(|e| BackupError::Io(e.error))?;
    Ok(manifest)
}

/// Writes the archive, encrypted, to `out` as a stream: the dump is read
/// from its file chunk by chunk, never held in memory.
pub fn write_archive_to(
    out: &mut dyn Write,
    key: &MasterKey,
    mut manifest: Manifest,
    document: &TenantDocument,
    dump: &Path,
) -> Result<Manifest, BackupError> {
    let tenant_json = serde_json::to_vec_pretty(document).expect("documents serialise");
    manifest.format_version = FORMAT_VERSION;
    manifest.parts = BTreeMap::from([
        (TENANT_PART.to_string(), digest_bytes(&tenant_json)),
        (DATABASE_PART.to_string(), digest_file(dump)?),
    ]);
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifests serialise");
    let seal = key.seal(SEAL_PURPOSE, &Sha256::digest(&manifest_json));
    let mut encrypted = super::crypt::encrypt(key, out)?;
    {
        let mut builder = tar::Builder::new(&mut encrypted);
        append_bytes(&mut builder, MANIFEST, &manifest_json)?;
        append_bytes(&mut builder, MANIFEST_SEAL, &seal)?;
        append_bytes(&mut builder, TENANT_PART, &tenant_json)?;
        builder.append_path_with_name(dump, DATABASE_PART)?;
        builder.finish()?;
    }
    encrypted.finish()?.flush()?;
    Ok(manifest)
}

fn append_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> Result<(), BackupError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    header.set_cksum();
    builder.append_data(&mut header, name, data)?;
    Ok(())
}

/// An archive whose every part checked out. The dump sits in a temporary
/// directory that lives as long as this value.
pub struct VerifiedArchive {
    pub manifest: Manifest,
    pub document: TenantDocument,
    pub dump: PathBuf,
    _dir: tempfile::TempDir,
}

impl VerifiedArchive {
    /// An archive made here rather than read: a dump this process took
    /// (in `dir`, which goes with the value) and the records beside it. A
    /// point-in-time restore makes one from its scratch cluster.
    pub fn made_here(
        manifest: Manifest,
        document: TenantDocument,
        dump: PathBuf,
        dir: tempfile::TempDir,
    ) -> Self {
        Self {
            manifest,
            document,
            dump,
            _dir: dir,
        }
    }
}

/// Reads and verifies the archive at `path`, its dump kept in the system's
/// temporary directory (tools and tests; the service uses `read_archive_in`).
pub fn read_archive(path: &Path, key: &MasterKey) -> Result<VerifiedArchive, BackupError> {
    read_archive_in(path, key, &std::env::temp_dir())
}

/// Reads and verifies the archive at `path`; the plaintext dump goes in
/// `scratch` (the process's scratch folder).
pub fn read_archive_in(
    path: &Path,
    key: &MasterKey,
    scratch: &Path,
) -> Result<VerifiedArchive, BackupError> {
    read_archive_from(File::open(path)?, key, scratch)
}

/// Reads and verifies an archive from a stream: decrypted as it is read,
/// the dump written to a temporary folder in `scratch`, nothing held in
/// memory but the small parts.
pub fn read_archive_from(
    input: impl Read,
    key: &MasterKey,
    scratch: &Path,
) -> Result<VerifiedArchive, BackupError> {
    let dir = tempfile::Builder::new()
        .prefix("tenant-restore-")
        .tempdir_in(scratch)?;
    let plain = super::crypt::decrypt(key, input)?;
    let mut archive = tar::Archive::new(plain);
    let mut small: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut dump: Option<PathBuf> = None;
    let entries = archive
        .entries()
        .map_err(|e| BackupError::NotAnArchive(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| BackupError::Corrupt(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| BackupError::Corrupt(e.to_string()))?
            .to_string_lossy()
            .to_string();
        match name.as_str() {
            MANIFEST | MANIFEST_SEAL | TENANT_PART => {
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| BackupError::Corrupt(format!("{name}: {e}")))?;
                small.insert(name, data);
            }
            DATABASE_PART => {
                let target = dir.path().join(DATABASE_PART);
                let mut out = File::create(&target)?;
                std::io::copy(&mut entry, &mut out)
                    .map_err(|e| BackupError::Corrupt(format!("{name}: {e}")))?;
                dump = Some(target);
            }
            other => {
                return Err(BackupError::NotAnArchive(format!(
                    "unexpected part {other}"
                )))
            }
        }
    }
    let part = |name: &str| {
        small
            .get(name)
            .ok_or_else(|| BackupError::Corrupt(format!("{name} is missing")))
    };
    let manifest_json = part(MANIFEST)?;
    let sealed_digest = key
        .open(SEAL_PURPOSE, part(MANIFEST_SEAL)?)
        .map_err(|_| BackupError::Unsealed)?;
    if sealed_digest.as_slice() != Sha256::digest(manifest_json).as_slice() {
        return Err(BackupError::Unsealed);
    }
    let manifest: Manifest = serde_json::from_slice(manifest_json)
        .map_err(|e| BackupError::Corrupt(format!("manifest: {e}")))?;
    if manifest.format_version != FORMAT_VERSION {
        return Err(BackupError::UnsupportedFormat(manifest.format_version));
    }
    let expect = |name: &str| {
        manifest
            .parts
            .get(name)
            .ok_or_else(|| BackupError::Corrupt(format!("the manifest lists no {name}")))
    };
    let tenant_json = part(TENANT_PART)?;
    if &digest_bytes(tenant_json) != expect(TENANT_PART)? {
        return Err(BackupError::Corrupt(format!(
            "{TENANT_PART}: checksum mismatch"
        )));
    }
    let dump = dump.ok_or_else(|| BackupError::Corrupt(format!("{DATABASE_PART} is missing")))?;
    if &digest_file(&dump)? != expect(DATABASE_PART)? {
        return Err(BackupError::Corrupt(format!(
            "{DATABASE_PART}: checksum mismatch"
        )));
    }
    let document: TenantDocument = serde_json::from_slice(tenant_json)
        .map_err(|e| BackupError::Corrupt(format!("{TENANT_PART}: {e}")))?;
    if document.tenant.id != manifest.tenant_id {
        return Err(BackupError::Corrupt(
            "the manifest names another tenant".into(),
        ));
    }
    Ok(VerifiedArchive {
        manifest,
        document,
        dump,
        _dir: dir,
    })
}
