//! `refund sandbox`: both simulators on loopback, for people and non-Rust clients.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Args as ClapArgs;

use crate::exit::Failure;
use crate::output::out_line;

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The loopback address to listen on (the simulators accept published demo credentials,
    /// so they never listen beyond this machine).
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// The SiPay simulator's port (default: a free port).
    #[arg(long)]
    sipay_port: Option<u16>,
    /// The iyzico simulator's port (default: a free port).
    #[arg(long)]
    iyzico_port: Option<u16>,
}

pub(crate) async fn run(args: Args) -> Result<ExitCode, Failure> {
    if !args.listen.is_loopback() {
        return Err(Failure::invalid(format!(
            "--listen {}: the sandbox listens on loopback addresses only",
            args.listen
        )));
    }
    let sandbox = refund_testkit::sandbox::run(args.listen, args.sipay_port, args.iyzico_port)
        .await
        .map_err(|e| Failure::other(format!("cannot start the simulators: {e}")))?;
    let sipay = sandbox.sipay_credentials();
    let iyzico = sandbox.iyzico_credentials();
    // Scripts read these lines: keep them exactly so.
    let lines = [
        format!("sipay {}", sipay.base_url),
        format!("iyzico {}", iyzico.base_url),
        format!("SIPAY_BASE_URL={}", sipay.base_url),
        format!("SIPAY_APP_ID={}", sipay.app_id),
        format!("SIPAY_APP_SECRET={}", sipay.app_secret),
        format!("SIPAY_MERCHANT_KEY={}", sipay.merchant_key),
        format!("IYZICO_BASE_URL={}", iyzico.base_url),
        format!("IYZICO_API_KEY={}", iyzico.api_key),
        format!("IYZICO_SECRET_KEY={}", iyzico.secret_key),
    ];
    out_line(&lines.join("\n")).map_err(Failure::other)?;
    wait_for_signal().await?;
    drop(sandbox);
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() -> Result<(), Failure> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Failure::other(format!("cannot listen for SIGTERM: {e}")))?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| Failure::other(format!("signal: {e}")))?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::other(format!("signal: {e}")))?;
    Ok(())
}
