//! The contract: requests generated for every operation from the spec's own
//! schemas, valid and invalid. The spec's validator decides which is which;
//! the server must then accept every valid one (or refuse it only for a
//! reason of state), refuse every invalid one with 400/422 in the envelope,
//! never answer 5xx, and answer only errors the spec declares. The run comes
//! from one client address with the denial throttle at its default, and no
//! request (each carries a valid credential) may be throttled.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use tenant_plane::auth::Role;
use tenant_plane::config::Settings;

use crate::helpers::spawn_app_with;
use crate::kit::expect::is_event_stream;
use crate::kit::spec::{Operation, Param, Spec};
use crate::kit::spec_invalid::invalid;
use crate::kit::spec_values::{valid, Pools};
use crate::kit::{call, id, ok_json};

mod requests;
use requests::{allowed, request, url_escape, Fixtures};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_generated_from_the_spec_are_accepted_when_valid_refused_with_400_or_422_when_not_and_answer_only_declared_errors(
) {
    // One client address (every request comes from 127.0.0.1 and no proxy
    // is trusted) with the denial throttle at its default: every request
    // here carries a valid credential, so none may be throttled, however
    // many 403s and 404s the run collects.
    let app = spawn_app_with(|s| {
        s.router.rate_limit_scale = 0.0;
        s.http.denials_per_minute = Settings::default().http.denials_per_minute;
        s.http.trusted_proxies.clear();
    })
    .await;
    let own = app.create_tenant("contract-own", json!({})).await;
    let other = app.create_tenant("contract-other", json!({})).await;
    let sub = app
        .create_subtenant(own["id"].as_str().unwrap(), "contract-sub")
        .await;
    let admin = app.token(Role::TenantAdmin, Some(id(&own)), None);
    let agent = ok_json(
        call(
            &app,
            reqwest::Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "seed", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    let seeded_call = ok_json(
        call(
            &app,
            reqwest::Method::POST,
            "/v1/calls",
            &admin,
            None,
            Some(json!({ "agent_id": agent["id"], "status": "completed" })),
        )
        .await,
        201,
    )
    .await;
    let servers: Value = app
        .admin(reqwest::Method::GET, "/v1/servers", None)
        .await
        .json()
        .await
        .unwrap();
    let str_of = |v: &Value| v.as_str().unwrap().to_string();
    let fixtures = Fixtures {
        own: str_of(&own["id"]),
        sub: str_of(&sub["id"]),
        agent: str_of(&agent["id"]),
        call: str_of(&seeded_call["id"]),
        server: str_of(&servers["servers"][0]["id"]),
    };
    let pools = Pools {
        uuids: Arc::new(vec![
            fixtures.own.clone(),
            fixtures.sub.clone(),
            fixtures.agent.clone(),
            fixtures.call.clone(),
            fixtures.server.clone(),
            str_of(&other["id"]),
        ]),
        dsn: "postgres://postgres@127.0.0.1:1/postgres".into(),
    };
    let spec = Spec::fetch(&app).await;
    let operations = spec.operations();
    assert!(operations.len() >= 38, "{} operations", operations.len());

    let cases: usize = std::env::var("CONTRACT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let seed: u64 = std::env::var("CONTRACT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("contract: seed {seed} (CONTRACT_SEED), {cases} cases per operation");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let super_admin = app.super_admin_token();
    let mut failures = Vec::new();
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &operations {
        let strategy = request(&spec, op, &fixtures, &pools);
        for _ in 0..cases {
            let r = strategy.new_tree(&mut runner).unwrap().current();
            let verdict = allowed(&spec, op, &r);
            let mut path = op.path.clone();
            let mut query = Vec::new();
            let mut builder_headers = Vec::new();
            for (p, value) in &r.params {
                let Some(v) = value else { continue };
                match p.location.as_str() {
                    "path" => {
                        path = path.replace(&format!("{{{}}}", p.name), &url_escape(v));
                    }
                    "query" => query.push((p.name.clone(), v.clone())),
                    _ => builder_headers.push((p.name.clone(), v.clone())),
                }
            }
            let token = if op.data_plane() {
                &admin
            } else {
                &super_admin
            };
            let mut req = client
                .request(op.method.clone(), app.url(&path))
                .query(&query)
                .bearer_auth(token);
            for (name, value) in &builder_headers {
                req = req.header(name, value);
            }
            if let Some(body) = &r.body {
                req = req.json(body);
            }
            let response = req.send().await;
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{} {path}: no answer ({e}) for {r}", op.method));
                    continue;
                }
            };
            let status = response.status().as_u16();
            // An event stream never ends: its status and type are the answer.
            let body: Value = if is_event_stream(&response) {
                Value::Null
            } else {
                response.json().await.unwrap_or(Value::Null)
            };
            let code = body["error"]["code"].as_str().unwrap_or("").to_string();
            let label = format!("{} {} ({}) -> {status} {code}", op.method, op.path, op.id);
            *tally
                .entry(if verdict.is_ok() { "valid" } else { "invalid" })
                .or_default() += 1;
            if status >= 500 {
                failures.push(format!("{label}: a 5xx, for {r}"));
            }
            if code == "too_many_denials" {
                failures.push(format!("{label}: a valid credential throttled, for {r}"));
            }
            match &verdict {
                Ok(()) if status == 400 || status == 422 => failures.push(format!(
                    "{label}: the spec allows this request: {r}: {body}"
                )),
                Err(why) if status != 400 && status != 422 => failures.push(format!(
                    "{label}: the spec refuses this request ({why}) but the server did not: {r}"
                )),
                _ => {}
            }
            if status >= 400 {
                if code.is_empty() {
                    failures.push(format!("{label}: no envelope: {body}"));
                } else if !op.declares(status, &code) {
                    failures.push(format!("{label}: not declared in the spec ({r})"));
                }
            }
        }
    }
    eprintln!("contract: {tally:?}");
    failures.sort();
    failures.dedup();
    assert!(
        failures.is_empty(),
        "{} mismatches (seed {seed}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(tally.get("valid").copied().unwrap_or(0) > operations.len() * cases / 4);
    assert!(tally.get("invalid").copied().unwrap_or(0) > operations.len() * cases / 8);
}
