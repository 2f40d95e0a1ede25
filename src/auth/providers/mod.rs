//! Each tenant's own identity provider (OpenID Connect): tokens it signs
//! act for that tenant, and the console signs its admins in through it.
//!
//! Rules:
//! - a token's `iss` picks its provider, and an issuer is one tenant's
//!   (`catalog::identity_providers`); a token whose `iss` is no tenant's
//!   provider is the installation's to verify (`jwt.rs`).
//! - the provider's key decides the algorithm, `exp`, `iss` and `aud` are
//!   required, and only then are the claims read (`mapping.rs`): such a
//!   token acts for its provider's tenant and never as super_admin.
//! - every replica reads the providers again at most `DIRECTORY_TTL` after
//!   a change elsewhere; a change made here takes effect at once.
//! - every request to a provider goes through `outbound` (HTTPS, public
//!   addresses, unless allowed); keys are cached by `keys`.

mod commands;
mod keys;
mod mapping;
mod outbound;
mod sign_in;
pub mod spec;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::jwks::ASYMMETRIC;
use super::{AuthError, Claims};
use crate::catalog::{Catalog, CatalogError};
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::domain::TenantId;
pub use commands::ProvidersError;
use keys::{KeyCache, KeyError};
use mapping::Provider;
pub use outbound::{Outbound, OutboundError};
pub use sign_in::{PendingSignIn, SignInError, PENDING_SECS};

/// How long a replica trusts its copy of the providers.
const DIRECTORY_TTL: Duration = Duration::from_secs(5);
/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Every provider, by issuer.
#[derive(Default)]
struct Directory {
    by_issuer: HashMap<String, Arc<Provider>>,
}

#[derive(Clone)]
pub struct IdentityProviders {
    catalog: Catalog,
    master_key: MasterKey,
    outbound: Outbound,
    keys: Arc<KeyCache>,
    directory: Arc<DirectoryCache>,
    /// The installation's own token issuer, which no tenant may claim.
    installation_issuer: Option<String>,
    public_url: Option<String>,
}

impl IdentityProviders {
    /// Fails when `identity.ca_file` cannot be read or holds no certificate.
    pub fn new(
        catalog: Catalog,
        master_key: MasterKey,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let identity = &settings.identity;
        let ca = match &identity.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("reading identity.ca_file {}", path.display()))?,
            ),
            None => None,
        };
        let outbound = Outbound::new(
            identity.allowed_addresses.clone(),
            Duration::from_secs(identity.fetch_timeout_secs),
            ca.as_deref(),
        )
        .context("identity.ca_file holds no usable PEM certificate")?;
        let keys = Arc::new(KeyCache::new(
            outbound.clone(),
            Duration::from_secs(identity.refetch_secs),
            Duration::from_secs(identity.keys_ttl_secs),
        ));
        Ok(Self {
            catalog,
            master_key,
            outbound,
            keys,
            directory: Arc::default(),
            installation_issuer: settings.jwt_issuer.clone(),
            public_url: identity.public_url.clone(),
        })
    }

    /// How many times providers' keys were fetched since start.
    pub fn key_fetches(&self) -> u64 {
        self.keys.fetches()
    }

    /// Verifies `token` when a tenant's provider issued it (by its `iss`):
    /// `None` when no tenant's provider did, so the installation's keys
    /// decide.
    pub async fn verify(&self, token: &str) -> Option<Result<Claims, AuthError>> {
        let issuer = peek_issuer(token)?;
        if self.installation_issuer.as_deref() == Some(issuer.as_str()) {
            return None;
        }
        let directory = match self.directory().await {
            Ok(directory) => directory,
            Err(e) => return Some(Err(AuthError::Lookup(e))),
        };
        let provider = directory.by_issuer.get(&issuer)?.clone();
        Some(self.verify_with(&provider, token).await)
    }

    async fn verify_with(&self, provider: &Provider, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(AuthError::InvalidToken)?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(AuthError::InvalidCredential(
                "a provider's token is RS256, ES256 or EdDSA",
            ));
        }
        let key = self
            .keys
            .key(&provider.jwks_uri, header.kid.as_deref())
            .await
            .map_err(|e| match e {
                KeyError::UnknownKid => {
                    AuthError::InvalidCredential("no key of the tenant's provider has this `kid`")
                }
                KeyError::Unavailable => AuthError::ProviderUnavailable,
            })?;
        // The key decides the algorithm: a token may not pick another.
        if key.alg != header.alg {
            return Err(AuthError::InvalidCredential(
                "the token's `alg` is not its key's",
            ));
        }
        let decoded = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &key.key,
            &validation(key.alg, provider),
        )
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::InvalidToken(e),
        })?;
        let exp = decoded
            .claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(AuthError::InvalidCredential("`exp` is not a number"))?;
        provider.map(&decoded.claims, exp)
    }

    /// The providers, as the catalog had them at most `DIRECTORY_TTL` ago.
    async fn directory(&self) -> Result<Arc<Directory>, CatalogError> {
        if let Some(fresh) = self.directory.fresh() {
            return Ok(fresh);
        }
        let _loading = self.directory.loading.lock().await;
        // Another request may have loaded it while this one waited.
        if let Some(fresh) = self.directory.fresh() {
            return Ok(fresh);
        }
        let directory = Arc::new(load(&self.catalog).await?);
        let uris: HashSet<&str> = directory
            .by_issuer
            .values()
            .map(|p| p.jwks_uri.as_str())
            .collect();
        self.keys.retain(&uris);
        *self
            .directory
            .current
            .write()
            .expect("no panic holds this lock") = Some((Instant::now(), directory.clone()));
        Ok(directory)
    }

    /// Forgets this replica's copy of the providers (after a change here).
    fn changed(&self) {
        *self
            .directory
            .current
            .write()
            .expect("no panic holds this lock") = None;
    }
}

