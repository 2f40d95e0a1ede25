//! `doctor`: compares each server with the catalog. It lists this
//! installation's tenant databases and roles that nothing in the catalog
//! owns (orphans), catalog tenants whose database is gone (missing), the
//! objects of other installations sharing the server (foreign: never
//! touched), and operations whose owner is gone or silent.
//!
//! `--fix` plans first (`planned` says exactly what it will drop), then
//! repairs each tenant's objects under that tenant's operation lock (a
//! `repair` operation), after checking again, under the lock, that they are
//! still orphaned. It never touches an object another installation made,
//! one whose tenant this catalog does not know, or one a running operation
//! owns (a move's target copy, a restore's staged copy).

use serde::Serialize;
use uuid::Uuid;

use super::Reconciler;
use crate::catalog::{DbServer, OpKind, Operation, ServerState, TenantChange, TenantRecord};
use crate::domain::{DbCopy, TenantId, TenantStatus};
use crate::provisioner::ServerObject;
use crate::tenants::TenantsError;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrphanObject {
    pub server: String,
    pub name: String,
    pub tenant_id: TenantId,
}

/// An object on a server that another installation made, or that this
/// catalog cannot place: doctor never touches it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ForeignObject {
    pub server: String,
    /// `database` or `role`.
    pub kind: &'static str,
    pub name: String,
    /// The installation its tag names (`None`: untagged, and not ours).
    pub installation: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MissingDatabase {
    pub tenant_id: TenantId,
    pub slug: String,
    pub server: String,
    pub database: String,
}

#[derive(Debug, Default, Serialize)]
pub struct DoctorReport {
    pub installation: Uuid,
    pub orphan_databases: Vec<OrphanObject>,
    pub orphan_roles: Vec<OrphanObject>,
    pub missing_databases: Vec<MissingDatabase>,
    /// Objects of tenants with an operation running: left to it.
    pub in_use: Vec<OrphanObject>,
    pub foreign: Vec<ForeignObject>,
    /// Operations whose owner is gone (its lease ended) or silent.
    pub stuck_operations: Vec<Operation>,
    /// What `--fix` set out to do, before doing it.
    pub planned: Vec<String>,
    /// What `--fix` did, one line each.
    pub fixed: Vec<String>,
    /// What `--fix` left alone when it checked again, and why.
    pub skipped: Vec<String>,
}

impl DoctorReport {
    pub fn is_healthy(&self) -> bool {
        self.orphan_databases.is_empty()
            && self.orphan_roles.is_empty()
            && self.missing_databases.is_empty()
            && self.stuck_operations.is_empty()
    }
}

/// What one server holds of one tenant, as found.
struct Finding<'a> {
    object: &'a ServerObject,
    database: bool,
}

