//! The [`RefundProvider`] implementation: build the body → serialise once → sign those bytes →
//! send those bytes → map the answer onto the core types.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use refund_core::http::{APPLICATION_JSON, HttpReply, build_client, endpoint, is_loopback, send};
use refund_core::json::from_object;
use refund_core::{
    Capabilities, Currency, Decimal, MerchantRef, Money, Operation, PaymentRef, PaymentScope,
    RefundError, RefundProvider, RefundReason, RefundReceipt, RefundRequest, RefundState,
    RefundStatus, ValidationError, VoidRequest, VoidSupport, async_trait,
};
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use crate::NAME;
use crate::config::IyzicoConfig;
use crate::lookup::state_from_detail;
use crate::paths;
use crate::price::format_price;
use crate::signature::{RANDOM_HEADER, RequestSigner, signatures_equal};
use crate::wire::{
    CancelRequest, OperationResponse, PaymentDetail, RefundV1Request, RefundV2Request,
    ReportingPaymentDetail,
};

/// Error codes that mean iyzico refused the credentials or the signature, so nothing was
/// processed: 1000 invalid signature, 1001 API key not found in this environment, 1007
/// signature missing, 1009 Authorization header missing (shared/providers/iyzico.md, from the
/// SDKs' tests and iyzico's docs).
pub const AUTH_ERROR_CODES: &[&str] = &["1000", "1001", "1007", "1009"];

/// The `ip` sent to a loopback base URL (a simulator) when none is configured.
const LOOPBACK_IP: &str = "127.0.0.1";

/// The error code iyzico answers when the bank declined the refund (`REFUND_DECLINE`); iyzico
/// marks it retryable.
pub const REFUND_DECLINE_CODE: &str = "10246";

/// What iyzico does, as [`Capabilities`]. The currencies are those of the official node SDK's
/// `Iyzipay.CURRENCY` that `refund-core` knows (TRY, EUR, USD, GBP, NOK, RUB, CHF; the SDK
/// also lists IRR).
///
/// - No reference deduplication: no iyzico SDK sends an idempotency key and the docs call most
///   services non-idempotent (shared/providers/sdk-models.md §2.8), so a resent refund with
///   the same conversationId is a second refund.
/// - The settle time is [`Capabilities::DEFAULT_SETTLE_TIME`] (15 minutes), **assumed**: no
///   source documents how soon a refund or cancel shows in the reporting lookup
///   (sdk-models.md §3). A client reports its configured one
///   ([`IyzicoConfig::with_settle_time`]).
pub const CAPABILITIES: Capabilities = Capabilities::new(&[
    Currency::Try,
    Currency::Usd,
    Currency::Eur,
    Currency::Gbp,
    Currency::Chf,
    Currency::Nok,
    Currency::Rub,
])
.with_partial_refunds(true)
.with_void(VoidSupport::Cancel)
.with_refund_lookup(true)
.with_item_refunds(true)
.with_reference_dedup(false)
.with_settle_time(Capabilities::DEFAULT_SETTLE_TIME);

/// An iyzico client: refunds (item-level through `/payment/refund`, payment-level through
/// `/v2/payment/refund`), voids through `/payment/cancel`, and refund lookups through the
/// reporting API. Cheap to clone (an `Arc` inside); share one per set of credentials.
///
/// ```no_run
/// use refund_core::{PaymentRef, RefundProvider, RefundRequest};
/// use refund_iyzico::{Iyzico, IyzicoConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let iyzico = Iyzico::new(IyzicoConfig::from_env()?)?;
/// let request = RefundRequest::builder(
///     PaymentRef::item("11433038").in_payment("10844367"),
///     "0.50 TRY".parse()?,
/// )
/// .reference("order-42-refund-1")
/// .extra("ip", "85.34.78.112")
/// .build()?;
/// let receipt = iyzico.refund(&request).await?;
/// println!("{:?}", receipt.provider_references);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Iyzico {
    inner: Arc<Inner>,
}

struct Inner {
    config: IyzicoConfig,
    base: Url,
    http: reqwest::Client,
    signer: RequestSigner,
}

