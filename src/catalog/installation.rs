//! `installation`: the id of this installation, made with the catalog.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use super::{Catalog, CatalogError};

/// The comment every database and role an installation makes carries.
pub fn installation_tag(id: Uuid) -> String {
    format!("tenant-plane installation {id}")
}

/// The installation a tag names, if it is one. A quarantine's note may
/// follow the id (see `quarantine_tag`).
pub fn tagged_installation(comment: &str) -> Option<Uuid> {
    comment
        .strip_prefix("tenant-plane installation ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
}

/// The tag of a database `doctor --fix` quarantined at `at`: the
/// installation's tag, then the time. Kept on the database itself, so its
/// age survives restarts and is the same for every replica.
pub fn quarantine_tag(id: Uuid, at: DateTime<Utc>) -> String {
    format!(
        "{} quarantined {}",
        installation_tag(id),
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// When a tag says its database was quarantined, if it says so.
pub fn quarantined_since(comment: &str) -> Option<DateTime<Utc>> {
    let (_, at) = comment.split_once(" quarantined ")?;
    DateTime::parse_from_rfc3339(at.trim())
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

impl Catalog {
    pub async fn installation_id(&self) -> Result<Uuid, CatalogError> {
        let client = self.pool().get().await?;
        let row = client.query_one("SELECT id FROM installation", &[]).await?;
        Ok(row.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarantine_tag_still_names_its_installation_and_tells_when() {
        let id = Uuid::new_v4();
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let tag = quarantine_tag(id, at);
        assert_eq!(tagged_installation(&tag), Some(id));
        assert_eq!(quarantined_since(&tag), Some(at));
        assert_eq!(tagged_installation(&installation_tag(id)), Some(id));
        assert_eq!(quarantined_since(&installation_tag(id)), None);
        assert_eq!(quarantined_since(&format!("{tag}x")), None);
    }
}
