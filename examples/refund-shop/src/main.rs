//! `refund-shop`: runs the service until Ctrl-C or SIGTERM. Configuration from the
//! environment (see `ShopConfig`); secrets are never logged.

use metrics_exporter_prometheus::PrometheusBuilder;
use refund_shop::{Shop, ShopConfig, ShopError};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "refund-shop stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), ShopError> {
    let config = ShopConfig::from_env()?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| ShopError::Config(format!("installing the metrics recorder: {e}")))?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen = %config.listen, workers = config.workers, "refund-shop listening");
    let shop = Shop::new(config, handle).await?;
    shop.serve(listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
