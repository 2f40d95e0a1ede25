//! Events: the SSE stream shows tenant and operation changes as they
//! happen and resumes after `Last-Event-ID`; webhooks reach a real HTTP
//! receiver, signed, retried after a failure, and logged.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{envelope, spawn_app, spawn_app_with, TestApp};
use crate::kit::ok_json;

/// One SSE event as received.
#[derive(Debug, Clone)]
struct Received {
    id: i64,
    kind: String,
    data: Value,
}

/// Reads events from a stream until `enough` says so (or 30 s pass).
async fn read_events(
    response: reqwest::Response,
    enough: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !enough(&events) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, body.next())
            .await
            .unwrap_or_else(|_| panic!("the stream went quiet; got {events:?}"))
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).ok();
                }
            }
            if let (Some(id), Some(kind), Some(data)) = (id, kind, data) {
                events.push(Received { id, kind, data });
            }
        }
    }
    events
}

async fn open_stream(app: &TestApp, last_event_id: Option<i64>) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(app.super_admin_token())
        .timeout(Duration::from_secs(120));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let response = req.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

fn has(events: &[Received], kind: &str, tenant: &str) -> bool {
    events
        .iter()
        .any(|e| e.kind == kind && e.data["tenant_id"] == tenant)
}

#[tokio::test]
async fn the_event_stream_shows_tenant_and_operation_changes_and_resumes_after_the_last_event_id() {
    let app = spawn_app().await;
    let stream = open_stream(&app, None).await;
    let t = app.create_tenant("streamed", json!({})).await;
    let tid = t["id"].as_str().unwrap().to_string();
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let seen = read_events(stream, |e| has(e, "tenant.suspended", &tid)).await;
    let kinds: Vec<&str> = seen.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "operation.started",
        "tenant.created",
        "operation.succeeded",
        "tenant.suspended",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(
        seen.windows(2).all(|w| w[0].id < w[1].id),
        "ids increase: {seen:?}"
    );
    let created = seen.iter().find(|e| e.kind == "tenant.created").unwrap();
    assert_eq!(created.data["data"]["slug"], "streamed");
    // Resuming after the creation replays what followed it, not before.
    let resumed = read_events(open_stream(&app, Some(created.id)).await, |e| {
        has(e, "tenant.suspended", &tid)
    })
    .await;
    assert!(resumed.iter().all(|e| e.id > created.id), "{resumed:?}");
    assert_eq!(
        resumed.iter().map(|e| e.id).collect::<Vec<_>>(),
        seen.iter()
            .filter(|e| e.id > created.id)
            .map(|e| e.id)
            .collect::<Vec<_>>()
    );
    // A bad Last-Event-ID is a 400 in the envelope; a tenant token, a 403.
    let response = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(app.super_admin_token())
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    let (status, code, _) = envelope(response).await;
    assert_eq!((status, code.as_str()), (400, "invalid_last_event_id"));
    let admin = app.token(
        tenant_plane::auth::Role::TenantAdmin,
        Some(tid.parse().unwrap()),
        None,
    );
    let response = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

/// What the receiver got: headers (lower-case) and body, per request.
type Got = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// A real HTTP/1.1 receiver on 127.0.0.1: it answers 500 to the first
/// `fail_first` requests, then 204.
async fn receiver(fail_first: usize) -> (String, Got) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let got: Got = Arc::default();
    let seen = got.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while raw.len() < head_end + length {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push((headers, raw[head_end..head_end + length].to_vec()));
                    seen.len()
                };
                let status = if n <= fail_first {
                    "500 Internal Server Error"
                } else {
                    "204 No Content"
                };
                let _ = socket
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (url, got)
}

#[tokio::test]
async fn webhooks_reach_a_real_receiver_signed_and_retried_and_every_attempt_is_logged() {
    const SECRET: &str = "webhook-secret-0123456789";
    let (url, got) = receiver(1).await;
    let app = spawn_app_with(|s| {
        s.webhooks.url = Some(url.clone());
        s.webhooks.secret = Some(SECRET.to_string().into());
    })
    .await;
    let t = app.create_tenant("hooked", json!({})).await;
    let tid = t["id"].as_str().unwrap().to_string();
    // Until tenant.created and the create's operation.succeeded arrived.
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let kinds: Vec<(String, Value)> = got
            .lock()
            .unwrap()
            .iter()
            .map(|(headers, body)| {
                let kind = headers
                    .iter()
                    .find(|(k, _)| k == "tenant-plane-event")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                (kind, serde_json::from_slice(body).unwrap_or(Value::Null))
            })
            .collect();
        // Both events, one of them twice (its first attempt got a 500).
        let created = kinds.iter().filter(|(k, _)| k == "tenant.created").count();
        let succeeded = kinds
            .iter()
            .filter(|(k, _)| k == "operation.succeeded")
            .count();
        if created >= 1 && succeeded >= 1 && kinds.len() >= 3 {
            break kinds;
        }
        assert!(Instant::now() < deadline, "got {kinds:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        delivered.iter().all(|(k, _)| k != "operation.started"),
        "only the listed events: {delivered:?}"
    );
    let created = delivered
        .iter()
        .find(|(k, _)| k == "tenant.created")
        .unwrap();
    assert_eq!(created.1["data"]["tenant_id"], tid);
    // Every body is signed: HMAC-SHA256 over "<t>.<body>" with the secret.
    for (headers, body) in got.lock().unwrap().iter() {
        let signature = &headers
            .iter()
            .find(|(k, _)| k == "tenant-plane-signature")
            .unwrap()
            .1;
        let t: i64 = signature
            .strip_prefix("t=")
            .and_then(|s| s.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(signature, &tenant_plane::events::sign(SECRET, t, body));
        assert_ne!(
            signature,
            &tenant_plane::events::sign("another-secret-0123", t, body)
        );
    }
    // The first attempt got a 500 and was retried; the log says so.
    let log = ok_json(
        app.admin(Method::GET, "/v1/webhooks/deliveries", None)
            .await,
        200,
    )
    .await;
    let deliveries = log["deliveries"].as_array().unwrap();
    let retried: Vec<&Value> = deliveries.iter().filter(|d| d["attempts"] == 2).collect();
    assert_eq!(retried.len(), 1, "{log}");
    assert_eq!(retried[0]["state"], "delivered");
    assert_eq!(retried[0]["last_status"], 204);
    assert!(deliveries.iter().all(|d| d["url"] == url.as_str()));
    let failed = ok_json(
        app.admin(Method::GET, "/v1/webhooks/deliveries?state=failed", None)
            .await,
        200,
    )
    .await;
    assert_eq!(failed["deliveries"], json!([]));
}
