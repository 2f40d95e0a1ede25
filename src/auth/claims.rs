//! The token claims of the seed design, and the roles and permissions they carry.
//!
//! Rule: a role sets a ceiling per resource (`Role::ceiling`); a token's
//! `permissions` can narrow it, never widen it (`Principal::require` takes
//! the narrower of the two).

use serde::{Deserialize, Serialize};

use crate::domain::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Platform operator: the control-plane API and every tenant.
    SuperAdmin,
    TenantAdmin,
    SubtenantAdmin,
    Agent,
    Viewer,
}

/// What a permission is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Tenants,
    Servers,
    Migrations,
    ApiKeys,
    Agents,
    Calls,
    Analytics,
    Audit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Write,
    Delete,
    Admin,
}

impl Resource {
    pub const ALL: [Resource; 8] = [
        Resource::Tenants,
        Resource::Servers,
        Resource::Migrations,
        Resource::ApiKeys,
        Resource::Agents,
        Resource::Calls,
        Resource::Analytics,
        Resource::Audit,
    ];
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Read, Action::Write, Action::Delete, Action::Admin];
}

/// Which rows a permission reaches, widest first.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every row of the tenant.
    Tenant,
    /// Rows of the caller's subtenant.
    Subtenant,
    /// Rows the caller owns.
    Own,
}

impl Scope {
    /// The narrower of two scopes.
    pub fn narrowest(self, other: Scope) -> Scope {
        self.max(other)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub resource: Resource,
    pub actions: Vec<Action>,
    pub scope: Scope,
}

/// Access-token claims: `sub`, `tenant_id`, `subtenant_id`, `role`,
/// `permissions[]` and `exp`, as in the seed design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtenant_id: Option<TenantId>,
    pub role: Role,
    /// Narrows the role's own permissions; empty means "what the role allows".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<Permission>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

const ALL_ACTIONS: &[Action] = &[Action::Read, Action::Write, Action::Delete, Action::Admin];
const READ_WRITE: &[Action] = &[Action::Read, Action::Write];
const READ: &[Action] = &[Action::Read];

impl Role {
    /// The most a role may do with `resource`: the allowed actions and the
    /// widest scope. A token's `permissions` can narrow this, never widen it.
    pub fn ceiling(self, resource: Resource) -> Option<(&'static [Action], Scope)> {
        use Resource::*;
        match (self, resource) {
            (Role::SuperAdmin, _) => Some((ALL_ACTIONS, Scope::Tenant)),
            (_, Tenants | Servers | Migrations) => None,
            (Role::TenantAdmin, _) => Some((ALL_ACTIONS, Scope::Tenant)),
            (Role::SubtenantAdmin, ApiKeys) => None,
            (Role::SubtenantAdmin, _) => Some((ALL_ACTIONS, Scope::Subtenant)),
            (Role::Agent, Calls) => Some((READ_WRITE, Scope::Own)),
            (Role::Agent, Agents) => Some((READ, Scope::Subtenant)),
            (Role::Agent, Analytics) => Some((READ, Scope::Own)),
            (Role::Agent, _) => None,
            (Role::Viewer, Agents | Calls | Analytics) => Some((READ, Scope::Subtenant)),
            (Role::Viewer, _) => None,
        }
    }

    pub const ALL: [Role; 5] = [
        Role::SuperAdmin,
        Role::TenantAdmin,
        Role::SubtenantAdmin,
        Role::Agent,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::TenantAdmin => "tenant_admin",
            Role::SubtenantAdmin => "subtenant_admin",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role `{s}`; expected one of {}", names.join(", "))
            })
    }
}

impl Claims {
    /// Claims for a new token that expires `ttl` from now.
    pub fn new(
        sub: impl Into<String>,
        role: Role,
        tenant_id: Option<TenantId>,
        subtenant_id: Option<TenantId>,
        ttl: std::time::Duration,
    ) -> Self {
        let now = chrono::Utc::now().timestamp();
        Self {
            sub: sub.into(),
            tenant_id,
            subtenant_id,
            role,
            permissions: Vec::new(),
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            iat: Some(now),
        }
    }

    /// Rules the type system does not hold: tenant users belong to a tenant,
    /// and a subtenant admin to a subtenant.
    pub fn check_shape(&self) -> Result<(), &'static str> {
        if self.sub.is_empty() || self.sub.len() > 256 {
            return Err("sub must be 1 to 256 characters");
        }
        match self.role {
            Role::SuperAdmin => {}
            _ if self.tenant_id.is_none() => return Err("a tenant role needs tenant_id"),
            Role::SubtenantAdmin if self.subtenant_id.is_none() => {
                return Err("subtenant_admin needs subtenant_id")
            }
            _ => {}
        }
        if self.subtenant_id.is_some() && self.tenant_id.is_none() {
            return Err("subtenant_id needs tenant_id");
        }
        Ok(())
    }
}
