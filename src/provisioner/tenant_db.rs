//! One tenant's database and login role. Every step is idempotent, so the
//! reconciler can repeat a step a crash interrupted.
//!
//! Rules:
//! - A tenant database admits only its own roles: CONNECT is revoked from
//!   PUBLIC, the tenant role gets CONNECT and TEMPORARY alone, and its
//!   reader (`DbName::reader`) CONNECT alone. Their table privileges come
//!   through `ai_care_tenant_app` (DML) and `ai_care_tenant_reader`
//!   (SELECT), which have CONNECT nowhere.
//! - No role another role is a member of can log in. The tenant role and
//!   its reader are `NOLOGIN` groups; sessions log in as their members
//!   (`DbName::http_login`, the gateway's logins). In PostgreSQL a member
//!   may `SET ROLE` to its group, and a role may change its own password
//!   and settings: were a group a login, a gateway client could lock the
//!   HTTP plane out, or log in past the gateway with a password it chose.
//! - Every path that makes or re-makes a tenant role on a server (a create,
//!   a move's target, a restore) goes through `ensure_tenant_role`, which
//!   sets its password and clears any pause, so a role left from an earlier
//!   stint there never starts its new life read-only.
//! - A subtenant's purge deletes its rows (agents, calls, calls on its
//!   agents, audit events) from its root's database in one transaction
//!   (`delete_subtenant_rows`); a root's purge drops its database and role
//!   (its subtenants' logins there too: `subtenant_login.rs`).

use secrecy::SecretString;

use super::held::HeldLock;
use super::legacy_logins::roles_lock;
use super::roles::{ensure_group_role, ensure_login_role};
use super::template::{ignore_duplicate, TEMPLATE_LOCK};
use super::{ProvisionError, Provisioner};
use crate::catalog::{quarantined_since, tagged_installation, DbServer};
use crate::domain::{
    DbCopy, DbName, TEMPLATE_DB, TENANT_APP_ROLE, TENANT_DB_PREFIX, TENANT_READER_ROLE,
};
use crate::sql::{quote_ident, quote_literal};

/// Lets the tenant's roles connect to `database` (its own, or a copy
/// about to take its name): CONNECT and TEMPORARY for the tenant role,
/// CONNECT for its reader. Both roles exist (`ensure_tenant_role`).
pub(super) fn connect_grants(database: &str, db: &DbName) -> String {
    format!(
        "GRANT CONNECT, TEMPORARY ON DATABASE {d} TO {role}; GRANT CONNECT ON DATABASE {d} TO {reader}",
        d = quote_ident(database),
        role = quote_ident(db.as_str()),
        reader = quote_ident(&db.reader()),
    )
}

/// What exists on a server for one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub database: bool,
    pub role: bool,
}

