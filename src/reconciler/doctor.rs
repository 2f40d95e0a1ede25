//! `doctor`: compares each server with the catalog. It lists this
//! installation's tenant databases and roles that nothing in the catalog
//! owns (orphans), the copies it quarantined earlier, catalog tenants whose
//! database is gone (missing), the objects of other installations sharing
//! the server (foreign: never touched), and operations whose owner is gone
//! or silent.
//!
//! Rules of `--fix`:
//! - It plans first (`planned`), then acts on each tenant's objects under
//!   that tenant's lock (`repair.rs`), after checking again, under the
//!   lock, what the catalog needs.
//! - It drops no database on inference: an orphan database may be live
//!   data the catalog forgot (a catalog restored to an earlier point), so
//!   it is renamed to its tenant's quarantine name (`DbCopy::Quarantined`),
//!   its tag recording when, and closed to every session. A quarantined
//!   copy is dropped only once `tenants.retention_days` have passed, only
//!   with `--confirm`, and never while its tenant has a catalog row (not
//!   purged) whose live database is not on the server the catalog places
//!   it on (`copies.rs`).
//! - A tenant whose database is missing is marked failed only when no
//!   server holds a live or quarantined copy of it; otherwise doctor says
//!   where the copy is and how to bring it back (`hints`).
//! - One repair that fails is recorded (`failed`) and the others go on.
//! - A role stays while any database of its tenant, quarantined included,
//!   is on its server.
//! - It never touches an object another installation made, one whose
//!   tenant this catalog does not know and that carries no tag of ours, or
//!   one a running operation owns (a move's target copy, a restore's staged
//!   copy).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::copies::{copy_hints, keep_reason, live_where_placed, Inventory};
use super::Reconciler;
use crate::catalog::{DbServer, Operation, TenantRecord};
use crate::domain::{DbCopy, DbName, TenantId, TenantStatus};
use crate::provisioner::ServerObject;
use crate::tenants::TenantsError;

/// How far `doctor` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoctorMode {
    /// Report only.
    Check,
    /// Repair: finish operations, quarantine orphan databases, drop orphan
    /// roles, mark tenants whose database is missing failed.
    Fix,
    /// `Fix`, and drop the quarantined copies past their retention.
    FixAndPurge,
}

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

/// A database `doctor --fix` renamed out of the way rather than drop it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QuarantinedDatabase {
    pub server: String,
    pub name: String,
    pub tenant_id: TenantId,
    /// When it was quarantined, as its tag records (`None`: not recorded;
    /// such a copy is never purged).
    pub since: Option<DateTime<Utc>>,
    /// Past `tenants.retention_days`: `--fix --confirm` drops it.
    pub purge_due: bool,
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
    /// This installation's quarantined databases, as found.
    pub quarantined: Vec<QuarantinedDatabase>,
    /// What `--fix` set out to do, before doing it (in check mode: what
    /// `--fix` would do).
    pub planned: Vec<String>,
    /// What `--fix` did, one line each.
    pub fixed: Vec<String>,
    /// What `--fix` left alone when it checked again, and why.
    pub skipped: Vec<String>,
    /// Tenants whose database is missing while a copy of it is on some
    /// server: where, and how to bring it back. Not marked failed.
    pub hints: Vec<String>,
    /// Repairs (and server listings) that failed, with their error; the
    /// others went on. The command exits non-zero when this is not empty.
    pub failed: Vec<String>,
}

impl DoctorReport {
    /// Quarantined copies are parked on purpose: they do not count.
    pub fn is_healthy(&self) -> bool {
        self.orphan_databases.is_empty()
            && self.orphan_roles.is_empty()
            && self.missing_databases.is_empty()
            && self.stuck_operations.is_empty()
            && self.failed.is_empty()
    }
}

/// What one server holds of one tenant, as found.
struct Finding<'a> {
    object: &'a ServerObject,
    database: bool,
}

impl Reconciler {
    pub async fn doctor(&self, fix: bool) -> Result<DoctorReport, TenantsError> {
        let mode = if fix {
            DoctorMode::Fix
        } else {
            DoctorMode::Check
        };
        self.doctor_with(mode).await
    }