impl Reconciler {
    pub async fn doctor(&self, fix: bool) -> Result<DoctorReport, TenantsError> {
        let catalog = self.tenants.catalog();
        let installation = self.tenants.provisioner().installation();
        let mut report = DoctorReport {
            installation,
            ..DoctorReport::default()
        };
        report.stuck_operations = self.abandoned_operations().await?;
        if fix && !report.stuck_operations.is_empty() {
            let pass = self.run_once().await?;
            for op in pass.resumed {
                report.fixed.push(format!("finished operation {op}"));
            }
            report.stuck_operations = self.abandoned_operations().await?;
        }
        let mut repairs: Vec<(TenantId, String)> = Vec::new();
        for server in catalog.list_servers().await? {
            if server.state == ServerState::Down {
                continue;
            }
            let (databases, roles) = self
                .tenants
                .provisioner()
                .list_tenant_objects(&server)
                .await?;
            let findings = databases
                .iter()
                .map(|object| Finding {
                    object,
                    database: true,
                })
                .chain(roles.iter().map(|object| Finding {
                    object,
                    database: false,
                }));
            for finding in findings {
                let object = finding.object;
                let record = catalog.get_tenant(object.tenant).await?;
                let ours = record.is_some() || object.installation == Some(installation);
                if !ours {
                    report.foreign.push(ForeignObject {
                        server: server.name.clone(),
                        kind: if finding.database { "database" } else { "role" },
                        name: object.name.clone(),
                        installation: object.installation,
                    });
                    continue;
                }
                if needed_here(
                    record.as_ref(),
                    &server,
                    object,
                    finding.database,
                    &databases,
                ) {
                    continue;
                }
                let orphan = OrphanObject {
                    server: server.name.clone(),
                    name: object.name.clone(),
                    tenant_id: object.tenant,
                };
                if catalog
                    .unfinished_operation_of(object.tenant)
                    .await?
                    .is_some()
                {
                    report.in_use.push(orphan);
                    continue;
                }
                let what = if finding.database { "database" } else { "role" };
                report.planned.push(format!(
                    "drop orphan {what} {} on {}",
                    object.name, server.name
                ));
                repairs.push((object.tenant, server.name.clone()));
                if finding.database {
                    report.orphan_databases.push(orphan);
                } else {
                    report.orphan_roles.push(orphan);
                }
            }
            for tenant in catalog.tenants_on_server(server.id).await? {
                let Some(db) = tenant.db_name.as_deref() else {
                    continue;
                };
                let settled = !matches!(
                    tenant.status,
                    TenantStatus::Provisioning | TenantStatus::Failed
                );
                if settled && !databases.iter().any(|d| d.name == db) {
                    if catalog.unfinished_operation_of(tenant.id).await?.is_some() {
                        continue;
                    }
                    report.planned.push(format!(
                        "mark tenant {} failed: database {db} is missing from {}",
                        tenant.id, server.name
                    ));
                    repairs.push((tenant.id, server.name.clone()));
                    report.missing_databases.push(MissingDatabase {
                        tenant_id: tenant.id,
                        slug: tenant.slug.clone(),
                        server: server.name.clone(),
                        database: db.to_string(),
                    });
                }
            }
        }
        if fix {
            repairs.sort();
            repairs.dedup();
            for (tenant, server) in repairs {
                self.repair(tenant, &server, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// Repairs one tenant's objects on one server under its operation lock,
    /// after checking again what is there and what the catalog says now.
    async fn repair(
        &self,
        tenant: TenantId,
        server_name: &str,
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
            Err(crate::catalog::CatalogError::TenantBusy) => {
                report.skipped.push(format!(
                    "tenant {tenant}: an operation began meanwhile; left alone"
                ));
                return Ok(());
            }
            Err(crate::catalog::CatalogError::TenantMissing) => {
                return self.repair_unknown(tenant, server_name, report).await;
            }
            Err(e) => return Err(e.into()),
        };
        let outcome = lease
            .guard(self.repair_under_lock(&record, server_name, &lease, report))
            .await;
        match outcome {
            Ok(change) => {
                lease
                    .finish(tenant, true, None, &change.unwrap_or_default())
                    .await?;
                Ok(())
            }
            Err(e @ TenantsError::Abandoned(_)) => Err(e),
            Err(e) => {
                lease.fail(tenant, &e.to_string()).await?;
                Err(e)
            }
        }
    }

    async fn repair_under_lock(
        &self,
        record: &TenantRecord,
        server_name: &str,
        lease: &crate::operations::Lease,
        report: &mut DoctorReport,
    ) -> Result<Option<TenantChange>, TenantsError> {
        let catalog = self.tenants.catalog();
        let provisioner = self.tenants.provisioner();
        let Some(server) = catalog
            .list_servers()
            .await?
            .into_iter()
            .find(|s| s.name == server_name)
        else {
            return Ok(None);
        };
        let held = lease.hold().await?;
        let now = held.tenant(record.id).await?;
        let (databases, roles) = provisioner.list_tenant_objects(&server).await?;
        let mine = |objects: &[ServerObject]| -> Vec<ServerObject> {
            objects
                .iter()
                .filter(|o| o.tenant == record.id)
                .cloned()
                .collect()
        };
        for object in mine(&databases) {
            if needed_here(now.as_ref(), &server, &object, true, &databases) {
                report.skipped.push(format!(
                    "{} on {}: the catalog uses it now; left alone",
                    object.name, server.name
                ));
                continue;
            }
            provisioner.drop_database(&server, &object.name).await?;
            report.fixed.push(format!(
                "dropped orphan database {} on {}",
                object.name, server.name
            ));
        }
        let (databases, _) = provisioner.list_tenant_objects(&server).await?;
        for object in mine(&roles) {
            if needed_here(now.as_ref(), &server, &object, false, &databases) {
                continue;
            }
            provisioner
                .drop_tenant_role(&server, &crate::domain::DbName::for_tenant(object.tenant))
                .await?;
            report.fixed.push(format!(
                "dropped orphan role {} on {}",
                object.name, server.name
            ));
        }
        held.release().await;
        let Some(now) = now else {
            return Ok(None);
        };
        let live = crate::domain::DbName::for_tenant(now.id);
        let settled = !matches!(
            now.status,
            TenantStatus::Provisioning | TenantStatus::Failed
        );
        if settled
            && now.purged_at.is_none()
            && now.db_server_id == Some(server.id)
            && !databases.iter().any(|d| d.name == live.as_str())
        {
            report.fixed.push(format!(
                "marked tenant {} failed: its database is missing",
                now.id
            ));
            return Ok(Some(TenantChange {
                status: Some(TenantStatus::Failed),
                error: Some("the tenant database is missing from its server".into()),
                ..TenantChange::default()
            }));
        }
        Ok(None)
    }

    /// Objects tagged with this installation whose tenant row is gone from
    /// the catalog: nothing can operate on a tenant the catalog does not
    /// know, so they are dropped as they are found again.
    async fn repair_unknown(
        &self,
        tenant: TenantId,
        server_name: &str,
        report: &mut DoctorReport,
    ) -> Result<(), TenantsError> {
        let provisioner = self.tenants.provisioner();
        let installation = provisioner.installation();
        let Some(server) = self
            .tenants
            .catalog()
            .list_servers()
            .await?
            .into_iter()
            .find(|s| s.name == server_name)
        else {
            return Ok(());
        };
        let (databases, roles) = provisioner.list_tenant_objects(&server).await?;
        for object in databases
            .iter()
            .filter(|o| o.tenant == tenant && o.installation == Some(installation))
        {
            provisioner.drop_database(&server, &object.name).await?;
            report.fixed.push(format!(
                "dropped orphan database {} on {}",
                object.name, server.name
            ));
        }
        for object in roles
            .iter()
            .filter(|o| o.tenant == tenant && o.installation == Some(installation))
        {
            provisioner
                .drop_tenant_role(&server, &crate::domain::DbName::for_tenant(object.tenant))
                .await?;
            report.fixed.push(format!(
                "dropped orphan role {} on {}",
                object.name, server.name
            ));
        }
        Ok(())
    }
}

/// Whether the catalog needs `object` on `server`: the live database of a
/// tenant placed there (not purged), or that tenant's role, or the role of
/// any database of the tenant still on the server.
fn needed_here(
    record: Option<&TenantRecord>,
    server: &DbServer,
    object: &ServerObject,
    database: bool,
    databases: &[ServerObject],
) -> bool {
    let placed_here = record.is_some_and(|r| {
        r.purged_at.is_none()
            && r.db_server_id == Some(server.id)
            && r.status != TenantStatus::Failed
    });
    if database {
        placed_here && object.copy == DbCopy::Live
    } else {
        placed_here || databases.iter().any(|d| d.tenant == object.tenant)
    }
}
