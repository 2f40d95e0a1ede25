//! Which login role a key's sessions run as: the subtenant they are held
//! to, and the role that holds the key's rights whole.
//!
//! Rules:
//! - A key reaches the wire only when a login role holds its rights whole:
//!   read, write and delete on all of the tenant's agents and calls, and
//!   read on its audit log (the tenant's writer login, a member of its own
//!   role, which reads the audit log but adds no entry: tenant migration
//!   V5), or read on all of its agents and calls (its reader, which holds
//!   SELECT alone and sees no audit entry). Anything narrower is refused
//!   with what it lacks.
//! - A key held to a subtenant, or a login that names one
//!   (`<slug>.<subtenant-slug>`), runs as that subtenant's own login role,
//!   which the tenant database's policies hold to its rows whatever the
//!   client sets; the same rule of whole rights applies to its rows.

use super::login::{refuse, Refusal};
use super::Shared;
use crate::auth::{Action, Principal, Resource, Scope};
use crate::catalog::ApiKeyRecord;
use crate::domain::TenantId;
use crate::router::WireRole;

/// The subtenant a login's sessions are held to, if any: the key's own
/// (a key held to a subtenant), or the one the user name names after the
/// tenant's slug (`<slug>.<subtenant-slug>`, for a whole-tenant key).
pub(super) async fn subtenant_target(
    shared: &Shared,
    root: TenantId,
    key: &ApiKeyRecord,
    named: Option<&str>,
) -> Result<Option<TenantId>, Refusal> {
    let named = match named {
        None => None,
        Some(slug) => {
            let found = shared
                .tenants
                .subtenant_by_slug(root, slug)
                .await
                .map_err(|e| {
                    tracing::warn!(tenant.id = %root, error = %format!("{:#}", anyhow::Error::from(e)), "a gateway login could not look its subtenant up");
                    refuse("57P03", "the service cannot check credentials now; try again")
                })?;
            Some(found.ok_or_else(|| {
                refuse("28000", format!("the tenant has no subtenant \"{slug}\""))
            })?)
        }
    };
    match (key.subtenant_id, named) {
        (Some(own), Some(other)) if own != other => Err(refuse(
            "28000",
            "this key is held to another subtenant: connect as the tenant's slug, or name the key's own subtenant",
        )),
        (Some(own), _) => Ok(Some(own)),
        (None, named) => Ok(named),
    }
}

/// The login role for what `key` may do over the rows of `subtenant` (or
/// of the whole tenant), or why it has none.
pub(super) fn session_role(
    key: &ApiKeyRecord,
    subtenant: Option<TenantId>,
) -> Result<WireRole, Refusal> {
    if key.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
        return Err(refuse("28P01", "this API key has expired"));
    }
    let claims = crate::auth::api_key::key_claims(key)
        .map_err(|_| refuse("28000", "this API key cannot be used"))?;
    let principal = Principal::from_claims(claims);
    // A session holds all rows of what it logged in to (the tenant, or a
    // subtenant). A right of `subtenant` scope reaches all of them, as on
    // HTTP, where it reaches every row of the tenant or subtenant the
    // request addresses; `own` reaches only the caller's rows.
    let whole = |resource, action| {
        matches!(
            principal.require(resource, action),
            Ok(Scope::Tenant | Scope::Subtenant)
        )
    };
    let all = |actions: &[Action]| {
        [Resource::Agents, Resource::Calls]
            .into_iter()
            .all(|r| actions.iter().all(|a| whole(r, *a)))
    };
    let (writer, reader) = match subtenant {
        None => (WireRole::Writer, WireRole::Reader),
        Some(sub) => (
            WireRole::SubtenantWriter(sub),
            WireRole::SubtenantReader(sub),
        ),
    };
    let whose = if subtenant.is_some() {
        "subtenant"
    } else {
        "tenant"
    };
    if all(&[Action::Read, Action::Write, Action::Delete]) {
        // A writing session runs as the tenant's (or subtenant's) writer
        // login, which reads the audit log (and adds no entry to it): only
        // a key that may read it gets one.
        if whole(Resource::Audit, Action::Read) {
            return Ok(writer);
        }
        return Err(refuse(
            "28000",
            format!("this key may not read the {whose}'s audit log, which a writing SQL session reaches: use a key with the audit read right, or a read-only key"),
        ));
    }
    if all(&[Action::Read]) {
        // A reader login sees no audit entry (tenant migration V4).
        return Ok(reader);
    }
    Err(refuse(
        "28000",
        format!("this key may not read all of the {whose}'s agents and calls, nor read, write and delete them all, and a SQL session cannot be held to less"),
    ))
}
