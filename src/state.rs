//! Shared state of the HTTP service, behind one `Arc` (actix's `web::Data`).

use std::sync::Arc;

use crate::auth::JwtKeys;
use crate::catalog::Catalog;
use crate::config::Settings;

pub struct AppState {
    catalog: Catalog,
    jwt: JwtKeys,
    settings: Arc<Settings>,
}

impl AppState {
    pub fn new(catalog: Catalog, jwt: JwtKeys, settings: Arc<Settings>) -> Self {
        Self {
            catalog,
            jwt,
            settings,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}
