//! One module per top-level command.

pub(crate) mod batch;
pub(crate) mod bench;
pub(crate) mod completions;
pub(crate) mod decide;
pub(crate) mod iyzico;
pub(crate) mod outbox;
pub(crate) mod sandbox;
pub(crate) mod sipay;

use std::time::Duration;

use clap::{Args, ValueEnum};
use refund_core::{RefundReason, RefundReceipt, RefundState};
use serde_json::Value;

use crate::exit::Failure;
use crate::output::{Success, pretty};

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

/// A refund or cancel went through: the receipt, pretty JSON in text mode (as before
/// `--output` existed), under `receipt` in JSON mode.
pub(crate) fn refunded(
    provider: &'static str,
    receipt: &RefundReceipt,
) -> Result<Success, Failure> {
    let name = |v: Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let operation = name(serde_json::to_value(receipt.operation).map_err(Failure::other)?);
    let status = name(serde_json::to_value(receipt.status).map_err(Failure::other)?);
    Ok(Success {
        kind: "refunded",
        provider: Some(provider),
        message: format!(
            "{operation} of {} on {}: {status}",
            receipt.amount, receipt.payment
        ),
        reference: Some(receipt.reference.to_string()),
        text: pretty(receipt)?,
        data: vec![(
            "receipt",
            serde_json::to_value(receipt).map_err(Failure::other)?,
        )],
    })
}

/// A provider's lookup: pretty JSON in text mode, under `state` in JSON mode.
pub(crate) fn status(provider: &'static str, state: &RefundState) -> Result<Success, Failure> {
    Ok(Success {
        kind: "status",
        provider: Some(provider),
        message: format!("{} refunded of {}", state.refunded, state.payment),
        reference: None,
        text: pretty(state)?,
        data: vec![(
            "state",
            serde_json::to_value(state).map_err(Failure::other)?,
        )],
    })
}

/// Why the merchant refunds (`--reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Reason {
    /// The buyer asked for it.
    BuyerRequest,
    /// The payment was taken twice.
    DoublePayment,
    /// The payment was fraudulent.
    Fraud,
    /// Any other reason (say which with --description).
    Other,
}

impl From<Reason> for RefundReason {
    fn from(reason: Reason) -> RefundReason {
        match reason {
            Reason::BuyerRequest => RefundReason::BuyerRequest,
            Reason::DoublePayment => RefundReason::DoublePayment,
            Reason::Fraud => RefundReason::Fraud,
            Reason::Other => RefundReason::Other,
        }
    }
}
