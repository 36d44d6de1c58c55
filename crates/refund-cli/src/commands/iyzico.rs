//! `refund iyzico …`

use clap::{Args, Subcommand};
use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest, VoidRequest};
use refund_iyzico::{Iyzico, IyzicoConfig, signature};
use secrecy::ExposeSecret;

use super::{Connection, Reason};
use crate::exit::Failure;
use crate::output::{Success, command_line};
use crate::secrets::SecretKey;

const NAME: &str = "iyzico";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Refund an amount of a whole payment, or of one basket line (--payment-transaction-id).
    #[command(after_help = "Example:\n  \
        refund iyzico refund --payment-id 25180158 --payment-transaction-id 11433038 --amount 10.5 --reason buyer-request")]
    Refund(RefundArgs),
    /// Cancel (void) a whole payment, on the day it was taken.
    #[command(after_help = "Example:\n  \
        refund iyzico cancel --payment-id 25180158 --reason double-payment --description 'charged twice'")]
    Cancel(CancelArgs),
    /// Show what has been refunded of a payment, per line, with each refund's conversationId.
    #[command(after_help = "Example:\n  refund iyzico status --payment-id 25180158")]
    Status(StatusArgs),
    /// Print the IYZWSv2 Authorization header value for exactly this path and body.
    #[command(after_help = "Example:\n  \
        refund iyzico auth-header --random-key 123456 --path /payment/refund --body \"$(cat body.json)\"")]
    AuthHeader(AuthHeaderArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RefundArgs {
    /// The paymentId. Alone, the refund is at payment level (/v2/payment/refund); with
    /// --payment-transaction-id it names the line's payment, so an uncertain refund can be
    /// looked up.
    #[arg(long)]
    payment_id: String,
    /// Refund one basket line: its paymentTransactionId (/payment/refund).
    #[arg(long)]
    payment_transaction_id: Option<String>,
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
    /// Why you refund; iyzico records it with a line refund (--payment-transaction-id). Its
    /// payment-level refund takes no reason, so it is refused there (nothing is sent).
    #[arg(long, value_enum)]
    reason: Option<Reason>,
    /// Free text iyzico records with the reason (at most 255 characters; alone, the reason
    /// sent is `other`). Line refunds only, like --reason.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    secret_key: SecretKey,
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
    /// Why you cancel; iyzico records it.
    #[arg(long, value_enum)]
    reason: Option<Reason>,
    /// Free text iyzico records with the reason (at most 255 characters; alone, the reason
    /// sent is `other`).
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    secret_key: SecretKey,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The paymentId.
    #[arg(long)]
    payment_id: String,
    #[command(flatten)]
    secret_key: SecretKey,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct AuthHeaderArgs {
    /// The API key (not a secret: it travels in every Authorization header).
    #[arg(long, env = "IYZICO_API_KEY", hide_env_values = true)]
    api_key: String,
    #[command(flatten)]
    secret_key: SecretKey,
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

/// A client from the environment (`IYZICO_*`), as `refund batch` builds it.
pub(crate) fn client(connection: &Connection) -> Result<Iyzico, Failure> {
    configured(IyzicoConfig::from_env()?, connection)
}

/// A client whose secret key comes from `secret_key` (a file, else the environment).
fn client_with(connection: &Connection, secret_key: &SecretKey) -> Result<Iyzico, Failure> {
    let secret = secret_key.require()?;
    let config = IyzicoConfig::from_lookup(|name| match name {
        "IYZICO_SECRET_KEY" => Some(secret.expose_secret().to_owned()),
        _ => std::env::var(name).ok(),
    })?;
    configured(config, connection)
}

fn configured(mut config: IyzicoConfig, connection: &Connection) -> Result<Iyzico, Failure> {
    if let Some(url) = &connection.base_url {
        config = config.with_base_url(url)?;
    }
    if let Some(settle_time) = connection.settle_time() {
        config = config.with_settle_time(settle_time);
    }
    Ok(Iyzico::new(config.with_timeout(connection.timeout()))?)
}

/// The `refund iyzico status` command that shows a payment's refunds and cancel, with the
/// same base URL and secret file.
fn lookup(payment_id: &str, secret_key: &SecretKey, connection: &Connection) -> String {
    let mut words: Vec<String> = ["refund", "iyzico", "status", "--payment-id", payment_id]
        .map(str::to_owned)
        .into();
    if let Some(url) = &connection.base_url {
        words.extend(["--base-url".to_owned(), url.clone()]);
    }
    words.extend(secret_key.file_args());
    command_line(words)
}

/// `refund iyzico status` on a lookup whose answer cannot say what was refunded
/// ([`RefundState::undetermined`](refund_core::RefundState::undetermined)): no figure is shown
/// as if known (not even "0.00 refunded"); exit 4 ([`Code::Unknown`](crate::exit::Code)),
/// `outcome_known: false`, and a message that says undetermined and why. `None` for a state
/// that says what was refunded.
fn undetermined(state: &refund_core::RefundState) -> Option<Failure> {
    let reason = state.undetermined.as_deref()?;
    let mut failure = Failure::provider(&refund_core::RefundError::outcome_unknown(NAME, reason));
    failure.message = format!(
        "the refund state of payment {} is undetermined: {reason}. iyzico's report does not say how \
         much was refunded, so no figure is shown; look again later, and do not resend on the \
         strength of this lookup",
        state.payment.id()
    );
    Some(failure)
}

pub(crate) async fn run(command: Command) -> Result<Success, Failure> {
    dispatch(command).await.map_err(|f| f.in_provider(NAME))
}

async fn dispatch(command: Command) -> Result<Success, Failure> {
    match command {
        Command::Refund(args) => refund(args).await,
        Command::Cancel(args) => cancel(args).await,
        Command::Status(args) => {
            let iyzico = client_with(&args.connection, &args.secret_key)?;
            let state = iyzico
                .refund_state(&PaymentRef::payment(&args.payment_id))
                .await
                .map_err(|e| {
                    Failure::provider(&e).with_lookup(|| {
                        lookup(&args.payment_id, &args.secret_key, &args.connection)
                    })
                })?;
            if let Some(failure) = undetermined(&state) {
                return Err(failure);
            }
            super::status(NAME, &state)
        }
        Command::AuthHeader(args) => {
            let secret = args.secret_key.require()?;
            let header = signature::authorization_header(
                &args.api_key,
                secret.expose_secret(),
                &args.random_key,
                &args.path,
                args.body.as_bytes(),
            );
            Ok(Success {
                kind: "auth_header",
                provider: Some(NAME),
                message: format!("IYZWSv2 Authorization header for {}", args.path),
                reference: None,
                text: header.clone(),
                data: vec![("authorization", header.into())],
            })
        }
    }
}

async fn refund(args: RefundArgs) -> Result<Success, Failure> {
    let payment = match &args.payment_transaction_id {
        Some(tx) => PaymentRef::item(tx).in_payment(&args.payment_id),
        None => {
            if args.reason.is_some() || args.description.is_some() {
                return Err(Failure::usage(
                    "iyzico's payment-level refund (/v2/payment/refund) takes no reason or \
                     description: nothing was sent. Refund the lines one by one with \
                     --payment-transaction-id to record a reason, or drop --reason and \
                     --description",
                ));
            }
            PaymentRef::payment(&args.payment_id)
        }
    };
    let currency: Currency = args.currency.parse()?;
    let mut request = RefundRequest::builder(payment, Money::parse(&args.amount, currency)?);
    if let Some(ip) = &args.ip {
        request = request.extra("ip", ip);
    }
    if let Some(c) = &args.conversation_id {
        request = request.reference(c);
    }
    if let Some(reason) = args.reason {
        request = request.reason(reason.into());
    }
    if let Some(description) = &args.description {
        request = request.description(description);
    }
    let request = request.build()?;
    let iyzico = client_with(&args.connection, &args.secret_key)?;
    match iyzico.refund(&request).await {
        Ok(receipt) => super::refunded(NAME, &receipt),
        Err(e) => Err(Failure::provider(&e)
            .with_reference(request.reference())
            .with_lookup(|| lookup(&args.payment_id, &args.secret_key, &args.connection))),
    }
}

async fn cancel(args: CancelArgs) -> Result<Success, Failure> {
    let mut request = VoidRequest::builder(PaymentRef::payment(&args.payment_id));
    if let Some(ip) = &args.ip {
        request = request.extra("ip", ip);
    }
    if let Some(c) = &args.conversation_id {
        request = request.reference(c);
    }
    if let Some(reason) = args.reason {
        request = request.reason(reason.into());
    }
    if let Some(description) = &args.description {
        request = request.description(description);
    }
    let request = request.build()?;
    let iyzico = client_with(&args.connection, &args.secret_key)?;
    match iyzico.void(&request).await {
        Ok(receipt) => super::refunded(NAME, &receipt),
        Err(e) => Err(Failure::provider(&e)
            .with_reference(request.reference())
            .with_lookup(|| lookup(&args.payment_id, &args.secret_key, &args.connection))),
    }
}
