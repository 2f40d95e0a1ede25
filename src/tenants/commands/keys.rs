//! `Keys`: re-sealing every catalog secret under the newest master key.
//! It changes no route: a sealed value opens the same under any
//! configured key.

use crate::catalog::SealedColumn;
use crate::control_audit::{self, Actor, Change};
use crate::tenants::{KeysError, RekeyReport, Tenants};

/// The master-key commands.
#[derive(Clone)]
pub struct Keys {
    tenants: Tenants,
}

impl Keys {
    pub fn new(tenants: Tenants) -> Self {
        Self { tenants }
    }

    /// Re-seals, `batch` rows per transaction; `progress` hears each
    /// column's running count.
    pub async fn rotate(
        &self,
        actor: &Actor,
        batch: i64,
        progress: impl FnMut(SealedColumn, usize),
    ) -> Result<RekeyReport, KeysError> {
        let what = Change {
            tenant: None,
            action: "keys.rotate",
            resource: "master_key",
        };
        let rekey = self.tenants.rekey(batch, progress);
        control_audit::audited(&self.tenants.catalog, actor, what, rekey, |r| {
            Some((None, format!("master_key/{}", r.key_id)))
        })
        .await
    }
}
