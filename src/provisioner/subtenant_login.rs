//! The gateway's own login roles: subtenants' logins, for its subtenant
//! sessions (`domain::subtenant_login`), and the tenant's writer login
//! (`DbName::wire_writer`), for its whole-tenant writing sessions.
//!
//! Rules:
//! - A subtenant login is made only on a server whose copy of the tenant
//!   database holds such sessions to their subtenant (tenant migration V3);
//!   otherwise the caller refuses the session. The gateway checks again on
//!   every session it opens, since a restore or a revert can change that.
//! - It is a member of the tenant role (or its reader), so it inherits
//!   CONNECT on the tenant database alone and loses it with a suspension;
//!   a move's write pause reaches it through the same membership.
//! - The writer login is a member of the tenant role likewise. Neither
//!   kind adds audit entries (tenant migration V5): on the wire the client
//!   writes the SQL, and the audit log is the service's record.
//! - A tenant's drop drops these logins on that server with its own roles;
//!   a subtenant's purge drops its logins after ending their sessions.

use secrecy::SecretString;

use super::roles::{ensure_login_role, reset_login_defaults};
use super::{ProvisionError, Provisioner};
use crate::catalog::DbServer;
use crate::domain::{subtenant_login, DbName, TenantId, SUBTENANT_LOGIN_PREFIX};
use crate::sql::{quote_ident, quote_literal};

impl Provisioner {
    /// Makes `subtenant`'s login (read-only or not) on `server`, or makes
    /// its password current and takes back the session defaults a client
    /// gave it (`reset_login_defaults`). `false`, and nothing made, when the tenant's
    /// database there does not hold subtenant logins to their rows.
    pub async fn ensure_subtenant_login(
        &self,
        server: &DbServer,
        db: &DbName,
        subtenant: TenantId,
        read_only: bool,
        password: &SecretString,
    ) -> Result<bool, ProvisionError> {
        if !self.holds_subtenant_logins(server, db).await? {
            return Ok(false);
        }
        let group = if read_only {
            self.ensure_reader_role(server, db, password).await?;
            db.reader()
        } else {
            db.as_str().to_string()
        };
        let login = subtenant_login(subtenant, read_only);
        let session = self.maintenance_session(server).await?;
        let lock = super::legacy_logins::roles_lock(db);
        ensure_login_role(&session, &lock, &login, &group, password).await?;
        let pause = if read_only {
            String::new()
        } else {
            format!("; {}", pause_carried(db, &login))
        };
        session
            .batch_execute(&format!(
                "{lock}; {}; {}{pause}",
                reset_login_defaults(&login),
                self.tag_statement("ROLE", &login)
            ))
            .await?;
        Ok(true)
    }

    /// Makes the tenant's gateway writer login on `server`, or makes its
    /// password current and takes back the session defaults a client gave
    /// it; with the read-only default of a write pause under way
    /// (`pause_carried`).
    pub async fn ensure_wire_writer(
        &self,
        server: &DbServer,
        db: &DbName,
        password: &SecretString,
    ) -> Result<(), ProvisionError> {
        let login = db.wire_writer();
        let session = self.maintenance_session(server).await?;
        let lock = super::legacy_logins::roles_lock(db);
        ensure_login_role(&session, &lock, &login, db.as_str(), password).await?;
        session
            .batch_execute(&format!(
                "{lock}; {}; {}; {}",
                reset_login_defaults(&login),
                self.tag_statement("ROLE", &login),
                pause_carried(db, &login)
            ))
            .await?;
        Ok(())
    }

    /// Whether the tenant database's row-level security reads a subtenant
    /// login's subtenant from its name (tenant migration V3; since V6 the
    /// body is kept parsed, not as text).
    async fn holds_subtenant_logins(
        &self,
        server: &DbServer,
        db: &DbName,
    ) -> Result<bool, ProvisionError> {
        self.ask_tenant_db(
            server,
            db,
            "SELECT pg_catalog.strpos(
                    coalesce(pg_catalog.pg_get_function_sqlbody(oid), prosrc), $1) > 0
               FROM pg_catalog.pg_proc
              WHERE oid = pg_catalog.to_regprocedure('public.app_subtenant_id()')",
            &[&SUBTENANT_LOGIN_PREFIX],
        )
        .await
    }

    /// Ends `subtenant`'s login sessions on `server` and drops its logins
    /// (members of `db`'s roles), under its roles lock.
    pub async fn drop_subtenant_logins(
        &self,
        server: &DbServer,
        db: &DbName,
        subtenant: TenantId,
    ) -> Result<(), ProvisionError> {
        let logins = [
            subtenant_login(subtenant, false),
            subtenant_login(subtenant, true),
        ];
        let session = self.maintenance_session(server).await?;
        session
            .execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
                  WHERE usename = ANY($1)",
                &[&logins.to_vec()],
            )
            .await?;
        session
            .batch_execute(&format!(
                "{}; DROP ROLE IF EXISTS {}, {}",
                super::legacy_logins::roles_lock(db),
                quote_ident(&logins[0]),
                quote_ident(&logins[1])
            ))
            .await?;
        Ok(())
    }
}

