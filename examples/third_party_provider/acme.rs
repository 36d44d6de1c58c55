//! "acme": a refund provider written the way an outside crate (PayTR, Param, Craftgate, …)
//! would write one, proved with the conformance suite. See `docs/writing-a-provider.md`.
//!
//! Three parts, as in a real provider crate:
//! - [`Acme`] and [`AcmeConfig`]: the client, which implements [`RefundProvider`];
//! - [`FakeAcmeApi`]: an in-memory stand-in for Acme's servers, so the example needs no
//!   network (the suite does not care how requests travel);
//! - [`AcmeHarness`]: what the conformance suite needs to drive the fake.
//!
//! In a real crate the client would be `pub` and live in `src/`, the fake and the harness in
//! `tests/` (or a `testing` module behind a feature). Here everything is `pub(crate)`
//! because the file is compiled into an example and into `tests/conformance.rs`.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use refund_core::{
    Capabilities, Currency, Money, Operation, PaymentRef, RefundError, RefundProvider,
    RefundReceipt, RefundRecord, RefundRequest, RefundState, RefundStatus, async_trait,
};
use refund_testkit::conformance::{Fault, Harness, HarnessError, Scenario, Skip};
use serde_json::{Value, json};

const NAME: &str = "acme";
const CAPABILITIES: Capabilities = Capabilities::new(&[Currency::Try])
    .with_partial_refunds(true)
    .with_refund_lookup(true);

// ---------------------------------------------------------------------------------------
// The client.

/// A credential: printed as `[REDACTED]`, readable only through [`Secret::expose`], which is
/// called at the one line that signs. (A real crate would use `secrecy::SecretString`.)
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// What the user configures: a merchant id, two secrets, a timeout.
#[derive(Clone, Debug)]
pub(crate) struct AcmeConfig {
    merchant_id: String,
    merchant_key: Secret,
    merchant_salt: Secret,
    timeout: Duration,
}

impl AcmeConfig {
    pub(crate) fn new(
        merchant_id: impl Into<String>,
        merchant_key: impl Into<String>,
        merchant_salt: impl Into<String>,
    ) -> Self {
        AcmeConfig {
            merchant_id: merchant_id.into(),
            merchant_key: Secret(merchant_key.into()),
            merchant_salt: Secret(merchant_salt.into()),
            timeout: Duration::from_secs(30),
        }
    }

    pub(crate) fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// How a request travels. A real crate would use `refund_core::http` (reqwest); the fake
/// implements this trait directly, which shows the suite is transport-agnostic.
#[async_trait]
pub(crate) trait Transport: Send + Sync + fmt::Debug {
    /// Sends `body` to `path`; the HTTP status and body of the answer.
    async fn post(&self, path: &str, body: Value) -> Result<(u16, String), TransportError>;
}

/// How a transport can fail.
#[derive(Debug)]
pub(crate) enum TransportError {
    /// The connection was refused: nothing was sent.
    Refused,
    /// The connection dropped after the request was sent: anything may have happened.
    Dropped,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportError::Refused => "connection refused",
            TransportError::Dropped => "connection dropped before the response",
        })
    }
}

impl std::error::Error for TransportError {}

/// The Acme client: cheap to clone, shared across tasks.
#[derive(Clone, Debug)]
pub(crate) struct Acme {
    config: Arc<AcmeConfig>,
    transport: Arc<dyn Transport>,
}

impl Acme {
    pub(crate) fn new(config: AcmeConfig, transport: Arc<dyn Transport>) -> Self {
        Acme {
            config: Arc::new(config),
            transport,
        }
    }

    /// Acme's request signature over the given fields.
    fn token(&self, fields: &[&str]) -> String {
        sign(
            self.config.merchant_key.expose(),
            self.config.merchant_salt.expose(),
            fields,
        )
    }

    /// Sends one request and classifies every way it can fail. `applies` says whether the
    /// request moves money: if so, anything short of a readable answer is outcome-unknown.
    async fn call(&self, path: &str, body: Value) -> Result<Value, RefundError> {
        let sent = tokio::time::timeout(self.config.timeout, self.transport.post(path, body));
        let (status, text) = match sent.await {
            Err(_) => {
                return Err(RefundError::outcome_unknown(
                    NAME,
                    format!("no answer within {} ms", self.config.timeout.as_millis()),
                ));
            }
            Ok(Err(TransportError::Refused)) => {
                return Err(RefundError::Unreachable {
                    provider: NAME,
                    source: Box::new(TransportError::Refused),
                });
            }
            Ok(Err(e @ TransportError::Dropped)) => {
                return Err(RefundError::outcome_unknown_from(
                    NAME,
                    "the connection dropped",
                    e,
                ));
            }
            Ok(Ok(answer)) => answer,
        };
        match status {
            200 => {}
            401 | 403 => return Err(RefundError::authentication(NAME, status.to_string(), "")),
            429 => {
                return Err(RefundError::RateLimited {
                    provider: NAME,
                    retry_after: None,
                });
            }
            _ => {
                return Err(RefundError::outcome_unknown(NAME, format!("HTTP {status}")));
            }
        }
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| RefundError::outcome_unknown(NAME, format!("unreadable answer: {e}")))?;
        match body["status"].as_str() {
            Some("success") => Ok(body),
            Some("error") => Err(RefundError::declined(
                NAME,
                body["err_no"].as_str().unwrap_or("?"),
                body["err_msg"].as_str().unwrap_or(""),
            )),
            _ => Err(RefundError::outcome_unknown(
                NAME,
                "the answer has no status",
            )),
        }
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

