//! Tenant roles made while they were still logins, and their conversion
//! to groups (`tenant_db.rs`'s rule: no role another role is a member of
//! can log in). The reconciler converts them at start-up and on each pass.
//!
//! Rules:
//! - A paused tenant stays paused: the tenant role's read-only default is
//!   copied to the HTTP login in the transaction that ends the role's
//!   logins, under the lock a pause takes (`roles_lock`), so a pause made
//!   meanwhile is either copied or reaches the login itself.

use secrecy::SecretString;

use super::roles::ensure_login_role;
use super::{ProvisionError, Provisioner};
use crate::catalog::DbServer;
use crate::domain::DbName;
use crate::sql::{quote_ident, quote_literal};

impl Provisioner {
    /// The tenants on `server` whose tenant role or reader can still log
    /// in, or whose tenant role has no HTTP login (one dropped by hand is
    /// made again).
    pub async fn legacy_logins(&self, server: &DbServer) -> Result<Vec<DbName>, ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let rows = session
            .query(
                "SELECT DISTINCT regexp_replace(g.rolname::text, '_reader$', '') FROM pg_roles g
                  WHERE g.rolname ~ '^ai_care_tenant_[0-9a-f]{32}(_reader)?$'
                    AND (g.rolcanlogin OR (g.rolname !~ '_reader$' AND NOT EXISTS (
                          SELECT 1 FROM pg_roles h WHERE h.rolname = g.rolname || '_http')))",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| DbName::recognise(row.get(0)))
            .collect())
    }

    /// Makes the tenant role and its reader on `server` groups that cannot
    /// log in, after making the logins that take their place.
    pub async fn convert_legacy_logins(
        &self,
        server: &DbServer,
        db: &DbName,
        password: &SecretString,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let (role, http) = (db.as_str(), db.http_login());
        ensure_login_role(&session, &http, role, password, "").await?;
        session
            .batch_execute(&format!(
                "{lock}; DO $$ BEGIN
                   IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {role_text}
                                 AND 'default_transaction_read_only=on' = ANY(rolconfig)) THEN
                     ALTER ROLE {http_ident} SET default_transaction_read_only = on;
                   END IF;
                 END $$; ALTER ROLE {role_ident} NOLOGIN PASSWORD NULL; {tag}",
                lock = roles_lock(db),
                role_text = quote_literal(role),
                http_ident = quote_ident(&http),
                role_ident = quote_ident(role),
                tag = self.tag_statement("ROLE", &http),
            ))
            .await?;
        let reader_logs_in: bool = session
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolcanlogin)",
                &[&db.reader()],
            )
            .await?
            .get(0);
        if reader_logs_in {
            self.ensure_reader_role(server, db, password).await?;
        }
        Ok(())
    }
}

/// Serialises the changes to a tenant's roles' read-only defaults (a
/// pause, its end, a conversion): the first statement of each's
/// transaction.
pub(super) fn roles_lock(db: &DbName) -> String {
    format!(
        "SELECT pg_advisory_xact_lock(hashtext({}))",
        quote_literal(&format!("tenant-plane roles {db}"))
    )
}
