//! Domain values parsed at the boundary. Their fields are private, so a value
//! of one of these types has been validated.
//!
//! Rule: a tenant database or role name is always `DbName::for_tenant(id)`
//! (or a name `DbName::recognise` read back from a server); no name that
//! reaches SQL is taken from a request.

mod db_name;
mod first_admin;
mod host_name;
mod migration_checksum;
mod page;
mod server_name;
mod slug;
mod tenant;
mod tenant_id;
pub mod whole;
mod wire_verifier;

pub use db_name::{
    subtenant_login, DbCopy, DbName, SUBTENANT_LOGIN_PREFIX, TEMPLATE_DB, TENANT_APP_ROLE,
    TENANT_DB_PREFIX, TENANT_PAUSED_ROLE, TENANT_READER_ROLE, WIRE_WRITER_SUFFIX,
};
pub use first_admin::{FirstAdmin, InvalidFirstAdmin};
pub use host_name::{is_host_name, HOST_NAME_PATTERN};
pub use migration_checksum::MigrationChecksum;
pub use page::{parse_page_limit, MAX_PAGE};
pub use server_name::{InvalidServerName, ServerName};
pub use slug::{InvalidName, InvalidSlug, Slug, TenantName, NAME_PATTERN};
pub use tenant::{TenantStatus, Tier};
pub use tenant_id::TenantId;
pub use wire_verifier::WireVerifier;
