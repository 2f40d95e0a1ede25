//! `backup.*`: where backups go, how often they are taken, how long kept;
//! and `webhooks.*`: where events are sent.

use secrecy::SecretString;

section! {
    pub struct BackupSettings {
        /// Where backups go: a folder (`file:///var/backups/tenant-plane`, or a
        /// path; a relative one is taken from the working directory at start)
        /// or an S3-compatible bucket (`s3://bucket/prefix`). When set, tenants
        /// are backed up on a schedule, `POST /v1/tenants/{id}/backups` works,
        /// and a purge first writes the tenant's final backup there (and does
        /// not happen if that fails). `TENANT_PLANE_BACKUP_LOCATION`; unset by
        /// default.
        pub location: Option<String> = None,
        /// The S3 endpoint, for a bucket not on AWS (`http://127.0.0.1:9000`).
        /// `TENANT_PLANE_BACKUP_S3_ENDPOINT`; else `AWS_ENDPOINT_URL`.
        pub s3_endpoint: Option<String> = None,
        /// `TENANT_PLANE_BACKUP_S3_REGION`; else `AWS_REGION` / `AWS_DEFAULT_REGION`.
        pub s3_region: Option<String> = None,
        /// `TENANT_PLANE_BACKUP_S3_ACCESS_KEY_ID`; else `AWS_ACCESS_KEY_ID`.
        pub s3_access_key_id: Option<String> = None,
        /// `TENANT_PLANE_BACKUP_S3_SECRET_ACCESS_KEY`; else `AWS_SECRET_ACCESS_KEY`.
        pub s3_secret_access_key: Option<SecretString> = None,
        /// Allow a plain-HTTP endpoint (a test or a private network).
        /// `TENANT_PLANE_BACKUP_S3_ALLOW_HTTP`, default false.
        pub s3_allow_http: bool = false,
        /// CA certificates (PEM) the endpoint's certificate chains to, when
        /// the system does not trust it: backups and the WAL archive both
        /// use it. `TENANT_PLANE_BACKUP_S3_CA_FILE`; unset by default.
        pub s3_ca_file: Option<std::path::PathBuf> = None,
        /// Hours between scheduled backups of a tenant, per tier (0: none).
        /// `TENANT_PLANE_BACKUP_EVERY_HOURS_FREE` (default 24), `…_STANDARD`
        /// (24) and `…_ENTERPRISE` (6).
        pub every_hours_free: u32 = 24,
        pub every_hours_standard: u32 = 24,
        pub every_hours_enterprise: u32 = 6,
        /// Retention: the newest backup of each of the last `keep_daily` days
        /// and of each of the last `keep_weekly` weeks is kept, the rest are
        /// pruned from the location (a purge's final backup is never pruned).
        /// `TENANT_PLANE_BACKUP_KEEP_DAILY` (default 7), `…_KEEP_WEEKLY` (4).
        pub keep_daily: u32 = 7,
        pub keep_weekly: u32 = 4,
        /// Where plaintext dumps are kept while a backup, a restore or a move
        /// needs them: room for the largest tenant's dump, on a disk as private
        /// as the data directory. Each process works in a folder of its own
        /// there, and start-up removes those of processes that died.
        /// `TENANT_PLANE_BACKUP_SCRATCH_DIR`; unset, `<data_dir>/scratch`
        /// (`Settings::scratch_dir`).
        pub scratch_dir: Option<std::path::PathBuf> = None,
        /// Point-in-time restore. With a backup location, the embedded
        /// cluster archives its WAL with pgBackRest into `<location>/pgbackrest`
        /// (a bucket over HTTPS only), at the latest every `archive_timeout_secs`
        /// (the most a crash of the server can lose).
        /// `TENANT_PLANE_BACKUP_ARCHIVE_TIMEOUT_SECS`, default 60.
        pub archive_timeout_secs: u32 = 60,
        /// Days between full base backups of an archiving cluster, and hours
        /// between differential ones (0: none). `TENANT_PLANE_BACKUP_FULL_EVERY_DAYS`
        /// (default 7), `TENANT_PLANE_BACKUP_DIFF_EVERY_HOURS` (24). The full
        /// backups kept are `keep_weekly`, and the WAL needed to restore from them.
        pub full_every_days: u32 = 7,
        pub diff_every_hours: u32 = 24,
        /// Where a point-in-time restore recovers the tenant's database, in a
        /// scratch PostgreSQL run by the `postgres` user: room for the restored
        /// files. Unset: `<scratch_dir>/recovery` when `postgres` can reach it,
        /// else `<embedded.fallback_dir>/recovery`. `TENANT_PLANE_BACKUP_RECOVERY_DIR`.
        pub recovery_dir: Option<std::path::PathBuf> = None,
    }
}

impl BackupSettings {
    /// The backup location's folder, when it is one (not a bucket).
    pub fn folder(&self) -> Option<std::path::PathBuf> {
        let location = self.location.as_deref()?;
        if location.starts_with("s3://") {
            return None;
        }
        Some(std::path::PathBuf::from(
            location.strip_prefix("file://").unwrap_or(location),
        ))
    }

    /// The backup location's bucket, when it is one, its settings resolved:
    /// each one unset falls back to the usual `AWS_*` variable, as the S3
    /// client's do, so backups and the WAL archive reach the same place.
    pub fn bucket(&self) -> Option<Bucket> {
        let rest = self.location.as_deref()?.strip_prefix("s3://")?;
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let env = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        Some(Bucket {
            name: name.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint: self
                .s3_endpoint
                .clone()
                .or_else(|| env(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"])),
            region: self
                .s3_region
                .clone()
                .or_else(|| env(&["AWS_REGION", "AWS_DEFAULT_REGION"])),
            access_key_id: self
                .s3_access_key_id
                .clone()
                .or_else(|| env(&["AWS_ACCESS_KEY_ID"])),
            secret_access_key: self
                .s3_secret_access_key
                .clone()
                .or_else(|| env(&["AWS_SECRET_ACCESS_KEY"]).map(SecretString::from)),
        })
    }

    /// Hours between a tier's scheduled backups; `None`: not scheduled.
    pub fn every(&self, tier: crate::domain::Tier) -> Option<std::time::Duration> {
        let hours = match tier {
            crate::domain::Tier::Free => self.every_hours_free,
            crate::domain::Tier::Standard => self.every_hours_standard,
            crate::domain::Tier::Enterprise => self.every_hours_enterprise,
        };
        (hours > 0).then(|| std::time::Duration::from_secs(u64::from(hours) * 3600))
    }
}

/// A bucket backup location (`s3://name/prefix`) and how to reach it.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
    /// `https://host[:port]`, for a bucket not on AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
}

section! {
    /// Outbound webhooks, one endpoint per installation: the events
    /// `tenant.created`, `tenant.suspended`, `tenant.deleted`, `tenant.purged`,
    /// `operation.succeeded`, `operation.failed` and `migration_run.finished`,
    /// each body signed with HMAC-SHA256 of the secret.
    pub struct WebhookSettings {
        /// `TENANT_PLANE_WEBHOOKS_URL`; unset (no webhooks) by default.
        pub url: Option<String> = None,
        /// The signing secret, at least 16 characters. `TENANT_PLANE_WEBHOOKS_SECRET`.
        pub secret: Option<SecretString> = None,
        /// Attempts before a delivery is given up (backoff doubles from 1 s to
        /// an hour). `TENANT_PLANE_WEBHOOKS_MAX_ATTEMPTS`, default 12.
        pub max_attempts: u32 = 12,
    }
}
