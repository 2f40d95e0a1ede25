//! No request ever reads or writes another tenant's rows, or a sibling
//! subtenant's: a seeded, randomized run over ten tenants, their subtenants
//! and every role. And a second replica sees a suspension within a second.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::{Claims, Role};
use tenant_plane::domain::TenantId;

use crate::helpers::{envelope, sign, spawn_app_on, spawn_app_with, test_settings, TestApp};
use crate::kit::{call, ok_json};

struct Tenant {
    id: TenantId,
    subs: Vec<TenantId>,
    /// (agent id, subtenant index or None for tenant-level)
    agents: Vec<(String, Option<usize>)>,
}

struct Caller {
    tenant: usize,
    sub: Option<usize>,
    role: Role,
    token: String,
    user: String,
}

fn token(user: &str, role: Role, tenant: TenantId, sub: Option<TenantId>) -> String {
    sign(Claims::new(
        user,
        role,
        Some(tenant),
        sub,
        Duration::from_secs(600),
    ))
}

async fn seed(app: &TestApp, n: usize) -> Vec<Tenant> {
    let mut tenants = Vec::new();
    for i in 0..n {
        let t = app.create_tenant(&format!("iso-{i}"), json!({})).await;
        let id: TenantId = t["id"].as_str().unwrap().parse().unwrap();
        let mut subs = Vec::new();
        for j in 0..2 {
            let s = app
                .create_subtenant(&id.to_string(), &format!("iso-{i}-sub-{j}"))
                .await;
            subs.push(s["id"].as_str().unwrap().parse().unwrap());
        }
        let mut agents = Vec::new();
        let admin = token("admin", Role::TenantAdmin, id, None);
        for k in 0..2 {
            let a = ok_json(
                call(
                    app,
                    Method::POST,
                    "/v1/agents",
                    &admin,
                    None,
                    Some(json!({ "name": format!("t{i}-root-{k}"), "type": "chat" })),
                )
                .await,
                201,
            )
            .await;
            agents.push((a["id"].as_str().unwrap().to_string(), None));
        }
        for (j, sub) in subs.iter().enumerate() {
            let sub_admin = token(
                &format!("agent-{i}-{j}"),
                Role::SubtenantAdmin,
                id,
                Some(*sub),
            );
            for k in 0..2 {
                let a = ok_json(
                    call(
                        app,
                        Method::POST,
                        "/v1/agents",
                        &sub_admin,
                        None,
                        Some(json!({ "name": format!("t{i}-s{j}-{k}"), "type": "chat" })),
                    )
                    .await,
                    201,
                )
                .await;
                let agent_id = a["id"].as_str().unwrap().to_string();
                ok_json(
                    call(
                        app,
                        Method::POST,
                        "/v1/calls",
                        &sub_admin,
                        None,
                        Some(json!({ "agent_id": agent_id })),
                    )
                    .await,
                    201,
                )
                .await;
                agents.push((agent_id, Some(j)));
            }
        }
        tenants.push(Tenant { id, subs, agents });
    }
    tenants
}

fn callers(tenants: &[Tenant]) -> Vec<Caller> {
    let mut out = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        out.push(Caller {
            tenant: i,
            sub: None,
            role: Role::TenantAdmin,
            token: token("admin", Role::TenantAdmin, t.id, None),
            user: "admin".into(),
        });
        out.push(Caller {
            tenant: i,
            sub: None,
            role: Role::Viewer,
            token: token("viewer", Role::Viewer, t.id, None),
            user: "viewer".into(),
        });
        for (j, sub) in t.subs.iter().enumerate() {
            for role in [Role::SubtenantAdmin, Role::Agent, Role::Viewer] {
                let user = format!("agent-{i}-{j}");
                out.push(Caller {
                    tenant: i,
                    sub: Some(j),
                    role,
                    token: token(&user, role, t.id, Some(*sub)),
                    user,
                });
            }
        }
    }
    out
}

