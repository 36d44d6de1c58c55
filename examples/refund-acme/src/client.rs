//! The `RefundProvider`: validate → build → sign → send → map.

use std::sync::Arc;
use std::time::Duration;

use refund_core::http::reqwest::{Client, Url, header::CONTENT_TYPE};
use refund_core::http::{self, APPLICATION_JSON, HttpReply};
use refund_core::redact::scrub;
use refund_core::{
    Capabilities, Currency, Money, Operation, PaymentRef, RefundError, RefundProvider,
    RefundReceipt, RefundRecord, RefundRequest, RefundState, RefundStatus, async_trait,
};
use secrecy::ExposeSecret;
use serde::{Serialize, de::DeserializeOwned};
use tracing::{Instrument, Span, field};

use crate::config::AcmeConfig;
use crate::signature::{MERCHANT_HEADER, SIGNATURE_HEADER, sign};
use crate::wire;

/// The provider's name, on receipts, errors and spans.
pub const NAME: &str = "acme";

/// Partial and repeated refunds in TRY, USD and EUR, a lookup that lists every refund, a used
/// key refused (409). Acme documents no lookup lag: ten minutes, assumed.
pub const CAPABILITIES: Capabilities =
    Capabilities::new(&[Currency::Try, Currency::Usd, Currency::Eur])
        .with_partial_refunds(true)
        .with_refund_lookup(true)
        .with_reference_dedup(true)
        .with_settle_time(Duration::from_secs(10 * 60));

/// The Acme Pay client: built once, cheap to clone (an `Arc` inside), shared across tasks.
#[derive(Clone, Debug)]
pub struct Acme {
    inner: Arc<(AcmeConfig, Url, Client)>,
}

impl Acme {
    /// Checks the base URL and builds the HTTP client; nothing is sent.
    pub fn new(config: AcmeConfig) -> Result<Acme, RefundError> {
        let base = http::base_url(NAME, &config.base_url)?;
        let client = http::build_client(NAME, &config.http)?;
        Ok(Acme {
            inner: Arc::new((config, base, client)),
        })
    }

    /// Signs and sends one request; transport failures come back classified.
    async fn send(&self, path: &str, body: &impl Serialize) -> Result<HttpReply, RefundError> {
        let (config, base, client) = &*self.inner;
        let body = serde_json::to_vec(body).unwrap_or_default();
        // The secret is exposed to sign (and, in `read`, to scrub it from quoted text).
        let signature = sign(config.secret_key.expose_secret(), "POST", path, &body);
        let request = client
            .post(http::endpoint(base, path))
            .header(MERCHANT_HEADER, &config.merchant_id)
            .header(SIGNATURE_HEADER, signature)
            .header(CONTENT_TYPE, APPLICATION_JSON)
            .body(body);
        http::send(NAME, request, config.http.max_response_bytes).await
    }

    /// The answer as `T`, or the error it stands for.
    fn read<T: DeserializeOwned>(&self, reply: &HttpReply) -> Result<T, RefundError> {
        // Anything quoted from the answer is scrubbed: it may echo what was sent.
        let secrets = [self.inner.0.secret_key.expose_secret()];
        if reply.is_success() {
            let unreadable = |_| reply.unreadable(NAME, "an unreadable success", &secrets);
            return serde_json::from_slice(&reply.body).map_err(unreadable);
        }
        let Ok(wire::ErrorBody { error }) = serde_json::from_slice(&reply.body) else {
            // 429 (with its Retry-After), 401/403, a 5xx page: classified by status.
            return Err(reply.unreadable(NAME, "no Acme error body", &secrets));
        };
        let (code, message) = (error.code, scrub(&error.message, &secrets));
        Err(match (reply.status, code.as_str()) {
            (401 | 403, _) => RefundError::authentication(NAME, code, message),
            // An earlier attempt with this key reached Acme: look it up, never call it declined.
            (409, "reused_reference") => RefundError::duplicate_reference(NAME, code, message),
            (400..=499, "unknown_payment" | "over_refund" | "currency_mismatch" | "refused") => {
                RefundError::declined(NAME, code, message)
            }
            (status, _) => RefundError::outcome_unknown(NAME, format!("HTTP {status} {code}")),
        })
    }