    #[tracing::instrument(
        name = "acme.refund",
        skip_all,
        fields(provider = NAME, payment = %request.payment(), reference = %request.reference(),
               amount = %request.amount(), outcome = tracing::field::Empty)
    )]
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        // 1. Validate everything locally, before anything is sent.
        CAPABILITIES.check(NAME, request)?;
        // 2. Build and sign the wire request; amounts travel as exact decimal strings.
        let oid = request.payment().id();
        let amount = request.amount().amount().to_string();
        let reference = request.reference().as_str();
        let body = json!({
            "merchant_id": self.config.merchant_id,
            "merchant_oid": oid,
            "return_amount": amount,
            "reference_no": reference,
            "paytr_token": self.token(&[&self.config.merchant_id, oid, &amount]),
        });
        tracing::debug!("sending the refund");
        // 3. Send, classify, map the answer onto a receipt.
        let result = self.call("/odeme/iade", body).await.and_then(|answer| {
            let refunded = answer["return_amount"]
                .as_str()
                .and_then(|s| Money::parse(s, request.amount().currency()).ok());
            if refunded != Some(request.amount()) {
                // The refund happened, but not as asked: never report a receipt we cannot trust.
                return Err(RefundError::outcome_unknown(
                    NAME,
                    "the answer's amount differs from the request's",
                ));
            }
            Ok(RefundReceipt::new(
                NAME,
                Operation::Refund,
                request.payment().clone(),
                request.reference().clone(),
                request.amount(),
                RefundStatus::Completed,
            )
            .with_raw(answer))
        });
        let outcome = match &result {
            Ok(_) => "refunded",
            Err(e) if e.is_outcome_known() => "refused",
            Err(_) => "unknown",
        };
        tracing::Span::current().record("outcome", outcome);
        result
    }

    #[tracing::instrument(name = "acme.refund_state", skip_all, fields(provider = NAME, payment = %payment))]
    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        CAPABILITIES.check_scope(NAME, payment)?;
        let oid = payment.id();
        let body = json!({
            "merchant_id": self.config.merchant_id,
            "merchant_oid": oid,
            "paytr_token": self.token(&[&self.config.merchant_id, oid]),
        });
        let answer = self.call("/odeme/iade-durum", body).await?;
        let money = |v: &Value| {
            v.as_str()
                .and_then(|s| Money::parse(s, Currency::Try).ok())
                .ok_or_else(|| RefundError::outcome_unknown(NAME, "unreadable amount in lookup"))
        };
        let mut refunded = Money::zero(Currency::Try);
        let mut state = RefundState::new(payment.clone(), refunded)
            .with_paid(money(&answer["payment_amount"])?);
        for r in answer["returns"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let amount = money(&r["return_amount"])?;
            let status = match r["status"].as_str() {
                Some("success") => RefundStatus::Completed,
                Some("failed") => RefundStatus::Failed,
                // A status Acme does not document: the lookup cannot tell what happened.
                _ => {
                    return Ok(RefundState::new(payment.clone(), refunded)
                        .with_undetermined("a return with an unknown status"));
                }
            };
            if status.is_applied() {
                refunded = refunded
                    .checked_add(&amount)
                    .map_err(|e| RefundError::outcome_unknown(NAME, e.to_string()))?;
            }
            let mut record = RefundRecord::new(amount).with_status(status);
            if let Some(reference) = r["reference_no"].as_str() {
                record = record.with_reference(reference);
            }
            state = state.with_record(record);
        }
        state.refunded = refunded;
        Ok(state)
    }
}

