//! Scratch databases for drift detection's expected schemas: made on a
//! server, migrated to one version, read, and dropped.
//!
//! Rules:
//! - Scratch databases are named `ai_care_expected_v<version>_<random>` and
//!   tagged with this installation; nothing else is ever given that prefix.
//! - At most one is built per server at a time, across replicas: the build
//!   holds `EXPECTED_SCHEMA_LOCK` (in the server's `postgres` database) from
//!   before the sweep until after the drop.
//! - A crash (or a cancelled build) can leave one behind; under the lock no
//!   other build is running on the server, so every tagged scratch database
//!   found there then is a leftover, and each build drops them first.
//! - Its sessions open one after the other (the migration's, then the
//!   reader's), beside the maintenance session that holds the lock.

use std::future::Future;

use super::held::HeldLock;
use super::{ProvisionError, Provisioner};
use crate::catalog::{tagged_installation, DbServer};
use crate::pg::PgConfig;
use crate::sql::quote_ident;

/// Prefix of every scratch database an expected schema is built in.
pub const EXPECTED_DB_PREFIX: &str = "ai_care_expected_";

/// Advisory lock (in each server's `postgres` database) held while an
/// expected schema is built there ("tpexpect").
pub const EXPECTED_SCHEMA_LOCK: i64 = 0x7470_6578_7065_6374;

impl Provisioner {
    /// Makes a scratch database on `server`, migrates it to `version`,
    /// lends its admin settings to `read`, and drops it, whatever `read`
    /// returns.
    #[tracing::instrument(skip_all, fields(server = %server.name, version))]
    pub async fn with_expected_database<T, F, Fut>(
        &self,
        server: &DbServer,
        version: i32,
        read: F,
    ) -> Result<T, ProvisionError>
    where
        F: FnOnce(PgConfig) -> Fut,
        Fut: Future<Output = T>,
    {
        let session = self.maintenance_session(server).await?;
        let held = HeldLock::exclusive(session, EXPECTED_SCHEMA_LOCK).await?;
        let result = self
            .build_locked(server, version, held.session(), read)
            .await;
        held.release().await;
        result
    }

    async fn build_locked<T, F, Fut>(
        &self,
        server: &DbServer,
        version: i32,
        session: &deadpool_postgres::Object,
        read: F,
    ) -> Result<T, ProvisionError>
    where
        F: FnOnce(PgConfig) -> Fut,
        Fut: Future<Output = T>,
    {
        self.sweep_expected_databases(session).await?;
        // The migrations grant to the tenant group roles, as on a template.
        super::template::ensure_group_roles(session).await?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{EXPECTED_DB_PREFIX}v{version}_{}", &suffix[..12]);
        let q = quote_ident(&name);
        // Like the template: from `template1`, closed to PUBLIC, tagged.
        session
            .batch_execute(&format!("CREATE DATABASE {q}"))
            .await?;
        let made = async {
            session
                .batch_execute(&format!(
                    "REVOKE ALL ON DATABASE {q} FROM PUBLIC; {}",
                    self.tag_statement("DATABASE", &name)
                ))
                .await?;
            let config = self.admin_config(server, &name)?;
            self.migrations
                .migrate_database(&config, Some(version))
                .await?;
            Ok::<_, ProvisionError>(read(config).await)
        }
        .await;
        let dropped = session
            .batch_execute(&format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)"))
            .await;
        let value = made?;
        dropped?;
        Ok(value)
    }

    /// Drops this installation's scratch databases on the server of
    /// `session`: leftovers, since the caller holds `EXPECTED_SCHEMA_LOCK`.
    async fn sweep_expected_databases(
        &self,
        session: &deadpool_postgres::Object,
    ) -> Result<(), ProvisionError> {
        let pattern = format!("{}%", EXPECTED_DB_PREFIX.replace('_', "\\_"));
        let rows = session
            .query(
                "SELECT datname::text, shobj_description(oid, 'pg_database')
                   FROM pg_database WHERE datname LIKE $1",
                &[&pattern],
            )
            .await?;
        for row in rows {
            let (name, comment): (String, Option<String>) = (row.get(0), row.get(1));
            if comment.as_deref().and_then(tagged_installation) != Some(self.installation) {
                continue;
            }
            tracing::info!(database = %name, "dropping a scratch database a build left");
            session
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&name)
                ))
                .await?;
        }
        Ok(())
    }
}
