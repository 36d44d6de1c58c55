//! The [`RefundProvider`] for SiPay: build → sign → send → map.

use std::fmt;
use std::sync::Arc;

use refund_core::http::{self, HttpReply};
use refund_core::json::from_object;
use refund_core::redact::scrub;
use refund_core::{
    AmountFormat, Capabilities, Currency, DecimalAtScale, Money, Operation, PaymentRef,
    RefundError, RefundProvider, RefundReceipt, RefundRecord, RefundRequest, RefundState,
    RefundStatus, ValidationError, VoidSupport, async_trait,
};
use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, Span, field};

use crate::PROVIDER;
use crate::config::SipayConfig;
use crate::hash_key::HashKeySigner;
use crate::token::{Token, TokenCache};
use crate::wire::{
    Answer, CheckStatusBody, CheckStatusResponse, RefundBody, RefundResponse, StatusCode,
    TokenRequest, TokenResponse,
};

/// API paths, relative to the base URL.
pub(crate) const TOKEN_PATH: &str = "/ccpayment/api/token";
pub(crate) const REFUND_PATH: &str = "/ccpayment/api/refund";
pub(crate) const CHECK_STATUS_PATH: &str = "/ccpayment/api/checkstatus";

/// What SiPay can do through this crate.
///
/// - Currencies: TRY only. SiPay takes payments in other currencies too, but its refund body
///   carries no currency: a "10.00 USD" refund would be sent as a bare `10.00` against
///   whatever currency the payment was in. Until the client checks the payment's currency
///   first, only TRY is accepted.
/// - Partial refunds, repeatedly, up to the paid amount (the seed: a part sets the payment to
///   `partially_refund`).
/// - Voids: [`VoidSupport::ThroughRefund`] — "for same-day transactions, void operations are
///   processed by sending a request to the refund endpoint", so [`RefundProvider::void`]
///   answers unsupported and a same-day full refund is the void.
/// - Refund lookup: through `/ccpayment/api/checkstatus` with `show_refund_info`.
/// - No item-level refunds: SiPay refunds by `invoice_id`.
pub const CAPABILITIES: Capabilities = Capabilities::new(&[Currency::Try])
    .with_partial_refunds(true)
    .with_void(VoidSupport::ThroughRefund)
    .with_refund_lookup(true)
    .with_item_refunds(false);

/// A SiPay client: one per merchant account, cheap to clone (an `Arc` inside), safe to share
/// across tasks. It keeps one `reqwest::Client` (connections reused), one bearer token shared
/// by all calls, and the hash_key password derived once.
///
/// ```no_run
/// use refund_core::{Money, Currency, PaymentRef, RefundProvider, RefundRequest};
/// use refund_sipay::{Sipay, SipayConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let sipay = Sipay::new(SipayConfig::from_env()?)?;
/// let request = RefundRequest::builder(
///     PaymentRef::payment("INV-2026-0001"),
///     Money::parse("25.00", Currency::Try)?,
/// )
/// .reference("order-42-refund-1")
/// .build()?;
/// let receipt = sipay.refund(&request).await?;
/// println!("{:?} {:?}", receipt.status, receipt.provider_references);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sipay {
    inner: Arc<Inner>,
}

struct Inner {
    config: SipayConfig,
    http: reqwest::Client,
    max_bytes: usize,
    signer: HashKeySigner,
    tokens: TokenCache,
    token_url: Url,
    refund_url: Url,
    check_url: Url,
}

impl fmt::Debug for Sipay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sipay")
            .field("config", &self.inner.config)
            .field("tokens", &self.inner.tokens)
            .finish()
    }
}

