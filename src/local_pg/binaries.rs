//! Finding `initdb`, `pg_ctl` and `postgres`.

use std::path::{Path, PathBuf};

use super::LocalPgError;

/// Paths of the server programs a local cluster needs.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub initdb: PathBuf,
    pub pg_ctl: PathBuf,
    pub postgres: PathBuf,
    pub bin_dir: PathBuf,
}

impl PgBinaries {
    /// Looks in `bin_dir` when given; otherwise on `PATH`, then in the
    /// distribution's versioned directories (newest first), where Debian keeps
    /// the server programs off `PATH`.
    pub fn locate(bin_dir: Option<&Path>) -> Result<Self, LocalPgError> {
        let candidates: Vec<PathBuf> = match bin_dir {
            Some(dir) => vec![dir.to_path_buf()],
            None => {
                let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
                    .map(|p| std::env::split_paths(&p).collect())
                    .unwrap_or_default();
                dirs.extend(versioned_dirs(Path::new("/usr/lib/postgresql")));
                dirs.extend(versioned_dirs(Path::new("/usr/pgsql")));
                dirs
            }
        };
        candidates
            .iter()
            .find_map(|dir| Self::in_dir(dir))
            .ok_or_else(|| LocalPgError::BinariesMissing {
                where_: match bin_dir {
                    Some(dir) => format!(" in {}", dir.display()),
                    None => " on PATH or under /usr/lib/postgresql/*/bin".to_string(),
                },
            })
    }

    fn in_dir(dir: &Path) -> Option<Self> {
        let found = |name: &str| {
            let path = dir.join(name);
            path.is_file().then_some(path)
        };
        Some(Self {
            initdb: found("initdb")?,
            pg_ctl: found("pg_ctl")?,
            postgres: found("postgres")?,
            bin_dir: dir.to_path_buf(),
        })
    }

    /// The server programs' major version (`15`), from `postgres --version`.
    pub fn major_version(&self) -> Option<String> {
        let out = std::process::Command::new(&self.postgres)
            .arg("--version")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
        let version = text.split(')').nth(1)?.split_whitespace().next()?;
        Some(version.split('.').next()?.to_string())
    }

    /// A client program (`pg_dump`, `pg_restore`, `psql`) next to the server ones,
    /// falling back to `PATH`.
    pub fn tool(&self, name: &str) -> PathBuf {
        let beside = self.bin_dir.join(name);
        if beside.is_file() {
            beside
        } else {
            PathBuf::from(name)
        }
    }
}

/// `<root>/<version>/bin`, highest version first.
fn versioned_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_the_server_programs_reports_what_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let err = PgBinaries::locate(Some(empty.path())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("apt-get install postgresql"), "{text}");
        assert!(text.contains(&empty.path().display().to_string()), "{text}");
    }

    #[test]
    fn versioned_directories_are_searched_newest_first() {
        let root = tempfile::tempdir().unwrap();
        for v in ["13", "16", "notaversion", "15"] {
            std::fs::create_dir_all(root.path().join(v).join("bin")).unwrap();
        }
        let dirs = versioned_dirs(root.path());
        let names: Vec<_> = dirs
            .iter()
            .map(|d| {
                d.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["16", "15", "13"]);
    }
}
