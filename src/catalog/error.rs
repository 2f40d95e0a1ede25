use thiserror::Error;

/// What can go wrong talking to the catalog database.
#[derive(Debug, Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum CatalogError {
    #[error("the catalog database is unavailable")]
    Unavailable(#[source] deadpool_postgres::PoolError),
    #[error("cannot connect to the catalog database")]
    Connect(#[source] tokio_postgres::Error),
    #[error("catalog query failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("upgrading the catalog schema failed")]
    Schema(#[from] refinery::Error),
    #[error("the slug is taken by another tenant")]
    SlugTaken,
    #[error("another operation on this tenant is in progress")]
    TenantBusy,
    #[error("the parent tenant does not exist")]
    ParentMissing,
    #[error("no such tenant")]
    TenantMissing,
    #[error("the operation was claimed by another process; this one may change nothing more")]
    Fenced,
    #[error("this process holds no owner lease on the catalog right now")]
    NoLease,
    #[error("a server with this name or address is already registered")]
    ServerExists,
    #[error("cannot build the catalog pool")]
    Pool(#[from] deadpool_postgres::BuildError),
}

impl From<deadpool_postgres::PoolError> for CatalogError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(e)
    }
}