impl Sipay {
    /// Checks the configuration and builds the client. Nothing is sent: the first token is
    /// fetched by the first call that needs one.
    pub fn new(config: SipayConfig) -> Result<Sipay, RefundError> {
        config.validate()?;
        let base = config.parsed_base_url()?;
        let http = match &config.client {
            Some(client) => client.clone(),
            None => http::build_client(PROVIDER, &config.http)?,
        };
        let signer = HashKeySigner::new(config.app_secret.expose_secret());
        Ok(Sipay {
            inner: Arc::new(Inner {
                max_bytes: config.http.max_response_bytes,
                tokens: TokenCache::new(config.token_lifetime),
                token_url: http::endpoint(&base, TOKEN_PATH),
                refund_url: http::endpoint(&base, REFUND_PATH),
                check_url: http::endpoint(&base, CHECK_STATUS_PATH),
                http,
                signer,
                config,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SipayConfig {
        &self.inner.config
    }

    /// How many token requests this client has started (shared by its clones).
    pub fn token_requests(&self) -> u64 {
        self.inner.tokens.fetches()
    }

    /// Interprets an answer to a refund (its HTTP status and body) exactly as
    /// [`refund`](RefundProvider::refund) does once the answer has arrived: the receipt, or the
    /// error with its class. Nothing is sent. For replaying an answer from a support ticket,
    /// and for fuzzing and benchmarking the response handling.
    ///
    /// ```
    /// # use refund_core::*;
    /// # use refund_sipay::{Sipay, SipayConfig};
    /// let sipay = Sipay::new(SipayConfig::new("app-id", "app-secret", "merchant-key"))?;
    /// let request = RefundRequest::builder(PaymentRef::payment("INV-1"), "0.50 TRY".parse()?).build()?;
    /// let body = br#"{"status_code":49,"status_description":"Refund Failed","invoice_id":"INV-1"}"#;
    /// let error = sipay.interpret_refund_answer(&request, 200, body).unwrap_err();
    /// assert_eq!(error.kind(), "declined");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn interpret_refund_answer(
        &self,
        request: &RefundRequest,
        status: u16,
        body: &[u8],
    ) -> Result<RefundReceipt, RefundError> {
        let reply = HttpReply::new(status, bytes::Bytes::copy_from_slice(body));
        self.map_refund(request, &reply, &Token::none())
    }

    /// Interprets an answer to a refund lookup (check status) exactly as
    /// [`refund_state`](RefundProvider::refund_state) does once it has arrived. Nothing is
    /// sent. For fuzzing, benchmarks and replaying support cases.
    pub fn interpret_lookup_answer(
        &self,
        payment: &PaymentRef,
        status: u16,
        body: &[u8],
    ) -> Result<RefundState, RefundError> {
        let reply = HttpReply::new(status, bytes::Bytes::copy_from_slice(body));
        self.map_check_status(payment, &reply, &Token::none())
    }

    /// Secrets to scrub from any text that came back (an error page may echo the request).
    fn secrets(&self) -> [&str; 2] {
        [
            self.inner.config.app_secret.expose_secret(),
            self.inner.config.merchant_key.expose_secret(),
        ]
    }

    /// [`secrets`](Self::secrets) plus the bearer token used.
    fn secrets_with<'a>(&'a self, token: &'a Token) -> [&'a str; 3] {
        let [a, b] = self.secrets();
        [a, b, token.expose()]
    }

    // ---------------------------------------------------------------- transport

    async fn post(
        &self,
        url: &Url,
        body: Vec<u8>,
        token: Option<&Token>,
    ) -> Result<HttpReply, RefundError> {
        let mut request = self
            .inner
            .http
            .post(url.clone())
            .header(ACCEPT, http::APPLICATION_JSON)
            .header(CONTENT_TYPE, http::APPLICATION_JSON)
            .body(body);
        if let Some(token) = token {
            // reqwest marks the header sensitive (kept out of its Debug output).
            request = request.bearer_auth(token.expose());
        }
        http::send(PROVIDER, request, self.inner.max_bytes).await
    }

    /// The current token, fetched single-flight when needed. Any failure here means the
    /// refund or lookup itself was never sent.
    async fn token(&self) -> Result<Token, RefundError> {
        self.inner
            .tokens
            .get(|| self.fetch_token())
            .await
            .map_err(not_sent)
    }

    async fn fetch_token(&self) -> Result<SecretString, RefundError> {
        let span = tracing::info_span!(
            "sipay.token",
            provider = PROVIDER,
            operation = "token",
            outcome = field::Empty,
        );
        let result = async {
            let body = to_json(&TokenRequest {
                app_id: &self.inner.config.app_id,
                app_secret: self.inner.config.app_secret.expose_secret(),
            })?;
            let reply = self.post(&self.inner.token_url, body, None).await?;
            self.map_token(&reply)
        }
        .instrument(span.clone())
        .await;
        record(&span, result.as_ref().map(|_| "token"));
        result
    }

    fn map_token(&self, reply: &HttpReply) -> Result<SecretString, RefundError> {
        let secrets = self.secrets();
        if reply.status == 429 {
            return Err(reply.unreadable(PROVIDER, "rate limited", &secrets));
        }
        let parsed: TokenResponse =
            from_object(&reply.body).map_err(|why| reply.unreadable(PROVIDER, why, &secrets))?;
        let Some(code) = parsed.status_code else {
            return Err(reply.unreadable(
                PROVIDER,
                "a token response without status_code",
                &secrets,
            ));
        };
        let description = describe(parsed.status_description.as_deref(), None, &secrets);
        if code.number() != Some(100) {
            // 30 "Invalid Credentials" (PHP SDK tests), 1 validation error, or anything else:
            // no token, so nothing can be sent. 5xx without a known code: the token service
            // is broken, which still means the refund was not sent (see `not_sent`).
            if reply.status >= 500 {
                return Err(RefundError::outcome_unknown(
                    PROVIDER,
                    format!(
                        "token request failed with HTTP {} ({code}): {description}",
                        reply.status
                    ),
                ));
            }
            return Err(RefundError::authentication(
                PROVIDER,
                code.as_str(),
                description,
            ));
        }
        match parsed.data.and_then(|d| d.token) {
            Some(token) if !token.trim().is_empty() && reply.is_success() => {
                Ok(SecretString::from(token))
            }
            _ => Err(RefundError::outcome_unknown(
                PROVIDER,
                format!(
                    "token response HTTP {} with status_code 100 but no token",
                    reply.status
                ),
            )),
        }
    }

    /// POSTs `body` with the bearer token. A 401 is answered by one token refresh and one
    /// resend (the 401 means the request was refused before it was processed, so resending
    /// is safe); a second 401 goes to the caller's mapping.
    async fn send_authorized(
        &self,
        url: &Url,
        body: Vec<u8>,
    ) -> Result<(HttpReply, Token), RefundError> {
        let token = self.token().await?;
        let reply = self.post(url, body.clone(), Some(&token)).await?;
        if reply.status != 401 {
            return Ok((reply, token));
        }
        tracing::info!(
            provider = PROVIDER,
            "HTTP 401: refreshing the token once and resending"
        );
        self.inner.tokens.invalidate(&token);
        let token = self.token().await?;
        let reply = self.post(url, body, Some(&token)).await?;
        Ok((reply, token))
    }

    // ---------------------------------------------------------------- refund

    async fn do_refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        CAPABILITIES.check(PROVIDER, request)?;
        let invoice_id = request.payment().id();
        check_invoice_id(invoice_id)?;
        // The amount string is computed once and used both in the hash and in the body.
        // Documents disagree on the hash: the English page lists "amount, invoice_id,
        // merchant_key, app_secret" as hash parameters, while its own sample and the PHP
        // reference encrypt `amount|invoice_id|merchant_key` with a key derived from the
        // app_secret. We follow the samples (docs/providers/sipay.md).
        let amount = DecimalAtScale.format(&request.amount());
        let merchant_key = self.inner.config.merchant_key.expose_secret();
        let hash_key = self
            .inner
            .signer
            .sign(&[amount.as_str(), invoice_id, merchant_key]);
        let body = to_json(&RefundBody {
            invoice_id,
            amount: &amount,
            app_id: &self.inner.config.app_id,
            app_secret: self.inner.config.app_secret.expose_secret(),
            merchant_key,
            hash_key: &hash_key,
            refund_transaction_id: request.reference().as_str(),
        })?;
        let (reply, token) = self.send_authorized(&self.inner.refund_url, body).await?;
        self.map_refund(request, &reply, &token)
    }

    /// What every answer goes through first: 429 is a rate limit, the body must be a JSON
    /// object of the expected shape carrying a status_code, and the description is scrubbed
    /// of `secrets`.
    fn read_answer<T: DeserializeOwned + Answer>(
        &self,
        reply: &HttpReply,
        secrets: &[&str],
    ) -> Result<(T, StatusCode, String), RefundError> {
        if reply.status == 429 {
            return Err(reply.unreadable(PROVIDER, "rate limited", secrets));
        }
        let parsed: T =
            from_object(&reply.body).map_err(|why| reply.unreadable(PROVIDER, why, secrets))?;
        let Some(code) = parsed.status_code().cloned() else {
            return Err(reply.unreadable(PROVIDER, "a response without status_code", secrets));
        };
        let description = describe(parsed.status_description(), parsed.message(), secrets);
        Ok((parsed, code, description))
    }

    fn map_refund(
        &self,
        request: &RefundRequest,
        reply: &HttpReply,
        token: &Token,
    ) -> Result<RefundReceipt, RefundError> {
        let secrets = self.secrets_with(token);
        let (parsed, code, description) = self.read_answer::<RefundResponse>(reply, &secrets)?;
        let status = match code.number() {
            Some(100) => RefundStatus::Completed,
            Some(101) => RefundStatus::Pending,
            _ => {
                return Err(classify_code(
                    &code,
                    &description,
                    reply.status,
                    Some(request.reference().as_str()),
                ));
            }
        };
        if !reply.is_success() {
            return Err(RefundError::outcome_unknown(
                PROVIDER,
                format!(
                    "HTTP {} with status_code {code} contradicts itself; look the refund up",
                    reply.status
                ),
            ));
        }
        check_echo(request, &parsed, &secrets)?;
        let mut receipt = RefundReceipt::new(
            PROVIDER,
            Operation::Refund,
            request.payment().clone(),
            request.reference().clone(),
            request.amount(),
            status,
        )
        .with_provider_reference("status_code", code.as_str());
        for (name, value) in [
            ("order_no", &parsed.order_no),
            ("invoice_id", &parsed.invoice_id),
            ("ref_no", &parsed.ref_no),
            ("ref_number", &parsed.ref_number),
        ] {
            if let Some(v) = value {
                receipt = receipt.with_provider_reference(name, v.trim());
            }
        }
        Ok(receipt.with_raw(reply.body.clone()))
    }

    // ---------------------------------------------------------------- lookup

    async fn do_refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        CAPABILITIES.check_scope(PROVIDER, payment)?;
        payment.validate()?;
        let invoice_id = payment.id();
        check_invoice_id(invoice_id)?;
        let merchant_key = self.inner.config.merchant_key.expose_secret();
        let hash_key = self.inner.signer.sign(&[invoice_id, merchant_key]);
        let body = to_json(&CheckStatusBody {
            merchant_key,
            invoice_id,
            include_pending_status: true,
            hash_key: &hash_key,
            show_refund_info: "Y",
        })?;
        let (reply, token) = self.send_authorized(&self.inner.check_url, body).await?;
        self.map_check_status(payment, &reply, &token)
    }

    fn map_check_status(
        &self,
        payment: &PaymentRef,
        reply: &HttpReply,
        token: &Token,
    ) -> Result<RefundState, RefundError> {
        let secrets = self.secrets_with(token);
        let (parsed, code, description) =
            self.read_answer::<CheckStatusResponse>(reply, &secrets)?;
        if code.number() != Some(100) {
            return Err(classify_code(&code, &description, reply.status, None));
        }
        if !reply.is_success() {
            return Err(reply.unreadable(PROVIDER, "status_code 100 on an error status", &secrets));
        }
        if let Some(echoed) = parsed.invoice_id.as_deref()
            && !echoed.trim().is_empty()
            && echoed.trim() != payment.id()
        {
            return Err(RefundError::outcome_unknown(
                PROVIDER,
                format!(
                    "check status answered for invoice {:?}, not {:?}",
                    clip(echoed, &secrets),
                    payment.id()
                ),
            ));
        }
        state_from(payment, &parsed, &secrets)
    }
}

#[async_trait]
impl RefundProvider for Sipay {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    /// A full, partial or further partial refund (and, on the day of the payment, a void).
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        let span = tracing::info_span!(
            "sipay.refund",
            provider = PROVIDER,
            operation = "refund",
            invoice_id = %request.payment().id(),
            reference = %request.reference(),
            amount = %request.amount(),
            outcome = field::Empty,
            code = field::Empty,
        );
        let result = self.do_refund(request).instrument(span.clone()).await;
        record(
            &span,
            result.as_ref().map(|r| match r.status {
                RefundStatus::Pending => "pending",
                _ => "completed",
            }),
        );
        result
    }

