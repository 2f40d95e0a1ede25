//! The invariants every crash must leave true, checked after `doctor --fix`.

use std::collections::BTreeMap;

use serde_json::Value;
use tenant_plane::domain::{DbCopy, DbName, TenantId};

use crate::cluster::TestServer;

use super::Rig;

impl Rig {
    /// Runs `doctor --fix`, then checks every invariant a crash must leave
    /// true. `acknowledged` is each tenant's agents whose creation answered
    /// 201, which must all still be there if the tenant is.
    pub async fn check_invariants(&self, acknowledged: &BTreeMap<TenantId, i64>) {
        let out = self.cli(&["doctor", "--fix", "--json"], None).await;
        let fixed: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        let out = self.cli(&["doctor", "--json"], None).await;
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        for key in [
            "orphan_databases",
            "orphan_roles",
            "missing_databases",
            "stuck_operations",
            "in_use",
        ] {
            assert_eq!(
                report[key].as_array().map(Vec::len),
                Some(0),
                "after doctor --fix ({fixed}), {key}: {report}"
            );
        }
        let catalog = self.catalog_db().await;
        let twice: i64 = catalog
            .query_one(
                "SELECT count(*) FROM (SELECT op FROM test_finishes GROUP BY op HAVING count(*) > 1) t",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(twice, 0, "an operation finished twice");
        let servers: BTreeMap<uuid::Uuid, &TestServer> = {
            let rows = catalog
                .query("SELECT id, port FROM db_servers", &[])
                .await
                .unwrap();
            rows.iter()
                .filter_map(|r| {
                    let port: i32 = r.get(1);
                    let server = self
                        .servers()
                        .into_iter()
                        .find(|s| i32::from(s.port()) == port)?;
                    Some((r.get(0), server))
                })
                .collect()
        };
        // Where each tenant's databases are, on every server: those of this
        // catalog's tenants, and any this installation tagged (the shared
        // server holds other tests' tenants too).
        let installation: uuid::Uuid = catalog
            .query_one("SELECT id FROM installation", &[])
            .await
            .unwrap()
            .get(0);
        let known: std::collections::BTreeSet<uuid::Uuid> = catalog
            .query("SELECT id FROM tenants", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut found: BTreeMap<TenantId, Vec<(u16, DbCopy)>> = BTreeMap::new();
        // Copies doctor quarantined instead of dropping: each must be on
        // its list, and none counts as a tenant's database.
        let mut quarantined: Vec<String> = Vec::new();
        for server in self.servers() {
            let admin = server.connect("postgres").await;
            for row in admin
                .query(
                    "SELECT datname::text, shobj_description(oid, 'pg_database')
                       FROM pg_database WHERE datname LIKE 'ai_care_tenant_%'",
                    &[],
                )
                .await
                .unwrap()
            {
                let Some((tenant, copy)) = DbName::owner_of(row.get::<_, &str>(0)) else {
                    continue;
                };
                let ours = known.contains(&tenant.as_uuid())
                    || row
                        .get::<_, Option<&str>>(1)
                        .and_then(tenant_plane::catalog::tagged_installation)
                        == Some(installation);
                if ours && copy == DbCopy::Quarantined {
                    quarantined.push(row.get(0));
                } else if ours {
                    found.entry(tenant).or_default().push((server.port(), copy));
                }
            }
        }
        let tenants = catalog
            .query(
                "SELECT id, status, db_server_id, purged_at IS NOT NULL FROM tenants WHERE parent_id IS NULL",
                &[],
            )
            .await
            .unwrap();
        for row in tenants {
            let id = TenantId::from(row.get::<_, uuid::Uuid>(0));
            let status: String = row.get(1);
            let placed: Option<uuid::Uuid> = row.get(2);
            let purged: bool = row.get(3);
            let copies = found.remove(&id).unwrap_or_default();
            if purged || status == "failed" {
                assert!(
                    copies.is_empty(),
                    "{id} ({status}, purged {purged}) has {copies:?}"
                );
                continue;
            }
            let home = placed
                .and_then(|p| servers.get(&p))
                .expect("placed on a rig server");
            assert_eq!(
                copies,
                [(home.port(), DbCopy::Live)],
                "{id} ({status}) must have exactly one database, on its server"
            );
            let db = DbName::for_tenant(id);
            let admin = home.connect("postgres").await;
            // The tenant's writing logins, where made.
            let paused: bool = admin
                .query_one(
                    "SELECT coalesce(bool_or(array_to_string(rolconfig, ',') LIKE '%default_transaction_read_only=on%'), false)
                       FROM pg_roles WHERE rolname = ANY($1)",
                    &[&db.writer_logins()],
                )
                .await
                .unwrap()
                .get(0);
            assert!(!paused, "{id} is left with its writes paused");
            if let Some(want) = acknowledged.get(&id) {
                let agents: i64 = home
                    .connect(db.as_str())
                    .await
                    .query_one("SELECT count(*) FROM agents", &[])
                    .await
                    .unwrap()
                    .get(0);
                assert!(
                    agents >= *want,
                    "{id}: {agents} agents, {want} acknowledged"
                );
            }
        }
        assert!(found.is_empty(), "databases of unknown tenants: {found:?}");
        let mut listed: Vec<String> = report["quarantined"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap().to_string())
            .collect();
        listed.sort();
        quarantined.sort();
        assert_eq!(
            quarantined, listed,
            "quarantined copies doctor does not list"
        );
    }
}
