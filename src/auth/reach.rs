//! The reach rule: which tenants and subtenants a principal may see and act
//! on. Both planes ask here, and nowhere else decides it.
//!
//! Rules:
//! - the data plane: a super_admin reaches every tenant; any other role
//!   reaches only the tenant its credential belongs to, and that tenant's
//!   subtenants (a credential held to a subtenant is narrowed to it by the
//!   route it asks for). A subtenant reached through another tenant is
//!   refused, whoever asks (`cross_tenant`).
//! - the control plane's tenant reads: a credential that may read tenants
//!   (super_admin) reaches every tenant; a tenant_admin not held to a
//!   subtenant and whose permissions are not narrowed reaches its own
//!   tenant and that tenant's subtenants; nobody else reaches any. To such
//!   a tenant_admin a tenant that does not exist is as forbidden as
//!   another's (the caller asks with `Target::Tenant` of the id alone).
//! - a tenant's API keys: a super_admin administers every tenant's; any
//!   other credential only its own tenant's, and only when it is held to no
//!   subtenant (what it may do with them is its permissions').

use super::{Action, AuthError, Principal, Resource, Role};
use crate::domain::TenantId;

/// What a request asks to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A data-plane request, before its route is looked up: the tenant it
    /// names (`X-Tenant-Id`, or a custom domain), if any.
    DataRequest { named: Option<TenantId> },
    /// A data-plane route, looked up: the tenant the request is for, and
    /// the root of the tenant or subtenant whose route it is.
    DataRoute { tenant: TenantId, root: TenantId },
    /// A tenant the control plane shows: its id, and its parent for a
    /// subtenant (`None` also when the tenant is not known).
    Tenant {
        id: TenantId,
        parent: Option<TenantId>,
    },
    /// A root tenant whose API keys are listed, minted or revoked.
    TenantKeys { tenant: TenantId },
}

/// How far the principal reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every tenant.
    Fleet,
    /// This tenant and its subtenants.
    Own(TenantId),
}

const OTHER_TENANT: AuthError = AuthError::CrossTenant("this credential belongs to another tenant");
const OTHER_ROOT: AuthError = AuthError::CrossTenant("the subtenant belongs to another tenant");
const FORBIDDEN: AuthError = AuthError::Forbidden {
    resource: Resource::Tenants,
    action: Action::Read,
};

/// The reach rule (see the module's rules): how far `principal` reaches
/// when it asks for `target`, or why it may not.
pub fn may_reach(principal: &Principal, target: Target) -> Result<Reach, AuthError> {
    match target {
        Target::DataRequest { named } => match principal.role() {
            Role::SuperAdmin => Ok(Reach::Fleet),
            _ => {
                let own = principal.tenant_id().ok_or(OTHER_TENANT)?;
                match named {
                    Some(named) if named != own => Err(OTHER_TENANT),
                    _ => Ok(Reach::Own(own)),
                }
            }
        },
        Target::DataRoute { tenant, root } => {
            if root != tenant {
                return Err(OTHER_ROOT);
            }
            match principal.role() {
                Role::SuperAdmin => Ok(Reach::Fleet),
                _ if principal.tenant_id() == Some(root) => Ok(Reach::Own(root)),
                _ => Err(OTHER_TENANT),
            }
        }
        Target::TenantKeys { tenant } => match principal.role() {
            Role::SuperAdmin => Ok(Reach::Fleet),
            _ if principal.tenant_id() == Some(tenant) && principal.subtenant_id().is_none() => {
                Ok(Reach::Own(tenant))
            }
            _ => Err(AuthError::Forbidden {
                resource: Resource::ApiKeys,
                action: Action::Admin,
            }),
        },
        Target::Tenant { id, parent } => {
            if principal.require(Resource::Tenants, Action::Read).is_ok() {
                return Ok(Reach::Fleet);
            }
            let own = own_tenant(principal).ok_or(FORBIDDEN)?;
            if id == own || parent == Some(own) {
                Ok(Reach::Own(own))
            } else {
                Err(FORBIDDEN)
            }
        }
    }
}