    /// How much of an invoice has been refunded, from `/ccpayment/api/checkstatus`.
    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        let span = tracing::info_span!(
            "sipay.lookup",
            provider = PROVIDER,
            operation = "refund_state",
            invoice_id = %payment.id(),
            outcome = field::Empty,
            code = field::Empty,
        );
        let result = self.do_refund_state(payment).instrument(span.clone()).await;
        record(&span, result.as_ref().map(|_| "found"));
        result
    }
}

// -------------------------------------------------------------------- mapping helpers

/// SiPay's application status codes (SiPay's PHP SDK `ResponseStatusCode` and the docs'
/// status page) onto the error taxonomy. `reference` is the refund's reference, for a refund.
///
/// | code | meaning | error |
/// |---|---|---|
/// | 30, 90, 91, 68 | invalid credentials / hash | `AuthenticationRejected` |
/// | 49 | refund failed | `Declined` (retryable only when the description is only about the 30 s wait) |
/// | 69 | order not yet processed | `Declined`, retryable |
/// | 104 | refund_transaction_id not unique | `Declined` (look it up; never "success") |
/// | 1, 31, 32, 41, 105, 110, 117 | validation, not found, not approved, … | `Declined` |
/// | 99, 112 on a refund | unknown / partially successful | `OutcomeUnknown` |
/// | anything else | — | `Declined` with the raw code, or `OutcomeUnknown` on HTTP 5xx |
pub(crate) fn classify_code(
    code: &StatusCode,
    description: &str,
    http_status: u16,
    reference: Option<&str>,
) -> RefundError {
    let raw = code.as_str();
    match code.number() {
        Some(30 | 90 | 91 | 68) => RefundError::authentication(PROVIDER, raw, description),
        Some(49) if asks_to_wait(description) => {
            RefundError::declined_retryable(PROVIDER, raw, description)
        }
        Some(69) => RefundError::declined_retryable(PROVIDER, raw, description),
        Some(104) => {
            let reference = reference.unwrap_or("(this reference)");
            RefundError::declined(
                PROVIDER,
                raw,
                format!(
                    "refund_transaction_id {reference} is not unique: SiPay already has a refund \
                     with this reference, possibly applied by an earlier attempt. This is not a \
                     success; check refund_state() before sending anything else ({description})"
                ),
            )
        }
        Some(99 | 112) if reference.is_some() => RefundError::outcome_unknown(
            PROVIDER,
            format!(
                "status_code {raw} ({description}): SiPay could not say whether the refund was applied"
            ),
        ),
        Some(1 | 31 | 32 | 41 | 49 | 99 | 105 | 110 | 112 | 117) => {
            RefundError::declined(PROVIDER, raw, description)
        }
        _ if http_status >= 500 => RefundError::outcome_unknown(
            PROVIDER,
            format!("HTTP {http_status} with unknown status_code {raw}: {description}"),
        ),
        _ => RefundError::declined(PROVIDER, raw, description),
    }
}

