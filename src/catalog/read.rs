//! One read on a pooled catalog session: a statement's rows, each mapped
//! into its record. The reads that need no transaction and no error of
//! their own go through here, so taking a session, querying and mapping
//! are written once.

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{Catalog, CatalogError};

/// A statement's parameters, as `tokio_postgres` takes them.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Catalog {
    /// The row `sql` finds, mapped; `None` when it finds none.
    pub(super) async fn read_opt<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> T,
    ) -> Result<Option<T>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client.query_opt(sql, params).await?;
        Ok(row.as_ref().map(map))
    }

    /// Every row `sql` finds, mapped, in its order.
    pub(super) async fn read_all<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> T,
    ) -> Result<Vec<T>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client.query(sql, params).await?;
        Ok(rows.iter().map(map).collect())
    }
}