/// The tenant a tenant_admin reads and administers as a whole: its own,
/// when its credential is held to no subtenant and its permissions are not
/// narrowed. `None` for everyone else (super_admin included).
pub fn own_tenant(principal: &Principal) -> Option<TenantId> {
    let whole_tenant_admin = principal.role() == Role::TenantAdmin
        && principal.subtenant_id().is_none()
        && !principal.is_narrowed();
    whole_tenant_admin.then(|| principal.tenant_id()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Claims, Permission, Scope};

    fn id(n: u128) -> TenantId {
        TenantId::from(uuid::Uuid::from_u128(n))
    }

    const A: u128 = 1;
    const A_SUB: u128 = 11;
    const B: u128 = 2;
    const B_SUB: u128 = 21;

    fn principal(role: Role, tenant: Option<u128>, sub: Option<u128>, narrowed: bool) -> Principal {
        let mut claims = Claims::new(
            "t",
            role,
            tenant.map(id),
            sub.map(id),
            std::time::Duration::from_secs(60),
        );
        if narrowed {
            claims.permissions = vec![Permission {
                resource: Resource::Agents,
                actions: vec![Action::Read],
                scope: Scope::Tenant,
            }];
        }
        Principal::from_claims(claims)
    }

    /// What a case expects: reached how far, or refused with which error.
    #[derive(Debug, PartialEq)]
    enum Expect {
        Fleet,
        Own(u128),
        Cross(&'static str),
        Forbidden,
    }

    fn outcome(result: Result<Reach, AuthError>) -> Expect {
        match result {
            Ok(Reach::Fleet) => Expect::Fleet,
            Ok(Reach::Own(t)) => Expect::Own(
                (1..=30)
                    .find(|n| id(*n) == t)
                    .expect("a tenant of the table"),
            ),
            Err(AuthError::CrossTenant(why)) => Expect::Cross(why),
            Err(AuthError::Forbidden { .. }) => Expect::Forbidden,
            Err(e) => panic!("unexpected refusal {e:?}"),
        }
    }

    /// One case: (role, principal's tenant, its subtenant, narrowed,
    /// target, expected).
    type Case = (Role, Option<u128>, Option<u128>, bool, Target, Expect);

    const OTHER: &str = "this credential belongs to another tenant";
    const SUB_OTHER: &str = "the subtenant belongs to another tenant";

    #[test]
    fn who_reaches_which_tenant_is_the_table() {
        use Expect::*;
        use Role::*;
        let data = |named: Option<u128>| Target::DataRequest {
            named: named.map(id),
        };
        let route = |tenant: u128, root: u128| Target::DataRoute {
            tenant: id(tenant),
            root: id(root),
        };
        let tenant = |t: u128, parent: Option<u128>| Target::Tenant {
            id: id(t),
            parent: parent.map(id),
        };
        let keys = |t: u128| Target::TenantKeys { tenant: id(t) };
        #[rustfmt::skip]
        let table: Vec<Case> = vec![
            // The data plane, before the route: the tenant a request names.
            (SuperAdmin, None, None, false, data(Some(B)), Fleet),
            (SuperAdmin, None, None, false, data(None), Fleet),
            (TenantAdmin, Some(A), None, false, data(None), Own(A)),
            (TenantAdmin, Some(A), None, false, data(Some(A)), Own(A)),
            (TenantAdmin, Some(A), None, false, data(Some(B)), Cross(OTHER)),
            (Agent, Some(A), None, true, data(Some(B)), Cross(OTHER)),
            (Viewer, Some(A), None, false, data(None), Own(A)),
            (SubtenantAdmin, Some(A), Some(A_SUB), false, data(Some(A)), Own(A)),
            (SubtenantAdmin, Some(A), Some(A_SUB), false, data(Some(B)), Cross(OTHER)),
            // The data plane, the route looked up: its root must be the tenant.
            (SuperAdmin, None, None, false, route(A, A), Fleet),
            (SuperAdmin, None, None, false, route(A, B), Cross(SUB_OTHER)),
            (TenantAdmin, Some(A), None, false, route(A, A), Own(A)),
            (TenantAdmin, Some(A), None, false, route(A, B), Cross(SUB_OTHER)),
            (SubtenantAdmin, Some(A), Some(A_SUB), false, route(A, A), Own(A)),
            (Agent, Some(A), None, false, route(B, B), Cross(OTHER)),
            // The control plane's tenant reads.
            (SuperAdmin, None, None, false, tenant(B, None), Fleet),
            (SuperAdmin, None, None, false, tenant(B_SUB, Some(B)), Fleet),
            (TenantAdmin, Some(A), None, false, tenant(A, None), Own(A)),
            (TenantAdmin, Some(A), None, false, tenant(A_SUB, Some(A)), Own(A)),
            (TenantAdmin, Some(A), None, false, tenant(B, None), Forbidden),
            (TenantAdmin, Some(A), None, false, tenant(B_SUB, Some(B)), Forbidden),
            (TenantAdmin, Some(A), None, true, tenant(A, None), Forbidden),
            (TenantAdmin, Some(A), Some(A_SUB), false, tenant(A_SUB, Some(A)), Forbidden),
            (SubtenantAdmin, Some(A), Some(A_SUB), false, tenant(A_SUB, Some(A)), Forbidden),
            (Agent, Some(A), None, false, tenant(A, None), Forbidden),
            (Viewer, Some(A), None, false, tenant(A, None), Forbidden),
            // A tenant's API keys.
            (SuperAdmin, None, None, false, keys(B), Fleet),
            (TenantAdmin, Some(A), None, false, keys(A), Own(A)),
            (TenantAdmin, Some(A), None, true, keys(A), Own(A)),
            (TenantAdmin, Some(A), None, false, keys(B), Forbidden),
            (TenantAdmin, Some(A), Some(A_SUB), false, keys(A), Forbidden),
            (SubtenantAdmin, Some(A), Some(A_SUB), false, keys(A), Forbidden),
        ];
        for (role, own, sub, narrowed, target, expected) in table {
            let p = principal(role, own, sub, narrowed);
            assert_eq!(
                outcome(may_reach(&p, target)),
                expected,
                "{role:?} of {own:?}/{sub:?} (narrowed: {narrowed}) asking for {target:?}"
            );
        }
    }

    #[test]
    fn only_a_whole_unnarrowed_tenant_admin_has_an_own_tenant() {
        assert_eq!(
            own_tenant(&principal(Role::TenantAdmin, Some(A), None, false)),
            Some(id(A))
        );
        for p in [
            principal(Role::SuperAdmin, None, None, false),
            principal(Role::TenantAdmin, Some(A), None, true),
            principal(Role::TenantAdmin, Some(A), Some(A_SUB), false),
            principal(Role::SubtenantAdmin, Some(A), Some(A_SUB), false),
            principal(Role::Agent, Some(A), None, false),
        ] {
            assert_eq!(own_tenant(&p), None, "{p:?}");
        }
    }
}
