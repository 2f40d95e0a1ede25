//! Building the service: catalog, migrations, templates, state, the
//! reconciler, and the HTTP server. Shutdown is ordered: stop accepting and
//! finish in-flight requests, then stop the reconciler.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::api;
use crate::api::AppState;
use crate::config::Settings;
use crate::control_audit::Denials;
use crate::directory::Directory;
use crate::events::{EventBus, Webhooks};
use crate::router::{self, Router};
use crate::services::Services;
use crate::telemetry;

/// How often the JWKS file is read again for new or removed keys.
const JWKS_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// How long start-up waits for the first reconciler pass before it serves.
const STARTUP_PASS_WAIT: Duration = Duration::from_secs(15);

/// The HTTP service, bound and ready to run.
pub struct Application {
    port: u16,
    /// The PostgreSQL-protocol gateway's port, when it is on.
    gateway_port: Option<u16>,
    server: Server,
    state: web::Data<AppState>,
    shutdown: CancellationToken,
    /// Background tasks, stopped by `shutdown` after the HTTP server.
    workers: Vec<tokio::task::JoinHandle<()>>,
    signals: StopSignals,
}

/// SIGTERM and SIGINT, listened for from the moment the application is
/// built: either stops the server gracefully.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

impl Application {
    /// `settings.database_url`, `jwt_secret` and `master_key` must be set;
    /// `serve` fills them in for the embedded default.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, None).await
    }

    /// `build`, for a `serve` whose embedded cluster archives its WAL.
    pub async fn build_with(
        settings: Settings,
        archive: Option<crate::wal_archive::EmbeddedArchive>,
    ) -> anyhow::Result<Self> {
        // Installed before the first request records anything.
        telemetry::metrics::handle();
        let signals = StopSignals::new().context("listening for SIGTERM and SIGINT")?;
        let secret = settings
            .jwt_secret
            .clone()
            .context("no JWT secret configured (TENANT_PLANE_JWT_SECRET)")?;
        let services = Services::connect_with(&settings, archive).await?;
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        // Finish what a crash interrupted before taking traffic, but do not
        // refuse traffic for long: a slow resume (a large move) goes on in
        // the background while the service listens.
        let startup_pass = {
            let reconciler = services.reconciler.clone();
            tokio::spawn(async move { reconciler.run_once().await })
        };
        match tokio::time::timeout(STARTUP_PASS_WAIT, startup_pass).await {
            Ok(Ok(Ok(report))) => tracing::info!(?report, "start-up reconciliation done"),
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %format!("{e:#}"), "start-up reconciliation failed; the periodic pass will retry")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "start-up reconciliation stopped"),
            Err(_) => tracing::warn!(
                "start-up reconciliation is still running after {STARTUP_PASS_WAIT:?}; serving meanwhile"
            ),
        }
        let shutdown = CancellationToken::new();
        // A dead predecessor's request counts first, then this process's.
        let usage = services
            .usage
            .start(&settings.data_dir, shutdown.clone())
            .await
            .context("starting the usage meter under the data directory")?;
        let reconciler = services.reconciler.clone().spawn(
            Duration::from_secs(settings.reconciler.interval_secs),
            shutdown.clone(),
        );
        let directory = Directory::new(
            services.catalog.clone(),
            services.tenants.master_key().clone(),
        );
        let router = Router::new(
            directory,
            settings.router.clone(),
            crate::provisioner::stray_defaults,
        );
        let api_keys = services.api_keys.clone();
        let listener_task = router::spawn_listener(
            router.clone(),
            services.catalog.config().clone(),
            Arc::new(move |tenant| match tenant {
                Some(tenant) => api_keys.forget_tenant(tenant),
                None => api_keys.forget_all(),
            }),
            shutdown.clone(),
        );
        services.routes.set(route_hook(router.clone()));
        let reaper = router.spawn_reaper(shutdown.clone());
        let metrics_upkeep = telemetry::metrics::spawn_upkeep(shutdown.clone());
        let settings = Arc::new(settings);
        let denials = Denials::new(&services.catalog).context("the denial writer's pool")?;
        let denial_writer = denials.spawn_writer(shutdown.clone());
        let events = EventBus::new();
        let mut workers = vec![
            events.spawn_listener(services.catalog.config().clone(), shutdown.clone()),
            events.spawn_feed(services.catalog.clone(), shutdown.clone()),
        ];
        let webhooks = Webhooks::new(services.catalog.clone(), &settings.webhooks)
            .await
            .context("reading the newest event for the webhooks")?;
        if let Some(webhooks) = webhooks {
            workers.push(webhooks.spawn(&events, shutdown.clone()));
        }
        let (jwt, public_keys) = crate::auth::keys_from_settings(&settings, &secret)
            .context("the token keys (TENANT_PLANE_JWT_PUBLIC_KEYS)")?;
        if let Some(public_keys) = public_keys {
            workers.push(public_keys.spawn_watcher(JWKS_RELOAD_EVERY, shutdown.clone()));
        }
        let gateway = match settings.gateway.address() {
            Some(address) => {
                let deps = crate::gateway::GatewayDeps {
                    router: router.clone(),
                    keys: services.api_keys.wire().clone(),
                    tenants: services.tenants.clone(),
                    usage: services.usage.clone(),
                    denials: denials.clone(),
                    denials_per_minute: settings.http.denials_per_minute,
                };
                let gateway =
                    crate::gateway::Gateway::bind(address, &settings.gateway, deps).await?;
                let port = gateway.local_addr()?.port();
                tracing::info!(%address, port, "the PostgreSQL-protocol gateway is listening");
                workers.push(gateway.spawn(shutdown.clone()));
                Some(port)
            }
            None => None,
        };
        let tenancy = crate::tenancy::Tenancy::new(router.clone());
        let state = web::Data::new(AppState::new(
            services,
            tenancy,
            jwt,
            settings.clone(),
            denials,
            events,
        ));
        let gauges = api::spawn_gauges(
            state.clone(),
            Duration::from_secs(settings.metrics.refresh_secs),
            shutdown.clone(),
        );
        let server = http_server(listener, state.clone(), &settings)?;
        Ok(Self {
            port,
            gateway_port: gateway,
            server,
            state,
            signals,
            shutdown,
            workers: workers
                .into_iter()
                .chain([
                    reconciler,
                    listener_task,
                    reaper,
                    metrics_upkeep,
                    gauges,
                    denial_writer,
                    usage,
                ])
                .collect(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the HTTP server (and so, in `run_until_stopped`, the rest)
    /// as a stop signal would.
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The gateway's port, when `gateway.listen` turned it on.
    pub fn gateway_port(&self) -> Option<u16> {
        self.gateway_port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until stopped by SIGINT/SIGTERM or the server handle; in-flight
    /// requests get `http.shutdown_timeout_secs` to finish. Then the
    /// background workers stop, the tenant pools close, and last the owner
    /// lease ends, so peers take over whatever is left at once.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let signals = self.signals;
        let stopper = tokio::spawn(async move {
            signals.recv().await;
            tracing::info!("stop signal received; finishing in-flight requests");
            handle.stop(true).await;
        });
        let served = self.server.await;
        stopper.abort();
        self.shutdown.cancel();
        for worker in self.workers {
            let _ = worker.await;
        }
        self.state.tenancy().router().close_all().await;
        self.state.services().end_lease();
        served
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
            .wrap(
                ErrorHandlers::new()
                    .handler(StatusCode::UNAUTHORIZED, api::audit_denial)
                    .handler(StatusCode::FORBIDDEN, api::audit_denial)
                    .default_handler(api::envelope_fallback),
            )
            .wrap(from_fn(api::request_telemetry))
            .wrap(TracingLogger::<api::RequestSpan>::new())
            .app_data(state.clone())
            .app_data(json.clone())
            .app_data(payload.clone())
            .app_data(path.clone())
            .app_data(query.clone())
            .configure(api::routes)
    })
    .shutdown_timeout(settings.http.shutdown_timeout_secs)
    .client_request_timeout(Duration::from_secs(10))
    // Ours are listened for from `build` on (`StopSignals`): actix's are
    // set only once the server is first polled, and a SIGTERM before that
    // would kill the process outright.
    .disable_signals();
    if settings.http.workers > 0 {
        server = server.workers(settings.http.workers);
    }
    Ok(server.listen(listener)?.run())
}

/// The router's side of `route_notices`: what a command changed, forgotten
/// on this replica before the command answers.
fn route_hook(router: Router) -> crate::route_notices::Hook {
    use crate::route_notices::RouteChange;
    Arc::new(move |change| {
        let router = router.clone();
        Box::pin(async move {
            match change {
                RouteChange::Tenant { id, close_pool } => {
                    router.invalidate(id).await;
                    if close_pool {
                        router.close_pool(id).await;
                    }
                }
                RouteChange::All => {
                    router.invalidate_all();
                    // A server's budget may have changed too.
                    router.refresh_budgets().await;
                }
            }
        })
    })
}
