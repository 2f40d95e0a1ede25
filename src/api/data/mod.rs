//! The tenant data plane: agents, calls, analytics and the audit log. Each
//! request runs in one transaction on the tenant's own database, as the
//! tenant's own role, with row-level security scoped to the caller.
//!
//! Rules:
//! - a data-plane handler never writes the catalog: a denied request is
//!   counted in memory (`control_audit::Denials`) and written in aggregate
//!   over the denial writer's own pool;
//! - hot-path futures stay small (a unit test bounds these handlers at
//!   4 KiB): rare, large paths (pool builds, catalog loads, denial audits)
//!   are boxed, because futures are moved by copy.

pub(crate) mod agents;
pub(crate) mod calls;
mod context;
pub(crate) mod insights;

pub use context::{TenantContext, SUBTENANT_HEADER, TENANT_HEADER};

/// A page of `items` as `{<key>: [...], next_cursor}`: a full page names its
/// last item as the cursor of the next one.
fn page<T: serde::Serialize>(
    key: &str,
    items: Vec<T>,
    limit: i64,
    id: impl Fn(&T) -> uuid::Uuid,
) -> actix_web::HttpResponse {
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(id))
        .flatten();
    actix_web::HttpResponse::Ok().json(serde_json::json!({ key: items, "next_cursor": next }))
}

#[cfg(test)]
mod tests {
    /// The size of the future a two-argument handler returns.
    fn future_size<A, B, F, Fut>(_: F) -> usize
    where
        F: Fn(A, B) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Futures move by copy, each await and each box copying the whole
    /// state: a handler that embeds the pool's connect path or four query
    /// futures copies tens of kilobytes per request (it did: 7 KiB each,
    /// memmove was the top item of the profile). The rare paths are boxed.
    #[test]
    fn data_plane_handler_futures_stay_small() {
        for (name, size) in [
            ("GET /v1/agents/{id}", future_size(super::agents::show)),
            ("GET /v1/agents", future_size(super::agents::list)),
            ("POST /v1/agents", future_size(super::agents::create)),
            ("GET /v1/calls/{id}", future_size(super::calls::show)),
            ("GET /v1/calls", future_size(super::calls::list)),
            ("POST /v1/calls", future_size(super::calls::create)),
        ] {
            assert!(size <= 4096, "{name}: {size} bytes");
        }
    }
}