/// Code 49 covers several refusals. Only the one that is purely about timing ("wait at least
/// 30 seconds for another refund") may succeed later. SiPay's generic description lists every
/// cause at once (over-refund, no sale, balance, status, *or* the 30-second wait); from that
/// one nobody can tell which applied, so it is not marked retryable.
fn asks_to_wait(description: &str) -> bool {
    let d = description.to_lowercase();
    let waits = (d.contains("30") && (d.contains("second") || d.contains("saniye")))
        || d.contains("wait")
        || d.contains("bekle");
    let other_causes = [
        "exceed",
        "not found",
        "insufficient",
        "balance",
        "not refundable",
        "aşamaz",
        "geçemez",
        "bulunamadı",
        "yetersiz",
        "bakiye",
    ];
    waits && !other_causes.iter().any(|c| d.contains(c))
}

/// A success must be for the request: the echoed invoice_id must match (SiPay's documented
/// responses always carry it), and an amount, when the response has one, too. Otherwise the
/// response is about something else and the refund's fate is unknown.
fn check_echo(
    request: &RefundRequest,
    parsed: &RefundResponse,
    secrets: &[&str],
) -> Result<(), RefundError> {
    let wanted = request.payment().id();
    match parsed.invoice_id.as_deref().map(str::trim) {
        Some(got) if got == wanted => {}
        Some(got) if !got.is_empty() => {
            return Err(RefundError::outcome_unknown(
                PROVIDER,
                format!(
                    "SiPay confirmed a refund for invoice {:?}, but this refund was for {wanted:?}",
                    clip(got, secrets)
                ),
            ));
        }
        _ => {
            return Err(RefundError::outcome_unknown(
                PROVIDER,
                "SiPay confirmed a refund without naming the invoice_id, so it cannot be matched to this request",
            ));
        }
    }
    if let Some(amount) = parsed.amount
        && amount != request.amount().amount()
    {
        return Err(RefundError::outcome_unknown(
            PROVIDER,
            format!(
                "SiPay confirmed a refund of {amount}, but {} was requested",
                request.amount()
            ),
        ));
    }
    Ok(())
}

