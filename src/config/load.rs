//! Reading and checking the layers. A bad value stops start-up with one line
//! that names the setting, where it came from, and what was wrong.

use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::value::{Uncased, UncasedStr};
use figment::Figment;
use secrecy::ExposeSecret;

use super::Settings;

/// The environment prefix of every setting.
pub const ENV_PREFIX: &str = "TENANT_PLANE_";

/// Tables in the settings; `TENANT_PLANE_HTTP_MAX_BODY_BYTES` means `http.max_body_bytes`.
const SECTIONS: [&str; 15] = [
    "backup",
    "gateway",
    "identity",
    "usage",
    "tokens",
    "webhooks",
    "retention",
    "router",
    "metrics",
    "http",
    "catalog",
    "embedded",
    "tenants",
    "reconciler",
    "migrations",
];

/// Variables with our prefix that are not settings: the test harness's, and
/// the CLI's own arguments that keep secrets off its command line.
const NOT_SETTINGS: [&str; 8] = [
    "test_database_url",
    "test_log",
    "test_browser",
    "test_pgbackrest",
    "server_dsn",
    "archive_cipher_pass",
    "archive_s3_key",
    "archive_s3_key_secret",
];

/// Shortest takeover threshold: its sixth (the heartbeat) is half a second.
pub const MIN_STALE_AFTER_SECS: u64 = 3;

/// Shortest accepted HS256 secret: RFC 7518 asks for a key as long as the hash.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid setting `{setting}` ({origin}): {reason}")]
pub struct ConfigError {
    /// Dotted path of the setting, e.g. `http.max_body_bytes`.
    pub setting: String,
    /// Where the value came from: an environment variable or a file.
    pub origin: String,
    pub reason: String,
}