/// Acme's toy request signature. NOT cryptographic: a real provider (PayTR) uses
/// base64(HMAC-SHA256(key, fields + salt)); use the `hmac` and `sha2` crates for that.
fn sign(key: &str, salt: &str, fields: &[&str]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (key, fields, salt).hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

// ---------------------------------------------------------------------------------------
// The fake Acme API: payments, refunds, faults, request counts. In-memory and atomic.

#[derive(Debug)]
struct Payment {
    paid: Money,
    refunds: Vec<(String, Money)>,
    /// Refunds the bank refused: listed by the lookup with `"status": "failed"`.
    failed: Vec<(String, Money)>,
}

#[derive(Debug, Default)]
struct Books {
    payments: HashMap<String, Payment>,
    next_id: u64,
    fault: Option<Fault>,
}

/// Acme's servers, in memory: they check the signature, keep the ledger and refuse
/// over-refunds, and can be told to fail the next refund.
pub(crate) struct FakeAcmeApi {
    merchant_id: String,
    merchant_key: String,
    merchant_salt: String,
    books: Mutex<Books>,
    requests: AtomicUsize,
    refund_requests: AtomicUsize,
}

// The fake is the client's transport, so it shows up in the client's `Debug`: it must not
// print the keys it checks signatures with. (The conformance suite caught exactly this.)
impl fmt::Debug for FakeAcmeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeAcmeApi")
            .field("merchant_id", &self.merchant_id)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl FakeAcmeApi {
    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(code: &str, message: &str) -> (u16, String) {
        (
            200,
            json!({"status": "error", "err_no": code, "err_msg": message}).to_string(),
        )
    }

    fn refund(&self, body: &Value) -> (u16, String) {
        let field = |name: &str| body[name].as_str().unwrap_or_default();
        let (oid, amount_text) = (field("merchant_oid"), field("return_amount"));
        let expected = sign(
            &self.merchant_key,
            &self.merchant_salt,
            &[field("merchant_id"), oid, amount_text],
        );
        if field("merchant_id") != self.merchant_id || field("paytr_token") != expected {
            return (
                401,
                json!({"status": "error", "err_msg": "bad token"}).to_string(),
            );
        }
        let Ok(amount) = Money::parse(amount_text, Currency::Try) else {
            return Self::error("002", "invalid return_amount");
        };
        let mut books = self.books();
        let Some(payment) = books.payments.get_mut(oid) else {
            return Self::error("004", "no payment with this merchant_oid");
        };
        let refunded = payment
            .refunds
            .iter()
            .try_fold(Money::zero(Currency::Try), |sum, (_, m)| sum.checked_add(m));
        let Ok(after) = refunded.and_then(|r| r.checked_add(&amount)) else {
            return Self::error("005", "amount overflow");
        };
        if after > payment.paid {
            return Self::error("006", "the refund exceeds what is left of the payment");
        }
        payment
            .refunds
            .push((field("reference_no").to_owned(), amount));
        (
            200,
            json!({"status": "success", "merchant_oid": oid, "return_amount": amount_text})
                .to_string(),
        )
    }

    /// The bank refused the refund: it is listed as failed, nothing is refunded.
    fn fail_refund(&self, body: &Value) {
        let field = |name: &str| body[name].as_str().unwrap_or_default();
        let Ok(amount) = Money::parse(field("return_amount"), Currency::Try) else {
            return;
        };
        if let Some(payment) = self.books().payments.get_mut(field("merchant_oid")) {
            payment
                .failed
                .push((field("reference_no").to_owned(), amount));
        }
    }

    fn refund_status(&self, body: &Value) -> (u16, String) {
        let field = |name: &str| body[name].as_str().unwrap_or_default();
        let oid = field("merchant_oid");
        let expected = sign(
            &self.merchant_key,
            &self.merchant_salt,
            &[field("merchant_id"), oid],
        );
        if field("paytr_token") != expected {
            return (
                401,
                json!({"status": "error", "err_msg": "bad token"}).to_string(),
            );
        }
        let books = self.books();
        let Some(payment) = books.payments.get(oid) else {
            return Self::error("004", "no payment with this merchant_oid");
        };
        let entry = |status: &str, (reference, amount): &(String, Money)| {
            json!({"reference_no": reference, "return_amount": amount.amount().to_string(),
                   "status": status})
        };
        let returns: Vec<Value> = payment
            .refunds
            .iter()
            .map(|r| entry("success", r))
            .chain(payment.failed.iter().map(|r| entry("failed", r)))
            .collect();
        (
            200,
            json!({"status": "success", "payment_amount": payment.paid.amount().to_string(),
                   "returns": returns})
            .to_string(),
        )
    }
}

#[async_trait]
impl Transport for FakeAcmeApi {
    async fn post(&self, path: &str, body: Value) -> Result<(u16, String), TransportError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        match path {
            "/odeme/iade" => {
                self.refund_requests.fetch_add(1, Ordering::SeqCst);
                let fault = self.books().fault.take();
                match fault {
                    Some(Fault::Timeout) => {
                        // Answer long after any sensible client timeout; the client gives up
                        // first and drops this future, so the refund is never applied.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(self.refund(&body))
                    }
                    Some(Fault::LostResponse) => {
                        let _applied = self.refund(&body);
                        Err(TransportError::Dropped)
                    }
                    Some(Fault::ServerError) => Ok((
                        500,
                        "<html><body>Internal Server Error</body></html>".into(),
                    )),
                    Some(Fault::FailedResponseLost) => {
                        self.fail_refund(&body);
                        Err(TransportError::Dropped)
                    }
                    _ => Ok(self.refund(&body)),
                }
            }
            "/odeme/iade-durum" => Ok(self.refund_status(&body)),
            _ => Ok((404, String::new())),
        }
    }
}

