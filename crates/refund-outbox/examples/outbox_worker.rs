//! An outbox worker service: run one (or several, on several machines) beside the
//! application that enqueues refunds.
//!
//! ```sh
//! export DATABASE_URL=postgres://app@127.0.0.1/shop
//! export SIPAY_APP_ID=… SIPAY_APP_SECRET=… SIPAY_MERCHANT_KEY=…   # SIPAY_BASE_URL optional
//! export IYZICO_API_KEY=… IYZICO_SECRET_KEY=… IYZICO_IP=…         # IYZICO_BASE_URL optional
//! export OUTBOX_WORKERS=2 OUTBOX_SIPAY_RATE=5                      # optional
//! cargo run -p refund-outbox --example outbox_worker
//! ```
//!
//! It migrates the schema, registers the providers whose credentials are set, sets the
//! shared SiPay rate when asked, runs `OUTBOX_WORKERS` workers (one connection each) until
//! Ctrl-C, and logs the outbox's status every minute. The database connection here is plain
//! (`NoTls`), for a database on loopback or a private network; for TLS, connect with
//! `tokio-postgres-rustls` and hand the client over the same way. The URL is never logged.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use refund_core::{ProviderRegistry, RefundProvider};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_outbox::tokio_postgres::{self, Client, NoTls};
use refund_outbox::{Worker, WorkerConfig, migrate, set_rate, status};
use refund_sipay::{Sipay, SipayConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn connect(url: &str) -> Result<Client, Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "database connection ended");
        }
    });
    Ok(client)
}

fn providers() -> Result<ProviderRegistry, Error> {
    let mut registry = ProviderRegistry::new();
    if std::env::var_os("SIPAY_APP_ID").is_some() {
        let sipay: Arc<dyn RefundProvider> = Arc::new(Sipay::new(SipayConfig::from_env()?)?);
        registry = registry.with(sipay);
    }
    if std::env::var_os("IYZICO_API_KEY").is_some() {
        let iyzico: Arc<dyn RefundProvider> = Arc::new(Iyzico::new(IyzicoConfig::from_env()?)?);
        registry = registry.with(iyzico);
    }
    if registry.is_empty() {
        return Err("no provider credentials set (SIPAY_APP_ID…, IYZICO_API_KEY…)".into());
    }
    Ok(registry)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let registry = providers()?;
    let workers: usize = std::env::var("OUTBOX_WORKERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);

    let mut admin = connect(&url).await?;
    migrate(&mut admin).await?;
    if let Some(rate) = std::env::var("OUTBOX_SIPAY_RATE")
        .ok()
        .and_then(|r| r.parse::<NonZeroU32>().ok())
    {
        set_rate(&admin, refund_sipay::NAME, Some(rate)).await?;
    }

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..workers {
        let name = format!("{host}-{}-{n}", std::process::id());
        let worker = Worker::new(
            connect(&url).await?,
            registry.clone(),
            WorkerConfig::new(name),
        )
        .await?;
        let mut stopped = stopped.clone();
        tasks.spawn(async move {
            worker
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
    }
    tracing::info!(workers, providers = ?registry.names().collect::<Vec<_>>(), "outbox workers running; Ctrl-C stops them");

    let mut every_minute = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = every_minute.tick() => {
                match status(&admin, Duration::from_secs(3600), 20).await {
                    Ok(s) => tracing::info!(
                        pending = s.pending, unknown = s.unknown, retry_later = s.retry_later,
                        refunded = s.refunded, declined = s.declined, failed = s.failed,
                        stuck = s.stuck.len(), "outbox status"
                    ),
                    Err(e) => tracing::warn!(error = %e, "outbox status failed"),
                }
            }
            Some(ended) = tasks.join_next() => {
                // A worker ends only when its connection is gone: stop, and let the
                // supervisor restart the service.
                tracing::error!(?ended, "an outbox worker stopped");
                break;
            }
        }
    }
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}
