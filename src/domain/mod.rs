//! Domain values parsed at the boundary. Their fields are private, so a value
//! of one of these types has been validated.

mod tenant_id;

pub use tenant_id::TenantId;
