//! Checks on responses: a status with its JSON, an error envelope with its
//! code, and the ids inside.

use tenant_plane::domain::TenantId;

use crate::helpers::envelope;

/// The JSON body of a response that must have status `want`.
pub async fn ok_json(response: reqwest::Response, want: u16) -> serde_json::Value {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, want, "{text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// Asserts the response is the error envelope with `status` and `code`;
/// returns its message.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    let (got_status, got_code, message) = envelope(response).await;
    assert_eq!((got_status, got_code.as_str()), (status, code), "{message}");
    message
}

/// The `id` of a tenant's JSON.
pub fn id(s: &serde_json::Value) -> TenantId {
    s["id"].as_str().unwrap().parse().unwrap()
}

/// Whether the answer is an endless `text/event-stream`.
pub fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}
