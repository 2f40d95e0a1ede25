//! `pgbackrest info --output=json`, read: the stanza's base backups and
//! the WAL range its archive holds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::WalArchiveError;

/// A base backup's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    Full,
    Diff,
    Incr,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Diff => "diff",
            Self::Incr => "incr",
        }
    }
}

/// One base backup in the repository.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BaseBackup {
    pub label: String,
    pub kind: BackupKind,
    pub started_at: DateTime<Utc>,
    /// The earliest time a restore from this backup can reach.
    pub stopped_at: DateTime<Utc>,
}

/// What the archive holds.
#[derive(Debug, Clone, Default)]
pub struct ArchiveInfo {
    /// Oldest first.
    pub backups: Vec<BaseBackup>,
    /// The newest WAL segment archived, if any.
    pub newest_wal: Option<String>,
    /// pgBackRest's word on the stanza (`None`: no such stanza).
    pub status: Option<StanzaStatus>,
}

/// The stanza's status as `pgbackrest info` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StanzaStatus {
    pub code: i64,
    pub message: String,
}

impl ArchiveInfo {
    /// Reads pgBackRest's JSON for `stanza`.
    pub fn parse(json: &str, stanza: &str) -> Result<Self, WalArchiveError> {
        let stanzas: Vec<RawStanza> =
            serde_json::from_str(json).map_err(|e| WalArchiveError::Info(e.to_string()))?;
        let Some(raw) = stanzas.into_iter().find(|s| s.name == stanza) else {
            return Ok(Self::default());
        };
        let mut backups = Vec::new();
        for b in raw.backup {
            let kind = match b.kind.as_str() {
                "full" => BackupKind::Full,
                "diff" => BackupKind::Diff,
                "incr" => BackupKind::Incr,
                other => return Err(WalArchiveError::Info(format!("backup type {other:?}"))),
            };
            let at = |secs: i64| {
                DateTime::from_timestamp(secs, 0)
                    .ok_or_else(|| WalArchiveError::Info(format!("timestamp {secs}")))
            };
            backups.push(BaseBackup {
                label: b.label,
                kind,
                started_at: at(b.timestamp.start)?,
                stopped_at: at(b.timestamp.stop)?,
            });
        }
        backups.sort_by_key(|b| b.stopped_at);
        let newest_wal = raw.archive.into_iter().filter_map(|a| a.max).max();
        Ok(Self {
            backups,
            newest_wal,
            status: raw.status,
        })
    }

    /// Why a restore could never read this stanza, if it could not: it is
    /// missing, or pgBackRest cannot open it. No backup yet (code 2) and a
    /// backup running (code 6) are fine: the operator's next backup helps.
    pub fn unreadable(&self) -> Option<String> {
        match &self.status {
            None => Some("the repository holds no such stanza".into()),
            Some(StanzaStatus {
                code: 0 | 2 | 6, ..
            }) => None,
            Some(StanzaStatus { code, message }) => Some(format!("{message} (status {code})")),
        }
    }

    /// The newest backup of `kind` (a full one counts for `Diff`: a
    /// differential's base is the newest full).
    pub fn newest(&self, kind: BackupKind) -> Option<&BaseBackup> {
        self.backups
            .iter()
            .rev()
            .find(|b| b.kind == kind || (kind == BackupKind::Diff && b.kind == BackupKind::Full))
    }

    /// The earliest time a restore can reach: the second after the oldest
    /// backup ended. pgBackRest picks a backup whose stop time is before
    /// the target, in whole seconds, so a target in the very second the
    /// backup stopped finds none (`unable to find backup set`).
    pub fn earliest(&self) -> Option<DateTime<Utc>> {
        self.backups
            .first()
            .map(|b| b.stopped_at + chrono::Duration::seconds(1))
    }
}

#[derive(Deserialize)]
struct RawStanza {
    name: String,
    #[serde(default)]
    backup: Vec<RawBackup>,
    #[serde(default)]
    archive: Vec<RawArchive>,
    status: Option<StanzaStatus>,
}

#[derive(Deserialize)]
struct RawBackup {
    label: String,
    #[serde(rename = "type")]
    kind: String,
    timestamp: RawTimes,
}

#[derive(Deserialize)]
struct RawTimes {
    start: i64,
    stop: i64,
}

#[derive(Deserialize)]
struct RawArchive {
    max: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_come_out_oldest_first_with_their_times_and_the_newest_wal() {
        let json = r#"[{"name":"tenant-plane","status":{"code":0,"message":"ok"},
          "archive":[{"id":"15-1","min":"000000010000000000000001","max":"000000010000000000000009"}],
          "backup":[
            {"label":"20261205-101500F_20261206-101500D","type":"diff","timestamp":{"start":1765016100,"stop":1765016110}},
            {"label":"20261205-101500F","type":"full","timestamp":{"start":1764929700,"stop":1764929730}}]}]"#;
        let info = ArchiveInfo::parse(json, "tenant-plane").unwrap();
        assert_eq!(info.backups.len(), 2);
        assert_eq!(info.backups[0].kind, BackupKind::Full);
        assert_eq!(info.earliest().unwrap().timestamp(), 1764929731);
        assert_eq!(
            info.newest(BackupKind::Full).unwrap().label,
            "20261205-101500F"
        );
        assert_eq!(
            info.newest(BackupKind::Diff).unwrap().kind,
            BackupKind::Diff
        );
        assert_eq!(info.newest_wal.as_deref(), Some("000000010000000000000009"));
        assert_eq!(info.unreadable(), None);
        let other = ArchiveInfo::parse(json, "other").unwrap();
        assert!(other.backups.is_empty());
        assert!(other.unreadable().is_some(), "a stanza that is not there");
        let cipher =
            r#"[{"name":"s","status":{"code":99,"message":"other"},"backup":[],"archive":[]}]"#;
        assert!(ArchiveInfo::parse(cipher, "s")
            .unwrap()
            .unreadable()
            .is_some());
    }
}
