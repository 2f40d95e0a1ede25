//! `identity.*`: how tenants' own identity providers are reached.

section! {
    pub struct IdentitySettings {
        /// Addresses (CIDR blocks) a tenant's identity provider may be
        /// reached at although they are private, loopback or link-local,
        /// and where plain HTTP is allowed. Every other provider is reached
        /// over HTTPS at a public address only, so a tenant admin cannot
        /// point the service at internal services.
        /// `TENANT_PLANE_IDENTITY_ALLOWED_ADDRESSES` (a list: `[10.1.2.0/24]`), default none.
        pub allowed_addresses: Vec<ipnet::IpNet> = Vec::new(),
        /// Fewest seconds between two fetches of one provider's keys for a
        /// token naming a `kid` it does not know, so made-up `kid`s cannot
        /// make the service hammer the provider.
        /// `TENANT_PLANE_IDENTITY_REFETCH_SECS`, default 5.
        pub refetch_secs: u64 = 5,
        /// Seconds a provider's keys are kept when its answer has no caching
        /// headers (`Cache-Control: max-age` or `Expires` otherwise decide,
        /// between 1 minute and 1 day). `TENANT_PLANE_IDENTITY_KEYS_TTL_SECS`, default 300.
        pub keys_ttl_secs: u64 = 300,
        /// Seconds one request to a provider may take.
        /// `TENANT_PLANE_IDENTITY_FETCH_TIMEOUT_SECS`, default 5.
        pub fetch_timeout_secs: u64 = 5,
        /// CA certificates (PEM) that providers' certificates chain to,
        /// besides the system's: an in-house Keycloak's CA, say.
        /// `TENANT_PLANE_IDENTITY_CA_FILE`, default none.
        pub ca_file: Option<std::path::PathBuf> = None,
        /// The service's address as browsers reach it (`https://plane.example.com`),
        /// for the console's sign-in redirect. Unset, the request's own
        /// scheme and `Host` are used. `TENANT_PLANE_IDENTITY_PUBLIC_URL`.
        pub public_url: Option<String> = None,
    }
}

impl IdentitySettings {
    /// What serde cannot check: (the setting, why) of the first bad value.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        for (setting, value) in [
            ("identity.fetch_timeout_secs", self.fetch_timeout_secs),
            ("identity.keys_ttl_secs", self.keys_ttl_secs),
        ] {
            if value == 0 {
                return Err((setting, "must be at least 1".into()));
            }
        }
        if let Some(url) = &self.public_url {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url::Url::parse(url).is_ok_and(|u| u.host_str().is_some());
            if !ok {
                return Err((
                    "identity.public_url",
                    "must be an absolute http(s) URL, such as https://plane.example.com".into(),
                ));
            }
        }
        Ok(())
    }
}
