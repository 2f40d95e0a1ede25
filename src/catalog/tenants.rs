//! `tenants`: the intent record of every tenant and subtenant.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Catalog, CatalogError, ServerState};
use crate::crypto::{CryptoError, MasterKey};
use crate::domain::{DbName, Slug, TenantId, TenantStatus, Tier};

/// Associated data of a tenant role password: binds it to its tenant.
pub fn role_purpose(id: TenantId) -> String {
    format!("tenant-role:{id}")
}

/// Declares a struct of a tenant row's written columns (those an insert
/// sets), followed by `$extra`: `NewTenant` is those alone, `TenantRecord`
/// adds what the catalog stamps. One list, so the two never drift apart.
macro_rules! tenant_row {
    ($(#[$meta:meta])* pub struct $name:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            pub id: TenantId,
            pub slug: Slug,
            /// As stored: the column's CHECK (1 to 200 characters) is looser
            /// than `TenantName`'s rule, which the API applies on the way in,
            /// and a name from an older release is still shown as it is.
            pub name: String,
            /// `None` for a root tenant.
            pub parent_id: Option<TenantId>,
            pub tier: Tier,
            pub status: TenantStatus,
            /// A root tenant's server, picked before the insert (which checks it is
            /// still active); `None` for a subtenant, whose rows live in its root's
            /// database.
            pub db_server_id: Option<Uuid>,
            /// A root tenant's `DbName::for_tenant`, also its role's name (the
            /// insert writes it as both); `None` for a subtenant.
            pub db_name: Option<DbName>,
            /// The role's password, sealed under `role_purpose(id)`.
            pub db_password_enc: Option<Vec<u8>>,
            pub schema_version: i32,
            pub settings: serde_json::Value,
            /// The settings' secrets, split out and sealed.
            pub settings_secrets_enc: Option<Vec<u8>>,
            $($extra)*
        }
    };
}

tenant_row! {
    /// A tenant row to insert.
    #[derive(Debug, Clone)]
    pub struct NewTenant {}
}

tenant_row! {
    /// A tenant row as stored. Secrets stay sealed here.
    #[derive(Debug, Clone)]
    pub struct TenantRecord {
        pub error: Option<String>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
        pub deleted_at: Option<DateTime<Utc>>,
        pub purged_at: Option<DateTime<Utc>>,
    }
}

impl TenantRecord {
    /// The tenant role's password, opened with the master key; `None` when
    /// the record has none (a subtenant, or a create not yet that far).
    pub fn role_password(
        &self,
        key: &MasterKey,
    ) -> Result<Option<secrecy::SecretString>, CryptoError> {
        self.db_password_enc
            .as_deref()
            .map(|sealed| key.open_string(&role_purpose(self.id), sealed))
            .transpose()
    }
}

pub(super) const TENANT_COLUMNS: &str = "id, slug, name, parent_id, tier, status, db_server_id,
    db_name, db_password_enc, schema_version, settings, settings_secrets_enc, error,
    created_at, updated_at, deleted_at, purged_at";

