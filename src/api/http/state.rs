//! Shared state of the HTTP service, behind one `Arc` (actix's `web::Data`).
//! Only the HTTP layer knows it: the services below take what they need as
//! arguments, never the whole state.

use std::sync::Arc;

use crate::api::http::denial::Throttle;
use crate::auth::JwtKeys;
use crate::config::Settings;
use crate::control_audit::Denials;
use crate::events::EventBus;
use crate::fleet::Fleet;
use crate::reconciler::Reconciler;
use crate::servers::Servers;
use crate::services::Services;
use crate::tenancy::Tenancy;
use crate::tenants::Tenants;

pub struct AppState {
    services: Services,
    tenancy: Tenancy,
    jwt: JwtKeys,
    settings: Arc<Settings>,
    denials: Denials,
    throttle: Throttle,
    events: EventBus,
    /// One permit per open event stream (`http.max_event_streams`).
    event_streams: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(
        services: Services,
        tenancy: Tenancy,
        jwt: JwtKeys,
        settings: Arc<Settings>,
        denials: Denials,
        events: EventBus,
    ) -> Self {
        Self {
            events,
            event_streams: Arc::new(tokio::sync::Semaphore::new(settings.http.max_event_streams)),
            throttle: Throttle::new(settings.http.denials_per_minute),
            services,
            tenancy,
            jwt,
            settings,
            denials,
        }
    }

    /// Wakes the event streams (`GET /v1/events`).
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Permits for open event streams, one each.
    pub fn event_streams(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.event_streams
    }

    pub fn denials(&self) -> &Denials {
        &self.denials
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub fn trusted_proxies(&self) -> &[ipnet::IpNet] {
        &self.settings.http.trusted_proxies
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn tenants(&self) -> &Tenants {
        &self.services.tenants
    }

    pub fn servers(&self) -> &Servers {
        &self.services.servers
    }

    /// This replica's routes and tenant sessions (the data plane).
    pub fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    pub fn fleet(&self) -> &Fleet {
        &self.services.fleet
    }

    /// Usage per tenant, and quotas.
    pub fn usage(&self) -> &crate::usage::Usage {
        &self.services.usage
    }

    /// Drift scans and reports (drift plumbing).
    pub fn drift(&self) -> &crate::drift::Scans {
        &self.services.drift
    }

    pub fn reconciler(&self) -> &Reconciler {
        &self.services.reconciler
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    /// Everything that verifies a credential.
    pub fn verifiers(&self) -> crate::auth::Verifiers<'_> {
        crate::auth::Verifiers {
            jwt: &self.jwt,
            api_keys: &self.services.api_keys,
            providers: &self.services.identity,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}
