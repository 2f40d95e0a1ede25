//! The DDL around copying a tenant database (moves and restores): blank
//! databases to restore into, renames for the swap, pausing a tenant's
//! writes for a cutover, and `doctor`'s quarantine (a rename that also
//! closes the copy to every session).
//!
//! Rules:
//! - Pausing writes touches the moving tenant alone: its role's sessions
//!   become read-only and the open ones are ended; no other tenant or server
//!   is touched (`set_writes_paused`).

use super::{ProvisionError, Provisioner};
use crate::catalog::DbServer;
use crate::domain::DbName;
use crate::sql::quote_ident;

/// Bounds on DDL run while doctor holds a catalog lock: a statement that
/// waits on a lock or runs long fails instead of holding the lock with it.
/// Each stays well inside the lock's own idle limit (`catalog::absent`).
const DDL_TIMEOUTS: &str = "SET statement_timeout = '10s'; SET lock_timeout = '5s'";

/// Ends `from`'s sessions, then renames it to `to`. A session that ended a
/// moment ago may still be exiting: PostgreSQL waits a few seconds for it.
async fn end_sessions_and_rename(
    session: &deadpool_postgres::Object,
    from: &str,
    to: &str,
) -> Result<(), ProvisionError> {
    session
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&from],
        )
        .await?;
    session
        .batch_execute(&format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(from),
            quote_ident(to)
        ))
        .await?;
    Ok(())
}

impl Provisioner {
    /// An empty database (from `template0`) that only the admin can reach;
    /// `name` is a tenant database name or one of its staging names.
    pub async fn create_blank_database(
        &self,
        server: &DbServer,
        name: &str,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let q = quote_ident(name);
        session
            .batch_execute(&format!("CREATE DATABASE {q} TEMPLATE template0"))
            .await?;
        session
            .batch_execute(&format!(
                "REVOKE ALL ON DATABASE {q} FROM PUBLIC; {}",
                self.tag_statement("DATABASE", name)
            ))
            .await?;
        Ok(())
    }

    /// Lets the tenant's role connect to `database` (its own, on `server`).
    pub async fn grant_tenant_connect(
        &self,
        server: &DbServer,
        database: &str,
        role: &DbName,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        session
            .batch_execute(&format!(
                "GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}",
                quote_ident(database),
                quote_ident(role.as_str())
            ))
            .await?;
        Ok(())
    }

    /// Drops a database, ending its sessions; a missing one is fine.
    pub async fn drop_database(&self, server: &DbServer, name: &str) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        session
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .await?;
        Ok(())
    }

    /// Renames a database, ending its sessions first.
    pub async fn rename_database(
        &self,
        server: &DbServer,
        from: &str,
        to: &str,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        end_sessions_and_rename(&session, from, to).await
    }

    /// Parks `from` under `to` instead of dropping it (`doctor --fix`),
    /// in bounded statements (`DDL_TIMEOUTS`: doctor may hold the tenants
    /// table meanwhile). Its tag records when; then it is closed to new
    /// sessions (no reconnect can make the rename fail with "being
    /// accessed", and the tenant's role, which keeps CONNECT, cannot reach
    /// the parked copy); then its sessions end and it is renamed. Tagged
    /// first, so a crash in between leaves an orphan that is found again; a
    /// rename that fails opens it again.
    pub async fn quarantine_database(
        &self,
        server: &DbServer,
        from: &str,
        to: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ProvisionError> {
        let session = self.bounded_session(server).await?;
        let q = quote_ident(from);
        session
            .batch_execute(&format!(
                "COMMENT ON DATABASE {q} IS {}",
                crate::sql::quote_literal(&crate::catalog::quarantine_tag(self.installation(), at))
            ))
            .await?;
        session
            .batch_execute(&format!("ALTER DATABASE {q} WITH ALLOW_CONNECTIONS false"))
            .await?;
        let renamed = end_sessions_and_rename(&session, from, to).await;
        if renamed.is_err() {
            let _ = session
                .batch_execute(&format!("ALTER DATABASE {q} WITH ALLOW_CONNECTIONS true"))
                .await;
        }
        renamed
    }

    /// A maintenance session whose statements are bounded (`DDL_TIMEOUTS`),
    /// for DDL run while a catalog lock is held. The pool's recycling
    /// resets the settings before the session is handed out again.
    async fn bounded_session(
        &self,
        server: &DbServer,
    ) -> Result<deadpool_postgres::Object, ProvisionError> {
        let session = self.maintenance_session(server).await?;
        session.batch_execute(DDL_TIMEOUTS).await?;
        Ok(session)
    }

    /// Whether a database of this name exists on `server`.
    pub async fn database_exists(
        &self,
        server: &DbServer,
        name: &str,
    ) -> Result<bool, ProvisionError> {
        let session = self.maintenance_session(server).await?;
        Ok(session
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await?
            .is_some())
    }

    /// Pauses (or resumes) the tenant's writes on `server`: its role's
    /// sessions become read-only (or writable again), and the open ones are
    /// ended. Reads go on; other tenants are untouched.
    pub async fn set_writes_paused(
        &self,
        server: &DbServer,
        db: &DbName,
        paused: bool,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let role = quote_ident(db.as_str());
        let change = if paused {
            format!("ALTER ROLE {role} SET default_transaction_read_only = on")
        } else {
            format!("ALTER ROLE {role} RESET default_transaction_read_only")
        };
        session.batch_execute(&change).await?;
        // Role settings apply when a session starts: end the open ones, so
        // none keeps writing after a pause, or stays read-only after it.
        session
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                &[&db.as_str()],
            )
            .await?;
        Ok(())
    }

    /// Drops the tenant's role on `server` (after its database is gone
    /// there), in a bounded statement (doctor drops roles under its lock).
    pub async fn drop_tenant_role(
        &self,
        server: &DbServer,
        db: &DbName,
    ) -> Result<(), ProvisionError> {
        let session = self.bounded_session(server).await?;
        session
            .batch_execute(&format!("DROP ROLE IF EXISTS {}", quote_ident(db.as_str())))
            .await?;
        Ok(())
    }

    /// The server's PostgreSQL version, for a backup's manifest.
    pub async fn server_version(&self, server: &DbServer) -> Result<String, ProvisionError> {
        let session = self.maintenance_session(server).await?;
        Ok(session
            .query_one("SELECT current_setting('server_version')", &[])
            .await?
            .get(0))
    }
}