    async fn do_refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        // 1. Validate before anything is sent: currency and scope.
        CAPABILITIES.check(NAME, request)?;
        // 2. Build: the amount at exactly the currency's scale, the reference as the key.
        let (amount, reference) = (request.amount(), request.reference().as_str());
        let body = wire::RefundBody {
            payment_id: request.payment().id().to_owned(),
            amount: amount.amount().to_string(),
            currency: amount.currency().code().to_owned(),
            idempotency_key: reference.to_owned(),
        };
        // 3. Sign and send.
        let reply = self.send("/v1/refunds", &body).await?;
        // 4. Map: a receipt only for an answer that says exactly what was asked.
        let answer: wire::Refund = self.read(&reply)?;
        if answer.status != "succeeded"
            || Money::parse(&answer.amount, amount.currency()).ok() != Some(amount)
            || answer.currency != body.currency
            || answer.idempotency_key.as_deref() != Some(reference)
        {
            let stated = format!("{} {} {}", answer.status, answer.amount, answer.currency);
            let why = format!("the answer ({stated}) is not the refund asked for ({amount})");
            return Err(RefundError::outcome_unknown(NAME, why));
        }
        let receipt = RefundReceipt::new(
            NAME,
            Operation::Refund,
            request.payment().clone(),
            request.reference().clone(),
            amount,
            RefundStatus::Completed,
        );
        Ok(receipt
            .with_provider_reference("refund_id", answer.id)
            .with_raw(reply.body))
    }

    async fn do_refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        CAPABILITIES.check_scope(NAME, payment)?;
        let payment_id = payment.id().to_owned();
        let reply = self
            .send("/v1/refunds/lookup", &wire::LookupBody { payment_id })
            .await?;
        let answer: wire::Lookup = self.read(&reply)?;
        let bad = |why: String| RefundError::outcome_unknown(NAME, format!("lookup: {why}"));
        let currency: Currency = answer.currency.parse().map_err(|_| bad(answer.currency))?;
        let money = |text: &str| Money::parse(text, currency).map_err(|e| bad(e.to_string()));
        let mut state = RefundState::new(payment.clone(), Money::zero(currency))
            .with_paid(money(&answer.amount)?);
        for entry in answer.refunds {
            let status = match entry.status.as_str() {
                "succeeded" => RefundStatus::Completed,
                "failed" => RefundStatus::Failed,
                // A status Acme does not document: this answer cannot say what was refunded.
                other => return Ok(state.with_undetermined(format!("a refund {other:?}"))),
            };
            let mut record = RefundRecord::new(money(&entry.amount)?)
                .with_status(status)
                .with_provider_reference(entry.id);
            if status == RefundStatus::Completed {
                let sum = state.refunded.checked_add(&record.amount);
                state.refunded = sum.map_err(|e| bad(e.to_string()))?;
            }
            if let Some(key) = entry.idempotency_key {
                record = record.with_reference(key);
            }
            state = state.with_record(record);
        }
        Ok(state)
    }
}

#[async_trait]
impl RefundProvider for Acme {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        let span = tracing::info_span!("acme.refund", provider = NAME, payment = %request.payment(),
            reference = %request.reference(), amount = %request.amount(), outcome = field::Empty);
        let result = self.do_refund(request).instrument(span.clone()).await;
        record(&span, result.as_ref().map(|_| "refunded"));
        result
    }

    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        let span = tracing::info_span!("acme.refund_state", provider = NAME, payment = %payment,
            outcome = field::Empty);
        let result = self.do_refund_state(payment).instrument(span.clone()).await;
        record(&span, result.as_ref().map(|_| "found"));
        result
    }
}

/// Records how the call ended as `outcome`: a word for a success, else [`RefundError::kind`].
fn record(span: &Span, result: Result<&'static str, &RefundError>) {
    span.record("outcome", result.unwrap_or_else(RefundError::kind));
}