/// A transport whose every connection is refused: an Acme pointed at a closed port.
#[derive(Debug)]
struct Closed;

#[async_trait]
impl Transport for Closed {
    async fn post(&self, _path: &str, _body: Value) -> Result<(u16, String), TransportError> {
        Err(TransportError::Refused)
    }
}

// ---------------------------------------------------------------------------------------
// The conformance harness.

/// Drives [`FakeAcmeApi`] for the conformance suite.
#[derive(Debug)]
pub(crate) struct AcmeHarness {
    api: Arc<FakeAcmeApi>,
    config: AcmeConfig,
}

impl AcmeHarness {
    const MERCHANT_ID: &'static str = "100200";
    const MERCHANT_KEY: &'static str = "acme-merchant-key-5f0c2e9b71d4";
    const MERCHANT_SALT: &'static str = "acme-merchant-salt-a83e61c0";

    /// A fresh fake, and a client configured for it with a 1 s timeout so the timeout
    /// scenario stays fast.
    pub(crate) fn new() -> Self {
        let api = Arc::new(FakeAcmeApi {
            merchant_id: Self::MERCHANT_ID.into(),
            merchant_key: Self::MERCHANT_KEY.into(),
            merchant_salt: Self::MERCHANT_SALT.into(),
            books: Mutex::default(),
            requests: AtomicUsize::new(0),
            refund_requests: AtomicUsize::new(0),
        });
        let config = AcmeConfig::new(Self::MERCHANT_ID, Self::MERCHANT_KEY, Self::MERCHANT_SALT)
            .with_timeout(Duration::from_secs(1));
        AcmeHarness { api, config }
    }

    /// The client under test.
    pub(crate) fn provider(&self) -> Acme {
        Acme::new(self.config.clone(), self.api.clone())
    }
}

#[async_trait]
impl Harness for AcmeHarness {
    async fn seed_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError> {
        let mut books = self.api.books();
        books.next_id += 1;
        let oid = format!("ACME{:06}", books.next_id);
        books.payments.insert(
            oid.clone(),
            Payment {
                paid: amount,
                refunds: Vec::new(),
                failed: Vec::new(),
            },
        );
        Ok(PaymentRef::payment(oid))
    }

    async fn refunded_total(&self, payment: &PaymentRef) -> Result<Money, HarnessError> {
        let books = self.api.books();
        let entry = books
            .payments
            .get(payment.id())
            .ok_or_else(|| HarnessError::failed(format!("no payment {payment}")))?;
        entry
            .refunds
            .iter()
            .try_fold(Money::zero(entry.paid.currency()), |sum, (_, m)| {
                sum.checked_add(m)
            })
            .map_err(HarnessError::failed)
    }

    async fn arm_fault(&self, fault: Fault) -> Result<(), HarnessError> {
        self.api.books().fault = Some(fault);
        Ok(())
    }

    fn requests_sent(&self) -> usize {
        self.api.requests.load(Ordering::SeqCst)
    }

    fn refund_requests_sent(&self) -> usize {
        self.api.refund_requests.load(Ordering::SeqCst)
    }

    fn secrets(&self) -> Vec<String> {
        vec![Self::MERCHANT_KEY.into(), Self::MERCHANT_SALT.into()]
    }

    fn unreachable_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        Some(Arc::new(Acme::new(self.config.clone(), Arc::new(Closed))))
    }

    fn skips(&self) -> Vec<Skip> {
        // The in-memory transport runs inside the client's future: when the client gives up,
        // the fake's work is dropped with it, so it can neither apply late nor lag.
        let why = "acme's in-memory fake runs inside the client's future and cannot apply a \
                   refund after the client gave up, nor hide one from lookups";
        vec![
            Skip::new(Scenario::LateApplicationIsNotResent, why),
            Skip::new(Scenario::LaggingLookupIsNotProof, why),
        ]
    }
}
