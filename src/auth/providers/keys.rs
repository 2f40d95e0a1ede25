//! Each provider's signing keys (its JWKS), fetched through `Outbound` and
//! kept as its caching headers allow.
//!
//! Rules:
//! - keys are kept for the answer's `max-age` (or `Expires`), held to 1
//!   minute to 1 day, or `identity.keys_ttl_secs` when it says nothing.
//! - a token naming a `kid` the keys lack fetches them again, at most once
//!   per `identity.refetch_secs` per provider: a flood of made-up `kid`s
//!   costs the provider one request per interval, whoever sends them.
//! - a failed fetch leaves the keys in force until they expire; after
//!   that, tokens of that provider are refused until a fetch succeeds.
//! - one fetch per provider at a time: concurrent requests wait for it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};

use super::outbound::{Outbound, OutboundError};
use crate::auth::jwks::{KeySet, PublicKey};

const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key of the provider has this `kid` (after a fetch, or too soon
    /// after the last one to try another).
    #[error("the provider has no key with this `kid`")]
    UnknownKid,
    /// The keys expired and the provider could not be reached since.
    #[error("the provider's keys expired and it cannot be reached")]
    Unavailable,
}

#[derive(Default)]
struct Cached {
    keys: Option<Arc<KeySet>>,
    expires: Option<Instant>,
    last_fetch: Option<Instant>,
}

/// One provider's keys, by its `jwks_uri`.
#[derive(Default)]
struct Entry {
    cached: Mutex<Cached>,
    /// Held while fetching, so concurrent misses make one request.
    fetching: tokio::sync::Mutex<()>,
}

pub struct KeyCache {
    outbound: Outbound,
    refetch: Duration,
    default_ttl: Duration,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl KeyCache {
    pub fn new(outbound: Outbound, refetch: Duration, default_ttl: Duration) -> Self {
        Self {
            outbound,
            refetch,
            default_ttl,
            entries: Mutex::default(),
            fetches: Default::default(),
        }
    }

    /// How many times keys were fetched, since start.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets the keys of providers no longer configured.
    pub fn retain(&self, uris: &std::collections::HashSet<&str>) {
        self.entries
            .lock()
            .expect("no panic holds this lock")
            .retain(|uri, _| uris.contains(uri.as_str()));
    }

    /// The key `kid` names at `jwks_uri` (with no `kid`, the only key of
    /// the set), fetching as the module's rules allow.
    pub async fn key(&self, jwks_uri: &str, kid: Option<&str>) -> Result<Arc<PublicKey>, KeyError> {
        let entry = self
            .entries
            .lock()
            .expect("no panic holds this lock")
            .entry(jwks_uri.to_string())
            .or_default()
            .clone();
        if let Some(found) = lookup(&entry, kid, Instant::now()) {
            return Ok(found);
        }
        let _fetching = entry.fetching.lock().await;
        let now = Instant::now();
        // Another request may have fetched while this one waited.
        if let Some(found) = lookup(&entry, kid, now) {
            return Ok(found);
        }
        let recent = {
            let cached = entry.cached.lock().expect("no panic holds this lock");
            cached
                .last_fetch
                .is_some_and(|at| now.duration_since(at) < self.refetch)
        };
        if recent {
            return Err(why_not(&entry, now));
        }
        entry
            .cached
            .lock()
            .expect("no panic holds this lock")
            .last_fetch = Some(now);
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.fetch(jwks_uri).await {
            Ok((keys, ttl)) => {
                let mut cached = entry.cached.lock().expect("no panic holds this lock");
                cached.keys = Some(Arc::new(keys));
                cached.expires = Some(Instant::now() + ttl);
            }
            Err(e) => {
                tracing::warn!(error = %format!("{:#}", anyhow::Error::new(e)), jwks_uri, "a tenant identity provider's keys could not be fetched");
            }
        }
        lookup(&entry, kid, Instant::now()).ok_or_else(|| why_not(&entry, Instant::now()))
    }

    async fn fetch(&self, uri: &str) -> Result<(KeySet, Duration), OutboundError> {
        let fetched = self.outbound.get(uri).await?;
        // A provider's own word is held to sane bounds; the operator's
        // setting is taken as it is.
        let ttl = fetched
            .max_age
            .map_or(self.default_ttl, |age| age.clamp(MIN_TTL, MAX_TTL));
        Ok((usable_keys(uri, &fetched.body), ttl))
    }
}

/// The cached key, when the keys are fresh and hold it; `None` sends the
/// caller to fetch.
fn lookup(entry: &Entry, kid: Option<&str>, now: Instant) -> Option<Arc<PublicKey>> {
    let cached = entry.cached.lock().expect("no panic holds this lock");
    let fresh = cached.expires.is_some_and(|e| now < e);
    let keys = cached.keys.as_ref().filter(|_| fresh)?;
    match kid {
        Some(kid) => keys.get(kid),
        None => keys.only(),
    }
}

/// Why there is no key now: fresh keys lack it, or there are none in force.
fn why_not(entry: &Entry, now: Instant) -> KeyError {
    let cached = entry.cached.lock().expect("no panic holds this lock");
    if cached.keys.is_some() && cached.expires.is_some_and(|e| now < e) {
        KeyError::UnknownKid
    } else {
        KeyError::Unavailable
    }
}

/// The signing keys of a provider's JWKS: keys for encryption, without a
/// `kid`, or of an algorithm this service does not verify are skipped (a
/// provider's set often holds some), not a reason to refuse the rest.
pub fn usable_keys(uri: &str, body: &[u8]) -> KeySet {
    let Ok(set) = serde_json::from_slice::<JwkSet>(body) else {
        return KeySet::default();
    };
    let mut usable = Vec::new();
    for jwk in set.keys {
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption)
            || jwk.common.key_id.is_none()
        {
            continue;
        }
        let one = serde_json::json!({ "keys": [jwk] });
        let bytes = serde_json::to_vec(&one).expect("a JWK serialises");
        if KeySet::parse(Path::new(uri), &bytes).is_ok() {
            usable.push(jwk);
        }
    }
    let bytes = serde_json::to_vec(&serde_json::json!({ "keys": usable })).expect("JWKs serialise");
    KeySet::parse(Path::new(uri), &bytes).unwrap_or_default()
}
