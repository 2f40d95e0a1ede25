//! The services container: everything the HTTP server and the CLI share,
//! built once from the settings. `startup` wraps it in the HTTP layer; every
//! CLI command but `serve` uses it alone, so no command needs the HTTP layer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::catalog::{self, Catalog, ServerState};
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::fleet::Fleet;
use crate::migrator::MigrationSet;
use crate::operations::Operations;
use crate::provisioner::Provisioner;
use crate::reconciler::Reconciler;
use crate::servers::Servers;
use crate::tenants::{PitrTools, Tenants};

/// The store errors the services return as they are (a lost catalog, a
/// database server that refused), for their callers to map: the HTTP
/// layer names them here, never the stores.
pub use crate::catalog::CatalogError;
pub use crate::provisioner::ProvisionError;

/// The library services, shared by the HTTP server and the CLI.
#[derive(Clone)]
pub struct Services {
    pub catalog: Catalog,
    pub tenants: Tenants,
    /// The tenant commands, by noun (see `tenants::commands`).
    pub lifecycle: crate::tenants::Lifecycle,
    pub onboarding: crate::onboarding::Onboarding,
    pub placement: crate::tenants::Placement,
    pub backups: crate::tenants::Backups,
    pub keys: crate::tenants::Keys,
    pub reconciler: Reconciler,
    pub fleet: Fleet,
    pub servers: Servers,
    pub operations: Operations,
    /// API-key verification, with the records it keeps in memory.
    pub api_keys: crate::auth::api_key::ApiKeys,
    /// Tenants' own identity providers: their tokens, the console's sign-in.
    pub identity: crate::auth::providers::IdentityProviders,
    /// A tenant's API keys: mint, list, revoke.
    pub tenant_keys: crate::tenant_keys::TenantKeys,
    /// A tenant's custom domains.
    pub domains: crate::custom_domains::CustomDomains,
    /// The console's sessions: which were signed out, and their records.
    pub console_sessions: crate::auth::console_sessions::ConsoleSessions,
    /// Requests run at most once per `Idempotency-Key`.
    pub idempotency: crate::idempotency::Idempotency,
    /// The control-plane audit log, read.
    pub audit: crate::control_audit::AuditLog,
    /// The event log and the webhook deliveries, read.
    pub event_log: crate::events::EventLog,
    /// Tells this replica's router of route changes (see `route_notices`).
    pub routes: crate::route_notices::RouteNotices,
    /// Drift: fleet scans, one tenant's check, what was found.
    pub drift: crate::drift::Scans,
    /// Usage per tenant: requests counted, databases sampled, quotas.
    pub usage: crate::usage::Usage,
    /// Ends this process's owner lease (the last step of shutdown).
    lease: CancellationToken,
}

