//! One module per top-level command.

pub(crate) mod batch;
pub(crate) mod iyzico;
pub(crate) mod sandbox;
pub(crate) mod sipay;

use std::time::Duration;

use clap::Args;

/// Connection options shared by the provider commands.
#[derive(Debug, Clone, Args)]
pub(crate) struct Connection {
    /// The provider's base URL (default: the provider's `*_BASE_URL` variable, else its test environment).
    #[arg(long)]
    pub(crate) base_url: Option<String>,
    /// Seconds each provider request may take before its outcome is reported unknown.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub(crate) timeout: u64,
}

impl Connection {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}
