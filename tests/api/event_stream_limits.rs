//! Event streams are bounded: a stream ends when its credential expires or
//! stops verifying, a process keeps at most `http.max_event_streams` open,
//! and new events are read once per wake-up for every stream together.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::{Claims, Role};

use crate::helpers::{envelope, sign, spawn_app, spawn_app_with, TestApp};
use crate::kit::console::{pair, sign_in, with_cookie};

async fn open(app: &TestApp, token: &str) -> reqwest::Response {
    let response = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Reads a stream until it ends; panics if it is still open after `within`.
/// Returns the text it sent.
async fn until_it_ends(response: reqwest::Response, within: Duration) -> String {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, body.next()).await {
            Err(_) => panic!("the stream is still open after {within:?}: {text}"),
            Ok(None) => return text,
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Some(Err(_))) => return text,
        }
    }
}

/// Reads a stream until its text contains `needle` (for 30 s at most).
async fn until_it_says(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Unpin),
    needle: &str,
) {
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, body.next())
            .await
            .unwrap_or_else(|_| panic!("no {needle} in {text}"))
            .expect("the stream stays open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn an_event_stream_ends_when_the_token_it_was_opened_with_expires() {
    let app = spawn_app().await;
    let token = sign(Claims::new(
        "short-lived",
        Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(3),
    ));
    let opened = Instant::now();
    let stream = open(&app, &token).await;
    let text = until_it_ends(stream, Duration::from_secs(20)).await;
    assert!(text.starts_with("retry:"), "{text}");
    assert!(
        opened.elapsed() >= Duration::from_secs(1),
        "it ended at expiry, not at once: {:?}",
        opened.elapsed()
    );
}

#[tokio::test]
async fn an_event_stream_opened_with_a_console_session_ends_soon_after_the_session_signs_out() {
    let app = spawn_app().await;
    let (status, set_cookie, session) = sign_in(&app, &app.super_admin_token()).await;
    assert_eq!(status, 201, "{session}");
    let cookie = pair(&set_cookie.unwrap());
    let stream = with_cookie(&app, Method::GET, "/v1/events", &cookie, None, None).await;
    assert_eq!(stream.status(), 200);
    let out = with_cookie(
        &app,
        Method::DELETE,
        "/console/session",
        &cookie,
        session["csrf_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(out.status(), 204);
    // Its credential is checked again every few seconds.
    until_it_ends(stream, Duration::from_secs(15)).await;
}

#[tokio::test]
async fn streams_past_the_configured_cap_get_503_too_many_streams_with_retry_after() {
    let app = spawn_app_with(|s| s.http.max_event_streams = 2).await;
    let token = app.super_admin_token();
    let short = sign(Claims::new(
        "short-lived",
        Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(3),
    ));
    let first = open(&app, &short).await;
    let _second = open(&app, &token).await;
    let refused = app.get("/v1/events", Some(&token)).await;
    assert_eq!(refused.headers()["retry-after"], "5");
    let (status, code, _) = envelope(refused).await;
    assert_eq!((status, code.as_str()), (503, "too_many_streams"));
    // A stream that ends gives its place back.
    until_it_ends(first, Duration::from_secs(20)).await;
    let again = app.get("/v1/events", Some(&token)).await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn new_events_are_read_from_the_catalog_once_per_wake_up_however_many_streams_follow() {
    let app = spawn_app().await;
    let token = app.super_admin_token();
    let mut streams = Vec::new();
    for _ in 0..6 {
        let mut body = open(&app, &token).await.bytes_stream();
        until_it_says(&mut body, "retry:").await;
        streams.push(body);
    }
    let feed = app.state().await.events().feed().clone();
    let (reads, wakeups) = (feed.reads(), feed.wakeups());
    let t = app.create_tenant("fanned-out", json!({})).await;
    let id = t["id"].as_str().unwrap();
    for body in &mut streams {
        until_it_says(body, &format!("\"tenant_id\":\"{id}\"")).await;
    }
    let (reads, wakeups) = (feed.reads() - reads, feed.wakeups() - wakeups);
    assert!(wakeups >= 1, "the streams were woken");
    // One read per wake-up: a read per stream would be six.
    assert!(
        reads <= wakeups,
        "{reads} catalog reads for {wakeups} wake-ups of 6 streams"
    );
}
