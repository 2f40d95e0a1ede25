//! Requests to tenants' identity providers, which tenant admins name: so
//! the service must not become their way into the network it runs in.
//!
//! Rules:
//! - a URL is checked before any connection: HTTPS, at public addresses
//!   only. An address inside `identity.allowed_addresses` may also be
//!   private, loopback or link-local, and reached over plain HTTP.
//! - the addresses a name resolves to are checked again by the resolver
//!   the client connects through, so a name that changes its answer
//!   between the check and the connection (DNS rebinding) gains nothing.
//! - no redirect is followed and no proxy is used; answers are capped in
//!   size and time.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::Url;

/// The largest answer read from a provider.
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("`{0}` is not an absolute http(s) URL")]
    Url(String),
    #[error("{url} must use HTTPS (plain HTTP only to an address allowed in identity.allowed_addresses)")]
    NotHttps { url: String },
    #[error(
        "{host} is at {addr}, a {kind} address, which identity.allowed_addresses does not allow"
    )]
    Refused {
        host: String,
        addr: IpAddr,
        kind: &'static str,
    },
    #[error("{host} does not resolve")]
    Resolve { host: String },
    #[error("{url} could not be read")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered more than 1 MiB")]
    TooLarge { url: String },
}

/// An answer, with what its caching headers allow.
pub struct Fetched {
    pub body: Vec<u8>,
    /// From `Cache-Control: max-age` or `Expires`, when the answer says.
    pub max_age: Option<Duration>,
}

/// The one way to a provider (see the module's rules).
#[derive(Clone)]
pub struct Outbound {
    allowed: Arc<Vec<IpNet>>,
    client: reqwest::Client,
}

impl Outbound {
    /// `ca_pem`: certificates (PEM) trusted besides the system's.
    pub fn new(
        allowed: Vec<IpNet>,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, reqwest::Error> {
        let allowed = Arc::new(allowed);
        let mut builder = reqwest::Client::builder()
            .dns_resolver(Arc::new(Resolver {
                allowed: allowed.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(pem) = ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self {
            allowed,
            client: builder.build()?,
        })
    }

    /// Parses `url` and checks it as a connection would be, without one.
    pub async fn check(&self, url: &str) -> Result<Url, OutboundError> {
        let parsed = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
            .ok_or_else(|| OutboundError::Url(url.to_string()))?;
        let host = parsed.host_str().expect("checked above").to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<IpAddr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            _ => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| OutboundError::Resolve { host: host.clone() })?
                .map(|a| a.ip())
                .collect(),
        };
        if addrs.is_empty() {
            return Err(OutboundError::Resolve { host });
        }
        for addr in &addrs {
            if let Some(kind) = refused_kind(*addr, &self.allowed) {
                return Err(OutboundError::Refused {
                    host,
                    addr: *addr,
                    kind,
                });
            }
        }
        let all_allowed = addrs
            .iter()
            .all(|a| self.allowed.iter().any(|n| n.contains(a)));
        if parsed.scheme() != "https" && !all_allowed {
            return Err(OutboundError::NotHttps {
                url: url.to_string(),
            });
        }
        Ok(parsed)
    }

    /// GETs `url` after `check`, and reads at most 1 MiB of a 2xx answer.
    pub async fn get(&self, url: &str) -> Result<Fetched, OutboundError> {
        let parsed = self.check(url).await?;
        let fetch = |source| OutboundError::Fetch {
            url: url.to_string(),
            source,
        };
        let mut response = self
            .client
            .get(parsed)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(fetch)?;
        if !response.status().is_success() {
            return Err(OutboundError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let max_age = max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(OutboundError::TooLarge {
                    url: url.to_string(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }

    /// Sends `request` (the OpenID Connect client's) after `check`.
    pub async fn send(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, OutboundError> {
        let url = request.uri().to_string();
        let parsed = self.check(&url).await?;
        let fetch = |source| OutboundError::Fetch {
            url: url.clone(),
            source,
        };
        let (parts, body) = request.into_parts();
        let mut response = self
            .client
            .request(parts.method, parsed)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(fetch)?;
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(OutboundError::TooLarge { url });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(builder
            .body(body)
            .expect("a response copied from a valid one"))
    }
}

/// Why `addr` may not be reached, unless `allowed` holds it.
fn refused_kind(addr: IpAddr, allowed: &[IpNet]) -> Option<&'static str> {
    if allowed.iter().any(|n| n.contains(&addr)) {
        return None;
    }
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || a == 0 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("reserved")
            } else {
                None
            }
        }
    }
}

/// Seconds the answer may be kept, from `Cache-Control` (`no-store` and
/// `no-cache` are 0) or else `Expires` against `Date`.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    use reqwest::header::{CACHE_CONTROL, DATE, EXPIRES};
    if let Some(value) = headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()) {
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(Duration::ZERO);
            }
            if let Some(secs) = lower.strip_prefix("max-age=") {
                if let Ok(secs) = secs.trim_matches('"').parse::<u64>() {
                    return Some(Duration::from_secs(secs));
                }
            }
        }
    }
    let date = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .and_then(httpdate)
    };
    let expires = date(EXPIRES)?;
    let now = date(DATE).unwrap_or_else(chrono::Utc::now);
    Some((expires - now).to_std().unwrap_or(Duration::ZERO))
}

