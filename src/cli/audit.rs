//! The CLI's changes are audited like the API's: the record is written
//! first (result `pending`), the change runs only once it is there, and its
//! result is set when it ends. The actor is `cli:<os user>@<host>`.
//!
//! Commands that change nothing but hand out power (`token`,
//! `backup --print-age-identity`) need no catalog to work, so that they
//! still work when it is lost; they record what they did with `record_action`
//! when the catalog can be reached, and say on standard error when it could
//! not be recorded.

use std::future::Future;

use anyhow::Context;

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::control_audit::{self, AuditResult, NewEvent};
use crate::domain::TenantId;
use crate::services::Services;

/// How long `record_action` waits for the catalog before giving up.
const RECORD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn agent() -> String {
    format!("tenant-plane {} (CLI)", env!("CARGO_PKG_VERSION"))
}

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
    let agent = agent();
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

/// An action that needs no catalog, as the audit records it.
pub struct Action<'a> {
    pub tenant: Option<TenantId>,
    pub subtenant: Option<TenantId>,
    pub action: &'a str,
    pub resource: &'a str,
}

/// Records `action` (already decided, about to be done) in the catalog
/// `settings` names: `TENANT_PLANE_DATABASE_URL`, or the embedded cluster a
/// running `serve` started on the data directory.
pub async fn record_action(settings: &Settings, action: &Action<'_>) -> anyhow::Result<()> {
    let url = match &settings.database_url {
        Some(url) => url.clone(),
        None => crate::embedded::running_catalog_url(settings)?
            .context("no catalog is configured (TENANT_PLANE_DATABASE_URL) or running")?,
    };
    let actor = actor();
    let agent = agent();
    let write = async {
        let catalog = Catalog::connect(&url, &settings.catalog).await?;
        control_audit::record(
            &catalog,
            &NewEvent {
                tenant_id: action.tenant,
                subtenant_id: action.subtenant,
                user_id: &actor,
                action: action.action,
                resource: action.resource,
                ip_address: None,
                user_agent: Some(&agent),
                result: AuditResult::Success,
            },
        )
        .await
    };
    tokio::time::timeout(RECORD_TIMEOUT, write)
        .await
        .context("the catalog did not answer in time")?
        .context("the catalog refused or could not be reached")?;
    Ok(())
}

/// `record_action`, and when it fails, a warning in the log and on
/// standard error: the action still happens.
pub async fn record_action_or_warn(settings: &Settings, action: &Action<'_>) {
    if let Err(e) = record_action(settings, action).await {
        tracing::warn!(action = action.action, error = %format!("{e:#}"), "an action was not audited");
        eprintln!(
            "tenant-plane: warning: this was not audited ({}): {e:#}",
            action.action
        );
    }
}