fn state_from(
    payment: &PaymentRef,
    r: &CheckStatusResponse,
    secrets: &[&str],
) -> Result<RefundState, RefundError> {
    let unreadable = |what: String| RefundError::outcome_unknown(PROVIDER, what);
    let currency = match r.currency_code.as_deref().map(str::trim) {
        None | Some("") => Currency::Try,
        Some(code) => parse_currency(code).ok_or_else(|| {
            unreadable(format!(
                "check status currency {:?} is unknown",
                clip(code, secrets)
            ))
        })?,
    };
    let money = |d: Decimal, what: &str| {
        Money::new(d, currency).map_err(|e| {
            unreadable(format!(
                "check status {what} {d} is not a valid amount: {e}"
            ))
        })
    };
    let refunded = match r.total_refunded_amount {
        Some(total) => money(total, "total_refunded_amount")?,
        // Without a total, the listed refunds are the only basis, when they all have amounts.
        None if r.refund_info.iter().all(|i| i.amount.is_some()) => {
            let mut sum = Money::zero(currency);
            for info in &r.refund_info {
                let a = money(info.amount.unwrap_or_default(), "refund_info amount")?;
                sum = sum
                    .checked_add(&a)
                    .map_err(|e| unreadable(format!("refund_info amounts: {e}")))?;
            }
            sum
        }
        None => {
            return Err(unreadable(
                "check status reported neither total_refunded_amount nor complete refund_info"
                    .into(),
            ));
        }
    };
    let mut state = RefundState::new(payment.clone(), refunded);
    if let Some(paid) = r.transaction_amount {
        state = state.with_paid(money(paid, "transaction_amount")?);
    }
    for info in &r.refund_info {
        // An entry without an amount cannot be a record; `RefundState::find` then sees that
        // the records do not add up to the total and answers Undetermined.
        let Some(amount) = info.amount else { continue };
        let mut record = RefundRecord::new(money(amount, "refund_info amount")?);
        if let Some(reference) = info.refund_transaction_id.as_deref().map(str::trim)
            && !reference.is_empty()
        {
            record = record.with_reference(reference);
        }
        if info.status.as_deref().is_some_and(is_pending) {
            record = record.with_status(RefundStatus::Pending);
        }
        state = state.with_record(record);
    }
    Ok(state)
}

