//! `installation`: the id of this installation, made with the catalog.

use uuid::Uuid;

use super::{Catalog, CatalogError};

/// The comment every database and role an installation makes carries.
pub fn installation_tag(id: Uuid) -> String {
    format!("tenant-plane installation {id}")
}

/// The installation a tag names, if it is one.
pub fn tagged_installation(comment: &str) -> Option<Uuid> {
    comment
        .strip_prefix("tenant-plane installation ")
        .and_then(|id| id.trim().parse().ok())
}

impl Catalog {
    pub async fn installation_id(&self) -> Result<Uuid, CatalogError> {
        let client = self.pool().get().await?;
        let row = client.query_one("SELECT id FROM installation", &[]).await?;
        Ok(row.get(0))
    }
}