impl Provisioner {
    /// Creates the tenant's roles and clones its database from the
    /// template; then only they may connect. Parts that exist are kept.
    #[tracing::instrument(skip_all, fields(db = %db))]
    pub async fn create_tenant_database(
        &self,
        server: &DbServer,
        db: &DbName,
        password: &SecretString,
    ) -> Result<(), ProvisionError> {
        // A server registered while this process runs has no template yet.
        if self.template_version(server.id).is_none() {
            self.prepare_server(server).await?;
        }
        self.ensure_tenant_role(server, db, password).await?;
        let session = self.maintenance_session(server).await?;
        // Shared: clones may run together, never during a template migration.
        let held = HeldLock::shared(session, TEMPLATE_LOCK).await?;
        let created = held
            .session()
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(db.as_str()),
                quote_ident(TEMPLATE_DB)
            ))
            .await;
        let unlocked = held.release().await;
        ignore_duplicate(created)?;
        let session = match unlocked {
            Some(session) => session,
            None => self.maintenance_session(server).await?,
        };
        session
            .batch_execute(&format!(
                "REVOKE ALL ON DATABASE {dbq} FROM PUBLIC; {grants}; {tag}",
                dbq = quote_ident(db.as_str()),
                grants = connect_grants(db.as_str(), db),
                tag = self.tag_statement("DATABASE", db.as_str()),
            ))
            .await?;
        Ok(())
    }

    /// Creates the tenant role and its reader on `server`, both groups, and
    /// the HTTP plane's login; or makes existing ones so, the login's
    /// password current and the tenant role's writes unpaused.
    pub async fn ensure_tenant_role(
        &self,
        server: &DbServer,
        db: &DbName,
        password: &SecretString,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let lock = roles_lock(db);
        ensure_group_role(&session, &lock, db.as_str(), TENANT_APP_ROLE).await?;
        ensure_login_role(&session, &lock, &db.http_login(), db.as_str(), password).await?;
        // A role left from an earlier stint on this server (a move away
        // whose clean-up failed) may still have its writes paused.
        session
            .batch_execute(&super::copy::pause_statements(db, false))
            .await?;
        ensure_group_role(&session, &lock, &db.reader(), TENANT_READER_ROLE).await?;
        session
            .batch_execute(&format!(
                "{lock}; {}; {}; {}",
                self.tag_statement("ROLE", db.as_str()),
                self.tag_statement("ROLE", &db.http_login()),
                self.tag_statement("ROLE", &db.reader())
            ))
            .await?;
        Ok(())
    }

    /// Creates the tenant's reader group on `server`, and its gateway
    /// reader login (or makes its password current); and lets the group
    /// connect to the tenant's database, if that exists there. For tenants
    /// made before readers were, and for the gateway's first reader.
    pub async fn ensure_reader_role(
        &self,
        server: &DbServer,
        db: &DbName,
        password: &SecretString,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let lock = roles_lock(db);
        ensure_group_role(&session, &lock, &db.reader(), TENANT_READER_ROLE).await?;
        ensure_login_role(&session, &lock, &db.wire_reader(), &db.reader(), password).await?;
        session
            .batch_execute(&format!(
                "{lock}; {}; {}; {}",
                super::roles::reset_login_defaults(&db.wire_reader()),
                self.tag_statement("ROLE", &db.reader()),
                self.tag_statement("ROLE", &db.wire_reader())
            ))
            .await?;
        if self.presence(server, db).await?.database {
            session
                .batch_execute(&format!(
                    "GRANT CONNECT ON DATABASE {} TO {}",
                    quote_ident(db.as_str()),
                    quote_ident(&db.reader())
                ))
                .await?;
        }
        Ok(())
    }

    /// Drops the tenant's database (ending its sessions) and its role.
    #[tracing::instrument(skip_all, fields(db = %db))]
    pub async fn drop_tenant_database(
        &self,
        server: &DbServer,
        db: &DbName,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let q = quote_ident(db.as_str());
        // Separate statements: DROP DATABASE cannot share a transaction.
        session
            .batch_execute(&format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)"))
            .await?;
        session
            .batch_execute(&format!(
                "{}; {}; DROP ROLE IF EXISTS {q}, {}",
                roles_lock(db),
                super::subtenant_login::drop_logins_of(db),
                quote_ident(&db.reader())
            ))
            .await?;
        Ok(())
    }

    /// Drops a subtenant's logins on `server` (ending their sessions) and
    /// deletes its rows from its root's database: calls (and any call on
    /// one of its agents), agents and its audit events. Repeating it
    /// deletes nothing more; a root database already gone has nothing left.
    #[tracing::instrument(skip_all, fields(db = %db, subtenant.id = %subtenant))]
    pub async fn purge_subtenant_rows(
        &self,
        server: &DbServer,
        db: &DbName,
        subtenant: uuid::Uuid,
    ) -> Result<(), ProvisionError> {
        // Its logins first: no session of its own outlives its rows.
        self.drop_subtenant_logins(server, db, crate::domain::TenantId::from(subtenant))
            .await?;
        if !self.presence(server, db).await?.database {
            return Ok(());
        }
        self.delete_subtenant_rows(server, db.as_str(), subtenant)
            .await
    }

    /// The deletes of `purge_subtenant_rows`, in `database` (a tenant's
    /// database or its staged copy), which must exist.
    pub async fn delete_subtenant_rows(
        &self,
        server: &DbServer,
        database: &str,
        subtenant: uuid::Uuid,
    ) -> Result<(), ProvisionError> {
        let config = self.admin_config(server, database)?;
        let (mut client, connection) = config.connect().await?;
        let connection = tokio::spawn(connection);
        let tx = client.transaction().await?;
        // Locked first: a call being added on one of these agents waits,
        // then fails, rather than make the agents' delete fail.
        tx.execute(
            "SELECT id FROM agents WHERE subtenant_id = $1 FOR UPDATE",
            &[&subtenant],
        )
        .await?;
        tx.execute(
            "DELETE FROM calls WHERE subtenant_id = $1
                OR agent_id IN (SELECT id FROM agents WHERE subtenant_id = $1)",
            &[&subtenant],
        )
        .await?;
        tx.execute("DELETE FROM agents WHERE subtenant_id = $1", &[&subtenant])
            .await?;
        tx.execute(
            "DELETE FROM audit_log WHERE subtenant_id = $1",
            &[&subtenant],
        )
        .await?;
        tx.commit().await?;
        drop(client);
        let _ = connection.await;
        Ok(())
    }

    /// Grants or revokes the tenant role's CONNECT; revoking also ends its
    /// open sessions, so a suspension takes effect in PostgreSQL at once.
    #[tracing::instrument(skip_all, fields(db = %db, allowed))]
    pub async fn set_connect(
        &self,
        server: &DbServer,
        db: &DbName,
        allowed: bool,
    ) -> Result<(), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let q = quote_ident(db.as_str());
        if allowed {
            session
                .batch_execute(&connect_grants(db.as_str(), db))
                .await?;
        } else {
            // The reader may not exist (a tenant made before readers were).
            session
                .batch_execute(&format!(
                    "REVOKE CONNECT, TEMPORARY ON DATABASE {q} FROM {q};
                     DO $$ BEGIN
                       IF to_regrole({reader}) IS NOT NULL THEN
                         EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM %I', {db}, {reader});
                       END IF;
                     END $$",
                    reader = quote_literal(&db.reader()),
                    db = quote_literal(db.as_str()),
                ))
                .await?;
            session
                .execute(
                    &format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {}",
                        super::subtenant_login::tenant_sessions()
                    ),
                    &[&db.as_str(), &db.logins()],
                )
                .await?;
        }
        Ok(())
    }

    /// Whether the tenant's database and role exist on `server`.
    pub async fn presence(
        &self,
        server: &DbServer,
        db: &DbName,
    ) -> Result<Presence, ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let row = session
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1),
                        EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
                &[&db.as_str()],
            )
            .await?;
        Ok(Presence {
            database: row.get(0),
            role: row.get(1),
        })
    }

    /// Every tenant database (and staged, retired or quarantined copy) and
    /// tenant role on `server`, with the installation its tag names.
    pub async fn list_tenant_objects(
        &self,
        server: &DbServer,
    ) -> Result<(Vec<ServerObject>, Vec<ServerObject>), ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let pattern = format!("{TENANT_DB_PREFIX}%");
        let dbs = session
            .query(
                "SELECT datname::text, shobj_description(oid, 'pg_database')
                   FROM pg_database WHERE datname LIKE $1",
                &[&pattern],
            )
            .await?;
        let roles = session
            .query(
                "SELECT rolname::text, shobj_description(oid, 'pg_authid')
                   FROM pg_roles WHERE rolname LIKE $1",
                &[&pattern],
            )
            .await?;
        let objects = |rows: Vec<tokio_postgres::Row>| {
            rows.iter()
                .filter_map(|r| {
                    let name: String = r.get(0);
                    let comment: Option<String> = r.get(1);
                    let (tenant, copy) = DbName::owner_of(&name)?;
                    Some(ServerObject {
                        installation: comment.as_deref().and_then(tagged_installation),
                        quarantined_at: comment.as_deref().and_then(quarantined_since),
                        name,
                        tenant,
                        copy,
                    })
                })
                .collect::<Vec<_>>()
        };
        Ok((objects(dbs), objects(roles)))
    }
}

/// A tenant database or role found on a server.
#[derive(Debug, Clone)]
pub struct ServerObject {
    pub name: String,
    pub tenant: crate::domain::TenantId,
    pub copy: DbCopy,
    /// The installation that made it, when it carries a tag.
    pub installation: Option<uuid::Uuid>,
    /// When `doctor --fix` quarantined it, as its tag records.
    pub quarantined_at: Option<chrono::DateTime<chrono::Utc>>,
}
