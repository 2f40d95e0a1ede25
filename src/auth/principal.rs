//! The verified caller of a request, and the permission check every handler
//! states on its first line.
//!
//! Rule: no credential mints an API key that could do anything it cannot
//! (`may_grant`: every action over a scope at least as wide, and within its
//! own subtenant when it is held to one); a refusal is
//! `AuthError::Escalation` (403 `grant_exceeds_caller`).

use super::{Action, AuthError, Claims, JwtKeys, Resource, Role, Scope};
use crate::domain::TenantId;

/// Who is calling, after the credentials were verified. Shared, so the
/// copy kept for the denial audit costs a reference count, not the claims.
#[derive(Debug, Clone)]
pub struct Principal {
    claims: std::sync::Arc<Claims>,
}

impl Principal {
    pub fn from_claims(claims: impl Into<std::sync::Arc<Claims>>) -> Self {
        Self {
            claims: claims.into(),
        }
    }

    pub fn user_id(&self) -> &str {
        &self.claims.sub
    }

    pub fn role(&self) -> Role {
        self.claims.role
    }

    pub fn tenant_id(&self) -> Option<TenantId> {
        self.claims.tenant_id
    }

    pub fn subtenant_id(&self) -> Option<TenantId> {
        self.claims.subtenant_id
    }

    /// Allows `action` on `resource` and returns the scope it reaches, or
    /// refuses. The role sets the ceiling; the token's permissions may narrow it.
    /// Whether the credential's permissions narrow its role's.
    pub fn is_narrowed(&self) -> bool {
        !self.claims.permissions.is_empty()
    }

    /// When the credential stops working (seconds since the epoch).
    pub fn expires_at(&self) -> i64 {
        self.claims.exp
    }

    pub fn require(&self, resource: Resource, action: Action) -> Result<Scope, AuthError> {
        let forbidden = || AuthError::Forbidden { resource, action };
        let (actions, ceiling) = self.claims.role.ceiling(resource).ok_or_else(forbidden)?;
        if !actions.contains(&action) {
            return Err(forbidden());
        }
        if self.claims.permissions.is_empty() {
            return Ok(ceiling);
        }
        self.claims
            .permissions
            .iter()
            .filter(|p| p.resource == resource && p.actions.contains(&action))
            .map(|p| p.scope)
            .min()
            .map(|granted| granted.narrowest(ceiling))
            .ok_or_else(forbidden)
    }
}

