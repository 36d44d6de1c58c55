//! `refund sipay …`

use clap::{Args, Subcommand};
use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest};
use refund_sipay::{Sipay, SipayConfig, hash_key};
use secrecy::ExposeSecret;

use super::{Connection, Reason};
use crate::exit::Failure;
use crate::output::{Success, command_line};
use crate::secrets::{AppSecret, SipaySecrets};

const NAME: &str = "sipay";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Refund an amount of a payment (full, partial, or a same-day void of the whole amount).
    #[command(after_help = "Example:\n  \
        refund sipay refund --invoice-id INV-2026-0001 --amount 25.00 --reference order-42-refund-1")]
    Refund(RefundArgs),
    /// Show how much of a payment has been refunded, and by which references.
    #[command(after_help = "Example:\n  refund sipay status --invoice-id INV-2026-0001")]
    Status(StatusArgs),
    /// Print the hash_key SiPay expects for a refund of exactly this amount text.
    #[command(after_help = "Example:\n  \
        refund sipay hash-key --amount 100.50 --invoice-id INV-2026-0001 --app-secret-file ~/.sipay/app-secret")]
    HashKey(HashKeyArgs),
    /// Decrypt a hash_key and print its fields (`amount|invoice_id|merchant_key` for a refund).
    #[command(after_help = "Example:\n  refund sipay verify-hash-key --hash-key 'a1b2c3:d4e5f6:…'")]
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
    /// Not for SiPay: its refund API has no reason field, so a refund with one is refused and
    /// nothing is sent. Keep the reason on your side (iyzico records it).
    #[arg(long, value_enum)]
    reason: Option<Reason>,
    /// Not for SiPay: its refund API has no description field, so a refund with one is refused
    /// and nothing is sent.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    secrets: SipaySecrets,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The payment's invoice_id.
    #[arg(long)]
    invoice_id: String,
    #[command(flatten)]
    secrets: SipaySecrets,
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
    #[command(flatten)]
    secrets: SipaySecrets,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The hash_key to decrypt.
    #[arg(long)]
    hash_key: String,
    #[command(flatten)]
    app_secret: AppSecret,
}

/// A client from the environment (`SIPAY_*`), as `refund batch` builds it.
pub(crate) fn client(connection: &Connection) -> Result<Sipay, Failure> {
    configured(SipayConfig::from_env()?, connection)
}

/// A client whose secrets come from `secrets` (a file, else the environment).
fn client_with(connection: &Connection, secrets: &SipaySecrets) -> Result<Sipay, Failure> {
    let app_secret = secrets.app_secret.require()?;
    let merchant_key = secrets.merchant_key.require()?;
    let config = SipayConfig::from_lookup(|name| match name {
        "SIPAY_APP_SECRET" => Some(app_secret.expose_secret().to_owned()),
        "SIPAY_MERCHANT_KEY" => Some(merchant_key.expose_secret().to_owned()),
        _ => std::env::var(name).ok(),
    })?;
    configured(config, connection)
}

fn configured(mut config: SipayConfig, connection: &Connection) -> Result<Sipay, Failure> {
    if let Some(url) = &connection.base_url {
        config = config.with_base_url(url)?;
    }
    if let Some(settle_time) = connection.settle_time() {
        config = config.with_settle_time(settle_time);
    }
    Ok(Sipay::new(config.with_timeout(connection.timeout()))?)
}

/// The `refund sipay status` command that shows a payment's refunds, with the same base URL
/// and secret files.
fn lookup(invoice_id: &str, secrets: &SipaySecrets, connection: &Connection) -> String {
    let mut words: Vec<String> = ["refund", "sipay", "status", "--invoice-id", invoice_id]
        .map(str::to_owned)
        .into();
    if let Some(url) = &connection.base_url {
        words.extend(["--base-url".to_owned(), url.clone()]);
    }
    words.extend(secrets.file_args());
    command_line(words)
}

pub(crate) async fn run(command: Command) -> Result<Success, Failure> {
    dispatch(command).await.map_err(|f| f.in_provider(NAME))
}

async fn dispatch(command: Command) -> Result<Success, Failure> {
    match command {
        Command::Refund(args) => refund(args).await,
        Command::Status(args) => {
            let sipay = client_with(&args.connection, &args.secrets)?;
            let state = sipay
                .refund_state(&PaymentRef::payment(&args.invoice_id))
                .await
                .map_err(|e| {
                    Failure::provider(&e)
                        .with_lookup(|| lookup(&args.invoice_id, &args.secrets, &args.connection))
                })?;
            super::status(NAME, &state)
        }
        Command::HashKey(args) => {
            let app_secret = args.secrets.app_secret.require()?;
            let merchant_key = args.secrets.merchant_key.require()?;
            let key = hash_key::generate(
                app_secret.expose_secret(),
                &[&args.amount, &args.invoice_id, merchant_key.expose_secret()],
            );
            Ok(Success {
                kind: "hash_key",
                provider: Some(NAME),
                message: format!("hash_key for {} of {}", args.amount, args.invoice_id),
                reference: None,
                text: key.clone(),
                data: vec![("hash_key", key.into())],
            })
        }
        Command::VerifyHashKey(args) => {
            let app_secret = args.app_secret.require()?;
            let fields = hash_key::validate_hash_key(&args.hash_key, app_secret.expose_secret())
                .map_err(|e| Failure::invalid(format!("hash_key: {e}")))?;
            Ok(Success {
                kind: "hash_key_fields",
                provider: Some(NAME),
                message: format!("the hash_key holds {} fields", fields.len()),
                reference: None,
                text: fields.join("|"),
                data: vec![("fields", fields.into())],
            })
        }
    }
}

async fn refund(args: RefundArgs) -> Result<Success, Failure> {
    if args.reason.is_some() || args.description.is_some() {
        return Err(Failure::usage(
            "SiPay's refund API has no reason or description field: nothing was sent. Drop \
             --reason and --description, and keep the reason on your side",
        ));
    }
    let currency: Currency = args.currency.parse()?;
    let mut request = RefundRequest::builder(
        PaymentRef::payment(&args.invoice_id),
        Money::parse(&args.amount, currency)?,
    );
    if let Some(r) = &args.reference {
        request = request.reference(r);
    }
    let request = request.build()?;
    let sipay = client_with(&args.connection, &args.secrets)?;
    match sipay.refund(&request).await {
        Ok(receipt) => super::refunded(NAME, &receipt),
        Err(e) => Err(Failure::provider(&e)
            .with_reference(request.reference())
            .with_lookup(|| lookup(&args.invoice_id, &args.secrets, &args.connection))),
    }
}
