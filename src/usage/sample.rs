//! Samples every tenant database's size and cumulative counters: one
//! session per server, one query for all of its tenants
//! (`pg_database_size` and `pg_stat_database`), one replica at a time
//! (whoever claims the due sample in the catalog). Each server's load
//! (storage, client sessions, requests an hour) is recorded with it, for
//! placement.

use std::collections::HashMap;

use super::{Usage, UsageError};
use crate::catalog::{DatabaseSample, MeasuredLoad, MeteredTenant, ServerState};
use crate::domain::TEMPLATE_DB;

const SAMPLE: &str = "SELECT d.datname, pg_database_size(d.oid),
        coalesce(s.tup_returned, 0), coalesce(s.tup_inserted + s.tup_updated + s.tup_deleted, 0),
        coalesce(s.active_time, 0)::float8, coalesce(s.session_time, 0)::float8, s.stats_reset
   FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid
  WHERE d.datname = ANY($1)";

/// The server as a whole: client sessions, their limit, every database's
/// size (the catalog's and the template's too: the disk holds them), and
/// what a new tenant database weighs (its template's size; before the
/// template exists, `template1`'s).
const SERVER: &str =
    "SELECT (SELECT count(*)::int4 FROM pg_stat_activity WHERE backend_type = 'client backend'),
        current_setting('max_connections')::int4,
        (SELECT coalesce(sum(pg_database_size(oid)), 0)::int8 FROM pg_database WHERE datallowconn),
        coalesce((SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1),
                 (SELECT pg_database_size(oid) FROM pg_database WHERE datname = 'template1'), 0)::int8";

/// How often a replica asks whether the sample is due: a fifth of the
/// interval, between 1 s and a minute.
pub(super) fn sample_tick(every_secs: u64) -> u64 {
    (every_secs / 5).clamp(1, 60)
}

impl Usage {
    /// Samples when this replica claims the sample that is due.
    pub(super) async fn sample_if_due(&self) {
        match self
            .catalog
            .claim_usage_sample(
                self.settings.sample_secs,
                sample_tick(self.settings.sample_secs),
            )
            .await
        {
            Ok(true) => {
                if let Err(e) = self.sample().await {
                    tracing::warn!(error = %e, "sampling tenant databases failed; the next sample tries again");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "cannot claim the usage sample"),
        }
    }

    /// Samples every server's tenant databases now.
    pub async fn sample(&self) -> Result<usize, UsageError> {
        let mut sampled = 0;
        for server in self.catalog.list_servers().await? {
            if server.state == ServerState::Down {
                continue;
            }
            let tenants = self.catalog.metered_tenants(server.id).await?;
            match self.sample_server(&server, tenants).await {
                Ok(n) => sampled += n,
                Err(e) => {
                    tracing::warn!(server = %server.name, error = %e, "cannot sample a server's tenant databases")
                }
            }
        }
        Ok(sampled)
    }

    async fn sample_server(
        &self,
        server: &crate::catalog::DbServer,
        tenants: Vec<MeteredTenant>,
    ) -> Result<usize, UsageError> {
        let config = self
            .provisioner
            .admin_config(server, "postgres")
            .map_err(|e| UsageError::Sample(e.to_string()))?;
        let (client, connection) = config
            .connect()
            .await
            .map_err(|e| UsageError::Sample(format!("connecting: {e}")))?;
        let driver = tokio::spawn(connection);
        let names: Vec<&str> = tenants.iter().map(|t| t.db_name.as_str()).collect();
        let rows = client
            .query(SAMPLE, &[&names])
            .await
            .map_err(|e| UsageError::Sample(format!("sampling: {e}")));
        let whole = client.query_one(SERVER, &[&TEMPLATE_DB]).await;
        drop(client);
        let _ = driver.await;
        let by_name: HashMap<&str, &MeteredTenant> =
            tenants.iter().map(|t| (t.db_name.as_str(), t)).collect();
        let samples: Vec<DatabaseSample> = rows?
            .iter()
            .filter_map(|r| {
                let tenant = by_name.get(r.get::<_, &str>(0))?;
                Some(DatabaseSample {
                    tenant: tenant.id,
                    storage_bytes: r.get(1),
                    rows_read: r.get(2),
                    rows_written: r.get(3),
                    statement_ms: r.get(4),
                    connection_ms: r.get(5),
                    stats_reset: r.get(6),
                })
            })
            .collect();
        let recorded = self.catalog.record_usage_samples(&samples).await?;
        // The server's load, for placement.
        if let Ok(row) = whole {
            let measured = MeasuredLoad {
                storage_bytes: row.get(2),
                connections: row.get(0),
                max_connections: row.get(1),
                new_tenant_bytes: row.get(3),
            };
            self.catalog
                .record_server_load(server.id, &measured)
                .await?;
        }
        let storage: Vec<(MeteredTenant, i64)> = recorded
            .iter()
            .filter_map(|s| {
                let tenant = tenants.iter().find(|t| t.id == s.tenant)?;
                Some((tenant.clone(), s.storage_bytes))
            })
            .collect();
        self.check_storage(&storage).await?;
        Ok(recorded.len())
    }
}
