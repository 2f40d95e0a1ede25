//! The data plane's errors: routing and queries.

use std::sync::Arc;

use strum::EnumCount;

use super::{check, pg, pool};
use crate::data::DataError;
use crate::directory::CredentialsError;
use crate::domain::TenantStatus;
use crate::services::CatalogError;
use crate::tenancy::RouterError;

#[test]
fn every_variant_of_the_data_plane_errors_answers_its_pinned_status_and_code() {
    check(
        vec![
            (DataError::NotFound("agent"), 404, "agent_not_found"),
            (DataError::NotFound("call"), 404, "call_not_found"),
            (DataError::NotFound("thing"), 404, "not_found"),
            (DataError::Invalid("bad".into()), 422, "invalid_field"),
            (DataError::UnknownReference("agent"), 409, "agent_not_found"),
            (
                DataError::LimitExceeded {
                    limit: "maxAgents",
                    max: 1,
                },
                409,
                "max_agents_exceeded",
            ),
            (
                DataError::LimitExceeded {
                    limit: "maxConcurrentCalls",
                    max: 1,
                },
                409,
                "max_concurrent_calls_exceeded",
            ),
            (
                DataError::FeatureDisabled("analytics"),
                409,
                "feature_disabled",
            ),
            (DataError::InUse("the agent"), 409, "in_use"),
            (DataError::Paused, 503, "tenant_writes_paused"),
            (DataError::Timeout, 503, "query_timeout"),
            (
                DataError::Unavailable(pg()),
                503,
                "database_server_unavailable",
            ),
            (DataError::Denied(pg()), 503, "tenant_database_unavailable"),
            (DataError::Query(pg()), 500, "internal_error"),
        ],
        DataError::COUNT,
    );
    check(
        vec![
            (RouterError::NotFound, 404, "tenant_not_found"),
            (RouterError::Suspended, 403, "tenant_suspended"),
            (RouterError::Deleted, 404, "tenant_deleted"),
            (
                RouterError::NotReady(TenantStatus::Provisioning),
                409,
                "tenant_not_ready",
            ),
            (RouterError::ServerDown, 503, "database_server_unavailable"),
            (
                RouterError::CatalogUnavailable(Arc::new(CatalogError::Unavailable(pool()))),
                503,
                "catalog_unavailable",
            ),
            (
                RouterError::Lookup(Arc::new(CatalogError::Query(pg()))),
                500,
                "internal_error",
            ),
            (RouterError::Inconsistent("x"), 500, "internal_error"),
            (
                RouterError::Credentials(Arc::new(CredentialsError::Missing)),
                500,
                "internal_error",
            ),
            (
                RouterError::PoolBuild(Arc::new(deadpool::managed::BuildError::NoRuntimeSpecified)),
                500,
                "internal_error",
            ),
            (RouterError::BudgetSpent, 503, "connection_budget_exhausted"),
            (
                RouterError::ServerUnreachable(Arc::new(pg())),
                503,
                "database_server_unavailable",
            ),
            (RouterError::PoolClosed, 503, "database_server_unavailable"),
            (
                RouterError::SchemaBehind(crate::tenancy::SchemaGap::AuditWritable),
                500,
                "internal_error",
            ),
        ],
        RouterError::COUNT,
    );
}
