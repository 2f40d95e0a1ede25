//! The CLI's changes are audited like the API's, by the service commands
//! they call with `Actor::cli()` (`cli:<os user>@<host>`): the record is
//! written first, the change runs only once it is there.
//!
//! Commands that change nothing but hand out power (`token`,
//! `backup --print-age-identity`) need no catalog to work, so that they
//! still work when it is lost; they record what they did with `record_action`
//! when the catalog can be reached, and say on standard error when it could
//! not be recorded.

use anyhow::Context;

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::control_audit::{self, Actor, AuditResult, NewEvent};
use crate::domain::TenantId;

/// How long `record_action` waits for the catalog before giving up.
const RECORD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    let actor = Actor::cli();
    let write = async {
        let catalog = Catalog::connect(&url, &settings.catalog).await?;
        control_audit::record(
            &catalog,
            &NewEvent {
                tenant_id: action.tenant,
                subtenant_id: action.subtenant,
                user_id: &actor.user_id,
                action: action.action,
                resource: action.resource,
                ip_address: None,
                user_agent: actor.user_agent.as_deref(),
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
