//! `tenant_identity_providers`: each tenant's own OpenID provider, and
//! `tenant_first_admins`: the admin each tenant was made with.
//!
//! Rule: an issuer belongs to one tenant (a unique column), so the `iss` of
//! a token names at most one provider; setting another tenant's issuer is
//! refused (`IssuerTaken`), under the same statement that writes.

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::TenantId;

/// One tenant's provider, as stored. `mappings` is the JSON the service
/// wrote, checked on the way in.
#[derive(Debug, Clone)]
pub struct ProviderRow {
    pub tenant_id: TenantId,
    pub issuer: String,
    pub jwks_uri: String,
    pub discovered: bool,
    pub audience: String,
    pub user_claim: String,
    pub groups_claim: String,
    pub mappings: serde_json::Value,
    pub subtenants_may_override: bool,
    pub client_id: Option<String>,
    /// Sealed with the master key, bound to the tenant.
    pub client_secret_enc: Option<Vec<u8>>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

/// Associated data of a provider's sealed client secret: binds it to its tenant.
pub fn client_secret_purpose(id: TenantId) -> String {
    format!("identity-client-secret:{id}")
}

/// Written when the issuer is another tenant's.
#[derive(Debug)]
pub struct IssuerTaken;

const COLUMNS: &str = "tenant_id, issuer, jwks_uri, discovered, audience, user_claim,
    groups_claim, mappings, subtenants_may_override, client_id, client_secret_enc,
    created_by, updated_at";

fn from_row(r: &Row) -> ProviderRow {
    ProviderRow {
        tenant_id: TenantId::from(r.get::<_, Uuid>("tenant_id")),
        issuer: r.get("issuer"),
        jwks_uri: r.get("jwks_uri"),
        discovered: r.get("discovered"),
        audience: r.get("audience"),
        user_claim: r.get("user_claim"),
        groups_claim: r.get("groups_claim"),
        mappings: r.get("mappings"),
        subtenants_may_override: r.get("subtenants_may_override"),
        client_id: r.get("client_id"),
        client_secret_enc: r.get("client_secret_enc"),
        created_by: r.get("created_by"),
        updated_at: r.get("updated_at"),
    }
}

impl Catalog {
    /// Sets `row.tenant_id`'s provider, replacing the one it had.
    pub async fn put_identity_provider(
        &self,
        row: &ProviderRow,
    ) -> Result<Result<ProviderRow, IssuerTaken>, CatalogError> {
        let client = self.pool().get().await?;
        let result = client
            .query_one(
                &format!(
                    "INSERT INTO tenant_identity_providers
                       (tenant_id, issuer, jwks_uri, discovered, audience, user_claim,
                        groups_claim, mappings, subtenants_may_override, client_id,
                        client_secret_enc, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (tenant_id) DO UPDATE SET
                       issuer = EXCLUDED.issuer, jwks_uri = EXCLUDED.jwks_uri,
                       discovered = EXCLUDED.discovered, audience = EXCLUDED.audience,
                       user_claim = EXCLUDED.user_claim, groups_claim = EXCLUDED.groups_claim,
                       mappings = EXCLUDED.mappings,
                       subtenants_may_override = EXCLUDED.subtenants_may_override,
                       client_id = EXCLUDED.client_id,
                       client_secret_enc = EXCLUDED.client_secret_enc,
                       created_by = EXCLUDED.created_by, updated_at = now()
                     RETURNING {COLUMNS}"
                ),
                &[
                    &row.tenant_id.as_uuid(),
                    &row.issuer,
                    &row.jwks_uri,
                    &row.discovered,
                    &row.audience,
                    &row.user_claim,
                    &row.groups_claim,
                    &row.mappings,
                    &row.subtenants_may_override,
                    &row.client_id,
                    &row.client_secret_enc,
                    &row.created_by,
                ],
            )
            .await;
        match result {
            Ok(r) => Ok(Ok(from_row(&r))),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(Err(IssuerTaken)),
            Err(e) => Err(e.into()),
        }
    }

    /// `tenant`'s own provider (not its root's).
    pub async fn identity_provider(
        &self,
        tenant: TenantId,
    ) -> Result<Option<ProviderRow>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM tenant_identity_providers WHERE tenant_id = $1"),
                &[&tenant.as_uuid()],
            )
            .await?;
        Ok(row.as_ref().map(from_row))
    }

    /// Every provider of a tenant that is not purged.
    pub async fn identity_providers(&self) -> Result<Vec<ProviderRow>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM tenant_identity_providers p
                      WHERE EXISTS (SELECT 1 FROM tenants t
                                     WHERE t.id = p.tenant_id AND t.purged_at IS NULL)"
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// Removes `tenant`'s own provider; whether it had one.
    pub async fn delete_identity_provider(&self, tenant: TenantId) -> Result<bool, CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "DELETE FROM tenant_identity_providers WHERE tenant_id = $1",
                &[&tenant.as_uuid()],
            )
            .await?;
        Ok(n > 0)
    }

    /// Records the admin `tenant` was made with.
    pub async fn record_first_admin(
        &self,
        tenant: TenantId,
        subject: &str,
        email: &str,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO tenant_first_admins (tenant_id, subject, email) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id) DO NOTHING",
                &[&tenant.as_uuid(), &subject, &email],
            )
            .await?;
        Ok(())
    }

    /// Every tenant's first admin subject, by tenant.
    pub async fn first_admins(&self) -> Result<Vec<(TenantId, String)>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query("SELECT tenant_id, subject FROM tenant_first_admins", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| (TenantId::from(r.get::<_, Uuid>(0)), r.get(1)))
            .collect())
    }

    /// The live tenants of every family (a root and its subtenants) in
    /// which some tenant has a provider: (id, parent).
    pub async fn identity_families(
        &self,
    ) -> Result<Vec<(TenantId, Option<TenantId>)>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT id, parent_id FROM tenants
                  WHERE purged_at IS NULL
                    AND coalesce(parent_id, id) IN (
                        SELECT coalesce(t.parent_id, t.id)
                          FROM tenant_identity_providers p JOIN tenants t ON t.id = p.tenant_id)",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    TenantId::from(r.get::<_, Uuid>(0)),
                    r.get::<_, Option<Uuid>>(1).map(TenantId::from),
                )
            })
            .collect())
    }

    /// The tenant (not purged) whose slug this is: its id and parent.
    pub async fn tenant_by_slug(
        &self,
        slug: &str,
    ) -> Result<Option<(TenantId, Option<TenantId>)>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT id, parent_id FROM tenants WHERE slug = $1 AND purged_at IS NULL",
                &[&slug],
            )
            .await?;
        Ok(row.map(|r| {
            (
                TenantId::from(r.get::<_, Uuid>(0)),
                r.get::<_, Option<Uuid>>(1).map(TenantId::from),
            )
        }))
    }

    /// The subtenants of `root` (not purged) with providers of their own.
    pub async fn subtenant_identity_providers(
        &self,
        root: TenantId,
    ) -> Result<Vec<TenantId>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT p.tenant_id FROM tenant_identity_providers p
                   JOIN tenants t ON t.id = p.tenant_id
                  WHERE t.parent_id = $1 AND t.purged_at IS NULL
                  ORDER BY p.tenant_id",
                &[&root.as_uuid()],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TenantId::from(r.get::<_, Uuid>(0)))
            .collect())
    }
}
