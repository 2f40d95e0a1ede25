//! `gateway.*`: the PostgreSQL-protocol gateway (`src/gateway`).

use std::net::SocketAddr;
use std::path::PathBuf;

/// The address `serve` gives the gateway with the embedded PostgreSQL.
pub const EMBEDDED_GATEWAY: &str = "127.0.0.1:6432";

section! {
    pub struct GatewaySettings {
        /// Address the gateway listens on, or `off`. Unset, it is on at
        /// 127.0.0.1:6432 when `serve` runs the embedded PostgreSQL (and
        /// that port is free), off otherwise. `TENANT_PLANE_GATEWAY_LISTEN`.
        pub listen: Option<String> = None,
        /// PEM certificate chain the gateway offers TLS with.
        /// `TENANT_PLANE_GATEWAY_TLS_CERT`; with `tls_key`.
        pub tls_cert: Option<PathBuf> = None,
        /// PEM private key of `tls_cert`. `TENANT_PLANE_GATEWAY_TLS_KEY`.
        pub tls_key: Option<PathBuf> = None,
        /// Whether clients at addresses other than loopback may connect
        /// without TLS. `TENANT_PLANE_GATEWAY_ALLOW_PLAIN`, default false.
        pub allow_plain: bool = false,
        /// Client connections at once; one past it is refused.
        /// `TENANT_PLANE_GATEWAY_MAX_CLIENTS`, default 10000.
        pub max_clients: usize = 10_000,
        /// Seconds a client may take to log in, as PostgreSQL's
        /// `authentication_timeout` (whose default this is): a thousand
        /// clients starting at once on a busy machine took more than 15.
        /// `TENANT_PLANE_GATEWAY_LOGIN_TIMEOUT_SECS`, default 60.
        pub login_timeout_secs: u64 = 60,
    }
}

impl GatewaySettings {
    /// Where to listen: `None` when off.
    pub fn address(&self) -> Option<SocketAddr> {
        match self.listen.as_deref().map(str::trim) {
            None | Some("off") | Some("") => None,
            Some(text) => text.parse().ok(),
        }
    }

    /// What serde cannot check: (the setting, why) of the first bad value.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(text) = self.listen.as_deref().map(str::trim) {
            if !matches!(text, "off" | "") && text.parse::<SocketAddr>().is_err() {
                return Err((
                    "gateway.listen",
                    format!("`{text}` is neither an address (127.0.0.1:6432) nor `off`"),
                ));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err((
                "gateway.tls_cert",
                "gateway.tls_cert and gateway.tls_key are set together".into(),
            ));
        }
        if self.max_clients == 0 || self.login_timeout_secs == 0 {
            return Err((
                "gateway.max_clients",
                "gateway.max_clients and gateway.login_timeout_secs must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
