//! One module per top-level command.

pub(crate) mod batch;
pub(crate) mod bench;
pub(crate) mod iyzico;
pub(crate) mod sandbox;
pub(crate) mod sipay;

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use refund_core::{RefundError, RefundReceipt};

use crate::exit::Failure;
use crate::output::out_json;

/// Connection options shared by the provider commands.
#[derive(Debug, Clone, Args)]
pub(crate) struct Connection {
    /// The provider's base URL (default: the provider's `*_BASE_URL` variable, else its test environment).
    #[arg(long)]
    pub(crate) base_url: Option<String>,
    /// Seconds each provider request may take before its outcome is reported unknown.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub(crate) timeout: u64,
    /// Seconds after an attempt during which the provider's lookup may still not show it
    /// (lookup lag and late application). An outcome-unknown refund is resent only when a
    /// lookup after this still finds nothing. Default: the provider's own settle time.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub(crate) settle_time: Option<u64>,
}

impl Connection {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// The settle time to configure the clients with, when given.
    pub(crate) fn settle_time(&self) -> Option<Duration> {
        self.settle_time.map(Duration::from_secs)
    }
}

/// Prints a receipt as JSON (exit 0), or turns the error into its exit code, adding
/// `reconcile_hint` when the outcome is unknown.
pub(crate) fn report(
    result: Result<RefundReceipt, RefundError>,
    reconcile_hint: impl FnOnce() -> String,
) -> Result<ExitCode, Failure> {
    match result {
        Ok(receipt) => {
            out_json(&receipt).map_err(Failure::other)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(Failure::provider(&e, &reconcile_hint())),
    }
}
