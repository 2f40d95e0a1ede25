//! Tenant roles made while they were still logins, and their conversion
//! to groups (`tenant_db.rs`'s rule: no role another role is a member of
//! can log in). The reconciler converts them at start-up and on each pass.
//!
//! Rules:
//! - A conversion is one transaction under the tenant's roles lock
//!   (`roles_lock`), which every other change to the tenant's roles takes
//!   too: the HTTP login is made, given a pause under way, and the tenant
//!   role and reader stop logging in, together. No session logs in as the
//!   new login before it carries the pause.
//! - It grants nothing: a suspended or deleted tenant stays without
//!   CONNECT. The gateway's reader login is made at its first use.
//! - The HTTP login is given a pause's read-only default when the tenant
//!   role shows the pause (`subtenant_login::pause_carried`), or, for a
//!   pause by read-only defaults alone made before pauses left a mark,
//!   when the tenant role has that default and the caller says a move is
//!   under way. A default alone a client may have set (it could become the
//!   tenant role); it must not outlive the conversion.

use secrecy::{ExposeSecret, SecretString};

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
    /// log in, with the HTTP login that takes the tenant role's place.
    /// `moving`: a move of the tenant is under way, so a read-only default
    /// on the tenant role is its pause, and the login gets it too. Nothing
    /// is made if the tenant role is gone (its reader stops logging in).
    pub async fn convert_legacy_logins(
        &self,
        server: &DbServer,
        db: &DbName,
        password: &SecretString,
        moving: bool,
    ) -> Result<(), ProvisionError> {
        // A verifier holds `$`: the block's quote has a tag of its own.
        let verifier = quote_literal(&super::scram::verifier(
            password.expose_secret().as_bytes(),
            super::scram::TENANT_SCRAM_ITERATIONS,
        ));
        let (role, http) = (db.as_str(), db.http_login());
        let session = self.maintenance_session(server).await?;
        session
            .batch_execute(&format!(
                "{lock}; DO $convert$ BEGIN
                   IF pg_catalog.to_regrole({reader_text}) IS NOT NULL THEN
                     ALTER ROLE {reader_ident} NOLOGIN PASSWORD NULL;
                   END IF;
                   IF pg_catalog.to_regrole({role_text}) IS NULL THEN RETURN; END IF;
                   IF pg_catalog.to_regrole({http_text}) IS NULL THEN
                     CREATE ROLE {http_ident} LOGIN PASSWORD {verifier} IN ROLE {role_ident};
                   ELSE
                     ALTER ROLE {http_ident} PASSWORD {verifier};
                   END IF;
                   IF {paused} OR ({moving} AND EXISTS (SELECT 1 FROM pg_roles
                        WHERE rolname = {role_text}
                          AND 'default_transaction_read_only=on' = ANY(rolconfig))) THEN
                     ALTER ROLE {http_ident} SET default_transaction_read_only = on;
                   END IF;
                   ALTER ROLE {role_ident} NOLOGIN PASSWORD NULL;
                   {tag};
                 END $convert$",
                lock = roles_lock(db),
                paused = super::subtenant_login::paused_condition(db),
                role_text = quote_literal(role),
                role_ident = quote_ident(role),
                http_text = quote_literal(&http),
                http_ident = quote_ident(&http),
                reader_text = quote_literal(&db.reader()),
                reader_ident = quote_ident(&db.reader()),
                tag = self.tag_statement("ROLE", &http),
            ))
            .await?;
        Ok(())
    }
}

/// Serialises the changes to a tenant's roles (made, altered, tagged,
/// dropped, paused, converted): the first statement of each transaction
/// that makes one (`roles.rs`).
pub(super) fn roles_lock(db: &DbName) -> String {
    format!(
        "SELECT pg_advisory_xact_lock(hashtext({}))",
        quote_literal(&format!("tenant-plane roles {db}"))
    )
}
