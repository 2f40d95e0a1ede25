//! `doctor --fix`'s repairs of one tenant's objects on one server, each
//! under a lock that keeps what the catalog says about the tenant from
//! changing while the server is changed:
//! - a tenant the catalog knows: a `repair` operation (its per-tenant
//!   lock), then the step lock while the catalog is read again and acted on;
//! - a tenant the catalog does not know: `Catalog::hold_absent_tenant`,
//!   which keeps its row from coming back until the work is done; a row
//!   that came back before the lock leaves everything of the tenant alone.
//!   That lock stalls every tenants write in the fleet, so only the
//!   decisions and the renames happen under it, each confirmed first: a
//!   quarantined copy it decides to purge is dropped after it is released
//!   (the copy is already out of the tenant's name, so nothing the catalog
//!   may want back is at stake), and the roles left without a database are
//!   dropped under it again.
//!
//! Either way the catalog is read again right before acting, and nothing
//! it needs is touched. No database is dropped here except a quarantined
//! copy past its retention, on `--confirm`, that `copies::keep_reason`
//! does not keep. A repair keeps the tenant's recorded error.

use chrono::{DateTime, Utc};

use super::copies::keep_reason;
use super::doctor::{needed_here, since_text, DoctorReport};
use super::Reconciler;
use crate::catalog::{
    AbsentTenantGuard, CatalogError, DbServer, OpKind, TenantChange, TenantRecord,
};
use crate::domain::{DbCopy, DbName, TenantId, TenantStatus};
use crate::provisioner::ServerObject;
use crate::tenants::TenantsError;

/// A quarantined copy decided for purging: dropped once the lock is let go.
struct Purge {
    name: String,
    since: Option<DateTime<Utc>>,
}

