//! `refund sipay …`

use std::process::ExitCode;

use clap::{Args, Subcommand};
use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest};
use refund_sipay::{Sipay, SipayConfig, hash_key};

use super::Connection;
use crate::exit::Failure;
use crate::output::{out_json, out_line};

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Refund an amount of a payment (full, partial, or a same-day void of the whole amount).
    Refund(RefundArgs),
    /// Show how much of a payment has been refunded, and by which references.
    Status(StatusArgs),
    /// Print the hash_key SiPay expects for a refund of exactly this amount text.
    HashKey(HashKeyArgs),
    /// Decrypt a hash_key and print its fields (`amount|invoice_id|merchant_key` for a refund).
    VerifyHashKey(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RefundArgs {
    /// The payment's invoice_id.
    #[arg(long)]
    invoice_id: String,
    /// The amount to refund, e.g. 10.50.
    #[arg(long)]
    amount: String,
    /// The currency.
    #[arg(long, default_value = "TRY")]
    currency: String,
    /// Your reference for this refund (sent as refund_transaction_id); generated when absent.
    #[arg(long)]
    reference: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The payment's invoice_id.
    #[arg(long)]
    invoice_id: String,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct HashKeyArgs {
    /// The amount text, exactly as it is sent in the body (e.g. 100.50).
    #[arg(long)]
    amount: String,
    /// The invoice_id.
    #[arg(long)]
    invoice_id: String,
    /// The merchant key.
    #[arg(long, env = "SIPAY_MERCHANT_KEY", hide_env_values = true)]
    merchant_key: String,
    /// The app secret.
    #[arg(long, env = "SIPAY_APP_SECRET", hide_env_values = true)]
    app_secret: String,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The hash_key to decrypt.
    #[arg(long)]
    hash_key: String,
    /// The app secret.
    #[arg(long, env = "SIPAY_APP_SECRET", hide_env_values = true)]
    app_secret: String,
}

pub(crate) fn client(connection: &Connection) -> Result<Sipay, Failure> {
    let mut config = SipayConfig::from_env()?;
    if let Some(url) = &connection.base_url {
        config = config.with_base_url(url)?;
    }
    if let Some(settle_time) = connection.settle_time() {
        config = config.with_settle_time(settle_time);
    }
    Ok(Sipay::new(config.with_timeout(connection.timeout()))?)
}

pub(crate) async fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Refund(args) => {
            let currency: Currency = args.currency.parse()?;
            let mut request = RefundRequest::builder(
                PaymentRef::payment(&args.invoice_id),
                Money::parse(&args.amount, currency)?,
            );
            if let Some(r) = &args.reference {
                request = request.reference(r);
            }
            let request = request.build()?;
            let sipay = client(&args.connection)?;
            super::report(sipay.refund(&request).await, || {
                format!(
                    "Do not resend. Check whether reference {} was applied: refund sipay status --invoice-id {}",
                    request.reference(),
                    args.invoice_id
                )
            })
        }
        Command::Status(args) => {
            let sipay = client(&args.connection)?;
            let state = sipay
                .refund_state(&PaymentRef::payment(&args.invoice_id))
                .await?;
            out_json(&state).map_err(Failure::other)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::HashKey(args) => {
            let key = hash_key::generate(
                &args.app_secret,
                &[&args.amount, &args.invoice_id, &args.merchant_key],
            );
            out_line(&key).map_err(Failure::other)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::VerifyHashKey(args) => {
            let fields = hash_key::validate_hash_key(&args.hash_key, &args.app_secret)
                .map_err(|e| Failure::invalid(format!("hash_key: {e}")))?;
            out_line(&fields.join("|")).map_err(Failure::other)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
