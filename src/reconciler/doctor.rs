//! `doctor`: compares each server with the catalog. It lists tenant databases
//! and roles the catalog does not know (orphans), catalog tenants whose
//! database is gone (missing), and stuck operations; `--fix` repairs them.

use std::collections::HashSet;

use serde::Serialize;

use super::Reconciler;
use crate::catalog::{Operation, ServerState};
use crate::domain::{DbName, TenantId, TenantStatus};
use crate::tenants::TenantsError;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrphanObject {
    pub server: String,
    pub name: String,
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
    pub orphan_databases: Vec<OrphanObject>,
    pub orphan_roles: Vec<OrphanObject>,
    pub missing_databases: Vec<MissingDatabase>,
    pub stuck_operations: Vec<Operation>,
    /// What `--fix` did, one line each.
    pub fixed: Vec<String>,
}

impl DoctorReport {
    pub fn is_healthy(&self) -> bool {
        self.orphan_databases.is_empty()
            && self.orphan_roles.is_empty()
            && self.missing_databases.is_empty()
            && self.stuck_operations.is_empty()
    }
}

impl Reconciler {
    pub async fn doctor(&self, fix: bool) -> Result<DoctorReport, TenantsError> {
        let catalog = self.tenants.catalog();
        let provisioner = self.tenants.provisioner();
        let mut report = DoctorReport::default();
        for server in catalog.list_servers().await? {
            if server.state == ServerState::Down {
                continue;
            }
            let tenants = catalog.tenants_on_server(server.id).await?;
            let expected: HashSet<&str> = tenants
                .iter()
                .filter_map(|t| t.db_name.as_deref())
                .collect();
            let (databases, roles) = provisioner.list_tenant_objects(&server).await?;
            let present: HashSet<&str> = databases.iter().map(DbName::as_str).collect();
            for db in &databases {
                if !expected.contains(db.as_str()) {
                    report.orphan_databases.push(OrphanObject {
                        server: server.name.clone(),
                        name: db.to_string(),
                    });
                    if fix {
                        provisioner.drop_tenant_database(&server, db).await?;
                        report.fixed.push(format!(
                            "dropped orphan database and role {db} on {}",
                            server.name
                        ));
                    }
                }
            }
            for role in &roles {
                if !expected.contains(role.as_str()) && !present.contains(role.as_str()) {
                    report.orphan_roles.push(OrphanObject {
                        server: server.name.clone(),
                        name: role.to_string(),
                    });
                    if fix {
                        provisioner.drop_tenant_database(&server, role).await?;
                        report
                            .fixed
                            .push(format!("dropped orphan role {role} on {}", server.name));
                    }
                }
            }
            for tenant in &tenants {
                let Some(db) = tenant.db_name.as_deref() else {
                    continue;
                };
                let settled = !matches!(
                    tenant.status,
                    TenantStatus::Provisioning | TenantStatus::Failed
                );
                if settled && !present.contains(db) {
                    report.missing_databases.push(MissingDatabase {
                        tenant_id: tenant.id,
                        slug: tenant.slug.clone(),
                        server: server.name.clone(),
                        database: db.to_string(),
                    });
                    if fix {
                        catalog
                            .mark_tenant_failed(
                                tenant.id,
                                "the tenant database is missing from its server",
                            )
                            .await?;
                        report.fixed.push(format!(
                            "marked tenant {} failed: database {db} is missing",
                            tenant.id
                        ));
                    }
                }
            }
        }
        report.stuck_operations = catalog.stale_operations(self.stale_after).await?;
        if fix && !report.stuck_operations.is_empty() {
            let pass = self.run_once().await?;
            for op in pass.resumed {
                report
                    .fixed
                    .push(format!("finished interrupted operation {op}"));
            }
        }
        Ok(report)
    }
}
