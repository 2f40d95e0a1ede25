//! Table checksums: a row count and an md5 over the sorted md5s of every
//! row's text form, for each table of the `public` schema.

use std::collections::BTreeMap;

use serde::Serialize;

use super::DumpError;
use crate::sql::quote_ident;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableChecksum {
    pub rows: i64,
    pub md5: String,
}

/// Checksums of every table in the database `config` names. Connect as a
/// role that row-level security does not filter (the server's admin).
pub async fn table_checksums(
    config: &crate::pg::PgConfig,
) -> Result<BTreeMap<String, TableChecksum>, DumpError> {
    let (client, connection) = config.connect().await?;
    let driver = tokio::spawn(connection);
    // One snapshot for all tables.
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let tables = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await?;
    let mut sums = BTreeMap::new();
    for t in tables {
        let name: String = t.get(0);
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '')
                       FROM (SELECT md5(t::text) AS h FROM public.{} t) rows",
                    quote_ident(&name)
                ),
                &[],
            )
            .await?;
        sums.insert(
            name,
            TableChecksum {
                rows: row.get(0),
                md5: row.get(1),
            },
        );
    }
    client.batch_execute("COMMIT").await?;
    drop(client);
    let _ = driver.await;
    Ok(sums)
}
