//! A server's WAL as a point-in-time restore needs it: how far its
//! archiver has got, and everything committed so far pushed to the archive.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{ProvisionError, Provisioner};
use crate::catalog::DbServer;

/// What `pg_stat_archiver` says.
#[derive(Debug, Clone)]
pub struct ArchiverState {
    pub last_archived_at: Option<DateTime<Utc>>,
    /// The last attempt failed (and nothing was archived after it).
    pub failing: bool,
}

impl Provisioner {
    pub async fn archiver(&self, server: &DbServer) -> Result<ArchiverState, ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let row = session
            .query_one(
                "SELECT last_archived_time, last_failed_time FROM pg_stat_archiver",
                &[],
            )
            .await?;
        let archived: Option<DateTime<Utc>> = row.get(0);
        let failed: Option<DateTime<Utc>> = row.get(1);
        Ok(ArchiverState {
            last_archived_at: archived,
            failing: match (failed, archived) {
                (Some(f), Some(a)) => f > a,
                (Some(_), None) => true,
                _ => false,
            },
        })
    }

    /// Pushes what the server has committed so far to its archive: a
    /// commit first (a time target needs a commit after it to stop at),
    /// then a WAL switch, then waits, at most `wait`, until the archiver
    /// has pushed the segment that ends there. Returns that time.
    pub async fn archive_now(
        &self,
        server: &DbServer,
        wait: Duration,
    ) -> Result<Result<DateTime<Utc>, String>, ProvisionError> {
        let session = self.maintenance_session(server).await?;
        let row = session
            .query_one(
                "SELECT now(), txid_current()::text, pg_walfile_name(pg_switch_wal())",
                &[],
            )
            .await?;
        let at: DateTime<Utc> = row.get(0);
        let segment: String = row.get(2);
        let deadline = Instant::now() + wait;
        loop {
            let row = session
                .query_one(
                    "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, '') FROM pg_stat_archiver",
                    &[],
                )
                .await?;
            let archived: String = row.get(0);
            // Same timeline: names order as their positions do.
            if archived.len() == segment.len() && archived >= segment {
                return Ok(Ok(at));
            }
            if Instant::now() > deadline {
                let failed: String = row.get(1);
                return Ok(Err(format!(
                    "the server had not archived WAL segment {segment} after {wait:?} (last archived {archived:?}, last failed {failed:?})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