impl Reconciler {
    /// Repairs one tenant's objects on one server under its lock; `purge`
    /// also drops its quarantined copies past their retention.
    pub(super) async fn repair(
        &self,
        tenant: TenantId,
        server_name: &str,
        purge: bool,
        report: &mut DoctorReport,
    ) -> Result<(), TenantsError> {
        let ops = self.tenants.operations();
        let (record, lease) = match ops
            .begin(
                tenant,
                OpKind::Repair,
                &serde_json::json!({ "server": server_name }),
            )
            .await
        {
            Ok(begun) => begun,
            Err(CatalogError::TenantBusy) => {
                report.skipped.push(format!(
                    "tenant {tenant}: an operation began meanwhile; left alone"
                ));
                return Ok(());
            }
            Err(CatalogError::TenantMissing) => {
                return self
                    .repair_unknown(tenant, server_name, purge, report)
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        let outcome = lease
            .guard(self.repair_under_lock(&record, server_name, purge, &lease, report))
            .await;
        match outcome {
            Ok(change) => {
                // The tenant's error stays unless the repair set its own.
                let change = change.unwrap_or_else(|| TenantChange {
                    error: record.error.clone(),
                    ..TenantChange::default()
                });
                lease.finish(tenant, None, &change).await?;
                Ok(())
            }
            Err(e @ TenantsError::Abandoned(_)) => Err(e),
            Err(e) => {
                lease.fail(tenant, e.code(), &e.to_string()).await?;
                Err(e)
            }
        }
    }

    async fn repair_under_lock(
        &self,
        record: &TenantRecord,
        server_name: &str,
        purge: bool,
        lease: &crate::operations::Lease,
        report: &mut DoctorReport,
    ) -> Result<Option<TenantChange>, TenantsError> {
        let Some(server) = self.server_named(server_name).await? else {
            return Ok(None);
        };
        let held = lease.hold().await?;
        let now = held.tenant(record.id).await?;
        // A per-tenant lock: the purge may drop while it is held.
        let purges = self
            .park(record.id, now.as_ref(), &server, purge, None, report)
            .await?;
        self.drop_purged(&server, purges, report).await?;
        self.drop_unneeded_roles(record.id, now.as_ref(), &server, None, report)
            .await?;
        held.release().await;
        let Some(now) = now else {
            return Ok(None);
        };
        let (databases, _) = self
            .tenants
            .provisioner()
            .list_tenant_objects(&server)
            .await?;
        if !wants_its_database_back(&now, &server, &databases) {
            return Ok(None);
        }
        let hints = self.copy_hints_now(&now, &server).await?;
        if !hints.is_empty() {
            // The scan may have said it already, of the copy as it was.
            let said = format!("tenant {}:", now.id);
            if !report.hints.iter().any(|h| h.starts_with(&said)) {
                report.hints.extend(hints);
            }
            return Ok(None);
        }
        report.fixed.push(format!(
            "marked tenant {} failed: its database is missing",
            now.id
        ));
        Ok(Some(TenantChange {
            status: Some(TenantStatus::Failed),
            error: Some("the tenant database is missing from its server".into()),
            ..TenantChange::default()
        }))
    }

    /// Objects tagged with this installation whose tenant row is gone from
    /// the catalog, acted on while the catalog is held so that the row
    /// cannot come back meanwhile.
    async fn repair_unknown(
        &self,
        tenant: TenantId,
        server_name: &str,
        purge: bool,
        report: &mut DoctorReport,
    ) -> Result<(), TenantsError> {
        let Some(server) = self.server_named(server_name).await? else {
            return Ok(());
        };
        crate::failpoint!("doctor.before_quarantine");
        let Some(guard) = self.hold_absent(tenant, &server, report).await? else {
            return Ok(());
        };
        crate::failpoint!("doctor.holding_tenants");
        let purges = self
            .park(tenant, None, &server, purge, Some(&guard), report)
            .await?;
        if purges.is_empty() {
            self.drop_unneeded_roles(tenant, None, &server, Some(&guard), report)
                .await?;
            guard.release().await;
            return Ok(());
        }
        guard.release().await;
        self.drop_purged(&server, purges, report).await?;
        let Some(guard) = self.hold_absent(tenant, &server, report).await? else {
            return Ok(());
        };
        self.drop_unneeded_roles(tenant, None, &server, Some(&guard), report)
            .await?;
        guard.release().await;
        Ok(())
    }

    /// The tenants table held while `tenant` has no row; `None` (said in
    /// the report) when its row is back.
    async fn hold_absent(
        &self,
        tenant: TenantId,
        server: &DbServer,
        report: &mut DoctorReport,
    ) -> Result<Option<AbsentTenantGuard>, TenantsError> {
        let guard = self.tenants.catalog().hold_absent_tenant(tenant).await?;
        if guard.is_none() {
            report.skipped.push(format!(
                "tenant {tenant}: back in the catalog; its objects on {} are left alone",
                server.name
            ));
        }
        Ok(guard)
    }

    /// Acts on `tenant`'s databases on `server` as the catalog has it now
    /// (`now`, read under the caller's lock): quarantines the ones it does
    /// not need, and picks the quarantined copies past their retention to
    /// purge when `purge` (unless `keep_reason` keeps them). `guard`, when
    /// the caller holds the tenants table, is confirmed before each rename.
    async fn park(
        &self,
        tenant: TenantId,
        now: Option<&TenantRecord>,
        server: &DbServer,
        purge: bool,
        guard: Option<&AbsentTenantGuard>,
        report: &mut DoctorReport,
    ) -> Result<Vec<Purge>, TenantsError> {
        let provisioner = self.tenants.provisioner();
        let (databases, _) = provisioner.list_tenant_objects(server).await?;
        let parking = DbName::for_tenant(tenant).quarantined();
        let mut parking_taken = databases.iter().any(|d| d.name == parking);
        let mut purges = Vec::new();
        for object in databases.iter().filter(|o| self.ours(tenant, now, o)) {
            if object.copy == DbCopy::Quarantined {
                let entry = self.quarantine_entry(server, object);
                if !purge || !entry.purge_due {
                    continue;
                }
                let placed = match now {
                    Some(t) => self.live_where_placed_now(t).await?,
                    None => false,
                };
                if let Some(why) = keep_reason(now, placed) {
                    report.skipped.push(format!(
                        "{} on {}: past its retention, kept: {why}",
                        object.name, server.name
                    ));
                    continue;
                }
                purges.push(Purge {
                    name: object.name.clone(),
                    since: entry.since,
                });
                continue;
            }
            if needed_here(now, server, object, true, &databases) {
                report.skipped.push(format!(
                    "{} on {}: the catalog uses it now; left alone",
                    object.name, server.name
                ));
                continue;
            }
            if parking_taken {
                report.skipped.push(format!(
                    "{} on {}: {parking} holds an earlier quarantine of its tenant; left alone until that one is purged",
                    object.name, server.name
                ));
                continue;
            }
            if let Some(guard) = guard {
                guard.confirm().await?;
            }
            provisioner
                .quarantine_database(server, &object.name, &parking, Utc::now())
                .await?;
            parking_taken = true;
            report.fixed.push(format!(
                "quarantined orphan database {} on {} as {parking}",
                object.name, server.name
            ));
        }
        Ok(purges)
    }

    /// Drops the quarantined copies `park` picked.
    async fn drop_purged(
        &self,
        server: &DbServer,
        purges: Vec<Purge>,
        report: &mut DoctorReport,
    ) -> Result<(), TenantsError> {
        for purge in purges {
            self.tenants
                .provisioner()
                .drop_database(server, &purge.name)
                .await?;
            report.fixed.push(format!(
                "purged quarantined database {} on {} (quarantined {})",
                purge.name,
                server.name,
                since_text(purge.since)
            ));
        }
        Ok(())
    }

    /// Drops `tenant`'s roles on `server` that no database of the tenant
    /// (nor the catalog, `now`) needs any more.
    async fn drop_unneeded_roles(
        &self,
        tenant: TenantId,
        now: Option<&TenantRecord>,
        server: &DbServer,
        guard: Option<&AbsentTenantGuard>,
        report: &mut DoctorReport,
    ) -> Result<(), TenantsError> {
        let provisioner = self.tenants.provisioner();
        let (databases, roles) = provisioner.list_tenant_objects(server).await?;
        for object in roles.iter().filter(|o| self.ours(tenant, now, o)) {
            if needed_here(now, server, object, false, &databases) {
                continue;
            }
            if let Some(guard) = guard {
                guard.confirm().await?;
            }
            provisioner
                .drop_tenant_role(server, &DbName::for_tenant(object.tenant))
                .await?;
            report.fixed.push(format!(
                "dropped orphan role {} on {}",
                object.name, server.name
            ));
        }
        Ok(())
    }

    /// Whether `object` is `tenant`'s and doctor's to act on: of a tenant
    /// the catalog does not know, only what carries this installation's tag.
    fn ours(&self, tenant: TenantId, now: Option<&TenantRecord>, object: &ServerObject) -> bool {
        let installation = self.tenants.provisioner().installation();
        object.tenant == tenant && (now.is_some() || object.installation == Some(installation))
    }

    async fn server_named(&self, name: &str) -> Result<Option<DbServer>, TenantsError> {
        Ok(self
            .tenants
            .catalog()
            .list_servers()
            .await?
            .into_iter()
            .find(|s| s.name == name))
    }
}

/// Whether the catalog places a settled tenant on `server` whose database
/// is not there.
fn wants_its_database_back(
    now: &TenantRecord,
    server: &DbServer,
    databases: &[ServerObject],
) -> bool {
    let settled = !matches!(
        now.status,
        TenantStatus::Provisioning | TenantStatus::Failed
    );
    let live = DbName::for_tenant(now.id);
    settled
        && now.purged_at.is_none()
        && now.db_server_id == Some(server.id)
        && !databases.iter().any(|d| d.name == live.as_str())
}
