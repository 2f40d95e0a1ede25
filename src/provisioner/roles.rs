//! Login and group roles, made or brought up to date idempotently. A
//! group cannot log in (`tenant_db.rs`'s rule); a login's password travels
//! as a SCRAM verifier.
//!
//! Rules: every change to a tenant's roles runs under its roles lock
//! (`legacy_logins::roles_lock`, each transaction's first statement), with
//! a pause, its end and a conversion: PostgreSQL fails one of two
//! concurrent changes to one role ("tuple concurrently updated") rather
//! than waiting.

use secrecy::{ExposeSecret, SecretString};

use super::template::ignore_duplicate;
use super::ProvisionError;
use crate::sql::{quote_ident, quote_literal};

/// Creates the login role `name`, a member of `group`, with `password`; or
/// makes an existing one's password current. `lock` runs first in each
/// transaction. The password travels as a SCRAM verifier, so the server
/// never sees (or logs) the plain text; with few iterations (see `scram`).
pub(super) async fn ensure_login_role(
    session: &deadpool_postgres::Object,
    lock: &str,
    name: &str,
    group: &str,
    password: &SecretString,
) -> Result<(), ProvisionError> {
    let verifier = super::scram::verifier(
        password.expose_secret().as_bytes(),
        super::scram::TENANT_SCRAM_ITERATIONS,
    );
    let role = quote_ident(name);
    let created = session
        .batch_execute(&format!(
            "{lock}; CREATE ROLE {role} LOGIN PASSWORD {} IN ROLE {}",
            quote_literal(&verifier),
            quote_ident(group)
        ))
        .await;
    if created.is_err() {
        ignore_duplicate(created)?;
        session
            .batch_execute(&format!(
                "{lock}; ALTER ROLE {role} PASSWORD {}",
                quote_literal(&verifier)
            ))
            .await?;
    }
    Ok(())
}

/// Creates the group role `name`, a member of `group`, that cannot log
/// in; or makes an existing one so (tenant roles and readers were logins
/// before). `lock` runs first in each transaction.
pub(super) async fn ensure_group_role(
    session: &deadpool_postgres::Object,
    lock: &str,
    name: &str,
    group: &str,
) -> Result<(), ProvisionError> {
    let role = quote_ident(name);
    let created = session
        .batch_execute(&format!(
            "{lock}; CREATE ROLE {role} NOLOGIN IN ROLE {}",
            quote_ident(group)
        ))
        .await;
    if created.is_err() {
        ignore_duplicate(created)?;
        session
            .batch_execute(&format!("{lock}; ALTER ROLE {role} NOLOGIN PASSWORD NULL"))
            .await?;
    }
    Ok(())
}

/// Takes back every session default a gateway login carries: a login may
/// set its own (`ALTER ROLE CURRENT_USER SET …`, also `IN DATABASE`), and
/// its new sessions, other clients' too, would start with them. Run under
/// the roles lock, before `pause_carried` sets a pause's default again.
pub(crate) fn reset_login_defaults(login: &str) -> String {
    format!(
        "ALTER ROLE {role} RESET ALL; DO $reset$ DECLARE d name; BEGIN
           FOR d IN SELECT db.datname FROM pg_catalog.pg_db_role_setting s
               JOIN pg_catalog.pg_database db ON db.oid = s.setdatabase
              WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = {name}) LOOP
             EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I RESET ALL', {name}, d);
           END LOOP;
         END $reset$",
        role = quote_ident(login),
        name = quote_literal(login),
    )
}

/// An SQL condition for a new gateway session to ask of itself: it did
/// not start with exactly the session defaults the service gives its login,
/// so a client set or took back one (`reset_login_defaults` and
/// `pause_carried` put the login right). Asked of the session, not of the
/// catalog: a backend takes its login's defaults when it starts, and a
/// client may take them back before the check runs. The service gives one:
/// a writer login's read-only default while its tenant's writes are paused.
/// A login's `role` default shows as a current user other than the login.
/// The settings are read once, from `pg_show_all_settings()` (the view
/// `pg_settings` adds its own cost), and the pause once (an init plan):
/// every new backend of the gateway pays for this query.
pub fn stray_defaults(db: &crate::domain::DbName, writer: bool) -> String {
    let paused = if writer {
        format!("(SELECT {})", super::subtenant_login::paused_condition(db))
    } else {
        "false".into()
    };
    format!(
        "(current_user <> session_user
          OR EXISTS (SELECT FROM pg_catalog.pg_show_all_settings() s
                      WHERE s.source IN ('user', 'database user')
                        AND NOT (s.source = 'user' AND s.name = 'default_transaction_read_only'
                                 AND s.setting = 'on' AND {paused}))
          OR ({paused} AND pg_catalog.current_setting('default_transaction_read_only') <> 'on'))"
    )
}
