//! Where an operation stands (`OpState`), as `operations.state` holds it
//! (a CHECK constraint keeps the set, catalog V6), written through `ToSql`
//! and read through `FromSql`. The API shows fewer states
//! (`api::control::operations::OperationState`), each standing for one or
//! more of these.
//!
//! Rule: unlike a kind, a state outside the set is an error when read:
//! the CHECK constraint makes it impossible, so one read would mean the
//! catalog is not what this release expects.

use std::error::Error;

use serde::Serialize;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

/// Serialized as the catalog's text (a row printed by the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpState {
    Pending,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Written by releases before operations could fail: a failure.
    RolledBack,
}

impl OpState {
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::RolledBack => "rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl ToSql for OpState {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for OpState {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let text = <&str as FromSql>::from_sql(ty, raw)?;
        Self::parse(text).ok_or_else(|| format!("unknown operation state {text:?}").into())
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_text() {
        for state in OpState::ALL {
            let read = OpState::from_sql(&Type::TEXT, state.as_str().as_bytes()).unwrap();
            assert_eq!(read, state);
            let mut out = bytes::BytesMut::new();
            state.to_sql(&Type::TEXT, &mut out).unwrap();
            assert_eq!(&out[..], state.as_str().as_bytes());
        }
        assert!(OpState::from_sql(&Type::TEXT, b"paused").is_err());
        for state in OpState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }
}
