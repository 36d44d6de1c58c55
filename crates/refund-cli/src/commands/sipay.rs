//! `refund sipay …`

use clap::{Args, Subcommand};
use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest};
use refund_sipay::{Sipay, SipayConfig, hash_key};
use secrecy::ExposeSecret;

use super::{Connection, Reason};
use crate::exit::Failure;
use crate::output::{Success, command_line};
use crate::secrets::{AppSecret, MerchantKey, SipaySecrets};

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
    /// Decrypt a hash_key and show what SiPay will read in it: the fields that are not secret
    /// (`amount|invoice_id|…`), and whether its merchant key part matches the configured one
    /// (SIPAY_MERCHANT_KEY or --merchant-key-file), shown only masked (its first 4 characters
    /// and its length): the decrypted merchant key is never printed.
    #[command(after_help = "Example:\n  refund sipay verify-hash-key --hash-key 'a1b2c3:d4e5f6:…'")]
    VerifyHashKey(VerifyArgs),
    /// Verify a refund notification SiPay posted to the refund webhook, and show what it says.
    /// The raw form body comes on stdin, or the posted fields as --field NAME=VALUE.
    #[command(after_help = "Example:\n  \
        refund sipay verify-notification --app-secret-file ~/.sipay/app-secret < body.txt")]
    VerifyNotification(VerifyNotificationArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyNotificationArgs {
    /// A posted field as NAME=VALUE, repeated for each (invoice_id, order_id, amount, status,
    /// hash_key); without any, the raw application/x-www-form-urlencoded body is read from
    /// stdin.
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// The currency of the amount: the notification names none.
    #[arg(long, default_value = "TRY")]
    currency: String,
    #[command(flatten)]
    app_secret: AppSecret,
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
    #[command(flatten)]
    merchant_key: MerchantKey,
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

/// `refund sipay status` on a lookup whose answer cannot say what was refunded
/// ([`RefundState::undetermined`](refund_core::RefundState::undetermined)): no figure is shown
/// as if known (not even "0.00 refunded"); exit 4 ([`Code::Unknown`](crate::exit::Code)),
/// `outcome_known: false`, and a message that says undetermined and why. `None` for a state
/// that says what was refunded.
fn undetermined(state: &refund_core::RefundState) -> Option<Failure> {
    let reason = state.undetermined.as_deref()?;
    let mut failure = Failure::provider(&refund_core::RefundError::outcome_unknown(NAME, reason));
    failure.message = format!(
        "the refund state of invoice {} is undetermined: {reason}. SiPay's answer does not say how \
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
        Command::Status(args) => {
            let sipay = client_with(&args.connection, &args.secrets)?;
            let state = sipay
                .refund_state(&PaymentRef::payment(&args.invoice_id))
                .await
                .map_err(|e| {
                    Failure::provider(&e)
                        .with_lookup(|| lookup(&args.invoice_id, &args.secrets, &args.connection))
                })?;
            if let Some(failure) = undetermined(&state) {
                return Err(failure);
            }
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
        Command::VerifyNotification(args) => {
            let stdin = std::io::stdin();
            let body = if args.fields.is_empty() {
                if std::io::IsTerminal::is_terminal(&stdin) {
                    return Err(Failure::usage(
                        "pipe the notification's form body on stdin, or give the fields as \
                         --field NAME=VALUE",
                    ));
                }
                Some(read_body(stdin.lock())?)
            } else {
                None
            };
            verify_notification(&args, body.as_deref())
        }
        Command::VerifyHashKey(args) => {
            let app_secret = args.app_secret.require()?;
            let fields = hash_key::validate_hash_key(&args.hash_key, app_secret.expose_secret())
                .map_err(|e| Failure::invalid(format!("hash_key: {e}")))?;
            // A missing or unreadable merchant key only means there is nothing to compare with:
            // the decrypted fields are still worth showing (masked).
            let configured = args.merchant_key.require();
            let configured = match &configured {
                Ok(key) => Ok(key.expose_secret()),
                Err(failure) => Err(failure.message.as_str()),
            };
            Ok(verified_fields(&fields, configured))
        }
    }
}

/// How many leading characters of a merchant key [`mask`] shows.
const MASK_SHOWN: usize = 4;

/// `$2y$… (60 characters)`: a secret's first [`MASK_SHOWN`] characters and its length,
/// enough to tell two keys apart by eye, never enough to use one.
fn mask(secret: &str) -> String {
    let length = secret.chars().count();
    let shown: String = secret.chars().take(MASK_SHOWN.min(length / 4)).collect();
    let unit = if length == 1 {
        "character"
    } else {
        "characters"
    };
    format!("{shown}… ({length} {unit})")
}

/// Whether `field` looks like a SiPay merchant key (a bcrypt-style `$2y$10$…` string).
fn looks_like_merchant_key(field: &str) -> bool {
    ["$2y$", "$2a$", "$2b$"]
        .iter()
        .any(|prefix| field.starts_with(prefix))
}

/// Which of a decrypted hash_key's fields is its merchant key part: the one equal to the
/// configured key, else the one the layout puts there (`amount|invoice_id|merchant_key` for a
/// refund, `total|installments|currency|merchant_key|invoice_id` for a payment), else one that
/// looks like a merchant key.
fn merchant_key_index(fields: &[String], configured: Option<&str>) -> Option<usize> {
    if let Some(key) = configured
        && let Some(index) = fields.iter().position(|f| f == key)
    {
        return Some(index);
    }
    match fields.len() {
        3 => Some(2),
        5 => Some(3),
        _ => fields.iter().position(|f| looks_like_merchant_key(f)),
    }
}

/// `verify-hash-key`'s answer: the fields with the merchant key part (and anything else that
/// looks like a merchant key) masked, and whether that part matches `configured` (the
/// configured merchant key, or why there is none).
fn verified_fields(fields: &[String], configured: Result<&str, &str>) -> Success {
    let index = merchant_key_index(fields, configured.ok());
    let shown: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(n, field)| {
            if Some(n) == index || looks_like_merchant_key(field) {
                mask(field)
            } else {
                field.clone()
            }
        })
        .collect();
    let matches = match (index, configured) {
        (Some(n), Ok(key)) => Some(fields.get(n).is_some_and(|f| f == key)),
        _ => None,
    };
    let verdict = match (index, matches, configured) {
        (None, _, _) => "no field of it is a merchant key".to_owned(),
        (Some(_), Some(true), _) => {
            "its merchant key part matches the configured merchant key".to_owned()
        }
        (Some(_), Some(false), Ok(key)) => format!(
            "its merchant key part does NOT match the configured merchant key {}",
            mask(key)
        ),
        (Some(_), _, Err(why)) => format!("no merchant key to compare with: {why}"),
        (Some(_), _, Ok(_)) => "its merchant key part cannot be compared".to_owned(),
    };
    let message = format!("the hash_key holds {} fields; {verdict}", fields.len());
    let mut text = shown.join("|");
    text.push('\n');
    text.push_str(&verdict);
    Success {
        kind: "hash_key_fields",
        provider: Some(NAME),
        message,
        reference: None,
        text,
        data: vec![
            ("fields", shown.into()),
            ("merchant_key_field", index.into()),
            ("merchant_key_matches", matches.into()),
        ],
    }
}

/// The most of stdin `verify-notification` reads (a notification is a few hundred bytes).
const MAX_NOTIFICATION: u64 = 64 * 1024;

fn read_body(input: impl std::io::Read) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut input.take(MAX_NOTIFICATION + 1), &mut body)
        .map_err(|e| Failure::other(format!("reading stdin: {e}")))?;
    if body.len() as u64 > MAX_NOTIFICATION {
        return Err(Failure::usage(
            "the notification on stdin is larger than 64 KiB",
        ));
    }
    Ok(body)
}

