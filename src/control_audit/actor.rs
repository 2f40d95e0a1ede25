//! Who asks for a change, and the one way a change runs under its record.
//!
//! Rule: a service command that changes anything takes an `Actor` and runs
//! the change through `audited`. The record is written first (`pending`);
//! if it cannot be written the change does not run; its result is set when
//! the change ends, with what a successful change made.

use std::future::Future;

use super::{begin, end, NewEvent};
use crate::catalog::{Catalog, CatalogError};
use crate::domain::TenantId;

/// The caller of a command: who (`user_id`: a token's subject, an API key,
/// `cli:<user>@<host>`, the reconciler) and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl Actor {
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            ip_address: None,
            user_agent: None,
        }
    }

    /// The operator at this machine's command line.
    pub fn cli() -> Self {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| format!("uid{}", nix::unistd::getuid()));
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown".into());
        Self {
            user_id: format!("cli:{user}@{host}"),
            ip_address: None,
            user_agent: Some(format!("tenant-plane {} (CLI)", env!("CARGO_PKG_VERSION"))),
        }
    }
}

/// What a change is, for its record: the tenant it touches (if known) and
/// the action and resource named as the audit log names them.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub tenant: Option<TenantId>,
    pub action: &'a str,
    pub resource: &'a str,
}

/// Runs `change` under its audit record. `subject` names the tenant and
/// resource a successful change made, when they were unknown as it began.
pub async fn audited<T, E>(
    catalog: &Catalog,
    actor: &Actor,
    what: Change<'_>,
    change: impl Future<Output = Result<T, E>>,
    subject: impl FnOnce(&T) -> Option<(Option<TenantId>, String)>,
) -> Result<T, E>
where
    E: From<CatalogError>,
{
    let pending = begin(
        catalog,
        &NewEvent {
            tenant_id: what.tenant,
            subtenant_id: None,
            user_id: &actor.user_id,
            action: what.action,
            resource: what.resource,
            ip_address: actor.ip_address.as_deref(),
            user_agent: actor.user_agent.as_deref(),
            result: super::AuditResult::Pending,
        },
    )
    .await
    .map_err(|e| {
        tracing::error!(action = what.action, resource = what.resource, error = %e,
            "refused a change whose audit record could not be written");
        E::from(e)
    })?;
    let outcome = change.await;
    let named = outcome.as_ref().ok().and_then(subject);
    let named = named.as_ref().map(|(t, r)| (*t, r.as_str()));
    // The change has happened (or failed) either way: a record left
    // `pending` still shows who attempted what, so the answer stands.
    if let Err(e) = end(catalog, pending, outcome.is_ok(), named).await {
        tracing::error!(error = %e, "could not set an audit record's result; it stays pending");
    }
    outcome
}
