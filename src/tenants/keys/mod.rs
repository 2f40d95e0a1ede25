//! Re-sealing every catalog secret under the newest master key
//! (`tenant-plane keys rotate`): tenant role passwords, integration secrets
//! and server admin passwords. It works in batches, each its own
//! transaction over rows it locked, so it can be stopped and run again (or
//! run twice at once) and only what is left is done.
//!
//! Rules: a value is re-sealed under the purpose it was sealed for, so it
//! opens where it did before; one that no configured key opens stops the
//! run (`KeysError::Unopenable`) and is never overwritten.

mod error;

use uuid::Uuid;

pub use error::KeysError;

use super::{settings_purpose, Tenants};
use crate::catalog::{role_purpose, SealedColumn};
use crate::domain::TenantId;
use crate::provisioner::server_password_purpose;

/// What a rotation re-sealed, column by column.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RekeyReport {
    /// The newest key's id: every secret is sealed under it now.
    pub key_id: String,
    pub resealed: Vec<(&'static str, usize)>,
}

impl Tenants {
    /// Re-seals every secret not yet under the newest key, `batch` rows per
    /// transaction; `progress` hears each column's running count.
    pub async fn rekey(
        &self,
        batch: i64,
        mut progress: impl FnMut(SealedColumn, usize),
    ) -> Result<RekeyReport, KeysError> {
        let current = self.master_key.newest_prefix();
        let mut report = RekeyReport {
            key_id: self.master_key.newest_id(),
            resealed: Vec::new(),
        };
        for column in SealedColumn::ALL {
            let purpose = |id: Uuid| match column {
                SealedColumn::TenantRolePassword => role_purpose(TenantId::from(id)),
                SealedColumn::TenantSecrets => settings_purpose(TenantId::from(id)),
                SealedColumn::ServerAdminPassword => server_password_purpose(id),
                SealedColumn::IdentityClientSecret => {
                    crate::catalog::client_secret_purpose(TenantId::from(id))
                }
            };
            let mut done = 0;
            loop {
                let resealed = self
                    .catalog
                    .reseal_batch(column, &current, batch, |id, old| {
                        let purpose = purpose(id);
                        let plain = self.master_key.open(&purpose, old).map_err(|_| {
                            KeysError::Unopenable {
                                what: column.as_str(),
                                id,
                            }
                        })?;
                        Ok::<_, KeysError>(self.master_key.seal(&purpose, &plain))
                    })
                    .await??;
                if resealed == 0 {
                    break;
                }
                done += resealed;
                progress(column, done);
            }
            report.resealed.push((column.as_str(), done));
        }
        Ok(report)
    }
}