    pub async fn doctor_with(&self, mode: DoctorMode) -> Result<DoctorReport, TenantsError> {
        let fix = mode != DoctorMode::Check;
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
        // Every server first: a tenant's copy may be on another one.
        let (found, unlisted) = self.inventories().await?;
        report.failed.extend(unlisted);
        let mut repairs: Vec<(TenantId, String)> = Vec::new();
        for Inventory {
            server,
            databases,
            roles,
        } in &found
        {
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
                if finding.database && object.copy == DbCopy::Quarantined {
                    let entry = self.quarantine_entry(server, object);
                    if entry.purge_due
                        && catalog
                            .unfinished_operation_of(object.tenant)
                            .await?
                            .is_none()
                    {
                        let placed = record
                            .as_ref()
                            .is_some_and(|r| live_where_placed(r, &found));
                        let since = since_text(entry.since);
                        match (mode, keep_reason(record.as_ref(), placed)) {
                            (DoctorMode::Check, _) => {}
                            (_, Some(why)) => report.skipped.push(format!(
                                "{} on {}: past its retention, kept: {why}",
                                object.name, server.name
                            )),
                            (DoctorMode::FixAndPurge, None) => {
                                report.planned.push(format!(
                                    "purge quarantined database {} on {} (quarantined {since})",
                                    object.name, server.name
                                ));
                                repairs.push((object.tenant, server.name.clone()));
                            }
                            (DoctorMode::Fix, None) => report.skipped.push(format!(
                                "would purge quarantined database {} on {} (quarantined {since}, past the {}-day retention): add --confirm to drop it",
                                object.name, server.name, self.retention_days
                            )),
                        }
                    }
                    report.quarantined.push(entry);
                    continue;
                }
                if needed_here(record.as_ref(), server, object, finding.database, databases) {
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
                if finding.database {
                    report.planned.push(format!(
                        "quarantine orphan database {} on {} as {}",
                        object.name,
                        server.name,
                        DbName::for_tenant(object.tenant).quarantined()
                    ));
                    report.orphan_databases.push(orphan);
                } else {
                    report.planned.push(format!(
                        "drop orphan role {} on {}",
                        object.name, server.name
                    ));
                    report.orphan_roles.push(orphan);
                }
                repairs.push((object.tenant, server.name.clone()));
            }
            for tenant in catalog.tenants_on_server(server.id).await? {
                let Some(db) = tenant.db_name.as_ref().map(DbName::as_str) else {
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
                    report.missing_databases.push(MissingDatabase {
                        tenant_id: tenant.id,
                        slug: tenant.slug.to_string(),
                        server: server.name.clone(),
                        database: db.to_string(),
                    });
                    let hints = copy_hints(&tenant, server, &found);
                    if !hints.is_empty() {
                        // A copy is somewhere: bringing it back is the
                        // operator's call, and failing the tenant would
                        // hide it.
                        report.hints.extend(hints);
                        continue;
                    }
                    report.planned.push(format!(
                        "mark tenant {} failed: database {db} is missing from {}",
                        tenant.id, server.name
                    ));
                    repairs.push((tenant.id, server.name.clone()));
                }
            }
        }
        if fix {
            repairs.sort();
            repairs.dedup();
            let purge = mode == DoctorMode::FixAndPurge;
            for (tenant, server) in repairs {
                // One repair that fails does not stop the others.
                if let Err(e) = self.repair(tenant, &server, purge, &mut report).await {
                    report
                        .failed
                        .push(format!("tenant {tenant} on {server}: {e}"));
                }
            }
        }
        Ok(report)
    }

    /// A quarantined copy as the report shows it.
    pub(super) fn quarantine_entry(
        &self,
        server: &DbServer,
        object: &ServerObject,
    ) -> QuarantinedDatabase {
        let retention = chrono::Duration::days(i64::from(self.retention_days));
        QuarantinedDatabase {
            server: server.name.clone(),
            name: object.name.clone(),
            tenant_id: object.tenant,
            since: object.quarantined_at,
            purge_due: object
                .quarantined_at
                .is_some_and(|at| at + retention <= Utc::now()),
        }
    }
}

pub(super) fn since_text(since: Option<DateTime<Utc>>) -> String {
    match since {
        Some(at) => format!(
            "since {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "at a time not recorded".into(),
    }
}

/// Whether the catalog needs `object` on `server`: the live database of a
/// tenant placed there (not purged), or that tenant's role, or the role of
/// any database of the tenant still on the server.
pub(super) fn needed_here(
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