impl Settings {
    /// Defaults, then `file` if given, then the process environment.
    /// Every path in the result is absolute (see `paths.rs`).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        // Defaults come from `#[serde(default)]`, so the first layer is empty.
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError {
                    setting: "--config".into(),
                    origin: file.display().to_string(),
                    reason: "no such file".into(),
                });
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(environment());
        let mut settings: Settings = figment.extract().map_err(from_figment)?;
        settings.make_paths_absolute()?;
        settings.read_master_key_file()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The master key from `master_key_file`, kept outside the data
    /// directory it protects (a mounted secret, say). Setting both the key
    /// and the file is refused: which one wins would be a guess.
    fn read_master_key_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.master_key_file else {
            return Ok(());
        };
        let refuse = |reason: String| ConfigError {
            setting: "master_key_file".into(),
            origin: env_name("master_key_file"),
            reason,
        };
        if self.master_key.is_some() {
            return Err(refuse(
                "set either it or TENANT_PLANE_MASTER_KEY, not both".into(),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
        self.master_key = Some(secrecy::SecretString::from(text.trim().to_string()));
        Ok(())
    }

    /// Checks that serde cannot express. Called by `load`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting: &str, reason: String| ConfigError {
            setting: setting.into(),
            origin: env_name(setting),
            reason,
        };
        if let Some(secret) = &self.jwt_secret {
            if secret.expose_secret().len() < MIN_JWT_SECRET_BYTES {
                return Err(invalid(
                    "jwt_secret",
                    format!("must be at least {MIN_JWT_SECRET_BYTES} bytes long"),
                ));
            }
        }
        if let Some(key) = &self.master_key {
            crate::crypto::MasterKey::from_hex(key)
                .map_err(|e| invalid("master_key", e.to_string()))?;
        }
        if self.router.max_pools == 0 {
            return Err(invalid("router.max_pools", "must be at least 1".into()));
        }
        if self.router.connection_budget == 0 {
            return Err(invalid(
                "router.connection_budget",
                "must be at least 1".into(),
            ));
        }
        if self.router.max_starting == 0 {
            return Err(invalid("router.max_starting", "must be at least 1".into()));
        }
        for (setting, value) in [
            ("router.pool_size_free", self.router.pool_size_free),
            ("router.pool_size_standard", self.router.pool_size_standard),
            (
                "router.pool_size_enterprise",
                self.router.pool_size_enterprise,
            ),
        ] {
            if value.is_some_and(|v| v == 0 || v > self.router.connection_budget) {
                return Err(invalid(
                    setting,
                    format!(
                        "must be from 1 to router.connection_budget ({}): one tenant's pool cannot be larger than its server's budget",
                        self.router.connection_budget
                    ),
                ));
            }
        }
        for (setting, value) in [
            ("router.acquire_timeout_ms", self.router.acquire_timeout_ms),
            ("router.connect_timeout_ms", self.router.connect_timeout_ms),
            (
                "router.statement_timeout_free_ms",
                self.router.statement_timeout_free_ms,
            ),
            (
                "router.statement_timeout_standard_ms",
                self.router.statement_timeout_standard_ms,
            ),
            (
                "router.statement_timeout_enterprise_ms",
                self.router.statement_timeout_enterprise_ms,
            ),
            (
                "router.idle_in_transaction_timeout_ms",
                self.router.idle_in_transaction_timeout_ms,
            ),
            ("router.idle_timeout_secs", self.router.idle_timeout_secs),
            (
                "migrations.lock_timeout_ms",
                self.migrations.lock_timeout_ms,
            ),
            (
                "migrations.statement_timeout_ms",
                self.migrations.statement_timeout_ms,
            ),
        ] {
            if value == 0 {
                return Err(invalid(
                    setting,
                    "must be at least 1 (0 would wait forever or turn the limit off)".into(),
                ));
            }
        }
        if !(self.router.rate_limit_scale >= 0.0 && self.router.rate_limit_scale.is_finite()) {
            return Err(invalid(
                "router.rate_limit_scale",
                "must be a finite number, 0 or more".into(),
            ));
        }
        self.identity
            .check()
            .map_err(|(setting, reason)| invalid(setting, reason))?;
        self.gateway
            .check()
            .map_err(|(setting, reason)| invalid(setting, reason))?;
        if self.tokens.max_ttl_secs < 60 {
            return Err(invalid("tokens.max_ttl_secs", "must be at least 60".into()));
        }
        if self.reconciler.stale_after_secs < MIN_STALE_AFTER_SECS {
            return Err(invalid(
                "reconciler.stale_after_secs",
                format!(
                    "must be at least {MIN_STALE_AFTER_SECS}: an owner beats every sixth of it and gives up at half, before anyone may take over"
                ),
            ));
        }
        if self.reconciler.interval_secs == 0 {
            return Err(invalid(
                "reconciler.interval_secs",
                "must be at least 1".into(),
            ));
        }
        if let Some(url) = &self.database_url {
            // Parsed as the catalog pool will parse it: the TLS options
            // (`sslmode=verify-full`, `sslrootcert`) come out before
            // tokio-postgres reads the rest, which knows neither. The
            // messages never echo the URL, so they cannot leak a password.
            crate::pg::PgConfig::parse(url.expose_secret())
                .map_err(|e| invalid("database_url", format!("not a PostgreSQL URL: {e}")))?;
        }
        if self.http.max_body_bytes < 1024 {
            return Err(invalid(
                "http.max_body_bytes",
                "must be at least 1024".into(),
            ));
        }
        if let Some(location) = &self.backup.location {
            let bucket = location
                .strip_prefix("s3://")
                .map(|rest| rest.split('/').next().unwrap_or_default());
            let valid = match bucket {
                Some(bucket) => !bucket.is_empty(),
                None => !location.contains("://") || location.starts_with("file:///"),
            };
            if !valid {
                return Err(invalid(
                    "backup.location",
                    "must be a folder (file:///path, or a path) or a bucket (s3://bucket/prefix)"
                        .into(),
                ));
            }
        }
        if let Some(file) = &self.backup.s3_ca_file {
            let pem = std::fs::read_to_string(file).map_err(|e| {
                invalid(
                    "backup.s3_ca_file",
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(invalid(
                    "backup.s3_ca_file",
                    format!("{} holds no PEM certificate", file.display()),
                ));
            }
        }
        if let Some(url) = &self.webhooks.url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "webhooks.url",
                    "must be an http:// or https:// URL".into(),
                ));
            }
            let secret = self
                .webhooks
                .secret
                .as_ref()
                .map(|s| s.expose_secret().len());
            if secret.unwrap_or(0) < 16 {
                return Err(invalid(
                    "webhooks.secret",
                    "must be set, at least 16 characters, when webhooks.url is".into(),
                ));
            }
        }
        if self.backup.keep_daily + self.backup.keep_weekly == 0 {
            return Err(invalid(
                "backup.keep_daily",
                "keep_daily and keep_weekly cannot both be 0 (that would prune every backup)"
                    .into(),
            ));
        }
        for (setting, value) in [
            ("retention.audit_days", self.retention.audit_days),
            (
                "retention.idempotency_hours",
                self.retention.idempotency_hours,
            ),
            ("retention.operations_days", self.retention.operations_days),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1".into()));
            }
        }
        if self.http.denials_per_minute == 0 {
            return Err(invalid(
                "http.denials_per_minute",
                "must be at least 1".into(),
            ));
        }
        if self.http.max_event_streams == 0 {
            return Err(invalid(
                "http.max_event_streams",
                "must be at least 1".into(),
            ));
        }
        if self.metrics.refresh_secs == 0 {
            return Err(invalid("metrics.refresh_secs", "must be at least 1".into()));
        }
        if self
            .metrics
            .token
            .as_ref()
            .is_some_and(|t| t.expose_secret().len() < 16)
        {
            return Err(invalid(
                "metrics.token",
                "must be at least 16 characters".into(),
            ));
        }
        if self.catalog.pool_size == 0 {
            return Err(invalid("catalog.pool_size", "must be at least 1".into()));
        }
        Ok(())
    }
}

fn environment() -> Env {
    Env::prefixed(ENV_PREFIX)
        .ignore(&NOT_SETTINGS)
        .map(|key: &UncasedStr| -> Uncased<'_> {
            let key = key.as_str().to_ascii_lowercase();
            for section in SECTIONS {
                if let Some(rest) = key.strip_prefix(section).and_then(|r| r.strip_prefix('_')) {
                    return format!("{section}.{rest}").into();
                }
            }
            key.into()
        })
}

/// The environment variable that sets a dotted setting.
pub fn env_name(setting: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        setting.replace('.', "_").to_ascii_uppercase()
    )
}

fn from_figment(error: figment::Error) -> ConfigError {
    // figment may collect several errors; the first is enough to fix and retry.
    let error = error
        .into_iter()
        .next()
        .expect("an error has at least one entry");
    let mut path = error.path.clone();
    let reason = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            "unknown setting".to_string()
        }
        kind => kind.to_string(),
    };
    let setting = path.join(".");
    let origin = match error.metadata.as_ref() {
        Some(meta) if meta.name.contains("environment") => env_name(&setting),
        Some(meta) => match &meta.source {
            Some(source) => source.to_string(),
            None => meta.name.to_string(),
        },
        None => "defaults".to_string(),
    };
    ConfigError {
        setting,
        origin,
        reason,
    }
}
