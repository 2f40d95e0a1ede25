//! Who is calling and what they may do: JWT verification, roles, permissions
//! and scopes. This module never looks at request bodies.

pub mod api_key;
mod claims;
mod error;
mod jwt;
mod principal;

pub use claims::{Action, Claims, Permission, Resource, Role, Scope};
pub use error::AuthError;
pub use jwt::JwtKeys;
pub use principal::{authenticate, Principal};
