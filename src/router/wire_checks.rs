//! What a new gateway session is checked for before it serves anyone.
//!
//! Rules:
//! - Fail closed on the schema: a subtenant's login must be held to its
//!   rows (tenant migration V3) by a function parsed once (V6), a
//!   read-only login must see no audit entry (V4), and a writing login must
//!   add none (V5); else the client is refused with
//!   `RouterError::SchemaBehind`, naming the migration. A check cut short
//!   for any other reason (a lock timeout a client set) admits no one
//!   either, but is not blamed on the schema: the client may try again.
//! - A session whose login carries a session default a client set (a role
//!   may set its own: `ALTER ROLE CURRENT_USER SET …`) serves no one: the
//!   gateway makes the login again, which takes them back, and asks once
//!   more (`gateway::relay`). So one client's defaults never reach another
//!   client's sessions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::starts::StartSlot;
use super::{ConnectError, SchemaGap};
use crate::domain::TenantId;
use crate::pg::{RawError, RawSession};

/// One gateway login's sessions: how they open, and what each is checked
/// for before it serves anyone. Shared with the tasks that make them.
pub(super) struct WireLogin {
    pub(super) config: crate::pg::PgConfig,
    /// For a subtenant's login: the subtenant its sessions must be held to.
    pub(super) subtenant: Option<TenantId>,
    /// For a read-only login: its sessions must not see the audit log (a
    /// writing one's must not add to it).
    pub(super) read_only: bool,
    /// The pool's `role_ensured`, cleared when the server refuses the login
    /// or a new session finds defaults a client set.
    pub(super) role_ensured: Arc<AtomicBool>,
    /// The first check of a new session (`first_check`).
    pub(super) first_check: String,
    /// Its session defaults alone (`stray_check`).
    pub(super) stray_check: String,
}

/// Whether the tenant database hides its audit log from reader logins
/// (tenant migration V4's restrictive policy).
const AUDIT_HIDDEN: &str = "SELECT EXISTS (SELECT FROM pg_catalog.pg_policy \
     WHERE polrelid = 'public.audit_log'::pg_catalog.regclass \
       AND polname = 'readers_see_no_audit' AND NOT polpermissive)::text";

/// Whether the tenant database refuses audit entries from the gateway's
/// writer logins (tenant migration V5's restrictive policy).
const AUDIT_SEALED: &str = "SELECT EXISTS (SELECT FROM pg_catalog.pg_policy \
     WHERE polrelid = 'public.audit_log'::pg_catalog.regclass \
       AND polname = 'wire_writes_no_audit' AND NOT polpermissive)::text";

/// The subtenant a subtenant login's session is held to, and whether the
/// function that says so was parsed once, when it was made (tenant
/// migration V6): a body kept as text is parsed again in each session, with
/// the types the session made in its temporary schema, which PostgreSQL
/// finds before pg_catalog's.
const SUBTENANT_HELD: &str = "SELECT public.app_subtenant_id()::pg_catalog.text || ' ' || \
     (SELECT (prosqlbody IS NOT NULL)::pg_catalog.text FROM pg_catalog.pg_proc \
       WHERE oid = 'public.app_subtenant_id()'::pg_catalog.regprocedure)";

/// The first check's query for a login (`read_only` or not) of `db`: its
/// session defaults (`stray`, the router's `StrayDefaults`), and the wait
/// for a revert's lock on the audit log (taken when the query is parsed).
pub(super) fn first_check(
    stray: super::StrayDefaults,
    db: &crate::domain::DbName,
    read_only: bool,
) -> String {
    format!(
        "SELECT ({})::text, EXISTS (SELECT FROM public.audit_log LIMIT 0)",
        stray(db, !read_only)
    )
}

/// The first check's test of the session's defaults, alone: asked when the
/// first check failed, since a default a client set may be what failed it.
pub(super) fn stray_check(
    stray: super::StrayDefaults,
    db: &crate::domain::DbName,
    read_only: bool,
) -> String {
    format!("SELECT ({})::text", stray(db, !read_only))
}

