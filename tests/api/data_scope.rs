//! Tenant-wide reads are their query alone; scoped reads keep their scope.
//! Each test shares one session between the two kinds of caller, so a scope
//! left behind, or a scoped read sent without its scope, would show.

use deadpool_postgres::{Pool, RecyclingMethod, Runtime};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::data::{read, Caller};
use tenant_plane::domain::TenantId;
use tenant_plane::pg::PgConfig;

use crate::helpers::spawn_app_with;
use crate::kit::{call, id, ok_json};

fn caller(tenant: TenantId, subtenant: Option<TenantId>, own_only: bool) -> Caller {
    Caller {
        tenant_id: tenant,
        subtenant_id: subtenant,
        user_id: "someone".into(),
        own_only,
    }
}

#[tokio::test]
async fn a_tenant_wide_read_runs_alone_outside_any_transaction_and_a_scoped_read_always_inside_its_scope(
) {
    let app = spawn_app_with(|_| {}).await;
    let t = app.create_tenant("scope-mechanism", json!({})).await;
    let tenant = id(&t);
    let sub = TenantId::generate();
    // One session, reused by every read below.
    let config = PgConfig::parse(
        app.server
            .url(t["database"].as_str().unwrap())
            .expose_secret(),
    )
    .unwrap();
    let pool = Pool::builder(config.manager(RecyclingMethod::Fast))
        .max_size(1)
        .runtime(Runtime::Tokio1)
        .build()
        .unwrap();
    let client = pool.get().await.unwrap();
    // Inside `BEGIN READ ONLY` the transaction is read-only; a statement on
    // its own is not.
    const PROBE: &str = "SELECT current_setting('transaction_read_only'),
                                coalesce(current_setting('app.subtenant_id', true), '')";
    let probe = |c: Caller| {
        let client = &client;
        async move {
            let rows = read(client, &c, PROBE, &[]).await.unwrap();
            (rows[0].get::<_, String>(0), rows[0].get::<_, String>(1))
        }
    };
    let tenant_wide = (String::from("off"), String::new());
    let scoped = (String::from("on"), sub.to_string());
    for _ in 0..3 {
        assert_eq!(probe(caller(tenant, Some(sub), false)).await, scoped);
        assert_eq!(probe(caller(tenant, None, false)).await, tenant_wide);
        // `own` rows keep the scoped transaction too (no subtenant to set).
        assert_eq!(
            probe(caller(tenant, None, true)).await,
            (String::from("on"), String::new())
        );
        assert_eq!(probe(caller(tenant, None, false)).await, tenant_wide);
    }
}

#[tokio::test]
async fn on_one_shared_session_tenant_wide_reads_never_see_a_subtenant_scope_and_subtenant_reads_never_see_more_than_theirs(
) {
    // One session per tenant: every request reuses the one before it.
    let app = spawn_app_with(|s| s.router.pool_size_standard = Some(1)).await;
    let t = app.create_tenant("one-session", json!({})).await;
    let tenant = id(&t);
    let sub = app
        .create_subtenant(&tenant.to_string(), "one-session-branch")
        .await;
    let sub_id = id(&sub);
    let admin = app.token(Role::TenantAdmin, Some(tenant), None);
    let viewer = app.token(Role::Viewer, Some(tenant), None);
    let branch = app.token(Role::SubtenantAdmin, Some(tenant), Some(sub_id));
    let new_agent = |token: String, name: &'static str| {
        let app = &app;
        async move {
            let body = Some(json!({ "name": name, "type": "voice" }));
            let a = ok_json(
                call(app, Method::POST, "/v1/agents", &token, None, body).await,
                201,
            )
            .await;
            a["id"].as_str().unwrap().to_string()
        }
    };
    let root_agent = new_agent(admin.clone(), "Root agent").await;
    let branch_agent = new_agent(branch.clone(), "Branch agent").await;
    let names = |token: String| {
        let app = &app;
        async move {
            let list = ok_json(
                call(app, Method::GET, "/v1/agents", &token, None, None).await,
                200,
            )
            .await;
            let mut names: Vec<String> = list["agents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            names
        }
    };
    for _ in 0..4 {
        // The list query has no subtenant filter of its own: only the scope
        // keeps the branch to its agent.
        assert_eq!(names(branch.clone()).await, ["Branch agent"]);
        assert_eq!(names(viewer.clone()).await, ["Branch agent", "Root agent"]);
        let hidden = call(
            &app,
            Method::GET,
            &format!("/v1/agents/{root_agent}"),
            &branch,
            None,
            None,
        )
        .await;
        assert_eq!(hidden.status(), 404);
        let seen = call(
            &app,
            Method::GET,
            &format!("/v1/agents/{branch_agent}"),
            &viewer,
            None,
            None,
        )
        .await;
        assert_eq!(seen.status(), 200);
    }
    // And it was one session all along.
    let sessions: i64 = app
        .server
        .connect("postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
            &[&t["database"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sessions, 1);
}
