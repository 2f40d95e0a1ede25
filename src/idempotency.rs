//! `Idempotency-Key`s as a service: a caller's key is claimed for one
//! request (by the hash of its method, path and body), its first response
//! kept, and a retry answered with that response instead of the work
//! running again.
//!
//! Rules:
//! - a key belongs to its caller: another caller's same key is another key.
//! - a key whose first request failed is released, so a retry runs again;
//!   one whose process died before answering is released by the reconciler.

use crate::catalog::{Catalog, CatalogError};

pub use crate::catalog::{IdempotencyClaim, StoredResponse};

#[derive(Clone)]
pub struct Idempotency {
    catalog: Catalog,
}

impl Idempotency {
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    /// Claims `key` of `caller` for the request whose hash is `request`.
    pub async fn claim(
        &self,
        caller: &str,
        key: &str,
        request: &str,
    ) -> Result<IdempotencyClaim, CatalogError> {
        self.catalog.claim_idempotency(caller, key, request).await
    }

    /// Keeps the first request's response, for its retries.
    pub async fn complete(
        &self,
        caller: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), CatalogError> {
        self.catalog
            .complete_idempotency(caller, key, response)
            .await
    }

    /// Forgets a key whose first request failed, so a retry runs again.
    pub async fn release(&self, caller: &str, key: &str) -> Result<(), CatalogError> {
        self.catalog.release_idempotency(caller, key).await
    }
}