/// Gives a writer login made (or made again) while the tenant's writes are
/// paused the pause's read-only default; run under the roles lock a pause
/// takes. The pause is read from what no client can change: its mark (the
/// tenant role's membership in `TENANT_PAUSED_ROLE`), or, for a pause made
/// before marks, the tenant role moved to the reader group. A default on
/// the tenant role itself a client could have set. Nothing is reset: the
/// end of the pause resets every writer login.
pub(super) fn pause_carried(db: &DbName, login: &str) -> String {
    format!(
        "DO $$ BEGIN
           IF {paused} THEN
             ALTER ROLE {login} SET default_transaction_read_only = on;
           END IF;
         END $$",
        paused = paused_condition(db),
        login = quote_ident(login),
    )
}

/// An SQL condition: the tenant's writes are paused, as its roles show it
/// (see `pause_carried`). Membership is read with `pg_has_role`, a cached
/// lookup: a new gateway session asks this first (`stray_defaults`), and
/// joining the role views there cost a new backend about a millisecond.
/// The mark's holders are only the paused tenant roles, so any membership
/// in it is the tenant role's own; a server without the mark has none.
pub(super) fn paused_condition(db: &DbName) -> String {
    format!(
        "(COALESCE(pg_catalog.pg_has_role({role}, pg_catalog.to_regrole({mark}), 'MEMBER'), false)
          OR (pg_catalog.pg_has_role({role}, {reader}, 'MEMBER')
              AND NOT pg_catalog.pg_has_role({role}, {app}, 'MEMBER')))",
        mark = quote_literal(crate::domain::TENANT_PAUSED_ROLE),
        role = quote_literal(db.as_str()),
        reader = quote_literal(crate::domain::TENANT_READER_ROLE),
        app = quote_literal(crate::domain::TENANT_APP_ROLE),
    )
}

/// Drops the tenant's own logins on the server (the HTTP plane's and the
/// gateway's) and every subtenant login that is a member of its role or
/// its reader (run before those are dropped).
pub(super) fn drop_logins_of(db: &DbName) -> String {
    format!(
        "DROP ROLE IF EXISTS {http}, {wire}, {wire_reader}; DO $$ DECLARE login name; BEGIN
           FOR login IN SELECT m.rolname FROM pg_auth_members a
               JOIN pg_roles m ON m.oid = a.member JOIN pg_roles g ON g.oid = a.roleid
              WHERE g.rolname IN ({role}, {reader})
                AND pg_catalog.starts_with(m.rolname::text, {prefix}) LOOP
             EXECUTE format('DROP ROLE %I', login);
           END LOOP;
         END $$",
        http = quote_ident(&db.http_login()),
        wire = quote_ident(&db.wire_writer()),
        wire_reader = quote_ident(&db.wire_reader()),
        role = quote_literal(db.as_str()),
        reader = quote_literal(&db.reader()),
        prefix = quote_literal(SUBTENANT_LOGIN_PREFIX),
    )
}

/// The sessions a suspension ends on the tenant's database: its own
/// logins' and its subtenants' (an SQL condition on `pg_stat_activity`;
/// `$1` is the database's name, `$2` `DbName::logins`).
pub(super) fn tenant_sessions() -> String {
    format!(
        "datname = $1 AND (usename = ANY($2) OR pg_catalog.starts_with(usename::text, {}))",
        quote_literal(SUBTENANT_LOGIN_PREFIX)
    )
}

/// The writing sessions a move's write pause ends: the tenant's writing
/// logins' and its subtenants' writer logins' (`$1` is the database's
/// name, `$2` `DbName::writer_logins`). Readers' sessions go on reading.
pub(super) fn writer_sessions() -> String {
    format!(
        "usename = ANY($2) OR (datname = $1 AND pg_catalog.starts_with(usename::text, {}) AND usename::text NOT LIKE '%\\_reader')",
        quote_literal(SUBTENANT_LOGIN_PREFIX)
    )
}
