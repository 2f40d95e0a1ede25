//! The router bench's baselines: bare actix-web handlers for
//! `GET /v1/agents/{id}` on static deadpool pools, without the service.
//!
//! - `/v1/agents/{id}`: the service's own statements on the wire, sent the
//!   same way (`BEGIN READ ONLY`, the `set_config` scope, the agent `SELECT`,
//!   `COMMIT`, as cached prepared statements in one round trip), so the
//!   difference to the service is the service itself;
//! - `/alone/v1/agents/{id}`: the literal baseline, the same `SELECT`
//!   alone (no transaction, no scope);
//! - `/json/v1/agents/{id}`: the same row, as PostgreSQL writes it as JSON
//!   (`row_to_json`, as PostgREST does), sent on as the body untouched.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde_json::json;
use tokio_postgres::types::ToSql;

/// The service's scope statement for `GET /v1/agents/{id}`.
const ENTER: &str =
    "SELECT set_config('app.subtenant_id', $1, true), set_config('app.user_id', $2, true)";
/// The service's agent query.
const SELECT: &str = "SELECT id, subtenant_id, name, type, configuration, owner, created_at, updated_at FROM agents WHERE id = $1 AND ($2::text IS NULL OR owner = $2)";

/// Static pools by agent id (each agent belongs to one tenant).
pub type Pools = web::Data<HashMap<uuid::Uuid, deadpool_postgres::Pool>>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/agents/{id}", web::get().to(same_statements))
        .route("/alone/v1/agents/{id}", web::get().to(query_alone))
        .route("/json/v1/agents/{id}", web::get().to(postgres_json));
}

/// The agent query with PostgreSQL building the answer's JSON.
const AS_JSON: &str = "SELECT row_to_json(a)::text FROM (SELECT id, subtenant_id, name, type, configuration, owner, created_at, updated_at FROM agents WHERE id = $1 AND ($2::text IS NULL OR owner = $2)) a";

async fn postgres_json(pools: Pools, id: web::Path<uuid::Uuid>) -> HttpResponse {
    let Some(pool) = pools.get(&id) else {
        return HttpResponse::NotFound().finish();
    };
    let client = pool.get().await.expect("connection");
    let select = client.prepare_cached(AS_JSON).await.expect("prepare");
    let owner: Option<&str> = None;
    let id = id.into_inner();
    match client
        .query_opt(&select, &[&id, &owner])
        .await
        .expect("select")
    {
        Some(row) => HttpResponse::Ok()
            .content_type("application/json")
            .body(row.get::<_, String>(0)),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn same_statements(pools: Pools, id: web::Path<uuid::Uuid>) -> HttpResponse {
    let Some(pool) = pools.get(&id) else {
        return HttpResponse::NotFound().finish();
    };
    let client = pool.get().await.expect("connection");
    let (begin, enter, select, commit) = futures_util::try_join!(
        client.prepare_cached("BEGIN READ ONLY"),
        client.prepare_cached(ENTER),
        client.prepare_cached(SELECT),
        client.prepare_cached("COMMIT"),
    )
    .expect("prepare");
    let owner: Option<&str> = None;
    let id = id.into_inner();
    let enter_params: [&(dyn ToSql + Sync); 2] = [&"", &"bench"];
    let select_params: [&(dyn ToSql + Sync); 2] = [&id, &owner];
    let (_, _, row, _) = futures_util::try_join!(
        client.execute(&begin, &[]),
        client.execute(&enter, &enter_params),
        client.query_opt(&select, &select_params),
        client.execute(&commit, &[]),
    )
    .expect("select");
    respond(row)
}

async fn query_alone(pools: Pools, id: web::Path<uuid::Uuid>) -> HttpResponse {
    let Some(pool) = pools.get(&id) else {
        return HttpResponse::NotFound().finish();
    };
    let client = pool.get().await.expect("connection");
    let select = client.prepare_cached(SELECT).await.expect("prepare");
    let owner: Option<&str> = None;
    let id = id.into_inner();
    let row = client
        .query_opt(&select, &[&id, &owner])
        .await
        .expect("select");
    respond(row)
}

fn respond(row: Option<tokio_postgres::Row>) -> HttpResponse {
    match row {
        Some(r) => HttpResponse::Ok().json(json!({
            "id": r.get::<_, uuid::Uuid>(0),
            "subtenant_id": r.get::<_, Option<uuid::Uuid>>(1),
            "name": r.get::<_, String>(2),
            "type": r.get::<_, String>(3),
            "configuration": r.get::<_, serde_json::Value>(4),
            "owner": r.get::<_, String>(5),
            "created_at": r.get::<_, chrono::DateTime<chrono::Utc>>(6),
            "updated_at": r.get::<_, chrono::DateTime<chrono::Utc>>(7),
        })),
        None => HttpResponse::NotFound().finish(),
    }
}