/// This replica's copy of the providers, and when it was read.
#[derive(Default)]
struct DirectoryCache {
    current: std::sync::RwLock<Option<(Instant, Arc<Directory>)>>,
    loading: tokio::sync::Mutex<()>,
}

impl DirectoryCache {
    fn fresh(&self) -> Option<Arc<Directory>> {
        let current = self.current.read().expect("no panic holds this lock");
        let (at, directory) = current.as_ref()?;
        (at.elapsed() < DIRECTORY_TTL).then(|| directory.clone())
    }
}

/// Reads every provider, its family and its root's first admin.
async fn load(catalog: &Catalog) -> Result<Directory, CatalogError> {
    let rows = catalog.identity_providers().await?;
    let tenants = catalog.identity_families().await?;
    let admins: HashMap<TenantId, String> = catalog.first_admins().await?.into_iter().collect();
    let root_of: HashMap<TenantId, TenantId> = tenants
        .iter()
        .map(|(id, parent)| (*id, parent.unwrap_or(*id)))
        .collect();
    let mut directory = Directory::default();
    for row in rows {
        let Some(&root) = root_of.get(&row.tenant_id) else {
            continue;
        };
        let family = root_of
            .iter()
            .filter(|(_, r)| **r == root)
            .map(|(id, _)| *id)
            .collect();
        let mappings = match serde_json::from_value(row.mappings.clone()) {
            Ok(mappings) => mappings,
            Err(e) => {
                tracing::warn!(tenant.id = %row.tenant_id, error = %e, "a stored identity provider mapping does not parse; its tokens are refused");
                continue;
            }
        };
        let mut audiences = vec![row.audience.clone()];
        audiences.extend(row.client_id.clone());
        let provider = Provider {
            tenant: row.tenant_id,
            root,
            issuer: row.issuer.clone(),
            jwks_uri: row.jwks_uri,
            audiences,
            user_claim: row.user_claim,
            groups_claim: row.groups_claim,
            mappings,
            admin_subject: (root == row.tenant_id)
                .then(|| admins.get(&root).cloned())
                .flatten(),
            family,
        };
        directory.by_issuer.insert(row.issuer, Arc::new(provider));
    }
    Ok(directory)
}

fn validation(alg: Algorithm, provider: &Provider) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_issuer(&[&provider.issuer]);
    validation.set_audience(&provider.audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation
}

/// The `iss` of a token, read before its signature is checked: it only
/// picks which keys will check it.
fn peek_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    if payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    serde_json::from_slice::<Issuer>(&bytes).ok()?.iss
}
