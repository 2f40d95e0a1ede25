//! The console's session over plain HTTP: signing in, the cookie, and
//! requests that carry it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// Signs in with `credential`; returns (status, Set-Cookie, body).
pub async fn sign_in(app: &TestApp, credential: &str) -> (u16, Option<String>, Value) {
    let response = app
        .client
        .post(app.url("/console/session"))
        .json(&json!({ "credential": credential }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    (status, cookie, response.json().await.unwrap_or(Value::Null))
}

/// `name=value` of a Set-Cookie header.
pub fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

pub async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("cookie", cookie);
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}
