//! The CLI's changes are audited like the API's: the record is written
//! first (result `pending`), the change runs only once it is there, and its
//! result is set when it ends. The actor is `cli:<os user>@<host>`.

use std::future::Future;

use anyhow::Context;

use crate::control_audit::{self, AuditResult, NewEvent};
use crate::domain::TenantId;
use crate::services::Services;

/// Who the CLI's changes are recorded as.
pub fn actor() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid{}", nix::unistd::getuid()));
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}@{host}")
}

/// Runs `change` under its audit record, as `AuditedChange` does for the
/// API; `subject` names what a successful change made, when it was not
/// known as it began.
pub async fn audited<T, E>(
    services: &Services,
    tenant: Option<TenantId>,
    action: &str,
    resource: &str,
    change: impl Future<Output = Result<T, E>>,
    subject: impl FnOnce(&T) -> Option<(Option<TenantId>, String)>,
) -> anyhow::Result<T>
where
    E: Into<anyhow::Error>,
{
    let actor = actor();
    let agent = format!("tenant-plane {} (CLI)", env!("CARGO_PKG_VERSION"));
    let pending = control_audit::begin(
        &services.catalog,
        &NewEvent {
            tenant_id: tenant,
            subtenant_id: None,
            user_id: &actor,
            action,
            resource,
            ip_address: None,
            user_agent: Some(&agent),
            result: AuditResult::Pending,
        },
    )
    .await
    .context("cannot write the audit record of this change, so it was not made")?;
    let outcome = change.await.map_err(Into::into);
    let named = outcome.as_ref().ok().and_then(subject);
    let named = named.as_ref().map(|(t, r)| (*t, r.as_str()));
    if let Err(e) = control_audit::end(&services.catalog, pending, outcome.is_ok(), named).await {
        tracing::error!(error = %e, "could not set an audit record's result; it stays pending");
    }
    outcome
}