impl Services {
    /// Connects to and migrates the catalog, registers the catalog's own
    /// server, and brings every active server's template up to date.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        Self::connect_with(settings, None).await
    }

    /// `connect`, for the process that runs the embedded cluster: its WAL
    /// archive is recorded as the catalog server's, and this process takes
    /// its base backups.
    pub async fn connect_with(
        settings: &Settings,
        embedded_archive: Option<crate::wal_archive::EmbeddedArchive>,
    ) -> anyhow::Result<Self> {
        let url = settings
            .database_url
            .clone()
            .context("no catalog database configured (TENANT_PLANE_DATABASE_URL)")?;
        let key = settings
            .master_key
            .as_ref()
            .context("no master key configured (TENANT_PLANE_MASTER_KEY)")?;
        let master_key = MasterKey::from_hex(key).context("TENANT_PLANE_MASTER_KEY")?;
        // Before anything else: plaintext dumps a killed process left.
        let scratch_root = settings.scratch_dir();
        let scratch = crate::backup::Scratch::open(&scratch_root).with_context(|| {
            format!(
                "opening the scratch folder {} (backup.scratch_dir)",
                scratch_root.display()
            )
        })?;
        let catalog = Catalog::connect(&url, &settings.catalog)
            .await
            .context("connecting to the catalog database")?;
        catalog::upgrade_schema(&catalog)
            .await
            .context("upgrading the catalog schema")?;
        let catalog_server = catalog
            .register_catalog_server()
            .await
            .context("registering the catalog's database server")?;
        let migrations = match &settings.migrations.tenant_dir {
            Some(dir) => MigrationSet::from_dir(dir)?,
            None => MigrationSet::embedded(),
        }
        .with_lock_policy(lock_policy(&settings.migrations))
        // Revert: the linter says which down steps lose data.
        .with_data_loss_check(|file: &str, sql: &str| {
            let finding = crate::lint::lint_file(file, sql)
                .into_iter()
                .find(|f| f.is_destructive())?;
            Some(crate::migrator::DataLoss {
                rule: finding.rule,
                line: finding.line,
            })
        });
        // Refused before any template moves: a file that differs from the
        // one the fleet applied under its version.
        catalog
            .check_migration_checksums(&migrations.checksums())
            .await
            .context("checking the tenant migrations against the ones the fleet applied")?;
        let installation = catalog
            .installation_id()
            .await
            .context("reading the installation id")?;
        let provisioner = Provisioner::new(
            catalog.config().clone(),
            migrations,
            master_key.clone(),
            installation,
        );
        let lease = CancellationToken::new();
        let operations = Operations::start(
            catalog.clone(),
            Duration::from_secs(settings.reconciler.stale_after_secs),
            lease.clone(),
        )
        .await
        .context("taking this process's owner lease on the catalog")?;
        for server in catalog.list_servers().await? {
            if server.state != ServerState::Active {
                continue;
            }
            // The catalog's own server must work; another one that is
            // unreachable now gets its template on its first tenant.
            match provisioner.prepare_server(&server).await {
                Ok(_) => {}
                Err(e) if !server.is_catalog => tracing::warn!(
                    server = %server.name,
                    error = %format!("{:#}", anyhow::Error::from(e)),
                    "cannot prepare the template database on a server; tenants are not placed there until it answers"
                ),
                Err(e) => {
                    return Err(anyhow::Error::from(e).context(format!(
                        "preparing the template database on server {}",
                        server.name
                    )))
                }
            }
        }
        // The catalog's own template now holds every version of the set.
        // Checking again after recording refuses a build whose record lost
        // to another's that started at the same moment.
        let checksums = provisioner.migrations().checksums();
        catalog.record_migration_checksums(&checksums).await?;
        catalog
            .check_migration_checksums(&checksums)
            .await
            .context("checking the tenant migrations against the ones the fleet applied")?;
        let routes = crate::route_notices::RouteNotices::default();
        let fleet = Fleet::new(catalog.clone(), provisioner.clone(), operations.clone());
        let pitr = crate::tenants::pitr_tools(settings, embedded_archive.clone()).map(Arc::new);
        let servers = Servers::new(
            catalog.clone(),
            provisioner.clone(),
            master_key.clone(),
            routes.clone(),
        )
        .with_archive_reader(pitr.as_ref().map(PitrTools::reader));
        let drift = crate::drift::Scans::new(
            catalog.clone(),
            operations.clone(),
            crate::drift::Inspector::new(catalog.clone(), provisioner.clone()),
        );
        let usage =
            crate::usage::Usage::new(catalog.clone(), provisioner.clone(), settings.usage.clone());
        let identity = crate::auth::providers::IdentityProviders::new(
            catalog.clone(),
            master_key.clone(),
            settings,
        )?;
        let tenants = Tenants::new(catalog.clone(), provisioner, master_key, operations.clone())
            .with_backup_store(
                crate::backup::BackupStore::open(&settings.backup)
                    .context("opening the backup location")?,
            )
            .with_scratch(scratch)
            .with_routes(routes.clone())
            .with_pitr(pitr);
        if let Some(archive) = &embedded_archive {
            tenants
                .record_embedded_archive(catalog_server, &archive.archive)
                .await
                .context("recording the embedded cluster's WAL archive")?;
        }
        let reconciler = Reconciler::new(
            tenants.clone(),
            fleet.clone(),
            &settings.reconciler,
            settings.tenants.retention_days,
            &settings.retention,
            &settings.backup,
        )
        .with_drift_scans(drift.clone());
        let api_keys = crate::auth::api_key::ApiKeys::new(catalog.clone());
        let tenant_keys = crate::tenant_keys::TenantKeys::new(
            catalog.clone(),
            api_keys.clone(),
            settings.tenants.max_api_keys,
        );
        let lifecycle = crate::tenants::Lifecycle::new(tenants.clone());
        Ok(Self {
            onboarding: crate::onboarding::Onboarding::new(lifecycle.clone(), tenant_keys.clone()),
            tenant_keys,
            domains: crate::custom_domains::CustomDomains::new(catalog.clone()),
            console_sessions: crate::auth::console_sessions::ConsoleSessions::new(catalog.clone()),
            idempotency: crate::idempotency::Idempotency::new(catalog.clone()),
            audit: crate::control_audit::AuditLog::new(catalog.clone()),
            event_log: crate::events::EventLog::new(catalog.clone()),
            api_keys,
            identity,
            routes,
            catalog,
            lifecycle,
            placement: crate::tenants::Placement::new(tenants.clone()),
            backups: crate::tenants::Backups::new(tenants.clone()),
            keys: crate::tenants::Keys::new(tenants.clone()),
            tenants,
            reconciler,
            fleet,
            drift,
            usage,
            servers,
            operations,
            lease,
        })
    }

    /// Whether the catalog answers (readiness).
    pub async fn ping(&self) -> Result<(), crate::catalog::CatalogError> {
        self.catalog.ping().await
    }

    /// Ends this process's owner lease: whatever it leaves unfinished, a
    /// peer (or its next start) takes over at once.
    pub fn end_lease(&self) {
        self.lease.cancel();
    }
}

/// The lock safety every tenant migration runs under (`migrations.lock_*`).
fn lock_policy(m: &crate::config::MigrationSettings) -> crate::migrator::LockPolicy {
    use std::time::Duration;
    crate::migrator::LockPolicy {
        lock_timeout: Duration::from_millis(m.lock_timeout_ms),
        statement_timeout: Duration::from_millis(m.statement_timeout_ms),
        retries: m.lock_retries,
        backoff: Duration::from_millis(m.lock_retry_backoff_ms),
    }
}
