//! `refund-shop`: a worked service on axum and sqlx around the refund outbox.
//!
//! - `POST /orders/{id}/return` marks the order returned and enqueues its refund intent in
//!   one sqlx transaction ([`orders::return_order`]);
//! - outbox workers run in the same process, one tokio-postgres connection each, over a
//!   registry of SiPay and iyzico clients wrapped in [`Metered`] ([`Shop::serve`]);
//! - `POST /webhooks/sipay/refund` verifies SiPay's refund notifications and settles the
//!   order they are about;
//! - `GET /metrics` renders the Prometheus exporter's handle.
//!
//! Walked through in `docs/service.md`.

pub mod config;
pub mod error;
pub mod orders;
pub mod routes;

use std::future::Future;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use refund_core::ProviderRegistry;
use refund_core::metrics::Metered;
use refund_iyzico::Iyzico;
use refund_outbox::sqlx::sqlx::PgPool;
use refund_outbox::sqlx::sqlx::postgres::PgPoolOptions;
use refund_outbox::{Worker, WorkerConfig};
use refund_sipay::Sipay;
use refund_sipay::notification::NotificationVerifier;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::{DatabaseUrl, ShopConfig};
pub use error::ShopError;

/// The service, built from a [`ShopConfig`]: the pool, the provider clients, the verifier.
#[derive(Debug)]
pub struct Shop {
    config: ShopConfig,
    pool: PgPool,
    registry: ProviderRegistry,
    verifier: Arc<NotificationVerifier>,
    metrics: PrometheusHandle,
}

impl Shop {
    /// Connects the sqlx pool, migrates (the shop's table, then the outbox's), and builds
    /// the provider clients, each wrapped in [`Metered`]. `metrics` is the handle of the
    /// Prometheus recorder the caller installed (`/metrics` renders it).
    pub async fn new(config: ShopConfig, metrics: PrometheusHandle) -> Result<Shop, ShopError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(config.database_url.expose())
            .await?;
        orders::migrate(&pool).await?;
        let sipay = Sipay::new(config.sipay.clone()).map_err(ShopError::Provider)?;
        let iyzico = Iyzico::new(config.iyzico.clone()).map_err(ShopError::Provider)?;
        let verifier = Arc::new(NotificationVerifier::from_config(&config.sipay));
        let registry = ProviderRegistry::new()
            .with(Arc::new(Metered::new(sipay)))
            .with(Arc::new(Metered::new(iyzico)));
        refund_outbox::metrics::describe();
        Ok(Shop {
            config,
            pool,
            registry,
            verifier,
            metrics,
        })
    }

    /// The sqlx pool (the shop's queries; tests read orders through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves HTTP on `listener` and runs [`ShopConfig::workers`] outbox workers until
    /// `shutdown` completes; then stops accepting requests, lets the requests in progress
    /// finish, and lets each worker finish the intents it has in flight (it claims no more).
    /// A worker whose database connection drops is replaced after a second.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ShopError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut workers = JoinSet::new();
        for n in 0..self.config.workers {
            let url = self.config.database_url.clone();
            let registry = self.registry.clone();
            let config = WorkerConfig::new(format!("shop-{n}"))
                .with_concurrency(self.config.worker_concurrency)
                .with_idle_poll(self.config.idle_poll)
                .with_recheck(self.config.recheck);
            workers.spawn(run_worker(url, registry, config, stop_rx.clone()));
        }
        let state = routes::AppState {
            pool: self.pool.clone(),
            verifier: self.verifier,
            metrics: self.metrics,
        };
        let app = routes::router(state);
        let mut http_stop = stop_rx.clone();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|stop| *stop).await;
        });
        let server = tokio::spawn(async move { server.await });
        shutdown.await;
        tracing::info!("shutting down: no new requests or claims; finishing what is in flight");
        let _ = stop_tx.send(true);
        let served = server.await;
        while let Some(done) = workers.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "an outbox worker task failed");
            }
        }
        self.pool.close().await;
        match served {
            Ok(result) => result.map_err(ShopError::Io),
            Err(e) => Err(ShopError::Io(std::io::Error::other(e))),
        }
    }
}

/// One outbox worker on its own connection, reconnecting when the connection drops, until
/// `stop` turns true.
async fn run_worker(
    url: DatabaseUrl,
    registry: ProviderRegistry,
    config: WorkerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let name = config.name().to_owned();
    while !*stop.borrow() {
        match start_worker(&url, registry.clone(), config.clone()).await {
            Ok(worker) => {
                let mut signal = stop.clone();
                let stopping = async move {
                    let _ = signal.wait_for(|stop| *stop).await;
                };
                match worker.run(stopping).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(worker = %name, error = %e, "outbox worker stopped; reconnecting")
                    }
                }
            }
            // tokio-postgres' errors do not carry the URL or the password.
            Err(e) => tracing::warn!(worker = %name, error = %e, "outbox worker could not start"),
        }
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            stop.wait_for(|stop| *stop),
        )
        .await;
    }
}

async fn start_worker(
    url: &DatabaseUrl,
    registry: ProviderRegistry,
    config: WorkerConfig,
) -> Result<Worker, ShopError> {
    // TLS as the URL's `sslmode` says (`prefer` when absent, as libpq); the connection runs
    // in a task of its own, which logs how it ended.
    let (client, _connection) = refund_outbox::connect(url.expose()).await?;
    Ok(Worker::new(client, registry, config).await?)
}
