//! `revoked_console_sessions`: the console sessions signed out before their
//! expiry, so that a copy of a signed-out cookie is refused by every
//! replica. Rows outlive their session by nothing: retention deletes them
//! once the session would have expired anyway.

use chrono::{DateTime, Utc};

use super::{Catalog, CatalogError};

impl Catalog {
    /// Records that the session `id` was signed out; it would have expired
    /// at `expires_at`. Signing out twice is the same as once.
    pub async fn revoke_console_session(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO revoked_console_sessions (id, expires_at) VALUES ($1, $2)
                 ON CONFLICT (id) DO NOTHING",
                &[&id, &expires_at],
            )
            .await?;
        Ok(())
    }

    /// Whether the session `id` was signed out.
    pub async fn console_session_revoked(&self, id: &str) -> Result<bool, CatalogError> {
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM revoked_console_sessions WHERE id = $1)")
            .await?;
        Ok(client.query_one(&statement, &[&id]).await?.get(0))
    }
}
