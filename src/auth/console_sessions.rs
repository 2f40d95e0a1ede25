//! The console's sign-in sessions as a service: which were signed out (for
//! every replica), and the audit records of signing in and out. The
//! session cookie itself (sealed credential, CSRF token) is the HTTP
//! layer's.
//!
//! Rules:
//! - signing out records the session's id in the catalog
//!   (`revoked_console_sessions`), so a copy of the cookie is refused by
//!   every replica from then on, not only cleared in the browser.
//! - a replica trusts its memory that a session is live for a second at
//!   most (`LIVE_FOR`), and that one was signed out until it would have
//!   expired (`MAX_AGE_SECS`).

use std::time::Duration;

use super::AuthError;
use crate::catalog::{Catalog, CatalogError};
use crate::control_audit::{audited, Actor, Change};
use crate::domain::TenantId;

/// A session ends after a working day, or when its credential does.
pub const MAX_AGE_SECS: i64 = 8 * 3600;
/// How long a replica takes a session it found live for live.
const LIVE_FOR: Duration = Duration::from_secs(1);
/// Session ids remembered per kind.
const REMEMBERED: u64 = 10_000;

#[derive(Clone)]
pub struct ConsoleSessions {
    catalog: Catalog,
    revoked: moka::sync::Cache<String, ()>,
    live: moka::sync::Cache<String, ()>,
}

impl ConsoleSessions {
    pub fn new(catalog: Catalog) -> Self {
        Self {
            catalog,
            revoked: moka::sync::Cache::builder()
                .max_capacity(REMEMBERED)
                .time_to_live(Duration::from_secs(MAX_AGE_SECS as u64))
                .build(),
            live: moka::sync::Cache::builder()
                .max_capacity(REMEMBERED)
                .time_to_live(LIVE_FOR)
                .build(),
        }
    }

    /// Whether session `id` was signed out, here or on any replica.
    pub async fn is_signed_out(&self, id: &str) -> Result<bool, AuthError> {
        if self.revoked.contains_key(id) {
            return Ok(true);
        }
        if self.live.contains_key(id) {
            return Ok(false);
        }
        let revoked = self
            .catalog
            .console_session_revoked(id)
            .await
            .map_err(AuthError::Lookup)?;
        if revoked {
            self.revoked.insert(id.to_string(), ());
        } else {
            self.live.insert(id.to_string(), ());
        }
        Ok(revoked)
    }

    /// Signs session `id` out for every replica, until it would have
    /// expired (`expires_at`, seconds since the epoch). Returns whether it
    /// was live until now.
    pub async fn sign_out(&self, id: &str, expires_at: i64) -> Result<bool, AuthError> {
        let was_live = !self.is_signed_out(id).await?;
        let until = chrono::DateTime::from_timestamp(expires_at, 0)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        self.catalog
            .revoke_console_session(id, until)
            .await
            .map_err(AuthError::Lookup)?;
        self.live.invalidate(id);
        self.revoked.insert(id.to_string(), ());
        Ok(was_live)
    }

    /// Records that `actor` signed in (`console.sign_in`) or out
    /// (`console.sign_out`), for `tenant`'s log when it has one.
    pub async fn record(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        action: &'static str,
    ) -> Result<(), CatalogError> {
        let what = Change {
            tenant,
            action,
            resource: "console/session",
        };
        audited(&self.catalog, actor, what, async { Ok(()) }, |_| None).await
    }
}
