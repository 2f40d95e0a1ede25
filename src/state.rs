//! Shared state of the HTTP service, behind one `Arc` (actix's `web::Data`).

use std::sync::Arc;

use crate::auth::JwtKeys;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::migrator::Fleet;
use crate::reconciler::Reconciler;
use crate::router::Router;
use crate::startup::Services;
use crate::tenants::Tenants;

pub struct AppState {
    services: Services,
    router: Router,
    jwt: JwtKeys,
    settings: Arc<Settings>,
}

impl AppState {
    pub fn new(services: Services, router: Router, jwt: JwtKeys, settings: Arc<Settings>) -> Self {
        Self {
            services,
            router,
            jwt,
            settings,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.services.catalog
    }

    pub fn tenants(&self) -> &Tenants {
        &self.services.tenants
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