impl fmt::Debug for Iyzico {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iyzico")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What one call is about, for spans and for checking the answer.
struct Call<'a> {
    operation: &'static str,
    path: &'static str,
    conversation_id: &'a str,
}

impl<'a> Call<'a> {
    /// The call a refund request makes: item-level v1 or payment-level v2.
    fn refund(request: &'a RefundRequest) -> Self {
        let item = request.payment().scope() == PaymentScope::Item;
        Call {
            operation: if item { "refund" } else { "refund_v2" },
            path: if item {
                paths::REFUND
            } else {
                paths::REFUND_V2
            },
            conversation_id: request.reference().as_str(),
        }
    }
}

impl Iyzico {
    /// Interprets an answer to a refund (its HTTP status and body) exactly as
    /// [`refund`](RefundProvider::refund) does once the answer has arrived: the receipt, or the
    /// error with its class. Nothing is sent. For replaying an answer from a support ticket,
    /// and for fuzzing and benchmarking the response handling.
    ///
    /// ```
    /// # use refund_core::*;
    /// # use refund_iyzico::{Iyzico, IyzicoConfig};
    /// let iyzico = Iyzico::new(IyzicoConfig::new("api-key", "secret-key"))?;
    /// let request = RefundRequest::builder(PaymentRef::item("11433038"), "0.50 TRY".parse()?)
    ///     .reference("123456789")
    ///     .build()?;
    /// let body = br#"{"status":"success","conversationId":"123456789","paymentTransactionId":"11433038","price":0.5,"currency":"TRY"}"#;
    /// let receipt = iyzico.interpret_refund_answer(&request, 200, body)?;
    /// assert_eq!(receipt.amount.to_string(), "0.50 TRY");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn interpret_refund_answer(
        &self,
        request: &RefundRequest,
        status: u16,
        body: &[u8],
    ) -> Result<RefundReceipt, RefundError> {
        let reply = HttpReply::new(status, bytes::Bytes::copy_from_slice(body));
        self.map_refund(request, &Call::refund(request), &reply)
    }

    /// Interprets an answer to a refund lookup (the payment-details report) exactly as
    /// [`refund_state`](RefundProvider::refund_state) does once it has arrived. Nothing is
    /// sent. For fuzzing, benchmarks and replaying support cases.
    pub fn interpret_lookup_answer(
        &self,
        payment: &PaymentRef,
        status: u16,
        body: &[u8],
    ) -> Result<RefundState, RefundError> {
        let reply = HttpReply::new(status, bytes::Bytes::copy_from_slice(body));
        let call = Call {
            operation: "payment_details",
            path: paths::PAYMENT_DETAILS,
            conversation_id: "lookup",
        };
        self.map_lookup(payment, &call, &reply)
    }

    /// Builds a client: checks the configuration and creates the HTTP client and the signing
    /// key state once.
    pub fn new(config: IyzicoConfig) -> Result<Self, RefundError> {
        config.validate()?;
        let base = config.resolved_base_url()?;
        let http = match &config.client {
            Some(client) => client.clone(),
            None => build_client(NAME, &config.http)?,
        };
        let signer = RequestSigner::new(config.secret_key.expose_secret());
        Ok(Iyzico {
            inner: Arc::new(Inner {
                config,
                base,
                http,
                signer,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &IyzicoConfig {
        &self.inner.config
    }

    /// The `ip` of a request: the request's own (`extra("ip", …)`), else the configured one
    /// ([`IyzicoConfig::with_default_ip`], `IYZICO_IP`), else, only for a loopback base URL (a
    /// simulator), `127.0.0.1`. iyzico makes `ip` mandatory, "İşlemin gönderildiği ip adresi"
    /// (the address the transaction was sent from, `seeds/iyzico-refund-tr.md`), so a real
    /// host gets no made-up address: without one the request is not sent.
    fn ip(&self, extra: Option<&str>) -> Result<String, RefundError> {
        match extra {
            None => match self.inner.config.default_ip {
                Some(ip) => Ok(ip.to_string()),
                None if is_loopback(&self.inner.base) => Ok(LOOPBACK_IP.to_owned()),
                None => Err(RefundError::configuration(
                    NAME,
                    "iyzico requires the IP address the request is sent from (`ip`) and none \
                     is configured: set IYZICO_IP, IyzicoConfig::with_default_ip, or the \
                     request's extra(\"ip\", …); nothing was sent",
                )),
            },
            Some(text) => text
                .trim()
                .parse::<IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|_| ValidationError::field("ip", "is not an IP address").into()),
        }
    }

    fn secrets(&self) -> [&str; 2] {
        [
            self.inner.config.api_key.expose_secret(),
            self.inner.config.secret_key.expose_secret(),
        ]
    }

    /// Signs `body` for `path` and sends it; `query` only for the reporting GET.
    async fn send_signed(
        &self,
        method: reqwest::Method,
        path: &'static str,
        query: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<HttpReply, RefundError> {
        let random_key = self.inner.config.next_random_key();
        tracing::Span::current().record("random_key", random_key.as_str());
        // The SDKs sign the API path alone: no base-URL prefix, no query.
        let authorization = self.inner.signer.authorization_header(
            self.inner.config.api_key.expose_secret(),
            &random_key,
            path,
            &body,
        );
        let mut url = endpoint(&self.inner.base, path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let request = self
            .inner
            .http
            .request(method, url)
            .header(AUTHORIZATION, authorization)
            .header(RANDOM_HEADER, random_key)
            .header(CONTENT_TYPE, APPLICATION_JSON)
            .header(ACCEPT, APPLICATION_JSON)
            .body(body);
        send(NAME, request, self.inner.config.http.max_response_bytes).await
    }

    /// Reads a reply: the body decides (iyzico answers failures with HTTP 200 or 400), except
    /// that 429 is rate limiting and 5xx is never trusted.
    fn read<T: DeserializeOwned + Envelope>(
        &self,
        reply: &HttpReply,
        call: &Call<'_>,
        echo_required: bool,
    ) -> Result<T, RefundError> {
        let secrets = self.secrets();
        if reply.status == 429 || reply.status >= 500 {
            return Err(reply.unreadable(NAME, "no usable answer", &secrets));
        }
        // One parse, straight from the bytes: amounts stay exact, and the receipt keeps the
        // bytes themselves (parsed again only if somebody looks at them).
        let parsed: T =
            from_object(&reply.body).map_err(|why| reply.unreadable(NAME, why, &secrets))?;
        let echoed = parsed.conversation_id();
        let echo_ok = match echoed {
            Some(c) => c == call.conversation_id,
            None => !echo_required,
        };
        match parsed.status() {
            Some("success") if reply.is_success() => {
                if !echo_ok {
                    return Err(RefundError::outcome_unknown(
                        NAME,
                        format!(
                            "{} answered success for conversationId {:?}, not {:?}",
                            call.operation,
                            echoed.unwrap_or(""),
                            call.conversation_id
                        ),
                    ));
                }
                Ok(parsed)
            }
            Some("failure") if reply.status < 500 => {
                // A failure that names another conversation is not an answer to this request.
                if echoed.is_some() && !echo_ok {
                    return Err(RefundError::outcome_unknown(
                        NAME,
                        format!(
                            "{} answered failure for conversationId {:?}, not {:?}",
                            call.operation,
                            echoed.unwrap_or(""),
                            call.conversation_id
                        ),
                    ));
                }
                Err(failure(
                    parsed.error_code(),
                    parsed.error_message(),
                    parsed.error_group(),
                    parsed.retryable(),
                ))
            }
            Some("success") => {
                Err(reply.unreadable(NAME, "a success body on a non-2xx status", &secrets))
            }
            _ => Err(reply.unreadable(NAME, "no status success/failure", &secrets)),
        }
    }

    /// Verifies a response `signature` when there is one: hex HMAC-SHA256 over
    /// `paymentId:price:currency:conversationId`, the field list the official Java SDK's
    /// `Refund.verifySignature` uses for both refund versions (iyzipay-java
    /// `model/Refund.java`; `ResponseSignatureGenerator` turns null into "" and prints the
    /// price with `stripTrailingZeros().toPlainString()`, an older version with eight
    /// decimals, `0.00000000`; both forms are accepted). The SDKs disagree: the node SDK's
    /// v2-refund sample checks only `paymentId:conversationId` (iyzipay-node
    /// `samples/IyziPayRefundV2Samples.js`; shared/providers/sdk-models.md §0.5), PHP, .NET and
    /// Python check nothing. We follow Java; an answer signed otherwise fails here and is
    /// outcome-unknown (looked up, never trusted). Cancels are not checked: no SDK documents a
    /// signature on them (iyzipay-java `Cancel` has none).
    fn verify_signature(&self, r: &OperationResponse) -> Result<(), RefundError> {
        let Some(signature) = r.signature.as_deref() else {
            return Ok(());
        };
        let signature = signature.trim().to_ascii_lowercase();
        let matches = |price: &str| {
            let expected = self.inner.signer.fields_signature(&[
                r.payment_id.as_deref().unwrap_or(""),
                price,
                r.currency.as_deref().unwrap_or(""),
                r.conversation_id.as_deref().unwrap_or(""),
            ]);
            signatures_equal(&expected, &signature)
        };
        // The eight-decimal form is computed only when the current SDK's form does not match.
        let ok = match r.price {
            Some(p) => matches(&p.normalize().to_string()) || matches(&eight_decimals(p)),
            None => matches(""),
        };
        if ok {
            Ok(())
        } else {
            Err(RefundError::outcome_unknown(
                NAME,
                "the response signature does not match: the answer cannot be trusted",
            ))
        }
    }

    async fn do_refund(
        &self,
        request: &RefundRequest,
        call: &Call<'_>,
    ) -> Result<RefundReceipt, RefundError> {
        let amount = request.amount();
        let ip = self.ip(request.extra("ip"))?;
        let locale = self.inner.config.locale.as_str();
        let body = match request.payment().scope() {
            PaymentScope::Item => to_body(&RefundV1Request {
                locale,
                conversation_id: call.conversation_id,
                payment_transaction_id: request.payment().id(),
                price: format_price(&amount),
                ip,
                currency: amount.currency().code(),
                reason: reason_text(request.reason(), request.description()),
                description: request.description(),
            })?,
            // The SDKs send no reason or description to the v2 refund.
            _ => to_body(&RefundV2Request {
                locale,
                conversation_id: call.conversation_id,
                price: format_price(&amount),
                payment_id: request.payment().id(),
                currency: amount.currency().code(),
                ip,
            })?,
        };
        let reply = self
            .send_signed(reqwest::Method::POST, call.path, &[], body)
            .await?;
        self.map_refund(request, call, &reply)
    }

    /// Checks a refund answer against the request: echo, signature, price, currency, id.
    fn map_refund(
        &self,
        request: &RefundRequest,
        call: &Call<'_>,
        reply: &HttpReply,
    ) -> Result<RefundReceipt, RefundError> {
        let amount = request.amount();
        let r = self.read::<OperationResponse>(reply, call, true)?;
        self.verify_signature(&r)?;
        let unknown = |why: String| RefundError::outcome_unknown(NAME, why);
        match r.price {
            Some(p) if p == amount.amount() => {}
            Some(p) => {
                return Err(unknown(format!(
                    "iyzico reports refunding {p}, but {} was requested",
                    amount.amount()
                )));
            }
            None => {
                return Err(unknown(
                    "the success answer carries no refunded price".into(),
                ));
            }
        }
        if let Some(c) = r.currency.as_deref()
            && c != amount.currency().code()
        {
            return Err(unknown(format!(
                "iyzico reports currency {c}, but {} was requested",
                amount.currency()
            )));
        }
        let id_field = match request.payment().scope() {
            PaymentScope::Item => r.payment_transaction_id.as_deref(),
            _ => r.payment_id.as_deref(),
        };
        if let Some(id) = id_field
            && id != request.payment().id()
        {
            return Err(unknown(format!(
                "iyzico answered for payment {id:?}, not {:?}",
                request.payment().id()
            )));
        }
        Ok(receipt(
            Operation::Refund,
            request.payment().clone(),
            request.reference().clone(),
            amount,
            &r,
            reply,
        ))
    }

    async fn do_void(
        &self,
        request: &VoidRequest,
        call: &Call<'_>,
    ) -> Result<RefundReceipt, RefundError> {
        if request.payment().scope() != PaymentScope::Payment {
            return Err(ValidationError::field(
                "payment",
                "iyzico cancels whole payments: use PaymentRef::payment(paymentId)",
            )
            .into());
        }
        let body = to_body(&CancelRequest {
            locale: self.inner.config.locale.as_str(),
            conversation_id: call.conversation_id,
            payment_id: request.payment().id(),
            ip: self.ip(request.extra("ip"))?,
            reason: reason_text(request.reason(), request.description()),
            description: request.description(),
        })?;
        let reply = self
            .send_signed(reqwest::Method::POST, call.path, &[], body)
            .await?;
        let r = self.read::<OperationResponse>(&reply, call, true)?;
        // No signature check: iyzico's cancel answer has no documented signature (iyzipay-java
        // `model/Cancel.java` has no `signature` and does not implement
        // `ResponseSignatureGenerator`), and the refund's field list is not the cancel's.
        if r.signature.is_some() {
            tracing::debug!(
                "the cancel answer carries a signature; no SDK documents its field list, so it \
                 is not checked"
            );
        }
        if let Some(id) = r.payment_id.as_deref()
            && id != request.payment().id()
        {
            return Err(RefundError::outcome_unknown(
                NAME,
                format!(
                    "iyzico cancelled payment {id:?}, not {:?}",
                    request.payment().id()
                ),
            ));
        }
        // What went back to the card: `paidPrice` when the answer carries one that differs from
        // `price` (the basket amount, "Ödeme sepet tutarı"; with installment fees the buyer
        // paid more), else `price`.
        let paid_back = match (r.paid_price, r.price) {
            (Some(paid), Some(price)) if paid != price => Some(paid),
            (Some(paid), None) => Some(paid),
            (_, price) => price,
        };
        let amount = match (paid_back, r.currency.as_deref().map(parse_currency)) {
            (Some(p), Some(Ok(c))) => Money::new(p, c).map_err(|e| {
                RefundError::outcome_unknown(NAME, format!("cancelled amount unusable: {e}"))
            })?,
            _ => {
                return Err(RefundError::outcome_unknown(
                    NAME,
                    "the cancel answer lacks a usable price and currency",
                ));
            }
        };
        Ok(receipt(
            Operation::Void,
            request.payment().clone(),
            request.reference().clone(),
            amount,
            &r,
            &reply,
        ))
    }

    async fn do_refund_state(
        &self,
        payment: &PaymentRef,
        call: &Call<'_>,
    ) -> Result<RefundState, RefundError> {
        let (payment_id, _) = lookup_ids(payment)?;
        let query = [
            ("locale", self.inner.config.locale.as_str()),
            ("conversationId", call.conversation_id),
            ("paymentId", payment_id),
        ];
        // The node SDK sends (and signs) `{}` as the body of this GET.
        let reply = self
            .send_signed(reqwest::Method::GET, call.path, &query, b"{}".to_vec())
            .await?;
        self.map_lookup(payment, call, &reply)
    }

    /// Reads a payment-details report into the payment's refund state.
    fn map_lookup(
        &self,
        payment: &PaymentRef,
        call: &Call<'_>,
        reply: &HttpReply,
    ) -> Result<RefundState, RefundError> {
        let (payment_id, item_id) = lookup_ids(payment)?;
        let r = self.read::<ReportingPaymentDetail>(reply, call, false)?;
        let unknown = |why: &str| RefundError::outcome_unknown(NAME, why);
        // An absent list is not an empty one: it proves nothing about the payment.
        let payments = r
            .payments
            .as_deref()
            .ok_or_else(|| unknown("the success report has no payments list"))?;
        let mut matching = payments
            .iter()
            .filter(|p| p.payment_id.as_deref().map(str::trim) == Some(payment_id));
        let detail = match (matching.next(), matching.next()) {
            (Some(detail), None) => detail,
            (Some(_), Some(_)) => {
                return Err(unknown("the report lists the payment more than once"));
            }
            (None, _) => match payments {
                [only] if only.payment_id.is_none() => only,
                _ => {
                    return Err(RefundError::declined(
                        NAME,
                        "payment_not_found",
                        format!("the report lists no payment {payment_id}"),
                    ));
                }
            },
        };
        let currency = report_currency(detail)?;
        state_from_detail(payment, detail, item_id, currency)
    }
}

/// The payment's currency, or that of its entries when the payment names none. Without one no
/// amount can be read, so the lookup fails (as outcome-unknown: it proves nothing).
fn report_currency(detail: &PaymentDetail) -> Result<Currency, RefundError> {
    let from_entries = || {
        let refunds = detail
            .item_transactions
            .iter()
            .flatten()
            .flat_map(|line| line.refunds.iter().flatten())
            .find_map(|r| r.currency_code.as_deref());
        refunds.or_else(|| {
            detail
                .cancels
                .iter()
                .flatten()
                .find_map(|c| c.currency_code.as_deref())
        })
    };
    detail
        .currency
        .as_deref()
        .or_else(from_entries)
        .map(parse_currency)
        .transpose()?
        .ok_or_else(|| RefundError::outcome_unknown(NAME, "the report names no currency"))
}

#[async_trait]
impl RefundProvider for Iyzico {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES.with_settle_time(self.inner.config.settle_time)
    }

    /// The capabilities, and an `ip` for the request (the request's own, or the configured
    /// default; required outside loopback).
    fn validate(&self, request: &RefundRequest) -> Result<(), RefundError> {
        CAPABILITIES.check(NAME, request)?;
        self.ip(request.extra("ip")).map(drop)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        // `validate`'s ip check is `do_refund`'s first step: done once, there.
        CAPABILITIES.check(NAME, request)?;
        let call = Call::refund(request);
        let span = span(&call, request.payment());
        let result = self
            .do_refund(request, &call)
            .instrument(span.clone())
            .await;
        record_outcome(&span, &result);
        result
    }

    async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        let call = Call {
            operation: "cancel",
            path: paths::CANCEL,
            conversation_id: request.reference().as_str(),
        };
        let span = span(&call, request.payment());
        let result = self.do_void(request, &call).instrument(span.clone()).await;
        record_outcome(&span, &result);
        result
    }

    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        payment.validate()?;
        // The lookup's own conversationId comes from the (injectable) random-key source, so
        // tests can predict what iyzico must echo.
        let lookup_id = self.inner.config.next_random_key();
        let call = Call {
            operation: "payment_details",
            path: paths::PAYMENT_DETAILS,
            conversation_id: &lookup_id,
        };
        let span = span(&call, payment);
        let result = self
            .do_refund_state(payment, &call)
            .instrument(span.clone())
            .await;
        record_outcome(&span, &result);
        result
    }
}

/// The response fields every iyzico answer shares.
trait Envelope {
    fn status(&self) -> Option<&str>;
    fn conversation_id(&self) -> Option<&str>;
    fn error_code(&self) -> Option<&str>;
    fn error_message(&self) -> Option<&str>;
    fn error_group(&self) -> Option<&str>;
    fn retryable(&self) -> Option<bool>;
}

macro_rules! envelope {
    ($ty:ty, $retryable:expr) => {
        impl Envelope for $ty {
            fn status(&self) -> Option<&str> {
                self.status.as_deref().map(str::trim)
            }
            fn conversation_id(&self) -> Option<&str> {
                self.conversation_id.as_deref()
            }
            fn error_code(&self) -> Option<&str> {
                self.error_code.as_deref()
            }
            fn error_message(&self) -> Option<&str> {
                self.error_message.as_deref()
            }
            fn error_group(&self) -> Option<&str> {
                self.error_group.as_deref()
            }
            fn retryable(&self) -> Option<bool> {
                let f: fn(&$ty) -> Option<bool> = $retryable;
                f(self)
            }
        }
    };
}

envelope!(OperationResponse, |r| r.retryable);
envelope!(ReportingPaymentDetail, |_| None);

/// Maps a `status: failure` answer onto the taxonomy.
/// The payment id a lookup queries, and the item it is about (for an item reference, which
/// needs its parent payment id).
fn lookup_ids(payment: &PaymentRef) -> Result<(&str, Option<&str>), RefundError> {
    match payment.scope() {
        PaymentScope::Payment => Ok((payment.id(), None)),
        _ => match payment.parent() {
            Some(parent) => Ok((parent, Some(payment.id()))),
            None => Err(ValidationError::field(
                "payment",
                "an item lookup needs its payment id: use PaymentRef::item(id).in_payment(payment_id)",
            )
            .into()),
        },
    }
}

fn failure(
    code: Option<&str>,
    message: Option<&str>,
    group: Option<&str>,
    retryable: Option<bool>,
) -> RefundError {
    let code = code
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("unknown");
    let message = message.unwrap_or("").trim();
    let message = match group.map(str::trim).filter(|g| !g.is_empty()) {
        Some(g) if message.is_empty() => format!("[{g}]"),
        Some(g) => format!("{message} [{g}]"),
        None => message.to_owned(),
    };
    if AUTH_ERROR_CODES.contains(&code) {
        RefundError::authentication(NAME, code, message)
    } else if code == REFUND_DECLINE_CODE || retryable == Some(true) {
        RefundError::declined_retryable(NAME, code, message)
    } else {
        RefundError::declined(NAME, code, message)
    }
}

/// The SDKs' reason values (iyzipay-node `Iyzipay.REFUND_REASON`). iyzico requires a reason
/// when a description is sent, so a bare description goes with `other`.
fn reason_text(reason: Option<RefundReason>, description: Option<&str>) -> Option<&'static str> {
    match reason {
        Some(RefundReason::BuyerRequest) => Some("buyer_request"),
        Some(RefundReason::DoublePayment) => Some("double_payment"),
        Some(RefundReason::Fraud) => Some("fraud"),
        Some(_) => Some("other"),
        None => description.map(|_| "other"),
    }
}

fn to_body<T: serde::Serialize>(wire: &T) -> Result<Vec<u8>, RefundError> {
    serde_json::to_vec(wire)
        .map_err(|e| RefundError::configuration(NAME, format!("serialising the request: {e}")))
}

fn eight_decimals(p: Decimal) -> String {
    let mut d = p.round_dp_with_strategy(8, rust_decimal::RoundingStrategy::ToZero);
    d.rescale(8);
    d.to_string()
}

fn parse_currency(code: &str) -> Result<Currency, RefundError> {
    code.trim().parse::<Currency>().map_err(|_| {
        RefundError::outcome_unknown(
            NAME,
            format!("iyzico answered in unknown currency {code:.8}"),
        )
    })
}

fn receipt(
    operation: Operation,
    payment: PaymentRef,
    reference: MerchantRef,
    amount: Money,
    r: &OperationResponse,
    reply: &HttpReply,
) -> RefundReceipt {
    let mut receipt = RefundReceipt::new(
        NAME,
        operation,
        payment,
        reference,
        amount,
        RefundStatus::Completed,
    );
    for (name, value) in [
        ("paymentId", &r.payment_id),
        ("paymentTransactionId", &r.payment_transaction_id),
        ("authCode", &r.auth_code),
        ("hostReference", &r.host_reference),
        ("refundHostReference", &r.refund_host_reference),
        ("cancelHostReference", &r.cancel_host_reference),
    ] {
        if let Some(v) = value {
            receipt = receipt.with_provider_reference(name, v.as_str());
        }
    }
    // iyzico's id of the refund: `refundHostReference` (newer answers), else `hostReference`
    // (older answers, the seed's; the Turkish docs call it the refund's acquirer reference,
    // ARN). A cancel's: `cancelHostReference` (iyzipay-java `Cancel`), else `hostReference`.
    let own = match operation {
        Operation::Void => &r.cancel_host_reference,
        _ => &r.refund_host_reference,
    };
    let id = [own, &r.host_reference]
        .into_iter()
        .flatten()
        .map(|v| v.trim())
        .find(|v| !v.is_empty());
    if let Some(id) = id {
        receipt = receipt.with_refund_id(id);
    }
    receipt.with_raw(reply.body.clone())
}

fn span(call: &Call<'_>, payment: &PaymentRef) -> tracing::Span {
    tracing::info_span!(
        "iyzico",
        provider = NAME,
        operation = call.operation,
        payment = %payment,
        conversation_id = call.conversation_id,
        random_key = tracing::field::Empty,
        outcome = tracing::field::Empty,
    )
}

fn record_outcome<T>(span: &tracing::Span, result: &Result<T, RefundError>) {
    let outcome = match result {
        Ok(_) => "success",
        Err(e) => e.kind(),
    };
    span.record("outcome", outcome);
    match result {
        Ok(_) => tracing::info!(parent: span, outcome, "iyzico call succeeded"),
        Err(e) => tracing::warn!(parent: span, outcome, error = %e, "iyzico call failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_that_is_a_json_array_is_never_a_receipt() {
        let iyzico = Iyzico::new(IyzicoConfig::new("api-key", "secret-key")).unwrap();
        let amount = Money::parse("0.5", Currency::Try).unwrap();
        let request = RefundRequest::builder(PaymentRef::item("11433038"), amount)
            .reference("123456789")
            .build()
            .unwrap();
        // The object answer's values, in field order: serde would read them into the struct.
        let array = br#"["success",null,null,null,"123456789",null,"11433038",0.5,"TRY"]"#;
        let e = iyzico
            .interpret_refund_answer(&request, 200, array)
            .unwrap_err();
        assert!(matches!(e, RefundError::OutcomeUnknown { .. }), "{e:?}");
        assert!(e.to_string().contains("JSON that is not an object"), "{e}");
    }

    #[test]
    fn failures_map_to_the_right_class() {
        for code in AUTH_ERROR_CODES {
            let e = failure(Some(code), Some("x"), None, None);
            assert!(
                matches!(e, RefundError::AuthenticationRejected { .. }),
                "{code}"
            );
            assert!(e.is_outcome_known() && !e.is_retryable());
        }
        let e = failure(
            Some("10246"),
            Some("Banka reddetti"),
            Some("REFUND_DECLINE"),
            None,
        );
        assert!(e.is_retryable());
        assert_eq!(e.provider_code(), Some("10246"));
        assert!(e.to_string().contains("[REFUND_DECLINE]"));
        assert!(failure(Some("5000"), None, None, Some(true)).is_retryable());
        let e = failure(Some("11"), Some("Geçersiz istek"), None, Some(false));
        assert!(matches!(
            e,
            RefundError::Declined {
                retryable: false,
                ..
            }
        ));
        assert_eq!(
            failure(None, None, None, None).provider_code(),
            Some("unknown")
        );
    }

    #[test]
    fn reasons_use_the_sdk_values_and_a_description_needs_one() {
        assert_eq!(
            reason_text(Some(RefundReason::BuyerRequest), None),
            Some("buyer_request")
        );
        assert_eq!(
            reason_text(Some(RefundReason::DoublePayment), None),
            Some("double_payment")
        );
        assert_eq!(reason_text(Some(RefundReason::Fraud), None), Some("fraud"));
        assert_eq!(reason_text(Some(RefundReason::Other), None), Some("other"));
        assert_eq!(reason_text(None, Some("why")), Some("other"));
        assert_eq!(reason_text(None, None), None);
    }

    #[test]
    fn eight_decimal_prices_round_down() {
        assert_eq!(eight_decimals(Decimal::new(5, 1)), "0.50000000");
        assert_eq!(eight_decimals("1.123456789".parse().unwrap()), "1.12345678");
    }
}