/// Verifies the notification in `body` (the raw form body; surrounding whitespace, such as
/// the newline of `echo`, is ignored) or, without one, in `args.fields`.
fn verify_notification(
    args: &VerifyNotificationArgs,
    body: Option<&[u8]>,
) -> Result<Success, Failure> {
    use refund_core::NotificationStatus;
    use refund_sipay::notification::NotificationVerifier;

    let app_secret = args.app_secret.require()?;
    let currency: Currency = args.currency.parse()?;
    let verifier = NotificationVerifier::new(app_secret.expose_secret()).with_currency(currency);
    let verified = match body {
        Some(body) => verifier.verify_form(body.trim_ascii()),
        None => {
            let pairs = args
                .fields
                .iter()
                .map(|f| {
                    f.split_once('=').ok_or_else(|| {
                        Failure::usage("--field takes NAME=VALUE, e.g. --field amount=10.50")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            verifier.verify_fields(pairs)
        }
    }
    .map_err(Failure::invalid)?;
    let (status, completed) = match &verified.status {
        NotificationStatus::Completed => ("Completed".to_owned(), true),
        NotificationStatus::Unrecognised(s) => (s.clone(), false),
        other => (format!("{other:?}"), false),
    };
    let meaning = if completed {
        "completed: settles the pending refund of this amount on this invoice"
    } else {
        "a status nobody documents: settles nothing"
    };
    Ok(Success {
        kind: "refund_notification",
        provider: Some(NAME),
        message: format!(
            "verified: {status:?} for {} on invoice {}",
            verified.amount, verified.invoice_id
        ),
        reference: None,
        text: format!(
            "verified\ninvoice_id {}\norder_id   {}\namount     {}\nstatus     {status:?} ({meaning})",
            verified.invoice_id, verified.order_id, verified.amount
        ),
        data: vec![
            ("invoice_id", verified.invoice_id.clone().into()),
            ("order_id", verified.order_id.clone().into()),
            ("amount", verified.amount.amount().to_string().into()),
            ("currency", verified.amount.currency().code().into()),
            ("status", status.into()),
            ("completed", completed.into()),
        ],
    })
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

#[cfg(test)]
mod tests {
    use clap::Parser;
    use refund_testkit::notifications::SipayNotification;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: VerifyNotificationArgs,
    }

    /// The arguments, with the app secret in a file of its own.
    fn args(name: &str, secret: &str, extra: &[&str]) -> VerifyNotificationArgs {
        let dir = std::env::temp_dir().join(format!("refund-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app-secret");
        std::fs::write(&file, secret).unwrap();
        let mut words = vec!["t", "--app-secret-file", file.to_str().unwrap()];
        words.extend(extra);
        Cli::try_parse_from(words).unwrap().args
    }

    fn value<'a>(success: &'a Success, name: &str) -> &'a serde_json::Value {
        &success.data.iter().find(|(k, _)| *k == name).unwrap().1
    }

    #[test]
    fn a_notification_body_or_its_fields_verify_and_show_what_they_say() {
        let n = SipayNotification::completed("INV-1", "VP1", "10.50");
        let body = format!("{}\n", n.form_body("s3cret"));
        let shown =
            verify_notification(&args("body", "s3cret", &[]), Some(body.as_bytes())).unwrap();
        assert_eq!(shown.kind, "refund_notification");
        assert_eq!(value(&shown, "amount"), "10.50");
        assert_eq!(value(&shown, "currency"), "TRY");
        assert_eq!(value(&shown, "status"), "Completed");
        assert_eq!(value(&shown, "completed"), true);
        assert!(
            shown.text.contains("settles the pending refund"),
            "{}",
            shown.text
        );

        let odd = n.with_status("Processing");
        let fields: Vec<String> = odd
            .fields("s3cret")
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut extra = vec!["--currency", "USD"];
        for f in &fields {
            extra.extend(["--field", f.as_str()]);
        }
        let shown = verify_notification(&args("fields", "s3cret", &extra), None).unwrap();
        assert_eq!(value(&shown, "status"), "Processing");
        assert_eq!(value(&shown, "completed"), false);
        assert_eq!(value(&shown, "currency"), "USD");
        assert!(shown.text.contains("settles nothing"));
    }

    #[test]
    fn a_refused_notification_is_an_invalid_input_without_the_secret() {
        let body = SipayNotification::completed("INV-1", "VP1", "10.50").form_body("s3cret");
        let tampered = body.replace("amount=10.50", "amount=90.50");
        for (name, secret, body) in [
            ("tampered", "s3cret", tampered.as_str()),
            ("foreign", "0ther-s3cret", body.as_str()),
        ] {
            let failure =
                verify_notification(&args(name, secret, &[]), Some(body.as_bytes())).unwrap_err();
            let text = format!("{} {failure:?}", failure.text());
            assert!(text.contains("refused"), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
        let bad = args("usage", "s3cret", &["--field", "amount"]);
        assert!(verify_notification(&bad, None).is_err());
        assert!(read_body(&[b'a'; 70 * 1024][..]).is_err());
    }
}
