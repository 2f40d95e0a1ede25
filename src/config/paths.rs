//! Every path the service and the CLI use is made absolute once, when the
//! settings and the command line are read, against the working directory of
//! that moment. Later steps run programs in other directories (`initdb` runs
//! in the cluster's run directory), so a relative path would change meaning.

use std::path::{Path, PathBuf};

use super::{ConfigError, Settings};

/// `path` made absolute against the current working directory. It neither
/// touches the file system nor resolves links, so a path that does not exist
/// yet (a data directory, a backup to write) is fine.
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    std::path::absolute(path)
}

/// clap value parser for path arguments (`--config`, `--out`, `--file` …).
pub fn parse_absolute(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("an empty path".into());
    }
    absolute(Path::new(text)).map_err(|e| format!("cannot resolve {text}: {e}"))
}

impl Settings {
    /// Makes every path setting absolute. Called by `load`; idempotent.
    pub fn make_paths_absolute(&mut self) -> Result<(), ConfigError> {
        fn fix(setting: &str, path: &mut PathBuf) -> Result<(), ConfigError> {
            *path = absolute(path).map_err(|e| ConfigError {
                setting: setting.into(),
                origin: super::load::env_name(setting),
                reason: format!("cannot make {} absolute: {e}", path.display()),
            })?;
            Ok(())
        }
        fix("data_dir", &mut self.data_dir)?;
        if let Some(path) = &mut self.jwt_public_keys {
            fix("jwt_public_keys", path)?;
        }
        if let Some(path) = &mut self.jwt_private_keys {
            fix("jwt_private_keys", path)?;
        }
        if let Some(path) = &mut self.master_key_file {
            fix("master_key_file", path)?;
        }
        if let Some(path) = &mut self.identity.ca_file {
            fix("identity.ca_file", path)?;
        }
        fix("embedded.fallback_dir", &mut self.embedded.fallback_dir)?;
        if let Some(dir) = &mut self.embedded.bin_dir {
            fix("embedded.bin_dir", dir)?;
        }
        if let Some(dir) = &mut self.migrations.tenant_dir {
            fix("migrations.tenant_dir", dir)?;
        }
        if let Some(dir) = &mut self.backup.scratch_dir {
            fix("backup.scratch_dir", dir)?;
        }
        if let Some(location) = &mut self.backup.location {
            if !location.contains("://") {
                let mut dir = PathBuf::from(location.as_str());
                fix("backup.location", &mut dir)?;
                *location = format!("file://{}", dir.display());
            }
        }
        Ok(())
    }

    /// Where plaintext dumps go: `backup.scratch_dir`, else
    /// `<data_dir>/scratch`.
    pub fn scratch_dir(&self) -> PathBuf {
        self.backup
            .scratch_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("scratch"))
    }

    /// Whether every path setting is absolute (what `load` guarantees).
    pub fn paths_are_absolute(&self) -> bool {
        self.data_dir.is_absolute()
            && self.embedded.fallback_dir.is_absolute()
            && self
                .embedded
                .bin_dir
                .as_ref()
                .is_none_or(|d| d.is_absolute())
            && self
                .migrations
                .tenant_dir
                .as_ref()
                .is_none_or(|d| d.is_absolute())
            && self
                .backup
                .scratch_dir
                .as_ref()
                .is_none_or(|d| d.is_absolute())
    }
}
