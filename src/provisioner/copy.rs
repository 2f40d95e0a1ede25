//! The DDL around copying a tenant database (moves and restores): blank
//! databases to restore into, renames for the swap, pausing a tenant's
//! writes for a cutover, and `doctor`'s quarantine (a rename that also
//! closes the copy to every session).
//!
//! Rules:
//! - Pausing writes touches the moving tenant alone: its role's sessions
//!   become read-only and the open ones are ended; no other tenant or server
//!   is touched (`set_writes_paused`), but for the pause's mark, a group
//!   made once per server.
//! - A pause holds against a client that writes its own SQL: the role keeps
//!   SELECT alone (`ai_care_tenant_reader`), not only a read-only default.

use super::{ProvisionError, Provisioner};
use crate::catalog::DbServer;
use crate::domain::{DbName, TENANT_APP_ROLE, TENANT_PAUSED_ROLE, TENANT_READER_ROLE};
use crate::sql::{quote_ident, quote_literal};

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
            .batch_execute(&super::tenant_db::connect_grants(database, role))
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
    ///
    /// A read-only default is a setting a SQL client can undo (`BEGIN READ
    /// WRITE`, and the gateway's clients write their own SQL), so a pause
    /// also moves the role from `ai_care_tenant_app` to
    /// `ai_care_tenant_reader`: SELECT alone. Only where the reader can read
    /// all the app role can: a database whose migrations predate the reader
    /// would otherwise lose its reads for the pause.
    pub async fn set_writes_paused(
        &self,
        server: &DbServer,
        db: &DbName,
        paused: bool,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        if paused {
            // A server prepared before pauses left their mark.
            super::template::ensure_group_roles(&session).await?;
        }
        let change = if paused && !self.reader_reads_all(server, db).await? {
            tracing::warn!(%db, "the tenant's reader cannot read all its tables: its writes are paused by the read-only default alone");
            read_only_defaults(db, true)
        } else {
            pause_statements(db, paused)
        };
        session.batch_execute(&change).await?;
        // Role settings apply when a session starts: end the open ones, so
        // none keeps writing after a pause, or stays read-only after it.
        // Each is waited for (up to 5 s): a transaction caught mid-commit
        // has then committed or died before the caller copies the database.
        session
            .execute(
                &format!(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE {}",
                    super::subtenant_login::writer_sessions()
                ),
                &[&db.as_str(), &db.writer_logins()],
            )
            .await?;
        Ok(())
    }

    /// Whether `ai_care_tenant_reader` may SELECT every relation of the
    /// tenant's database on `server` that `ai_care_tenant_app` may.
    async fn reader_reads_all(
        &self,
        server: &DbServer,
        db: &DbName,
    ) -> Result<bool, ProvisionError> {
        self.ask_tenant_db(
            server,
            db,
            "SELECT to_regrole($1) IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND has_table_privilege($2, c.oid, 'SELECT')
                  AND NOT has_table_privilege($1, c.oid, 'SELECT'))",
            &[&TENANT_READER_ROLE, &TENANT_APP_ROLE],
        )
        .await
    }

    /// Drops the tenant's role on `server` (after its database is gone
    /// there), with its reader and its subtenants' gateway logins (members
    /// of either), in a bounded statement (doctor drops roles under its
    /// lock).
    pub async fn drop_tenant_role(
        &self,
        server: &DbServer,
        db: &DbName,
    ) -> Result<(), ProvisionError> {
        let session = self.bounded_session(server).await?;
        session
            .batch_execute(&format!(
                "{}; {}; DROP ROLE IF EXISTS {}, {}",
                super::legacy_logins::roles_lock(db),
                super::subtenant_login::drop_logins_of(db),
                quote_ident(db.as_str()),
                quote_ident(&db.reader())
            ))
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

/// Pauses the tenant role's writes (or resumes them), in one transaction:
/// the read-only default, and its membership moved to the reader group
/// (or back to the app group). The reader's membership is granted before
/// the app's is revoked, so reads never lapse.
pub(super) fn pause_statements(db: &DbName, paused: bool) -> String {
    let role = quote_ident(db.as_str());
    let (app, reader) = (
        quote_ident(TENANT_APP_ROLE),
        quote_ident(TENANT_READER_ROLE),
    );
    let defaults = read_only_defaults(db, paused);
    if paused {
        format!("{defaults}; GRANT {reader} TO {role}; REVOKE {app} FROM {role}")
    } else {
        format!("{defaults}; GRANT {app} TO {role}; REVOKE {reader} FROM {role}")
    }
}

/// Sets (or resets) the read-only default of the tenant's writing logins
/// that exist (`DbName::writer_logins`, and its subtenants' writer logins,
/// members of the tenant role), and the pause's mark (the tenant role's
/// membership in `TENANT_PAUSED_ROLE`), under the tenant's roles lock: a
/// role's settings are not inherited through membership, and each logs
/// in as itself.
fn read_only_defaults(db: &DbName, paused: bool) -> String {
    let change = if paused {
        "SET default_transaction_read_only = on"
    } else {
        "RESET default_transaction_read_only"
    };
    let role_ident = quote_ident(db.as_str());
    let paused_role = quote_ident(TENANT_PAUSED_ROLE);
    let paused_text = quote_literal(TENANT_PAUSED_ROLE);
    let logins = db
        .writer_logins()
        .iter()
        .map(|login| quote_literal(login))
        .collect::<Vec<_>>()
        .join(", ");
    let mark = if paused {
        format!("GRANT {paused_role} TO {role_ident}")
    } else {
        // Where it exists: a server prepared before pauses left marks.
        format!(
            "DO $$ BEGIN IF pg_catalog.to_regrole({paused_text}) IS NOT NULL THEN REVOKE {paused_role} FROM {role_ident}; END IF; END $$"
        )
    };
    format!(
        "{lock}; {mark}; DO $$ DECLARE login name; BEGIN
           FOR login IN SELECT rolname FROM pg_roles WHERE rolname IN ({logins})
               UNION SELECT m.rolname FROM pg_auth_members a
                 JOIN pg_roles m ON m.oid = a.member JOIN pg_roles g ON g.oid = a.roleid
                WHERE g.rolname = {role} AND pg_catalog.starts_with(m.rolname::text, {prefix})
                  AND m.rolname::text NOT LIKE '%\\_reader' LOOP
             EXECUTE format('ALTER ROLE %I {change}', login);
           END LOOP;
         END $$",
        lock = super::legacy_logins::roles_lock(db),
        role = quote_literal(db.as_str()),
        prefix = quote_literal(crate::domain::SUBTENANT_LOGIN_PREFIX),
    )
}
