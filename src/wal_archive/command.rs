//! Running `pgbackrest`: as the cluster's owner, from a cleared
//! environment, with a config file and the stanza; its stderr is the
//! error's detail.

use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use super::WalArchiveError;

/// The `pgbackrest` program, and who it runs as.
#[derive(Debug, Clone)]
pub struct PgBackRest {
    bin: PathBuf,
    owner: Option<(Uid, Gid)>,
}

impl PgBackRest {
    /// Finds `pgbackrest` on `PATH` (then in `/usr/bin`); it runs as
    /// `postgres` when we are root.
    pub fn locate() -> Result<Self, WalArchiveError> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        dirs.push(PathBuf::from("/usr/bin"));
        let bin = dirs
            .into_iter()
            .map(|d| d.join("pgbackrest"))
            .find(|p| p.is_file())
            .ok_or(WalArchiveError::NotInstalled)?;
        let owner = crate::local_pg::postgres_owner().map_err(|e| WalArchiveError::Command {
            command: "start",
            detail: e.to_string(),
        })?;
        Ok(Self { bin, owner })
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Who the program runs as (and owns what it writes), when we are root.
    pub fn owner(&self) -> Option<(Uid, Gid)> {
        self.owner
    }

    /// The `archive_command` that pushes a segment with the config at `conf`.
    pub fn archive_command(&self, conf: &Path, stanza: &str) -> String {
        format!(
            "{} --config={} --stanza={stanza} archive-push %p",
            self.bin.display(),
            conf.display()
        )
    }

    /// Runs `pgbackrest --config=CONF --stanza=STANZA [args] COMMAND`;
    /// its standard output.
    pub async fn run(
        &self,
        conf: &Path,
        stanza: &str,
        command: &'static str,
        args: &[String],
    ) -> Result<String, WalArchiveError> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg(format!("--config={}", conf.display()))
            .arg(format!("--stanza={stanza}"))
            .args(args)
            .arg(command)
            .env_clear()
            .envs(crate::local_pg::child_env())
            .current_dir("/")
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        let out = cmd.output().await.map_err(|e| WalArchiveError::Command {
            command,
            detail: e.to_string(),
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(WalArchiveError::Command {
            command,
            detail: format!("{detail} ({})", out.status),
        })
    }

    /// Writes the config `text` to `conf`, and beside it the files it names
    /// (a repository's CA certificate).
    pub fn write_conf(
        &self,
        conf: &Path,
        text: &str,
        archive: &super::Archive,
    ) -> Result<(), WalArchiveError> {
        let dir = conf.parent().unwrap_or(Path::new("/"));
        for (path, content) in archive.files(dir) {
            self.write_owned(&path, &content)?;
        }
        self.write_owned(conf, text)
    }

    /// Writes `text` to `path`, mode 0600, owned by the program's user.
    pub fn write_owned(&self, path: &Path, text: &str) -> Result<(), WalArchiveError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = WalArchiveError::io("cannot write", path);
        // Written aside and renamed: a reader never sees half a file.
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(WalArchiveError::io("cannot write", &tmp))?;
        file.write_all(text.as_bytes())
            .map_err(WalArchiveError::io("cannot write", &tmp))?;
        self.give(&tmp)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Makes `dir` (mode 0700) and hands it to the program's user.
    pub fn make_owned_dir(&self, dir: &Path) -> Result<(), WalArchiveError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(WalArchiveError::io("cannot create", dir))?;
        self.give(dir)
    }

    fn give(&self, path: &Path) -> Result<(), WalArchiveError> {
        if let Some((uid, gid)) = self.owner {
            nix::unistd::chown(path, Some(uid), Some(gid))
                .map_err(|e| WalArchiveError::io("cannot hand to postgres", path)(e.into()))?;
        }
        Ok(())
    }
}
