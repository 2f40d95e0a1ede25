//! Changing a tenant's name, tier or settings.

use secrecy::ExposeSecret;

use super::view::stored_config;
use super::{settings_purpose, TenantView, Tenants, TenantsError};
use crate::catalog::{TenantRecord, TenantUpdate};
use crate::domain::{TenantId, TenantName, Tier};
use crate::tenant_config::{check_narrowing, merge_secrets, resolved, split_secrets};

/// A validated PATCH. `settings` is an RFC 7396 merge patch.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub name: Option<TenantName>,
    pub tier: Option<Tier>,
    pub settings: Option<serde_json::Value>,
}

impl Tenants {
    #[tracing::instrument(skip_all, fields(tenant.id = %id))]
    pub async fn update(
        &self,
        id: TenantId,
        patch: TenantPatch,
    ) -> Result<TenantView, TenantsError> {
        let record = self.record(id).await?;
        if patch.tier.is_some() && record.parent_id.is_some() {
            return Err(TenantsError::NotRoot(
                "a subtenant takes its parent's tier; change the parent's",
            ));
        }
        let settings = match &patch.settings {
            Some(merge) => Some(self.merged_settings(&record, merge).await?),
            None => None,
        };
        let update = TenantUpdate {
            name: patch.name.map(|n| n.as_str().to_string()),
            tier: patch.tier,
            settings,
        };
        let updated = self
            .catalog
            .update_tenant(id, &update)
            .await?
            .ok_or(TenantsError::NotFound)?;
        self.view(&updated).await
    }

    /// Applies the merge patch, puts back secrets sent as `REDACTED`, checks
    /// that a subtenant stays within its parent, and seals the secrets again.
    async fn merged_settings(
        &self,
        record: &TenantRecord,
        merge: &serde_json::Value,
    ) -> Result<(serde_json::Value, Option<Vec<u8>>), TenantsError> {
        let mut config = stored_config(record).merge_patch(merge)?;
        let purpose = settings_purpose(record.id);
        if let Some(sealed) = &record.settings_secrets_enc {
            let old = self.master_key.open_string(&purpose, sealed)?;
            let old: serde_json::Value =
                serde_json::from_str(old.expose_secret()).unwrap_or_default();
            merge_secrets(&mut config, &old);
        }
        if let Some(parent) = record.parent_id {
            let root = self.record(parent).await?;
            check_narrowing(&config, &resolved(root.tier, &stored_config(&root), None))
                .map_err(TenantsError::ExceedsParent)?;
        }
        let secrets = split_secrets(&mut config);
        Ok((
            serde_json::to_value(&config).expect("settings serialise"),
            Some(
                self.master_key
                    .seal(&purpose, secrets.to_string().as_bytes()),
            ),
        ))
    }
}