fn httpdate(value: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// Resolves names for the provider client, and drops every address
/// `refused_kind` refuses: a connection is only ever made to one `check`
/// would pass.
struct Resolver {
    allowed: Arc<Vec<IpNet>>,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| refused_kind(a.ip(), &allowed).is_none())
                .collect();
            if found.is_empty() {
                return Err(
                    format!("{} resolves to no address it may reach", name.as_str()).into(),
                );
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(allowed: &[&str]) -> Outbound {
        let allowed = allowed.iter().map(|a| a.parse().unwrap()).collect();
        Outbound::new(allowed, Duration::from_secs(1), None).unwrap()
    }

    #[tokio::test]
    async fn private_loopback_and_link_local_addresses_are_refused_unless_allowed() {
        let none = outbound(&[]);
        for url in [
            "https://10.0.0.1/",
            "https://127.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://0.0.0.0/",
        ] {
            assert!(
                matches!(none.check(url).await, Err(OutboundError::Refused { .. })),
                "{url}"
            );
        }
        let loopback = outbound(&["127.0.0.1/32"]);
        assert!(loopback.check("http://127.0.0.1:8080/x").await.is_ok());
        assert!(loopback.check("http://10.0.0.1/").await.is_err());
    }

    #[tokio::test]
    async fn a_public_address_needs_https() {
        let none = outbound(&[]);
        assert!(none.check("https://203.0.113.9/jwks").await.is_ok());
        assert!(matches!(
            none.check("http://203.0.113.9/jwks").await,
            Err(OutboundError::NotHttps { .. })
        ));
        assert!(matches!(
            none.check("ftp://203.0.113.9/").await,
            Err(OutboundError::Url(_))
        ));
    }

    #[test]
    fn caching_headers_give_how_long_keys_are_kept() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let mut headers = HeaderMap::new();
        headers.insert(
            "cache-control",
            HeaderValue::from_static("public, max-age=600"),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(600)));
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
        assert_eq!(max_age(&headers), Some(Duration::ZERO));
        let mut headers = HeaderMap::new();
        headers.insert(
            "date",
            HeaderValue::from_static("Sun, 06 Dec 2026 07:00:00 GMT"),
        );
        headers.insert(
            "expires",
            HeaderValue::from_static("Sun, 06 Dec 2026 07:02:00 GMT"),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(120)));
        assert_eq!(max_age(&HeaderMap::new()), None);
    }
}
