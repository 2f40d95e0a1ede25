//! Building the service: catalog, migrations, state, and the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::api;
use crate::auth::JwtKeys;
use crate::catalog::{self, Catalog};
use crate::config::Settings;
use crate::state::AppState;
use crate::telemetry;

/// The HTTP service, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Connects to the catalog, migrates it, registers the catalog's server and
    /// binds the listener. `settings.database_url` and `settings.jwt_secret`
    /// must be set; `serve` fills them in for the embedded default.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let url = settings
            .database_url
            .clone()
            .context("no catalog database configured (TENANT_PLANE_DATABASE_URL)")?;
        let secret = settings
            .jwt_secret
            .clone()
            .context("no JWT secret configured (TENANT_PLANE_JWT_SECRET)")?;
        let catalog = Catalog::connect(&url, &settings.catalog)
            .await
            .context("connecting to the catalog database")?;
        catalog::migrate(&catalog)
            .await
            .context("migrating the catalog database")?;
        catalog
            .register_catalog_server()
            .await
            .context("registering the catalog's database server")?;

        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let settings = Arc::new(settings);
        let state = web::Data::new(AppState::new(
            catalog,
            JwtKeys::hs256(&secret)?,
            settings.clone(),
        ));
        let server = http_server(listener, state.clone(), &settings)?;
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle that stops the server gracefully.
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped by SIGINT/SIGTERM or the server handle; in-flight
    /// requests get `http.shutdown_timeout_secs` to finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn http_server(
    listener: TcpListener,
    state: web::Data<AppState>,
    settings: &Settings,
) -> anyhow::Result<Server> {
    let (json, payload, path, query) = api::extractor_configs(settings.http.max_body_bytes);
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(ErrorHandlers::new().default_handler(api::envelope_fallback))
            .wrap(from_fn(telemetry::request_id_header))
            .wrap(TracingLogger::default())
            .app_data(state.clone())
            .app_data(json.clone())
            .app_data(payload.clone())
            .app_data(path.clone())
            .app_data(query.clone())
            .configure(api::routes)
    })
    .shutdown_timeout(settings.http.shutdown_timeout_secs)
    .client_request_timeout(Duration::from_secs(10));
    if settings.http.workers > 0 {
        server = server.workers(settings.http.workers);
    }
    Ok(server.listen(listener)?.run())
}
