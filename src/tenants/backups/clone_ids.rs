//! A restored clone's identity: its rows name the archive's tenant and
//! subtenant ids, which it must not keep; and its subtenants' slugs.

use super::BackupsError;
use crate::catalog::DbServer;
use crate::domain::{DbName, Slug, TenantId};
use crate::tenants::Tenants;

impl Tenants {
    /// Points every `tenant_id` and `subtenant_id` in a clone's tables at
    /// the clone's new ids.
    pub(super) async fn rewrite_ids(
        &self,
        server: &DbServer,
        db: &DbName,
        ids: &[(TenantId, TenantId)],
    ) -> Result<(), BackupsError> {
        let config = self.provisioner.admin_config(server, db.as_str())?;
        let (client, connection) = config
            .connect()
            .await
            .map_err(|e| BackupsError::copy("connecting to the clone", e))?;
        let driver = tokio::spawn(connection);
        let columns = client
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                  WHERE table_schema = 'public' AND data_type = 'uuid'
                    AND column_name IN ('tenant_id', 'subtenant_id')",
                &[],
            )
            .await
            .map_err(|e| BackupsError::copy("listing the clone's tenant columns", e))?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| BackupsError::copy("rewriting the clone's tenant ids", e))?;
        for c in &columns {
            let (table, column): (String, String) = (c.get(0), c.get(1));
            let sql = format!(
                "UPDATE public.{t} SET {c} = $2 WHERE {c} = $1",
                t = crate::sql::quote_ident(&table),
                c = crate::sql::quote_ident(&column)
            );
            for (old, new) in ids {
                client
                    .execute(&sql, &[&old.as_uuid(), &new.as_uuid()])
                    .await
                    .map_err(|e| BackupsError::copy("rewriting the clone's tenant ids", e))?;
            }
        }
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| BackupsError::copy("rewriting the clone's tenant ids", e))?;
        drop(client);
        let _ = driver.await;
        Ok(())
    }
}

/// `<clone>-<subtenant>` when that is a valid slug, else `<clone>-<short id>`.
pub(super) fn clone_slug(root: &Slug, sub: &str, id: TenantId) -> Slug {
    let joined = format!("{}-{sub}", root.as_str());
    Slug::parse(&joined).unwrap_or_else(|_| {
        let short: String = format!("{}-{}", root.as_str(), &id.simple().to_string()[..8])
            .chars()
            .take(63)
            .collect();
        // A slug, a dash and hex digits, cut to 63 characters, is a slug.
        Slug::parse(&short).expect("a slug with a hex suffix is a slug")
    })
}