#[tokio::test]
async fn thousands_of_random_requests_never_see_another_tenants_or_a_siblings_rows() {
    // Many of these requests are refused on purpose (another tenant's rows),
    // which the per-address denial throttle would soon answer with 429.
    let app = spawn_app_with(|s| s.http.denials_per_minute = 1_000_000).await;
    let tenants = seed(&app, 10).await;
    let callers = callers(&tenants);
    let mut rng = StdRng::seed_from_u64(0x007e_4a17);
    let mut checked = 0;
    for _ in 0..2000 {
        let c = &callers[rng.random_range(0..callers.len())];
        let mine = &tenants[c.tenant];
        match rng.random_range(0..5) {
            // Listings hold only the caller's tenant and, for a subtenant user, its subtenant.
            0 => {
                let body = ok_json(
                    call(
                        &app,
                        Method::GET,
                        "/v1/agents?limit=500",
                        &c.token,
                        None,
                        None,
                    )
                    .await,
                    200,
                )
                .await;
                for a in body["agents"].as_array().unwrap() {
                    let name = a["name"].as_str().unwrap();
                    assert!(
                        name.starts_with(&format!("t{}-", c.tenant)),
                        "{name} leaked to tenant {}",
                        c.tenant
                    );
                    if let Some(j) = c.sub {
                        assert_eq!(
                            a["subtenant_id"],
                            mine.subs[j].to_string(),
                            "a sibling's agent leaked"
                        );
                    }
                }
            }
            1 => {
                let body = ok_json(
                    call(
                        &app,
                        Method::GET,
                        "/v1/calls?limit=500",
                        &c.token,
                        None,
                        None,
                    )
                    .await,
                    200,
                )
                .await;
                for row in body["calls"].as_array().unwrap() {
                    let agent = row["agent_id"].as_str().unwrap();
                    assert!(
                        mine.agents.iter().any(|(a, _)| a == agent),
                        "another tenant's call leaked"
                    );
                    if let Some(j) = c.sub {
                        assert_eq!(row["subtenant_id"], mine.subs[j].to_string());
                    }
                    if c.role == Role::Agent {
                        assert_eq!(
                            row["owner"],
                            c.user.as_str(),
                            "an agent sees only its own calls"
                        );
                    }
                }
            }
            // Fetching any agent by id: visible only within scope, else 404.
            2 => {
                let t = rng.random_range(0..tenants.len());
                let (agent, sub) = &tenants[t].agents[rng.random_range(0..tenants[t].agents.len())];
                let response = call(
                    &app,
                    Method::GET,
                    &format!("/v1/agents/{agent}"),
                    &c.token,
                    None,
                    None,
                )
                .await;
                let visible = t == c.tenant && (c.sub.is_none() || c.sub == *sub);
                if visible {
                    ok_json(response, 200).await;
                } else {
                    let (status, _, _) = envelope(response).await;
                    assert_eq!(
                        status, 404,
                        "agent of tenant {t} sub {sub:?} seen by tenant {} sub {:?}",
                        c.tenant, c.sub
                    );
                }
            }
            // Naming another tenant is refused.
            3 => {
                let other = (c.tenant + 1 + rng.random_range(0..tenants.len() - 1)) % tenants.len();
                let response = call(
                    &app,
                    Method::GET,
                    "/v1/agents",
                    &c.token,
                    Some(&tenants[other].id.to_string()),
                    None,
                )
                .await;
                let (status, code, _) = envelope(response).await;
                assert_eq!((status, code.as_str()), (403, "cross_tenant"));
            }
            // Writing: only admins may create agents.
            _ => {
                let response = call(
                    &app,
                    Method::POST,
                    "/v1/agents",
                    &c.token,
                    None,
                    Some(json!({ "name": format!("t{}-new", c.tenant), "type": "chat" })),
                )
                .await;
                match c.role {
                    Role::TenantAdmin | Role::SubtenantAdmin => {
                        let status = response.status().as_u16();
                        assert!(status == 201 || status == 409, "{status}");
                    }
                    _ => {
                        let (status, _, _) = envelope(response).await;
                        assert_eq!(status, 403);
                    }
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 2000);
}

#[tokio::test]
async fn a_suspension_takes_effect_on_a_second_replica_within_a_second() {
    let (settings, catalog_db) = test_settings();
    let server = crate::cluster::shared().clone();
    let a = spawn_app_on(settings.clone(), catalog_db.clone(), server.clone()).await;
    let b = spawn_app_on(settings, catalog_db, server).await;
    let t = a.create_tenant("replicated", json!({})).await;
    let id: TenantId = t["id"].as_str().unwrap().parse().unwrap();
    let admin = a.token(Role::TenantAdmin, Some(id), None);
    // B has the route cached.
    ok_json(
        call(&b, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;
    ok_json(
        a.admin(Method::POST, &format!("/v1/tenants/{id}/suspend"), None)
            .await,
        200,
    )
    .await;
    let suspended_at = Instant::now();
    loop {
        let response = call(&b, Method::GET, "/v1/agents", &admin, None, None).await;
        if response.status() == 403 {
            let (_, code, _) = envelope(response).await;
            assert_eq!(code, "tenant_suspended");
            break;
        }
        assert!(
            suspended_at.elapsed() < Duration::from_secs(1),
            "replica B still served after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
