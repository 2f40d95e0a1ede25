//! Which login role a gateway session runs as, and its name on the
//! tenant's server. Each is derived from the tenant's (or subtenant's) id,
//! never taken from input.

use crate::domain::{DbName, TenantId};

/// Which login role a wire session runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireRole {
    /// The tenant's writer login (`DbName::wire_writer`): the tenant
    /// role's rights, but no audit entry of its own making.
    Writer,
    /// The tenant's gateway reader login (`DbName::wire_reader`), a member
    /// of its reader group: SELECT alone.
    Reader,
    /// A subtenant's login (`domain::subtenant_login`): the tenant role's
    /// rights, held to the subtenant's rows by the name it logs in with.
    SubtenantWriter(TenantId),
    /// A subtenant's read-only login: the reader's, held likewise.
    SubtenantReader(TenantId),
}

impl WireRole {
    /// The role's name on the tenant's server.
    pub fn login(&self, db: &DbName) -> String {
        match *self {
            WireRole::Writer => db.wire_writer(),
            WireRole::Reader => db.wire_reader(),
            WireRole::SubtenantWriter(sub) => crate::domain::subtenant_login(sub, false),
            WireRole::SubtenantReader(sub) => crate::domain::subtenant_login(sub, true),
        }
    }

    /// The subtenant whose rows alone the role reaches, if it is held to one.
    pub fn subtenant(&self) -> Option<TenantId> {
        match *self {
            WireRole::SubtenantWriter(sub) | WireRole::SubtenantReader(sub) => Some(sub),
            WireRole::Writer | WireRole::Reader => None,
        }
    }

    pub fn read_only(&self) -> bool {
        matches!(self, WireRole::Reader | WireRole::SubtenantReader(_))
    }

    /// The read-only role over the same rows.
    pub fn reader(&self) -> WireRole {
        match *self {
            WireRole::Writer | WireRole::Reader => WireRole::Reader,
            WireRole::SubtenantWriter(sub) | WireRole::SubtenantReader(sub) => {
                WireRole::SubtenantReader(sub)
            }
        }
    }
}
