use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant's identity: a UUID, v7 for new tenants so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
// On the wire: the UUID's text.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(value_type = String, format = Uuid)]
#[serde(transparent)]
pub struct TenantId(Uuid);

impl TenantId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// 32 lowercase hex digits, the form used in database and role names.
    pub fn simple(&self) -> String {
        self.0.simple().to_string()
    }
}

impl From<Uuid> for TenantId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a tenant id: expected a UUID")]
pub struct InvalidTenantId;

impl FromStr for TenantId {
    type Err = InvalidTenantId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Bound the input before parsing: ids arrive from headers and paths.
        if s.len() > 36 {
            return Err(InvalidTenantId);
        }
        Uuid::parse_str(s).map(Self).map_err(|_| InvalidTenantId)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_id_round_trips_through_its_text_form() {
        let id = TenantId::generate();
        assert_eq!(id.to_string().parse::<TenantId>(), Ok(id));
        assert_eq!(id.simple().len(), 32);
    }

    #[test]
    fn garbage_and_overlong_input_is_not_a_tenant_id() {
        for bad in [
            "",
            "tenant_456",
            "' OR 1=1 --",
            "0000\u{0}",
            &"a".repeat(10_000),
        ] {
            assert_eq!(bad.parse::<TenantId>(), Err(InvalidTenantId), "{bad:?}");
        }
    }
}
