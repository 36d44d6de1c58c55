//! `refund iyzico …`

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest, VoidRequest};
use refund_iyzico::{Iyzico, IyzicoConfig, signature};

use super::Connection;
use crate::exit::Failure;
use crate::output::{out_json, out_line};

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Refund an amount of one basket line (--payment-transaction-id) or of a whole payment (--payment-id).
    Refund(RefundArgs),
    /// Cancel (void) a whole payment, on the day it was taken.
    Cancel(CancelArgs),
    /// Show what has been refunded of a payment, per line, with each refund's conversationId.
    Status(StatusArgs),
    /// Print the IYZWSv2 Authorization header value for exactly this path and body.
    AuthHeader(AuthHeaderArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["payment_transaction_id", "payment_id"])))]
pub(crate) struct RefundArgs {
    /// Refund one basket line: its paymentTransactionId (/payment/refund).
    #[arg(long)]
    payment_transaction_id: Option<String>,
    /// Refund at payment level: the paymentId (/v2/payment/refund).
    #[arg(long)]
    payment_id: Option<String>,
    /// The amount to refund, e.g. 10.5.
    #[arg(long)]
    amount: String,
    /// The currency.
    #[arg(long, default_value = "TRY")]
    currency: String,
    /// The client IP sent to iyzico (default: the client's configured IP).
    #[arg(long)]
    ip: Option<String>,
    /// The conversationId: your reference for this refund (generated when absent).
    #[arg(long)]
    conversation_id: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The paymentId to cancel.
    #[arg(long)]
    payment_id: String,
    /// The client IP sent to iyzico.
    #[arg(long)]
    ip: Option<String>,
    /// The conversationId (generated when absent).
    #[arg(long)]
    conversation_id: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The paymentId.
    #[arg(long)]
    payment_id: String,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct AuthHeaderArgs {
    /// The API key.
    #[arg(long, env = "IYZICO_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The secret key.
    #[arg(long, env = "IYZICO_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
    /// The random key (x-iyzi-rnd).
    #[arg(long)]
    random_key: String,
    /// The URI path only, e.g. /payment/refund.
    #[arg(long)]
    path: String,
    /// The request body, exactly as sent.
    #[arg(long)]
    body: String,
}

pub(crate) fn client(connection: &Connection) -> Result<Iyzico, Failure> {
    let mut config = IyzicoConfig::from_env()?;
    if let Some(url) = &connection.base_url {
        config = config.with_base_url(url)?;
    }
    if let Some(settle_time) = connection.settle_time() {
        config = config.with_settle_time(settle_time);
    }
    Ok(Iyzico::new(config.with_timeout(connection.timeout()))?)
}

pub(crate) async fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Refund(args) => {
            let (payment, lookup_hint) = match (&args.payment_transaction_id, &args.payment_id) {
                (Some(tx), _) => (
                    PaymentRef::item(tx),
                    "refund iyzico status --payment-id <the payment's id>".to_owned(),
                ),
                (None, Some(id)) => (
                    PaymentRef::payment(id),
                    format!("refund iyzico status --payment-id {id}"),
                ),
                (None, None) => {
                    return Err(Failure::invalid(
                        "give --payment-transaction-id or --payment-id",
                    ));
                }
            };
            let currency: Currency = args.currency.parse()?;
            let mut request =
                RefundRequest::builder(payment, Money::parse(&args.amount, currency)?);
            if let Some(ip) = &args.ip {
                request = request.extra("ip", ip);
            }
            if let Some(c) = &args.conversation_id {
                request = request.reference(c);
            }
            let request = request.build()?;
            let iyzico = client(&args.connection)?;
            super::report(iyzico.refund(&request).await, || {
                format!(
                    "Do not resend. Check whether conversationId {} was applied: {lookup_hint}",
                    request.reference()
                )
            })
        }
        Command::Cancel(args) => {
            let mut request = VoidRequest::builder(PaymentRef::payment(&args.payment_id));
            if let Some(ip) = &args.ip {
                request = request.extra("ip", ip);
            }
            if let Some(c) = &args.conversation_id {
                request = request.reference(c);
            }
            let request = request.build()?;
            let iyzico = client(&args.connection)?;
            super::report(iyzico.void(&request).await, || {
                format!(
                    "Do not resend. Check the payment's cancels: refund iyzico status --payment-id {}",
                    args.payment_id
                )
            })
        }
        Command::Status(args) => {
            let iyzico = client(&args.connection)?;
            let state = iyzico
                .refund_state(&PaymentRef::payment(&args.payment_id))
                .await?;
            out_json(&state).map_err(Failure::other)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::AuthHeader(args) => {
            let header = signature::authorization_header(
                &args.api_key,
                &args.secret_key,
                &args.random_key,
                &args.path,
                args.body.as_bytes(),
            );
            out_line(&header).map_err(Failure::other)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