fn is_pending(status: &str) -> bool {
    let s = status.to_lowercase();
    ["pend", "wait", "await", "created", "bekle", "101"]
        .iter()
        .any(|w| s.contains(w))
}

/// ISO codes, SiPay's `TL`, and ISO numeric codes.
fn parse_currency(code: &str) -> Option<Currency> {
    match code.to_ascii_uppercase().as_str() {
        "TL" | "949" => Some(Currency::Try),
        "840" => Some(Currency::Usd),
        "978" => Some(Currency::Eur),
        "826" => Some(Currency::Gbp),
        other => other.parse().ok(),
    }
}

/// SiPay-specific invoice id rules beyond [`PaymentRef::validate`]: no `|`, which separates
/// the hash_key plaintext's fields (SiPay would decrypt a different invoice id).
fn check_invoice_id(invoice_id: &str) -> Result<(), RefundError> {
    if invoice_id.contains('|') {
        return Err(ValidationError::field(
            "payment id",
            "contains '|', which SiPay's hash_key uses as its field separator",
        )
        .into());
    }
    Ok(())
}

/// A failure while getting a token means the refund or lookup was never sent: a transport
/// failure or broken response on the token endpoint is `Unreachable` (safe to retry) for the
/// operation, with the token error as its source.
fn not_sent(e: RefundError) -> RefundError {
    match e {
        RefundError::OutcomeUnknown { .. } => RefundError::Unreachable {
            provider: PROVIDER,
            source: Box::new(e),
        },
        other => other,
    }
}

