//! Shared state of the HTTP service, behind one `Arc` (actix's `web::Data`).
//! Only the HTTP layer knows it: the services below take what they need as
//! arguments, never the whole state.

use std::sync::Arc;

use crate::api::console::session::SignedOut;
use crate::api::denial::Throttle;
use crate::auth::JwtKeys;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::control_audit::Denials;
use crate::events::EventBus;
use crate::fleet::Fleet;
use crate::reconciler::Reconciler;
use crate::router::Router;
use crate::servers::Servers;
use crate::services::Services;
use crate::tenants::Tenants;

pub struct AppState {
    services: Services,
    router: Router,
    jwt: JwtKeys,
    settings: Arc<Settings>,
    denials: Denials,
    throttle: Throttle,
    events: EventBus,
    signed_out: SignedOut,
    /// One permit per open event stream (`http.max_event_streams`).
    event_streams: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(
        services: Services,
        router: Router,
        jwt: JwtKeys,
        settings: Arc<Settings>,
        denials: Denials,
        events: EventBus,
    ) -> Self {
        Self {
            events,
            signed_out: SignedOut::default(),
            event_streams: Arc::new(tokio::sync::Semaphore::new(settings.http.max_event_streams)),
            throttle: Throttle::new(settings.http.denials_per_minute),
            services,
            router,
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

    /// The console sessions signed out.
    pub fn signed_out(&self) -> &SignedOut {
        &self.signed_out
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

    pub fn catalog(&self) -> &Catalog {
        &self.services.catalog
    }

    pub fn tenants(&self) -> &Tenants {
        &self.services.tenants
    }

    pub fn servers(&self) -> &Servers {
        &self.services.servers
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    pub fn fleet(&self) -> &Fleet {
        &self.services.fleet
    }

    pub fn reconciler(&self) -> &Reconciler {
        &self.services.reconciler
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}
