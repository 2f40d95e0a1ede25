//! `ai_care_tenant_template`: one per server, at the newest tenant schema, so
//! that a new tenant is a clone plus a no-op migration run.
//!
//! Rules:
//! - Nothing keeps a session open on a template database: a template
//!   migration holds `TEMPLATE_LOCK` exclusively and the migrator closes its
//!   session before the lock is released; clones take the lock shared.

use tokio_postgres::error::SqlState;

use super::held::HeldLock;
use super::{ProvisionError, Provisioner};
use crate::catalog::DbServer;
use crate::domain::{TEMPLATE_DB, TENANT_APP_ROLE, TENANT_PAUSED_ROLE, TENANT_READER_ROLE};
use crate::sql::quote_ident;

/// Advisory lock (in each server's `postgres` database) between template
/// migrations (exclusive) and clones (shared), across replicas ("tptemplt").
pub const TEMPLATE_LOCK: i64 = 0x7470_7465_6d70_6c74;

impl Provisioner {
    /// Makes sure `server` has the tenant group role and a template database
    /// at the newest version; returns that version.
    #[tracing::instrument(skip_all, fields(server = %server.name))]
    pub async fn prepare_server(&self, server: &DbServer) -> Result<i32, ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let held = HeldLock::exclusive(session, TEMPLATE_LOCK).await?;
        let result = self.prepare_locked(server, held.session()).await;
        held.release().await;
        result
    }

    async fn prepare_locked(
        &self,
        server: &DbServer,
        session: &deadpool_postgres::Object,
    ) -> Result<i32, ProvisionError> {
        ensure_group_roles(session).await?;
        let exists = session
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&TEMPLATE_DB],
            )
            .await?
            .is_some();
        if !exists {
            tracing::info!("creating the template database");
            // Separate statements: CREATE DATABASE cannot share a transaction.
            let db = quote_ident(TEMPLATE_DB);
            ignore_duplicate(
                session
                    .batch_execute(&format!("CREATE DATABASE {db}"))
                    .await,
            )?;
            session
                .batch_execute(&format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"))
                .await?;
        }
        let outcome = self
            .migrations
            .migrate_database(&self.admin_config(server, TEMPLATE_DB)?, None)
            .await?;
        if outcome.applied > 0 {
            tracing::info!(
                from = outcome.from_version,
                to = outcome.to_version,
                "migrated the template database"
            );
        }
        self.template_versions
            .lock()
            .expect("template versions")
            .insert(server.id, outcome.to_version);
        Ok(outcome.to_version)
    }
}

/// Creates the tenant group roles, where missing: `TENANT_APP_ROLE` (DML)
/// and `TENANT_READER_ROLE` (SELECT), which the migrations grant to, and
/// `TENANT_PAUSED_ROLE`, a pause's mark.
pub(super) async fn ensure_group_roles(
    session: &deadpool_postgres::Object,
) -> Result<(), ProvisionError> {
    for role in [TENANT_APP_ROLE, TENANT_READER_ROLE, TENANT_PAUSED_ROLE] {
        ignore_duplicate(
            session
                .batch_execute(&format!("CREATE ROLE {} NOLOGIN", quote_ident(role)))
                .await,
        )?;
    }
    Ok(())
}

/// Treats "already exists" as success, for idempotent DDL.
pub(super) fn ignore_duplicate(
    result: Result<(), tokio_postgres::Error>,
) -> Result<(), ProvisionError> {
    match result {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.code(),
                Some(c) if *c == SqlState::DUPLICATE_OBJECT
                    || *c == SqlState::DUPLICATE_DATABASE
                    || *c == SqlState::UNIQUE_VIOLATION
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
