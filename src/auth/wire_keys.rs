//! The keys a tenant may log in with on the PostgreSQL wire, kept in memory
//! per tenant so a crowd of logins costs one catalog read, not one each.
//!
//! Rule: a revocation reaches these lists as it reaches `ApiKeys` (whose
//! `forget_tenant` and `forget_all` forward here): at once in the process
//! that revoked, on the catalog's notice elsewhere. A list read while its
//! tenant was being forgotten is not kept.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::{ApiKeyRecord, Catalog, CatalogError};
use crate::domain::TenantId;

/// How long a list is trusted without a notice (notices keep it true).
const KEEP_FOR: Duration = Duration::from_secs(60);
/// How long a slug is known to name a root tenant, or none (a new
/// tenant's slug is found within this).
const SLUG_FOR: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct WireKeys {
    catalog: Catalog,
    lists: moka::sync::Cache<TenantId, Arc<Vec<ApiKeyRecord>>>,
    slugs: moka::future::Cache<String, Option<TenantId>>,
    forgets: Arc<AtomicU64>,
    forgotten_at: moka::sync::Cache<TenantId, u64>,
    /// Catalog reads of lists at once: a crowd of logins of one tenant
    /// waits for the first read instead of each taking a catalog session.
    reads: Arc<tokio::sync::Semaphore>,
    /// When each tenant's list was last read again for a failed proof.
    refreshed: moka::sync::Cache<TenantId, std::time::Instant>,
    /// Tenants whose list the catalog could not give within the last
    /// second (`still_listed` does not ask again meanwhile).
    unreadable: moka::sync::Cache<TenantId, ()>,
}

impl WireKeys {
    pub fn new(catalog: Catalog) -> Self {
        Self {
            catalog,
            lists: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEEP_FOR)
                .build(),
            slugs: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(SLUG_FOR)
                .build(),
            forgets: Arc::default(),
            forgotten_at: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEEP_FOR * 2)
                .build(),
            reads: Arc::new(tokio::sync::Semaphore::new(2)),
            refreshed: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            unreadable: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(1))
                .build(),
        }
    }

    /// The root tenant whose slug this is; `None` for none (or a subtenant's).
    pub async fn root_by_slug(&self, slug: &str) -> Result<Option<TenantId>, Arc<CatalogError>> {
        let catalog = self.catalog.clone();
        let slug_owned = slug.to_string();
        self.slugs
            .try_get_with(slug_owned.clone(), async move {
                Ok(match catalog.tenant_by_slug(&slug_owned).await? {
                    Some((id, None)) => Some(id),
                    _ => None,
                })
            })
            .await
    }

    /// The tenant's unrevoked keys with a wire verifier.
    pub async fn keys(&self, tenant: TenantId) -> Result<Arc<Vec<ApiKeyRecord>>, CatalogError> {
        if let Some(list) = self.lists.get(&tenant) {
            return Ok(list);
        }
        let _turn = self.reads.acquire().await.expect("never closed");
        // Another login may have read it while this one waited.
        if let Some(list) = self.lists.get(&tenant) {
            return Ok(list);
        }
        let began = self.forgets.load(Ordering::SeqCst);
        let list = Arc::new(self.catalog.wire_keys(tenant).await?);
        let forgotten = self.forgotten_at.get(&tenant).unwrap_or(0);
        if forgotten <= began {
            self.lists.insert(tenant, list.clone());
        }
        Ok(list)
    }

    /// Whether `key` is still among the tenant's unrevoked keys: from the
    /// list in memory, or read again; `None` when the catalog cannot say
    /// now. While it cannot, each tenant's list is asked for once a second
    /// at most, so logged-in clients do not queue for the catalog.
    pub async fn still_listed(&self, tenant: TenantId, key: uuid::Uuid) -> Option<bool> {
        if let Some(list) = self.lists.get(&tenant) {
            return Some(list.iter().any(|k| k.id == key));
        }
        if self.unreadable.contains_key(&tenant) {
            return None;
        }
        match self.keys(tenant).await {
            Ok(list) => Some(list.iter().any(|k| k.id == key)),
            Err(e) => {
                tracing::warn!(tenant.id = %tenant, error = %e, "a tenant's API keys could not be read again");
                self.unreadable.insert(tenant, ());
                None
            }
        }
    }

    /// The tenant's list read again now, unless it was read within the last
    /// second (a crowd of failed logins costs a read a second, no more).
    pub async fn refresh(&self, tenant: TenantId) -> Result<Arc<Vec<ApiKeyRecord>>, CatalogError> {
        let now = std::time::Instant::now();
        let recent = self
            .refreshed
            .get(&tenant)
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1));
        if !recent {
            self.refreshed.insert(tenant, now);
            self.lists.invalidate(&tenant);
        }
        self.keys(tenant).await
    }

    pub fn forget_tenant(&self, tenant: TenantId) {
        let now = self.forgets.fetch_add(1, Ordering::SeqCst) + 1;
        self.forgotten_at.insert(tenant, now);
        self.lists.invalidate(&tenant);
    }

    pub fn forget_all(&self) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.lists.invalidate_all();
        self.slugs.invalidate_all();
    }
}