pub(super) fn tenant_from_row(r: &Row) -> TenantRecord {
    TenantRecord {
        id: TenantId::from(r.get::<_, Uuid>("id")),
        // The column's CHECK is `Slug`'s rule and `DbName`'s pattern (a unit
        // test holds them together), so a stored value always parses.
        slug: Slug::parse(r.get("slug")).expect("tenants.slug is checked as a Slug"),
        name: r.get("name"),
        parent_id: r.get::<_, Option<Uuid>>("parent_id").map(TenantId::from),
        tier: Tier::parse(r.get("tier")).unwrap_or_default(),
        status: TenantStatus::parse(r.get("status")).unwrap_or(TenantStatus::Failed),
        db_server_id: r.get("db_server_id"),
        db_name: r
            .get::<_, Option<&str>>("db_name")
            .map(|n| DbName::recognise(n).expect("tenants.db_name is checked as a DbName")),
        db_password_enc: r.get("db_password_enc"),
        schema_version: r.get("schema_version"),
        settings: r.get("settings"),
        settings_secrets_enc: r.get("settings_secrets_enc"),
        error: r.get("error"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        deleted_at: r.get("deleted_at"),
        purged_at: r.get("purged_at"),
    }
}

/// Filters and page of a tenant listing.
#[derive(Debug, Default, Clone)]
pub struct TenantFilter {
    pub status: Option<TenantStatus>,
    pub parent_id: Option<TenantId>,
    /// Return tenants with an id greater than this (the cursor).
    pub after: Option<TenantId>,
    /// Tenants whose slug or name contains this (any case), or whose id it is.
    pub search: Option<String>,
    pub limit: i64,
}

/// A change to a tenant's name, tier or settings.
#[derive(Debug, Default, Clone)]
pub struct TenantUpdate {
    pub name: Option<String>,
    pub tier: Option<Tier>,
    pub settings: Option<(serde_json::Value, Option<Vec<u8>>)>,
}

impl Catalog {
    pub async fn get_tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, CatalogError> {
        self.read_opt(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"),
            &[&id.as_uuid()],
            tenant_from_row,
        )
        .await
    }

    /// A root tenant's subtenants that are not purged, oldest first.
    pub async fn subtenants_of(&self, root: TenantId) -> Result<Vec<TenantRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {TENANT_COLUMNS} FROM tenants
                  WHERE parent_id = $1 AND purged_at IS NULL ORDER BY id"
            ),
            &[&root.as_uuid()],
            tenant_from_row,
        )
        .await
    }

    /// Root tenants whose database is on `server` (any status but purged).
    pub async fn root_tenants_on(&self, server: Uuid) -> Result<Vec<TenantRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {TENANT_COLUMNS} FROM tenants
                  WHERE db_server_id = $1 AND parent_id IS NULL AND purged_at IS NULL
                  ORDER BY id"
            ),
            &[&server],
            tenant_from_row,
        )
        .await
    }

    /// A drain's check: the server's state and its root tenants, read in
    /// one transaction with the server's row held `FOR UPDATE`. That lock
    /// waits for, and then holds off, every placement's `FOR SHARE` on the
    /// row (`servers::lock_active_server`) and every change of its state,
    /// so nothing lands on the server or puts it back in service between
    /// the two reads: an empty listing under `draining` is final. The
    /// tenants are only read, never locked (see the lock order there).
    /// `None`: no such server.
    pub async fn drain_listing(
        &self,
        server: Uuid,
    ) -> Result<Option<(ServerState, Vec<TenantRecord>)>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT state FROM db_servers WHERE id = $1 FOR UPDATE",
                &[&server],
            )
            .await?
        else {
            return Ok(None);
        };
        let state = ServerState::parse(row.get(0));
        // READ COMMITTED: this statement sees every placement that held
        // the row before the lock above was granted.
        let rows = tx
            .query(
                &format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants
                      WHERE db_server_id = $1 AND parent_id IS NULL AND purged_at IS NULL
                      ORDER BY id"
                ),
                &[&server],
            )
            .await?;
        tx.commit().await?;
        Ok(Some((state, rows.iter().map(tenant_from_row).collect())))
    }

    /// Tenants in id order (v7 ids: creation order), one page at a time.
    pub async fn list_tenants(
        &self,
        filter: &TenantFilter,
    ) -> Result<Vec<TenantRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {TENANT_COLUMNS} FROM tenants
                  WHERE ($1::text IS NULL OR status = $1)
                    AND ($2::uuid IS NULL OR parent_id = $2)
                    AND ($3::uuid IS NULL OR id > $3)
                    AND ($5::text IS NULL OR slug ILIKE $5 ESCAPE '\\' OR name ILIKE $5 ESCAPE '\\'
                         OR id::text = lower($6))
                    AND purged_at IS NULL
                  ORDER BY id LIMIT $4"
            ),
            &[
                &filter.status.map(TenantStatus::as_str),
                &filter.parent_id.map(|p| p.as_uuid()),
                &filter.after.map(|a| a.as_uuid()),
                &filter.limit,
                &filter.search.as_deref().map(contains_pattern),
                &filter.search.as_deref().map(str::trim),
            ],
            tenant_from_row,
        )
        .await
    }

    pub async fn update_tenant(
        &self,
        id: TenantId,
        update: &TenantUpdate,
    ) -> Result<Option<TenantRecord>, CatalogError> {
        let client = self.pool().get().await?;
        let (settings, secrets) = match &update.settings {
            Some((s, e)) => (Some(s), Some(e.clone())),
            None => (None, None),
        };
        let row = client
            .query_opt(
                &format!(
                    "UPDATE tenants SET
                        name = coalesce($2, name),
                        tier = coalesce($3, tier),
                        settings = coalesce($4, settings),
                        settings_secrets_enc = CASE WHEN $5 THEN $6 ELSE settings_secrets_enc END,
                        updated_at = now()
                      WHERE id = $1 AND purged_at IS NULL
                      RETURNING {TENANT_COLUMNS}"
                ),
                &[
                    &id.as_uuid(),
                    &update.name,
                    &update.tier.map(Tier::as_str),
                    &settings,
                    &secrets.is_some(),
                    &secrets.flatten(),
                ],
            )
            .await?;
        Ok(row.as_ref().map(tenant_from_row))
    }

    /// Root tenants with a database on `server` that are not purged.
    pub async fn tenants_on_server(&self, server: Uuid) -> Result<Vec<TenantRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {TENANT_COLUMNS} FROM tenants
                  WHERE db_server_id = $1 AND purged_at IS NULL ORDER BY id"
            ),
            &[&server],
            tenant_from_row,
        )
        .await
    }

    /// Marks a tenant deleted now, ahead of its purge finishing, so that
    /// every replica stops routing to it (the row's change notice).
    pub async fn mark_deleted(&self, id: TenantId) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE tenants SET status = 'deleted', deleted_at = coalesce(deleted_at, now()),
                        updated_at = now()
                  WHERE id = $1 AND status <> 'deleted'",
                &[&id.as_uuid()],
            )
            .await?;
        Ok(())
    }

    pub async fn set_schema_version(&self, id: TenantId, version: i32) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE tenants SET schema_version = $2, updated_at = now() WHERE id = $1",
                &[&id.as_uuid(), &version],
            )
            .await?;
        Ok(())
    }

    /// The tenant a custom domain is registered to.
    pub async fn tenant_for_domain(&self, domain: &str) -> Result<Option<TenantId>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT tenant_id FROM tenant_domains WHERE domain = $1",
                &[&domain],
            )
            .await?;
        Ok(row.map(|r| TenantId::from(r.get::<_, Uuid>(0))))
    }

    /// Registers `domain` for `tenant`; false when another tenant has it.
    pub async fn add_domain(&self, tenant: TenantId, domain: &str) -> Result<bool, CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "INSERT INTO tenant_domains (domain, tenant_id) VALUES ($1, $2)
                 ON CONFLICT (domain) DO UPDATE SET domain = EXCLUDED.domain
                   WHERE tenant_domains.tenant_id = EXCLUDED.tenant_id",
                &[&domain, &tenant.as_uuid()],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn domains_of(&self, tenant: TenantId) -> Result<Vec<String>, CatalogError> {
        self.read_all(
            "SELECT domain FROM tenant_domains WHERE tenant_id = $1 ORDER BY domain",
            &[&tenant.as_uuid()],
            |r| r.get(0),
        )
        .await
    }

    /// Soft-deleted tenants whose retention has run out.
    pub async fn expired_deletions(
        &self,
        retention_days: u32,
    ) -> Result<Vec<TenantRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {TENANT_COLUMNS} FROM tenants
                  WHERE status = 'deleted' AND purged_at IS NULL
                    AND deleted_at < now() - make_interval(days => $1)"
            ),
            &[&(retention_days as i32)],
            tenant_from_row,
        )
        .await
    }
}

/// A LIKE pattern that matches `text` anywhere, its own `%`, `_` and `\\`
/// taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.trim().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
#[path = "tenants_columns_tests.rs"]
mod columns_tests;

#[cfg(test)]
mod search_tests {
    #[test]
    fn a_search_pattern_takes_like_wildcards_literally() {
        assert_eq!(super::contains_pattern(" ac_me% "), "%ac\\_me\\%%");
        assert_eq!(super::contains_pattern("a\\b"), "%a\\\\b%");
    }
}