fn to_json<T: Serialize>(body: &T) -> Result<Vec<u8>, RefundError> {
    serde_json::to_vec(body)
        .map_err(|e| RefundError::configuration(PROVIDER, format!("serializing a request: {e}")))
}

fn describe(description: Option<&str>, message: Option<&str>, secrets: &[&str]) -> String {
    let text = [description, message]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or("(no description)");
    let printable: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    scrub(&printable, secrets)
}

/// Text from a response, for an error message: secrets scrubbed first, then cut to 64
/// printable characters.
fn clip(s: &str, secrets: &[&str]) -> String {
    scrub(s, secrets)
        .chars()
        .take(64)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Records the outcome on the span and logs one line, without secrets or bodies.
fn record(span: &Span, result: Result<&'static str, &RefundError>) {
    match result {
        Ok(outcome) => {
            span.record("outcome", outcome);
            span.in_scope(|| tracing::info!(outcome, "sipay call succeeded"));
        }
        Err(e) => {
            let outcome = e.kind();
            span.record("outcome", outcome);
            if let Some(code) = e.provider_code() {
                span.record("code", code);
            }
            span.in_scope(|| tracing::warn!(outcome, error = %e, "sipay call failed"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> StatusCode {
        serde_json::from_str(&format!("{raw:?}")).unwrap()
    }

    #[test]
    fn documented_codes_map_to_the_right_class() {
        let r = Some("ref-1");
        let auth = |c| {
            matches!(
                classify_code(&code(c), "x", 200, r),
                RefundError::AuthenticationRejected { .. }
            )
        };
        for c in ["30", "90", "91", "68"] {
            assert!(auth(c), "{c}");
        }
        for c in ["1", "31", "32", "41", "49", "104", "105", "110", "117"] {
            let e = classify_code(&code(c), "Refund Failed", 200, r);
            assert!(matches!(e, RefundError::Declined { .. }), "{c}");
            assert!(!e.is_retryable(), "{c}");
            assert_eq!(e.provider_code(), Some(c));
        }
        for c in ["99", "112"] {
            assert!(
                !classify_code(&code(c), "x", 200, r).is_outcome_known(),
                "{c}"
            );
            assert!(
                classify_code(&code(c), "x", 200, None).is_outcome_known(),
                "{c}"
            );
        }
        assert!(classify_code(&code("69"), "x", 200, r).is_retryable());
    }

    #[test]
    fn code_49_is_retryable_only_when_sipay_asks_to_wait() {
        let wait = "Refund Failed: please wait at least 30 seconds for another refund";
        assert!(classify_code(&code("49"), wait, 200, Some("r")).is_retryable());
        let tr = "Başka bir iade için en az 30 saniye bekleyiniz";
        assert!(classify_code(&code("49"), tr, 200, Some("r")).is_retryable());
        assert!(!classify_code(&code("49"), "Refund Failed", 200, Some("r")).is_retryable());
        let generic = "Refund Failed. The total refund amount cannot exceed the net transaction \
                       amount, no sales transaction was found, the balance is insufficient, or \
                       you must wait at least 30 seconds before another refund.";
        assert!(!classify_code(&code("49"), generic, 200, Some("r")).is_retryable());
    }

    #[test]
    fn code_104_is_a_decline_that_points_to_the_lookup() {
        let e = classify_code(&code("104"), "not unique", 200, Some("order-42-r1"));
        let text = e.to_string();
        assert!(
            text.contains("order-42-r1") && text.contains("refund_state"),
            "{text}"
        );
        assert!(e.is_outcome_known() && !e.is_retryable());
    }

    #[test]
    fn unknown_codes_keep_the_raw_code_and_are_unknown_on_5xx() {
        let e = classify_code(&code("E-777"), "Something new", 200, Some("r"));
        assert_eq!(e.provider_code(), Some("E-777"));
        assert!(e.to_string().contains("Something new"));
        assert!(!classify_code(&code("777"), "x", 503, Some("r")).is_outcome_known());
    }

    #[test]
    fn token_failures_become_not_sent() {
        let e = not_sent(RefundError::outcome_unknown(PROVIDER, "timed out"));
        assert!(matches!(e, RefundError::Unreachable { .. }));
        assert!(e.is_retryable());
        let a = not_sent(RefundError::authentication(
            PROVIDER,
            "30",
            "Invalid Credentials",
        ));
        assert!(matches!(a, RefundError::AuthenticationRejected { .. }));
    }

    #[test]
    fn invoice_ids_with_a_pipe_are_invalid() {
        assert!(matches!(
            check_invoice_id("A|B"),
            Err(RefundError::InvalidRequest(_))
        ));
        assert!(check_invoice_id("INV-1:2").is_ok());
    }

    #[test]
    fn currencies_are_read_in_sipay_forms() {
        assert_eq!(parse_currency("TRY"), Some(Currency::Try));
        assert_eq!(parse_currency("tl"), Some(Currency::Try));
        assert_eq!(parse_currency("949"), Some(Currency::Try));
        assert_eq!(parse_currency("XYZ"), None);
    }
}
