//! The [`RefundProvider`] for SiPay: build → sign → send → map.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use refund_core::http::{self, HttpReply};
use refund_core::json::from_object;
use refund_core::redact::scrub;
use refund_core::{
    AmountFormat, Capabilities, Currency, DecimalAtScale, Operation, PaymentRef, RefundError,
    RefundProvider, RefundReceipt, RefundRequest, RefundState, RefundStatus, ValidationError,
    VoidSupport, async_trait,
};
use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, Span, field};

use crate::config::{REFUND_WEBHOOK_FIELD, SipayConfig};
use crate::hash_key::HashKeySigner;
use crate::lookup::state_from;
use crate::notification::{NotificationError, NotificationVerifier, SipayRefundNotification};
use crate::spacing::{self, RecentRefunds};
use crate::status_code::{self, RefundClass};
use crate::token::{Token, TokenCache};
use crate::wire::{
    Answer, CheckStatusBody, CheckStatusResponse, RefundBody, RefundResponse, StatusCode,
    TokenRequest, TokenResponse,
};
use crate::{NAME, paths};

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
/// - Reference deduplication: the request's reference goes out as `refund_transaction_id`,
///   and SiPay refuses a reused one with 104 `REFUND_TRANSACTION_ID_NOT_UNIQUE` (the official
///   PHP SDK's `ResponseStatusCode`; SiPay's English refund page marks the field mandatory).
///   That SiPay refuses *every* reuse, however old, and never applies a second refund with a
///   used id, is assumed: no source says how long uniqueness lasts, and nothing was checked
///   against a live server.
/// - Settle time: [`Capabilities::DEFAULT_SETTLE_TIME`] (15 minutes) here;
///   [`Sipay::capabilities`](RefundProvider::capabilities) reports the configured one
///   ([`SipayConfig::with_settle_time`]).
pub const CAPABILITIES: Capabilities = Capabilities::new(&[Currency::Try])
    .with_partial_refunds(true)
    .with_void(VoidSupport::ThroughRefund)
    .with_refund_lookup(true)
    .with_item_refunds(false)
    .with_reference_dedup(true)
    .with_settle_time(Capabilities::DEFAULT_SETTLE_TIME);

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
    /// This client's accepted refunds per invoice, for SiPay's 30-second rule.
    recent: RecentRefunds,
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
            None => http::build_client(NAME, &config.http)?,
        };
        let signer = HashKeySigner::new(config.app_secret.expose_secret());
        Ok(Sipay {
            inner: Arc::new(Inner {
                max_bytes: config.http.max_response_bytes,
                tokens: TokenCache::new(config.token_lifetime),
                recent: RecentRefunds::new(config.refund_spacing),
                token_url: http::endpoint(&base, paths::TOKEN),
                refund_url: http::endpoint(&base, paths::REFUND),
                check_url: http::endpoint(&base, paths::CHECK_STATUS),
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
    /// and for fuzzing and benchmarking the response handling. It has no memory: a 49 reads
    /// as SiPay's answer alone says, without the 30-second rule
    /// ([`SipayConfig::with_refund_spacing`]), which needs this client's own earlier refunds.
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

    /// Verifies a refund notification SiPay posted to the refund webhook (the raw
    /// `application/x-www-form-urlencoded` body) with this client's app secret, reading the
    /// amount as TRY. See [`notification`](crate::notification) for what a verified
    /// notification does and does not prove, and
    /// [`NotificationVerifier`](crate::notification::NotificationVerifier) for posted fields
    /// given as a map or another currency.
    ///
    /// ```
    /// # use refund_core::*;
    /// # use refund_sipay::{Sipay, SipayConfig};
    /// let sipay = Sipay::new(SipayConfig::new("app-id", "app-secret", "merchant-key"))?;
    /// # let body = refund_sipay::notification::doc_sample_body();
    /// let notice = sipay.verify_refund_notification(body.as_bytes())?;
    /// let pending = RefundReceipt::new(
    ///     "sipay", Operation::Refund, PaymentRef::payment("INV-1"),
    ///     MerchantRef::new("r-1")?, Money::parse("10.50", Currency::Try)?, RefundStatus::Pending,
    /// );
    /// assert_eq!(RefundNotification::from(notice).settles(&pending), Some(RefundStatus::Completed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_refund_notification(
        &self,
        body: &[u8],
    ) -> Result<SipayRefundNotification, NotificationError> {
        NotificationVerifier::from_config(&self.inner.config).verify_form(body)
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
            // `Authorization: Bearer <token>`, as SiPay's docs ("The method should be
            // “Bearer”") and the node SDK send it. The official PHP SDK disagrees: it sends
            // the bare token (`sprintf("Authorization: %s", $token)`, sdk-models.md §1.1). We
            // follow the docs. reqwest marks the header sensitive (kept out of its Debug output).
            request = request.bearer_auth(token.expose());
        }
        http::send(NAME, request, self.inner.max_bytes).await
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
            provider = NAME,
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
            return Err(reply.unreadable(NAME, "rate limited", &secrets));
        }
        let parsed: Result<TokenResponse, &'static str> = from_object(&reply.body);
        let code = parsed.as_ref().ok().and_then(|p| p.status_code.clone());
        if code.is_none() && matches!(reply.status, 404 | 405 | 422) {
            // No token service at this URL (a wrong base URL, e.g. a doubled path), or one
            // that refuses the request's shape: nothing was sent, and retrying cannot help.
            return Err(RefundError::configuration(
                NAME,
                format!(
                    "the token URL {} answered HTTP {} without a SiPay status_code ({}): check \
                     the base URL (SIPAY_BASE_URL: the host, e.g. https://app.sipay.com.tr, \
                     or a preset name)",
                    self.inner.token_url,
                    reply.status,
                    reply.snippet(&secrets)
                ),
            ));
        }
        let parsed = parsed.map_err(|why| reply.unreadable(NAME, why, &secrets))?;
        let Some(code) = code else {
            return Err(reply.unreadable(NAME, "a token response without status_code", &secrets));
        };
        let description = describe(parsed.status_description.as_deref(), None, &secrets);
        if code.number() != Some(100) {
            // 30 "Invalid Credentials" (PHP SDK tests), 1 validation error, or anything else:
            // no token, so nothing can be sent. 5xx without a known code: the token service
            // is broken, which still means the refund was not sent (see `not_sent`).
            if reply.status >= 500 {
                return Err(RefundError::outcome_unknown(
                    NAME,
                    format!(
                        "token request failed with HTTP {} ({code}): {description}",
                        reply.status
                    ),
                ));
            }
            return Err(RefundError::authentication(
                NAME,
                code.as_str(),
                description,
            ));
        }
        match parsed.data.and_then(|d| d.token) {
            Some(token) if !token.trim().is_empty() && reply.is_success() => {
                Ok(SecretString::from(token))
            }
            _ => Err(RefundError::outcome_unknown(
                NAME,
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
            provider = NAME,
            "HTTP 401: refreshing the token once and resending"
        );
        self.inner.tokens.invalidate(&token);
        let token = self.token().await?;
        let reply = self.post(url, body, Some(&token)).await?;
        Ok((reply, token))
    }

    // ---------------------------------------------------------------- refund

    async fn do_refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        self.validate(request)?;
        let invoice_id = request.payment().id();
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
        let webhook_key = self.inner.config.refund_webhook_key();
        let webhook_field = self.inner.config.refund_webhook_field();
        let body = to_json(&RefundBody {
            invoice_id,
            amount: &amount,
            app_id: &self.inner.config.app_id,
            app_secret: self.inner.config.app_secret.expose_secret(),
            merchant_key,
            hash_key: &hash_key,
            refund_transaction_id: request.reference().as_str(),
            refund_web_hook_key: webhook_key.filter(|_| webhook_field == REFUND_WEBHOOK_FIELD),
            refund_webhook_key: webhook_key.filter(|_| webhook_field != REFUND_WEBHOOK_FIELD),
        })?;
        let flight = self.inner.recent.sending(invoice_id);
        let result = self
            .send_authorized(&self.inner.refund_url, body)
            .await
            .and_then(|(reply, token)| self.map_refund(request, &reply, &token));
        let now = Instant::now();
        match result {
            Ok(receipt) => {
                self.inner.recent.accepted(invoice_id, now);
                Ok(receipt)
            }
            // A request that may have reached SiPay may have been applied: a 49 on the next
            // refund of the invoice within the spacing is then the wait too.
            Err(e) if !e.is_outcome_known() => {
                self.inner.recent.accepted(invoice_id, now);
                Err(e)
            }
            Err(e) => {
                let remaining = self.inner.recent.remaining(invoice_id, now);
                drop(flight);
                Err(match remaining {
                    Some(wait) => too_soon(e, invoice_id, self.inner.config.refund_spacing, wait),
                    None => e,
                })
            }
        }
    }

    /// What every answer goes through first: 429 is a rate limit, the body must be a JSON
    /// object of the expected shape carrying a status_code, and the description is scrubbed
    /// of `secrets`.
    ///
    /// A 404, 405 or 422 without a body `status_code` is a refusal before processing
    /// ([`refused_before_processing`]).
    fn read_answer<T: DeserializeOwned + Answer>(
        &self,
        reply: &HttpReply,
        secrets: &[&str],
    ) -> Result<(T, StatusCode, String), RefundError> {
        if reply.status == 429 {
            return Err(reply.unreadable(NAME, "rate limited", secrets));
        }
        let parsed: T = match from_object(&reply.body) {
            Ok(parsed) => parsed,
            Err(why) => {
                return Err(refused_before_processing(reply, secrets)
                    .unwrap_or_else(|| reply.unreadable(NAME, why, secrets)));
            }
        };
        let Some(code) = parsed.status_code().cloned() else {
            return Err(
                refused_before_processing(reply, secrets).unwrap_or_else(|| {
                    reply.unreadable(NAME, "a response without status_code", secrets)
                }),
            );
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
        let class = code
            .number()
            .and_then(status_code::lookup)
            .map(|c| c.on_refund);
        let status = match class {
            Some(RefundClass::Success) => RefundStatus::Completed,
            Some(RefundClass::Pending) => RefundStatus::Pending,
            _ => {
                return Err(classify_code(
                    &code,
                    &description,
                    reply.status,
                    Call::Refund(request.reference().as_str()),
                ));
            }
        };
        if !reply.is_success() {
            return Err(RefundError::outcome_unknown(
                NAME,
                format!(
                    "HTTP {} with status_code {code} contradicts itself; look the refund up",
                    reply.status
                ),
            ));
        }
        check_echo(request, &parsed, &secrets)?;
        let mut receipt = RefundReceipt::new(
            NAME,
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
        // SiPay's id of the refund: `ref_no` of the refund answer (the seed's success answer;
        // `ref_number` carries the same value there). `order_no` is the payment's order.
        if let Some(ref_no) = &parsed.ref_no {
            receipt = receipt.with_refund_id(ref_no.trim());
        }
        Ok(receipt.with_raw(reply.body.clone()))
    }

    // ---------------------------------------------------------------- lookup

    async fn do_refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        CAPABILITIES.check_scope(NAME, payment)?;
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
        if code.number() != Some(i64::from(status_code::SUCCESS)) {
            return Err(classify_code(
                &code,
                &description,
                reply.status,
                Call::Lookup,
            ));
        }
        if !reply.is_success() {
            return Err(reply.unreadable(NAME, "status_code 100 on an error status", &secrets));
        }
        if let Some(echoed) = parsed.invoice_id.as_deref()
            && !echoed.trim().is_empty()
            && echoed.trim() != payment.id()
        {
            return Err(RefundError::outcome_unknown(
                NAME,
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
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES.with_settle_time(self.inner.config.settle_time)
    }

    /// The capabilities (TRY, payment-level), and no `|` in the invoice id (the hash_key's
    /// field separator).
    fn validate(&self, request: &RefundRequest) -> Result<(), RefundError> {
        CAPABILITIES.check(NAME, request)?;
        check_invoice_id(request.payment().id())
    }

    /// A full, partial or further partial refund (and, on the day of the payment, a void).
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        let span = tracing::info_span!(
            "sipay.refund",
            provider = NAME,
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
            provider = NAME,
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

/// Which call an answer is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Call<'a> {
    /// A refund sent with this reference (`refund_transaction_id`): money may have moved.
    Refund(&'a str),
    /// A check-status lookup: nothing moves.
    Lookup,
}

/// A non-success `status_code` onto the error taxonomy.
///
/// On a refund, the class comes from the official SDK's table ([`status_code::TABLE`], each
/// code's [`RefundClass`]): credential and hash codes are `AuthenticationRejected`, plain
/// refusals (49, 110, 31, …) `Declined`, 104 `DuplicateReference` (an earlier attempt with the
/// reference reached SiPay: look it up, never a decline), 99/112 and the "already processed"
/// codes `OutcomeUnknown`. A code that is **not in the table**, or not a number, is
/// `OutcomeUnknown` on a refund: nobody can say what it means for the money.
///
/// On a lookup nothing moves, so an unknown code is a `Declined` lookup with the raw code
/// (`OutcomeUnknown` with HTTP 5xx, where the answer itself is suspect); credential and hash
/// codes are `AuthenticationRejected` there too.
///
/// The body's code decides whatever the HTTP status, as in the official PHP SDK
/// (`SipayResource::handleErrorResponse` throws on any body code other than 100 before it
/// looks at HTTP).
pub(crate) fn classify_code(
    code: &StatusCode,
    description: &str,
    http_status: u16,
    call: Call<'_>,
) -> RefundError {
    let raw = code.as_str();
    let known = code.number().and_then(status_code::lookup);
    let Call::Refund(reference) = call else {
        return match known.map(|c| c.on_refund) {
            Some(RefundClass::Authentication) => {
                RefundError::authentication(NAME, raw, description)
            }
            Some(RefundClass::DeclinedRetryable) => {
                RefundError::declined_retryable(NAME, raw, description)
            }
            None if http_status >= 500 => RefundError::outcome_unknown(
                NAME,
                format!("HTTP {http_status} with unknown status_code {raw}: {description}"),
            ),
            _ => RefundError::declined(NAME, raw, description),
        };
    };
    let Some(known) = known else {
        return RefundError::outcome_unknown(
            NAME,
            format!(
                "status_code {raw} ({description}) is not in SiPay's status-code table, so what \
                 it means for refund {reference} is unknown"
            ),
        );
    };
    match known.on_refund {
        RefundClass::Authentication => RefundError::authentication(NAME, raw, description),
        RefundClass::Declined if known.code == status_code::REFUND_FAILED => {
            if asks_to_wait(description) {
                RefundError::declined_retry_after(
                    NAME,
                    raw,
                    description,
                    spacing::SIPAY_REFUND_SPACING + spacing::MARGIN,
                )
            } else {
                RefundError::declined(NAME, raw, description)
            }
        }
        RefundClass::Declined => RefundError::declined(NAME, raw, description),
        RefundClass::DeclinedRetryable => RefundError::declined_retryable(NAME, raw, description),
        RefundClass::DuplicateReference => RefundError::duplicate_reference(
            NAME,
            raw,
            format!(
                "refund_transaction_id {reference} is not unique: an earlier attempt with this \
                 reference reached SiPay, and whether it was refunded is unknown. Not a decline \
                 and not a success: check refund_state() before sending anything else \
                 ({description})"
            ),
        ),
        RefundClass::OutcomeUnknown => RefundError::outcome_unknown(
            NAME,
            format!(
                "status_code {raw} {} ({description}): SiPay does not say whether refund \
                 {reference} was applied",
                known.name
            ),
        ),
        // 100 and 101 are answered before this is called; reaching here means they came in a
        // way that contradicts itself.
        RefundClass::Success | RefundClass::Pending => RefundError::outcome_unknown(
            NAME,
            format!("status_code {raw} ({description}) in an answer that contradicts itself"),
        ),
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

/// A 49 on an invoice this client had a refund of accepted `wait` short of the spacing ago:
/// SiPay's 30-second rule (see [`spacing`]), so a temporary decline with the rest of the wait
/// (plus a margin) as its `retry_after`. Every other error is returned as it is.
fn too_soon(e: RefundError, invoice_id: &str, spacing: Duration, wait: Duration) -> RefundError {
    match &e {
        RefundError::Declined { code, message, .. }
            if code.trim() == status_code::REFUND_FAILED.to_string() =>
        {
            let wait = wait + spacing::MARGIN;
            RefundError::declined_retry_after(
                NAME,
                code.as_str(),
                format!(
                    "{message} (this client refunded invoice {invoice_id} less than {s} s ago, \
                     and SiPay refuses another refund of an invoice within {s} s, so this may \
                     be that rule: try again in {} s; a 49 after the wait is final)",
                    wait.as_secs(),
                    s = spacing.as_secs_f64()
                ),
                wait,
            )
        }
        _ => e,
    }
}

/// A 404, 405 or 422 answered without a SiPay `status_code`: the request was refused before
/// SiPay processed it (422 is Laravel's validation answer, `{"message": …, "errors": {…}}`,
/// as SiPay's white-label platforms document it; 404 an unknown path or record, 405 a method
/// the path does not take), so nothing moved and the outcome is known. A typed, final refusal
/// `http_<status>` with the body's message (and the fields `errors` names); `None` for any
/// other status, which keeps its usual reading.
fn refused_before_processing(reply: &HttpReply, secrets: &[&str]) -> Option<RefundError> {
    if !matches!(reply.status, 404 | 405 | 422) {
        return None;
    }
    let body: Option<serde_json::Value> = from_object(&reply.body).ok();
    let message = body
        .as_ref()
        .and_then(|b| b.get("message"))
        .and_then(serde_json::Value::as_str)
        .map(|m| describe(Some(m), None, secrets))
        .unwrap_or_else(|| reply.snippet(secrets));
    let fields: Vec<String> = body
        .as_ref()
        .and_then(|b| b.get("errors"))
        .and_then(serde_json::Value::as_object)
        .map(|errors| errors.keys().take(8).map(|k| clip(k, secrets)).collect())
        .unwrap_or_default();
    let fields = if fields.is_empty() {
        String::new()
    } else {
        format!("; fields: {}", fields.join(", "))
    };
    Some(RefundError::declined(
        NAME,
        format!("http_{}", reply.status),
        format!(
            "{message}{fields} (HTTP {} without a SiPay status_code: refused before \
             processing, nothing was refunded)",
            reply.status
        ),
    ))
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
                NAME,
                format!(
                    "SiPay confirmed a refund for invoice {:?}, but this refund was for {wanted:?}",
                    clip(got, secrets)
                ),
            ));
        }
        _ => {
            return Err(RefundError::outcome_unknown(
                NAME,
                "SiPay confirmed a refund without naming the invoice_id, so it cannot be matched to this request",
            ));
        }
    }
    if let Some(amount) = parsed.amount
        && amount != request.amount().amount()
    {
        return Err(RefundError::outcome_unknown(
            NAME,
            format!(
                "SiPay confirmed a refund of {amount}, but {} was requested",
                request.amount()
            ),
        ));
    }
    Ok(())
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
        RefundError::OutcomeUnknown { .. } => RefundError::unreachable(NAME, e),
        other => other,
    }
}

fn to_json<T: Serialize>(body: &T) -> Result<Vec<u8>, RefundError> {
    serde_json::to_vec(body)
        .map_err(|e| RefundError::configuration(NAME, format!("serializing a request: {e}")))
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
pub(crate) fn clip(s: &str, secrets: &[&str]) -> String {
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

    const REFUND: Call<'static> = Call::Refund("ref-1");

    #[test]
    fn every_code_of_the_table_maps_to_its_class_on_a_refund() {
        for c in &status_code::TABLE {
            let raw = c.code.to_string();
            let e = classify_code(&code(&raw), "Refund Failed", 200, REFUND);
            let kind = match c.on_refund {
                RefundClass::Authentication => "authentication_rejected",
                RefundClass::Declined | RefundClass::DeclinedRetryable => "declined",
                RefundClass::DuplicateReference => "duplicate_reference",
                RefundClass::OutcomeUnknown | RefundClass::Success | RefundClass::Pending => {
                    "outcome_unknown"
                }
            };
            assert_eq!(e.kind(), kind, "{raw} {}: {e}", c.name);
            assert_eq!(
                e.is_retryable(),
                c.on_refund == RefundClass::DeclinedRetryable,
                "{raw}"
            );
        }
    }

    #[test]
    fn documented_codes_map_to_the_right_class() {
        let auth = |c| {
            matches!(
                classify_code(&code(c), "x", 200, REFUND),
                RefundError::AuthenticationRejected { .. }
            )
        };
        for c in ["30", "90", "91", "68", "92", "14"] {
            assert!(auth(c), "{c}");
        }
        for c in ["1", "31", "32", "41", "49", "105", "110"] {
            let e = classify_code(&code(c), "Refund Failed", 200, REFUND);
            assert!(matches!(e, RefundError::Declined { .. }), "{c}");
            assert!(!e.is_retryable(), "{c}");
            assert_eq!(e.provider_code(), Some(c));
        }
        // SiPay itself cannot say (99, 112), or "already processed" (3, 117): on a refund
        // outcome-unknown; on a lookup, where nothing moves, a refused lookup.
        for c in ["99", "112", "3", "117"] {
            assert!(
                !classify_code(&code(c), "x", 200, REFUND).is_outcome_known(),
                "{c}"
            );
            assert!(
                classify_code(&code(c), "x", 200, Call::Lookup).is_outcome_known(),
                "{c}"
            );
        }
        assert!(classify_code(&code("69"), "x", 200, REFUND).is_retryable());
    }

    #[test]
    fn code_49_is_retryable_only_when_sipay_asks_to_wait() {
        let wait = "Refund Failed: please wait at least 30 seconds for another refund";
        assert!(classify_code(&code("49"), wait, 200, REFUND).is_retryable());
        let tr = "Başka bir iade için en az 30 saniye bekleyiniz";
        assert!(classify_code(&code("49"), tr, 200, REFUND).is_retryable());
        assert!(!classify_code(&code("49"), "Refund Failed", 200, REFUND).is_retryable());
        let generic = "Refund Failed. The total refund amount cannot exceed the net transaction \
                       amount, no sales transaction was found, the balance is insufficient, or \
                       you must wait at least 30 seconds before another refund.";
        assert!(!classify_code(&code("49"), generic, 200, REFUND).is_retryable());
        // The wait rule is 49's alone.
        assert!(!classify_code(&code("110"), wait, 200, REFUND).is_retryable());
    }

    #[test]
    fn code_104_is_a_duplicate_reference_that_points_to_the_lookup() {
        let e = classify_code(&code("104"), "not unique", 200, Call::Refund("order-42-r1"));
        assert!(matches!(e, RefundError::DuplicateReference { .. }), "{e}");
        assert_eq!(e.kind(), "duplicate_reference");
        let text = e.to_string();
        assert!(
            text.contains("order-42-r1") && text.contains("refund_state"),
            "{text}"
        );
        assert!(!e.is_outcome_known() && !e.is_retryable());
        assert_eq!(e.provider_code(), Some("104"));
    }

    #[test]
    fn codes_outside_the_table_are_unknown_outcomes_on_a_refund() {
        for raw in ["E-777", "777", "0", "2", "50", "-1", "100000"] {
            let e = classify_code(&code(raw), "Something new", 200, REFUND);
            assert!(
                matches!(e, RefundError::OutcomeUnknown { .. }),
                "{raw}: {e}"
            );
            assert!(e.to_string().contains("Something new"), "{e}");
            assert!(e.to_string().contains(raw), "{e}");
        }
        // A lookup moves nothing: an unknown code is a refused lookup, kept raw; on a 5xx the
        // answer itself is suspect.
        let e = classify_code(&code("E-777"), "Something new", 200, Call::Lookup);
        assert_eq!(e.provider_code(), Some("E-777"));
        assert!(!classify_code(&code("777"), "x", 503, Call::Lookup).is_outcome_known());
    }

    #[test]
    fn token_failures_become_not_sent() {
        let e = not_sent(RefundError::outcome_unknown(NAME, "timed out"));
        assert!(matches!(e, RefundError::Unreachable { .. }));
        assert!(e.is_retryable());
        let a = not_sent(RefundError::authentication(
            NAME,
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
}