impl Principal {
    /// Refuses unless a credential with `role` and `permissions`, bound to
    /// `subtenant`, could do nothing this principal cannot: every action it
    /// would allow, this one allows over a scope at least as wide, and a
    /// principal held to a subtenant grants only within it. So no key minted
    /// by this principal has more rights than the principal itself.
    pub fn may_grant(
        &self,
        role: Role,
        permissions: &[super::Permission],
        subtenant: Option<TenantId>,
    ) -> Result<(), AuthError> {
        if let Some(own) = self.subtenant_id() {
            if subtenant != Some(own) {
                return Err(AuthError::Escalation("the caller is held to its subtenant"));
            }
        }
        let granted = Principal::from_claims(Claims {
            sub: String::new(),
            tenant_id: self.tenant_id(),
            subtenant_id: subtenant,
            role,
            permissions: permissions.to_vec(),
            exp: 0,
            iat: None,
        });
        for resource in Resource::ALL {
            for action in Action::ALL {
                let Ok(wanted) = granted.require(resource, action) else {
                    continue;
                };
                match self.require(resource, action) {
                    Ok(held) if held <= wanted => {}
                    _ => {
                        return Err(AuthError::Escalation(
                            "the key would allow more than the caller may do",
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

/// What verifies a credential: the installation's token keys, the tenants'
/// API keys, and the tenants' own identity providers.
#[derive(Clone, Copy)]
pub struct Verifiers<'a> {
    pub jwt: &'a JwtKeys,
    pub api_keys: &'a super::api_key::ApiKeys,
    pub providers: &'a super::providers::IdentityProviders,
}

/// Verifies a request's `Authorization` header value: a tenant API key
/// (`tpk_…`, looked up in the catalog), a token of a tenant's own identity
/// provider (by its `iss`), or the installation's access token (JWT).
pub async fn authenticate(
    authorization: Option<&[u8]>,
    verifiers: Verifiers<'_>,
) -> Result<Principal, AuthError> {
    authenticate_with(authorization, verifiers, || super::api_key::Patience::Wait).await
}

/// `authenticate`, saying whether an API-key lookup may wait its turn:
/// asked only when an API key is to be looked up, so a token costs no
/// look at its client's refusals.
pub async fn authenticate_with(
    authorization: Option<&[u8]>,
    verifiers: Verifiers<'_>,
    patience: impl FnOnce() -> super::api_key::Patience,
) -> Result<Principal, AuthError> {
    let value = authorization.ok_or(AuthError::MissingCredentials)?;
    let value = std::str::from_utf8(value)
        .ok()
        .filter(|v| v.is_ascii())
        .ok_or_else(|| AuthError::InvalidCredential("the authorization header is not ASCII"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| AuthError::InvalidCredential("not a bearer credential"))?
        .trim();
    // A token the installation's keys verified before costs one lookup,
    // as it did before tenants had providers of their own.
    let claims = if token.starts_with(super::api_key::API_KEY_PREFIX) {
        Box::pin(verifiers.api_keys.verify(token, patience())).await?
    } else if let Some(remembered) = verifiers.jwt.remembered(token) {
        remembered?
    } else if let Some(claims) = Box::pin(verifiers.providers.verify(token)).await {
        std::sync::Arc::new(claims?)
    } else {
        verifiers.jwt.verify(token)?
    };
    Ok(Principal::from_claims(claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Permission;

    fn principal(role: Role, permissions: Vec<Permission>) -> Principal {
        Principal::from_claims(Claims {
            sub: "u1".into(),
            tenant_id: Some(TenantId::generate()),
            subtenant_id: Some(TenantId::generate()),
            role,
            permissions,
            exp: 0,
            iat: None,
        })
    }

    #[test]
    fn a_principal_grants_only_what_it_holds_itself() {
        let admin = principal(Role::TenantAdmin, vec![]);
        let sub = admin.subtenant_id();
        assert!(admin.may_grant(Role::Viewer, &[], sub).is_ok());
        assert!(admin.may_grant(Role::TenantAdmin, &[], sub).is_ok());
        // Narrowed to reading calls: it cannot mint a full admin key, nor a
        // viewer (who reads agents too), but can mint a call reader.
        let narrowed = principal(
            Role::TenantAdmin,
            vec![Permission {
                resource: Resource::Calls,
                actions: vec![Action::Read],
                scope: Scope::Tenant,
            }],
        );
        let sub = narrowed.subtenant_id();
        assert!(narrowed.may_grant(Role::TenantAdmin, &[], sub).is_err());
        assert!(narrowed.may_grant(Role::Viewer, &[], sub).is_err());
        let reader = [Permission {
            resource: Resource::Calls,
            actions: vec![Action::Read],
            scope: Scope::Own,
        }];
        assert!(narrowed.may_grant(Role::Agent, &reader, sub).is_ok());
        // A subtenant-bound principal grants only within its subtenant.
        assert!(narrowed.may_grant(Role::Agent, &reader, None).is_err());
    }

    #[test]
    fn only_super_admin_reaches_the_control_plane() {
        for role in Role::ALL {
            let allowed = principal(role, vec![])
                .require(Resource::Tenants, Action::Write)
                .is_ok();
            assert_eq!(allowed, role == Role::SuperAdmin, "{role:?}");
        }
    }

    #[test]
    fn a_viewer_reads_but_never_writes() {
        let viewer = principal(Role::Viewer, vec![]);
        assert_eq!(
            viewer.require(Resource::Calls, Action::Read).unwrap(),
            Scope::Subtenant
        );
        assert!(viewer.require(Resource::Calls, Action::Write).is_err());
    }

    #[test]
    fn token_permissions_narrow_the_role_and_never_widen_it() {
        let narrowed = principal(
            Role::TenantAdmin,
            vec![Permission {
                resource: Resource::Calls,
                actions: vec![Action::Read],
                scope: Scope::Own,
            }],
        );
        assert_eq!(
            narrowed.require(Resource::Calls, Action::Read).unwrap(),
            Scope::Own
        );
        assert!(narrowed.require(Resource::Calls, Action::Write).is_err());
        assert!(narrowed.require(Resource::Agents, Action::Read).is_err());

        let widened = principal(
            Role::Agent,
            vec![Permission {
                resource: Resource::Calls,
                actions: vec![Action::Read, Action::Delete],
                scope: Scope::Tenant,
            }],
        );
        assert_eq!(
            widened.require(Resource::Calls, Action::Read).unwrap(),
            Scope::Own
        );
        assert!(widened.require(Resource::Calls, Action::Delete).is_err());
        assert!(widened.require(Resource::Tenants, Action::Read).is_err());
    }
}
