//! The typed request builder: `app.request(Method::GET, "/v1/agents")
//! .bearer(&token).tenant(t).json(body).send().await`. Each part is named, so a
//! test reads as the request it makes.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

/// A request to `app`, built part by part and sent once.
pub struct Request {
    inner: reqwest::RequestBuilder,
}

impl TestApp {
    /// Starts a request to `path` on this app.
    pub fn request(&self, method: Method, path: &str) -> Request {
        Request {
            inner: self.client.request(method, self.url(path)),
        }
    }
}

impl Request {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Self {
        self.inner = self.inner.bearer_auth(token);
        self
    }

    /// `X-Tenant-Id`, the tenant a super admin acts on.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.inner = self.inner.header("X-Tenant-Id", tenant);
        self
    }

    /// Any other header (`Accept`, say).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.inner = self.inner.header(name, value);
        self
    }

    /// A JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.inner = self.inner.json(body);
        self
    }

    pub async fn send(self) -> reqwest::Response {
        self.inner.send().await.unwrap()
    }
}

/// A request with `token`, naming `tenant` if given: the positional
/// shorthand the older tests use.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    tenant: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.request(method, path).bearer(token);
    if let Some(t) = tenant {
        req = req.tenant(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await
}
