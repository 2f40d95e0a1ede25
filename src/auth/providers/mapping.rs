//! From a provider's verified token to our claims.
//!
//! Rules:
//! - the tenant is the provider's, never one the token names: a token that
//!   names another tenant in `tenant_id` or `subtenant_id` is refused
//!   (`cross_tenant`), and a token that claims `super_admin` in `role` or
//!   `roles` is refused (`claims_refused`), not mapped down.
//! - the user is the `user_claim`; the tenant's first admin, by subject,
//!   is its tenant_admin (root providers only); otherwise the first
//!   mapping whose group the user has decides. No match is refused
//!   (`no_role_mapped`): there is no default role.
//! - a subtenant's own provider holds every user to that subtenant.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::spec::Mapping;
use crate::auth::{AuthError, Claims, Role};
use crate::domain::TenantId;

/// A provider as tokens are checked against it.
#[derive(Debug)]
pub struct Provider {
    /// The tenant whose provider it is.
    pub tenant: TenantId,
    /// That tenant's root (itself for a root).
    pub root: TenantId,
    pub issuer: String,
    pub jwks_uri: String,
    /// `aud` values accepted: the audience, and the console's client id.
    pub audiences: Vec<String>,
    pub user_claim: String,
    pub groups_claim: String,
    pub mappings: Vec<Mapping>,
    /// The root's first admin's subject, for a root's provider.
    pub admin_subject: Option<String>,
    /// The root and its live subtenants.
    pub family: HashSet<TenantId>,
}

/// A claim by name; when no claim has the whole name, a dotted path into
/// objects (`realm_access.roles`).
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// Strings of a claim that is a string or a list of them.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

impl Provider {
    /// Our claims for a verified token's `claims`, or why it is refused.
    pub fn map(&self, claims: &Map<String, Value>, exp: i64) -> Result<Claims, AuthError> {
        for name in ["role", "roles"] {
            if strings(claims.get(name)).contains(&Role::SuperAdmin.as_str()) {
                return Err(AuthError::ClaimsRefused(
                    "a tenant's identity provider cannot make anyone super_admin",
                ));
            }
        }
        for name in ["tenant_id", "subtenant_id"] {
            let Some(value) = claims.get(name) else {
                continue;
            };
            let ours = value
                .as_str()
                .and_then(|v| v.parse::<TenantId>().ok())
                .is_some_and(|id| self.family.contains(&id));
            if !ours {
                tracing::warn!(tenant.id = %self.root, claim = name, "a token of this tenant's identity provider names another tenant");
                return Err(AuthError::CrossTenant(
                    "the token names a tenant that is not its provider's",
                ));
            }
        }
        let user = claim(claims, &self.user_claim)
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty() && u.len() <= 256)
            .ok_or(AuthError::InvalidCredential(
                "the token lacks the provider's user claim",
            ))?;
        let held = (self.tenant != self.root).then_some(self.tenant);
        let iat = claims.get("iat").and_then(Value::as_i64);
        let claims_for = |role, subtenant_id, permissions| Claims {
            sub: user.to_string(),
            tenant_id: Some(self.root),
            subtenant_id,
            role,
            permissions,
            exp,
            iat,
        };
        if held.is_none() && self.admin_subject.as_deref() == Some(user) {
            return Ok(claims_for(Role::TenantAdmin, None, Vec::new()));
        }
        let groups = strings(claim(claims, &self.groups_claim));
        let mapping = self
            .mappings
            .iter()
            .filter(|m| m.subtenant_id.is_none_or(|s| self.family.contains(&s)))
            // A subtenant's provider never makes a tenant_admin (its PUT refuses it too).
            .filter(|m| held.is_none() || m.role != super::spec::MappedRole::TenantAdmin)
            .find(|m| groups.contains(&m.group.as_str()))
            .ok_or(AuthError::NoRoleMapped)?;
        let subtenant = held.or(mapping.subtenant_id);
        let mapped = claims_for(mapping.role.into(), subtenant, mapping.permissions.clone());
        mapped.check_shape().map_err(AuthError::InvalidCredential)?;
        Ok(mapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::providers::spec::MappedRole;
    use serde_json::json;

    fn provider(root: TenantId, tenant: TenantId) -> Provider {
        Provider {
            tenant,
            root,
            issuer: "https://idp.example.com".into(),
            jwks_uri: "https://idp.example.com/jwks".into(),
            audiences: vec!["tenant-plane".into()],
            user_claim: "preferred_username".into(),
            groups_claim: "realm_access.roles".into(),
            mappings: vec![
                Mapping {
                    group: "care-admins".into(),
                    role: MappedRole::TenantAdmin,
                    subtenant_id: None,
                    permissions: vec![],
                },
                Mapping {
                    group: "care-agents".into(),
                    role: MappedRole::Agent,
                    subtenant_id: None,
                    permissions: vec![],
                },
            ],
            admin_subject: Some("founder".into()),
            family: HashSet::from([root]),
        }
    }

    fn token(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_first_mapping_whose_group_the_user_has_decides_and_none_is_refused() {
        let root = TenantId::generate();
        let p = provider(root, root);
        let both = token(json!({"preferred_username": "ana",
            "realm_access": {"roles": ["care-agents", "care-admins"]}}));
        let claims = p.map(&both, 10).unwrap();
        assert_eq!(
            (claims.role, claims.tenant_id),
            (Role::TenantAdmin, Some(root))
        );
        let none = token(json!({"preferred_username": "ana", "realm_access": {"roles": ["x"]}}));
        assert!(matches!(p.map(&none, 10), Err(AuthError::NoRoleMapped)));
        let admin = token(json!({"preferred_username": "founder"}));
        assert_eq!(p.map(&admin, 10).unwrap().role, Role::TenantAdmin);
    }

    #[test]
    fn a_token_naming_another_tenant_or_super_admin_is_refused() {
        let root = TenantId::generate();
        let p = provider(root, root);
        let other = token(
            json!({"preferred_username": "ana", "tenant_id": TenantId::generate().to_string(),
            "realm_access": {"roles": ["care-admins"]}}),
        );
        assert!(matches!(p.map(&other, 10), Err(AuthError::CrossTenant(_))));
        let own = token(
            json!({"preferred_username": "ana", "tenant_id": root.to_string(),
            "realm_access": {"roles": ["care-admins"]}}),
        );
        assert!(p.map(&own, 10).is_ok());
        let sa = token(json!({"preferred_username": "ana", "role": "super_admin",
            "realm_access": {"roles": ["care-admins"]}}));
        assert!(matches!(p.map(&sa, 10), Err(AuthError::ClaimsRefused(_))));
    }

    #[test]
    fn a_subtenants_own_provider_holds_its_users_to_it_and_makes_no_tenant_admin() {
        let root = TenantId::generate();
        let sub = TenantId::generate();
        let mut p = provider(root, sub);
        p.family.insert(sub);
        p.mappings[1].role = MappedRole::SubtenantAdmin;
        let t = token(
            json!({"preferred_username": "founder", "realm_access": {"roles": ["care-agents"]}}),
        );
        let claims = p.map(&t, 10).unwrap();
        assert_eq!(claims.role, Role::SubtenantAdmin);
        assert_eq!(claims.subtenant_id, Some(sub));
    }
}
