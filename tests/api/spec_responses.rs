//! What the server sends, checked against what the published spec says it
//! sends: the places where the two once disagreed (a client generated from
//! the spec, or schemathesis, would have refused the real answer).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::kit::ok_json;
use crate::kit::spec::Spec;

/// The schema the spec declares for `method path`'s `status` as `content`.
fn response_schema(spec: &Spec, method: &str, path: &str, status: &str, content: &str) -> Value {
    spec.doc["paths"][path][method]["responses"][status]["content"][content]["schema"].clone()
}

/// Panics with every violation when `value` does not fit `schema`.
fn assert_fits(spec: &Spec, schema: &Value, value: &Value, what: &str) {
    let validator = spec.validator(schema);
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not fit the spec's schema {}:\n{}\n{value}",
        spec.resolve(schema),
        errors.join("\n")
    );
}

#[tokio::test]
async fn the_fleet_summary_the_server_sends_fits_its_published_schema_whose_version_keys_are_digit_strings(
) {
    let app = spawn_app().await;
    app.create_tenant("summary-fits", json!({})).await;
    let spec = Spec::fetch(&app).await;
    let summary = ok_json(app.admin(Method::GET, "/v1/fleet/summary", None).await, 200).await;
    let versions = summary["by_schema_version"].as_object().unwrap();
    assert!(!versions.is_empty(), "{summary}");
    let schema = response_schema(&spec, "get", "/v1/fleet/summary", "200", "application/json");
    assert_fits(&spec, &schema, &summary, "GET /v1/fleet/summary");
    // And the spec refuses a key that is not a version.
    let mut wrong = summary.clone();
    wrong["by_schema_version"]["v1"] = json!(1);
    assert!(
        !spec.validator(&schema).is_valid(&wrong),
        "a key `v1` passes"
    );
}

#[tokio::test]
async fn every_event_the_stream_sends_has_a_data_line_that_fits_the_schema_the_spec_declares_for_it(
) {
    let app = spawn_app().await;
    app.create_tenant("stream-fits", json!({})).await;
    let spec = Spec::fetch(&app).await;
    let schema = response_schema(&spec, "get", "/v1/events", "200", "text/event-stream");
    assert_ne!(
        spec.resolve(&schema)["type"],
        "string",
        "the stream's schema describes no event: {schema}"
    );
    let mut response = app.admin(Method::GET, "/v1/events?after=0", None).await;
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // The tenant's creation wrote `tenant.created` and its operation's events.
    while events.len() < 2 {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("events within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(str::to_string))
            };
            if let Some(data) = field("data: ") {
                events.push((field("id: "), field("event: "), data));
            }
        }
    }
    for (id, kind, data) in events {
        let event: Value = serde_json::from_str(&data).unwrap();
        assert_fits(&spec, &schema, &event, "an event's data line");
        assert_eq!(id.unwrap(), event["id"].to_string(), "{data}");
        assert_eq!(kind.as_deref(), event["type"].as_str(), "{data}");
    }
}

#[tokio::test]
async fn signing_out_without_a_session_cookie_answers_204_and_the_spec_makes_the_cookie_optional() {
    let app = spawn_app().await;
    let spec = Spec::fetch(&app).await;
    let security = spec.doc["paths"]["/console/session"]["delete"]["security"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        security.iter().any(|s| s == &json!({})),
        "DELETE /console/session requires the cookie: {security:?}"
    );
    assert!(security.iter().any(|s| s.get("session").is_some()));
    let response = app
        .client
        .delete(app.url("/console/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}