impl WireLogin {
    /// A session of this login, opened (holding `slot` while it opens) and
    /// checked; closed again if it fails its checks.
    pub(super) async fn open(&self, slot: StartSlot) -> Result<RawSession, ConnectError> {
        // The slot goes back once the session is open, before its checks
        // (a check may wait for a revert's lock).
        let limit = self.config.get_connect_timeout().copied();
        let opened = super::starts::opening(slot, limit, self.config.connect_raw_session()).await;
        let mut raw = match opened {
            Ok(raw) => raw,
            Err(e) => {
                // The login refused: the role is gone, or its password was
                // changed (a role may change its own, so a client may). The
                // gateway makes sure of it again (`gateway::relay`).
                if matches!(&e, ConnectError::Raw(r) if matches!(r.code(), Some("28P01" | "28000")))
                {
                    self.role_ensured.store(false, Ordering::Release);
                }
                return Err(e);
            }
        };
        if let Err(e) = self.check(&mut raw).await {
            raw.close().await;
            if matches!(e, ConnectError::StrayDefaults) {
                // The gateway makes the login again, which takes them back.
                self.role_ensured.store(false, Ordering::Release);
            }
            return Err(e);
        }
        Ok(raw)
    }

    /// Fail closed: whether the database (an older backup restored, a
    /// reverted migration) would hold a session of this login to what its
    /// key may do, and its login carries no session default but those the
    /// service set. A subtenant's login must be held to its rows by its
    /// name, not by a setting the client may change; a read-only login must
    /// not read the audit log, and a writing one must not add to it.
    async fn check(&self, raw: &mut RawSession) -> Result<(), ConnectError> {
        let gap = self
            .subtenant
            .map_or(self.audit_gap(), |_| SchemaGap::SubtenantRows);
        // First: a default a client set could fail the later checks. Then a
        // revert holds the audit log locked until it commits (dropping a
        // policy does; the V3 revert takes the lock first): the same query
        // waits for it to end, and the schema is read afresh after (new
        // statements), so a revert under way cannot admit this session.
        match raw.query_value(&self.first_check).await {
            Ok(Some(v)) if v == "false" => {}
            Ok(Some(v)) if v == "true" => return Err(ConnectError::StrayDefaults),
            Ok(_) => return Err(ConnectError::SchemaBehind(gap)),
            Err(e) => {
                // A default a client set may be what failed it
                // (`row_security = off` refuses any read of a table with
                // policies, a `lock_timeout` cuts the wait for a revert
                // short): asked alone, it is found, and taken back.
                let alone = raw.query_value(&self.stray_check).await;
                if matches!(alone, Ok(Some(v)) if v == "true") {
                    return Err(ConnectError::StrayDefaults);
                }
                return Err(unanswered(e, gap));
            }
        }
        self.holds(raw).await
    }

    fn audit_gap(&self) -> SchemaGap {
        if self.read_only {
            SchemaGap::AuditShown
        } else {
            SchemaGap::AuditWritable
        }
    }

    /// The schema checks after the first (`check`).
    async fn holds(&self, raw: &mut RawSession) -> Result<(), ConnectError> {
        if let Some(sub) = self.subtenant {
            let gap = SchemaGap::SubtenantRows;
            match raw.query_value(SUBTENANT_HELD).await {
                Ok(Some(held)) => match held.split_once(' ') {
                    Some((id, "true")) if id == sub.as_uuid().to_string() => {}
                    Some((id, _)) if id == sub.as_uuid().to_string() => {
                        return Err(ConnectError::SchemaBehind(
                            SchemaGap::SubtenantScopeReparsed,
                        ))
                    }
                    _ => return Err(ConnectError::SchemaBehind(gap)),
                },
                Ok(None) => return Err(ConnectError::SchemaBehind(gap)),
                Err(e) => return Err(unanswered(e, gap)),
            }
        }
        let policy = if self.read_only {
            AUDIT_HIDDEN
        } else {
            AUDIT_SEALED
        };
        match raw.query_value(policy).await {
            Ok(Some(v)) if v == "true" => Ok(()),
            Ok(_) => Err(ConnectError::SchemaBehind(self.audit_gap())),
            Err(e) => Err(unanswered(e, self.audit_gap())),
        }
    }
}

/// A check the database did not answer. The schema's fault when it could
/// not (SQLSTATE class 42: a table, function or privilege missing), and the
/// client is told which migration its database needs. Anything else is not
/// the schema's (a lock or statement timeout from defaults a client set on
/// its login, a server going away), and the client may try again.
fn unanswered(e: RawError, gap: SchemaGap) -> ConnectError {
    match e.code() {
        Some(code) if code.starts_with("42") => ConnectError::SchemaBehind(gap),
        _ => ConnectError::Unchecked(e),
    }
}
