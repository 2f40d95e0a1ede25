//! Backups' resources: the master key, table checksums, and a tenant with
//! something in it to back up.

use std::collections::BTreeMap;

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::crypto::MasterKey;
use tenant_plane::dump::{table_checksums, TableChecksum};

use crate::cluster::TestServer;
use crate::helpers::{TestApp, MASTER_KEY};
use crate::kit::{call, id, ok_json};

pub fn master_key() -> MasterKey {
    MasterKey::from_hex(&secrecy::SecretString::from(MASTER_KEY)).unwrap()
}

pub async fn checksums(server: &TestServer, db: &str) -> BTreeMap<String, TableChecksum> {
    let config = tenant_plane::pg::PgConfig::parse(server.url(db).expose_secret()).unwrap();
    table_checksums(&config).await.unwrap()
}

/// A tenant with a subtenant, agents, calls and a branding setting.
pub async fn populated_tenant(app: &TestApp, slug: &str) -> (serde_json::Value, String, String) {
    let t = app
        .create_tenant(slug, json!({ "branding": { "primaryColor": "#112233" } }))
        .await;
    let sub = app
        .create_subtenant(t["id"].as_str().unwrap(), &format!("{slug}-sub"))
        .await;
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let sub_admin = app.token(Role::SubtenantAdmin, Some(id(&t)), Some(id(&sub)));
    let mut agent = String::new();
    for (i, token) in [&admin, &sub_admin].into_iter().enumerate() {
        let a = ok_json(
            call(
                app,
                Method::POST,
                "/v1/agents",
                token,
                None,
                Some(json!({ "name": format!("a{i}"), "type": "chat" })),
            )
            .await,
            201,
        )
        .await;
        agent = a["id"].as_str().unwrap().to_string();
        for _ in 0..3 {
            ok_json(
                call(
                    app,
                    Method::POST,
                    "/v1/calls",
                    token,
                    None,
                    Some(json!({ "agent_id": agent, "status": "completed", "duration": 30 })),
                )
                .await,
                201,
            )
            .await;
        }
    }
    (t, sub["id"].as_str().unwrap().to_string(), agent)
}
