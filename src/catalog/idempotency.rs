//! `idempotency_keys`: a retried request with the same `Idempotency-Key`
//! returns the first response instead of doing the work again.

use super::{Catalog, CatalogError};

/// A response kept for replay.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

#[derive(Debug)]
pub enum IdempotencyClaim {
    /// First use of the key: do the work, then `complete_idempotency`.
    New,
    /// The key was used before for the same request: replay this.
    Replay(StoredResponse),
    /// The first request with this key is still running.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

impl Catalog {
    pub async fn claim_idempotency(
        &self,
        principal: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<IdempotencyClaim, CatalogError> {
        let client = self.pool().get().await?;
        let inserted = client
            .execute(
                "INSERT INTO idempotency_keys (principal, key, request_hash) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&principal, &key, &request_hash],
            )
            .await?;
        if inserted == 1 {
            return Ok(IdempotencyClaim::New);
        }
        let row = client
            .query_one(
                "SELECT request_hash, response_status, response_body FROM idempotency_keys
                  WHERE principal = $1 AND key = $2",
                &[&principal, &key],
            )
            .await?;
        if row.get::<_, &str>(0) != request_hash {
            return Ok(IdempotencyClaim::Mismatch);
        }
        Ok(
            match (
                row.get::<_, Option<i32>>(1),
                row.get::<_, Option<serde_json::Value>>(2),
            ) {
                (Some(status), Some(body)) => IdempotencyClaim::Replay(StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    body,
                }),
                _ => IdempotencyClaim::InProgress,
            },
        )
    }

    pub async fn complete_idempotency(
        &self,
        principal: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE idempotency_keys SET response_status = $3, response_body = $4, completed_at = now()
                  WHERE principal = $1 AND key = $2",
                &[
                    &principal,
                    &key,
                    &i32::from(response.status),
                    &response.body,
                ],
            )
            .await?;
        Ok(())
    }

    /// Forgets a key whose request failed on our side, so a retry runs again.
    pub async fn release_idempotency(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND response_status IS NULL",
                &[&principal, &key],
            )
            .await?;
        Ok(())
    }
}

impl Catalog {
    /// Forgets keys whose first request never finished (its process died),
    /// so that a retry can run again instead of getting 409 for ever.
    pub async fn expire_unfinished_idempotency(
        &self,
        older_than: std::time::Duration,
    ) -> Result<u64, CatalogError> {
        let client = self.pool().get().await?;
        Ok(client
            .execute(
                "DELETE FROM idempotency_keys
                  WHERE response_status IS NULL AND created_at < now() - make_interval(secs => $1)",
                &[&older_than.as_secs_f64()],
            )
            .await?)
    }
}
