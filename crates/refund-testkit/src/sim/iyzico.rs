//! The iyzico simulator.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use refund_core::{Currency, Decimal, Money};
use refund_iyzico::price::format_decimal;
use refund_iyzico::signature::{RequestSigner, parse_authorization, signatures_equal};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{
    Fault, SimContext, SimRequest, SimResponse, SimServer, Simulator, datetime, fixed, lock,
    number, unix_now,
};

/// The demo key pair of an [`IyzicoSim`] and where it listens. `Debug` redacts the keys.
#[derive(Clone)]
pub struct IyzicoCredentials {
    /// The API key.
    pub api_key: &'static str,
    /// The secret key.
    pub secret_key: &'static str,
    /// The simulator's base URL (the SDKs' `uri`).
    pub base_url: String,
}

impl fmt::Debug for IyzicoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IyzicoCredentials")
            .field("api_key", &"[REDACTED]")
            .field("secret_key", &"[REDACTED]")
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// One refund of one item (basket line): in the reporting lookup, an
/// `itemTransactions[].refunds[]` entry shaped as iyzipay-java `model/RefundTxDetail.java`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IyzicoRefund {
    /// iyzico's id of the refund transaction (`refundTxId` in the reporting lookup).
    pub refund_tx_id: String,
    /// The request's `conversationId` (`refundConversationId` in the reporting lookup).
    pub conversation_id: Option<String>,
    /// The amount refunded from this item (or, for a failed refund, the amount asked).
    pub price: Decimal,
    /// `"item"` for `/payment/refund`, `"payment"` for `/v2/payment/refund`.
    pub via: &'static str,
    /// When, `YYYY-MM-DD HH:MM:SS` UTC.
    pub created_at: String,
    /// When the simulator applied (or refused) it: the reporting lookup hides it until it is
    /// older than the lookup lag ([`IyzicoSim::set_lookup_lag`]).
    pub applied_at: Instant,
    /// For a failed refund: iyzico's `errorCode`, `errorMessage` and `errorGroup` on the entry
    /// (`refundStatus` 0). `None` for a completed refund.
    pub error: Option<IyzicoEntryError>,
}

/// Why a refund or cancel entry failed, as the reporting lookup lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IyzicoEntryError {
    /// `errorCode`.
    pub code: &'static str,
    /// `errorMessage`.
    pub message: &'static str,
    /// `errorGroup`.
    pub group: &'static str,
}

impl IyzicoEntryError {
    /// What [`Fault::Fail`] records and answers: the bank declined the refund. The code and
    /// group are those of providers/iyzico.md's `10246 REFUND_DECLINE`; that a failed entry in
    /// the report carries the same error as the answer is assumed (no source shows one).
    pub const BANK_DECLINED: IyzicoEntryError = IyzicoEntryError {
        code: "10246",
        message: "Banka iade işlemini reddetti",
        group: "REFUND_DECLINE",
    };
}

/// One item transaction (basket line) of a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IyzicoItem {
    /// `paymentTransactionId`.
    pub payment_transaction_id: String,
    /// The line's basket price (`price` in the reporting lookup). Equal to
    /// [`paid_price`](Self::paid_price) unless seeded otherwise
    /// ([`IyzicoSim::add_payment_with_paid_prices`]).
    pub price: Decimal,
    /// What the buyer paid for this line (`paidPrice`: with instalment interest or a
    /// discount it differs from `price`); refunds are limited by it.
    pub paid_price: Decimal,
    /// Its refunds, oldest first: only those that returned money.
    pub refunds: Vec<IyzicoRefund>,
    /// Refunds the bank refused ([`Fault::Fail`]), oldest first: no money moved.
    pub failed_refunds: Vec<IyzicoRefund>,
    /// The sum of `refunds`, kept up to date so a refund costs O(1) however many came before.
    refunded_total: Decimal,
}

impl IyzicoItem {
    /// The sum of this line's refunds.
    pub fn refunded(&self) -> Decimal {
        self.refunded_total
    }

    fn push(&mut self, refund: IyzicoRefund) {
        self.refunded_total += refund.price;
        self.refunds.push(refund);
    }

    /// What can still be refunded from this line.
    pub fn remaining(&self) -> Decimal {
        self.paid_price - self.refunded()
    }
}

/// A cancel (void) of a whole payment: in the reporting lookup, a `cancels[]` entry shaped as
/// iyzipay-java `model/RefundDetail.java`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IyzicoCancel {
    /// iyzico's id of the cancel (`refundId` in the reporting lookup).
    pub refund_id: String,
    /// The request's `conversationId` (`cancelConversationId` in the reporting lookup).
    pub conversation_id: Option<String>,
    /// The amount cancelled (the whole paid price; `refundPrice` in the reporting lookup).
    pub price: Decimal,
    /// When, `YYYY-MM-DD HH:MM:SS` UTC.
    pub created_at: String,
    /// When the simulator applied (or refused) it: the reporting lookup hides it until it is
    /// older than the lookup lag.
    pub applied_at: Instant,
    /// For a failed cancel: the entry's error (`refundStatus` 0). `None` when it succeeded.
    pub error: Option<IyzicoEntryError>,
}

/// One payment in the iyzico ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IyzicoPayment {
    /// `paymentId`.
    pub payment_id: String,
    /// The payment's own `conversationId` (what the reporting lookup's
    /// `paymentConversationId` finds); `order-<paymentId>` unless seeded otherwise.
    pub conversation_id: String,
    /// The currency paid in.
    pub currency: Currency,
    /// The basket lines.
    pub items: Vec<IyzicoItem>,
    /// The cancel, if the payment was voided.
    pub cancel: Option<IyzicoCancel>,
    /// Cancels the bank refused ([`Fault::Fail`]), oldest first: the payment stands.
    pub failed_cancels: Vec<IyzicoCancel>,
    /// When it was paid, in seconds since the Unix epoch: the same-day cancel rule compares
    /// its Istanbul date with today's ([`IyzicoSim::set_paid_at`]).
    pub paid_at: u64,
}

impl IyzicoPayment {
    /// The total paid (sum of the lines' `paidPrice`).
    pub fn paid_price(&self) -> Decimal {
        self.items.iter().map(|i| i.paid_price).sum()
    }

    /// The basket total (sum of the lines' `price`).
    pub fn price(&self) -> Decimal {
        self.items.iter().map(|i| i.price).sum()
    }

    /// The total refunded across all lines.
    pub fn refunded(&self) -> Decimal {
        self.items.iter().map(IyzicoItem::refunded).sum()
    }

    /// What can still be refunded (zero once cancelled).
    pub fn remaining(&self) -> Decimal {
        if self.cancel.is_some() {
            Decimal::ZERO
        } else {
            self.paid_price() - self.refunded()
        }
    }

    /// Every refund of every line.
    pub fn refunds(&self) -> impl Iterator<Item = (&IyzicoItem, &IyzicoRefund)> {
        self.items
            .iter()
            .flat_map(|item| item.refunds.iter().map(move |r| (item, r)))
    }

    /// `paymentRefundStatus` as the reporting lookup writes it: `NOT_REFUNDED`,
    /// `PARTIALLY_REFUNDED` or `TOTALLY_REFUNDED` (the docs list the last with a trailing space,
    /// `"TOTALLY_REFUNDED "`; the simulator writes it without). Only refunds count: what a
    /// cancelled payment shows is not documented, and the simulator keeps `NOT_REFUNDED`.
    pub fn refund_status(&self) -> &'static str {
        refund_status(self.refunded(), self.paid_price())
    }
}

fn refund_status(refunded: Decimal, paid: Decimal) -> &'static str {
    if refunded.is_zero() {
        "NOT_REFUNDED"
    } else if refunded >= paid {
        "TOTALLY_REFUNDED"
    } else {
        "PARTIALLY_REFUNDED"
    }
}

/// A snapshot of the iyzico ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IyzicoLedger {
    /// Payments in the order they were added.
    pub payments: Vec<IyzicoPayment>,
}

impl IyzicoLedger {
    /// The payment with this `paymentId`.
    pub fn payment(&self, payment_id: &str) -> Option<&IyzicoPayment> {
        self.payments.iter().find(|p| p.payment_id == payment_id)
    }

    /// The item with this `paymentTransactionId`.
    pub fn item(&self, payment_transaction_id: &str) -> Option<&IyzicoItem> {
        self.payments
            .iter()
            .flat_map(|p| p.items.iter())
            .find(|i| i.payment_transaction_id == payment_transaction_id)
    }
}

#[derive(Default)]
struct State {
    payments: Vec<IyzicoPayment>,
    by_payment: HashMap<String, usize>,
    by_conversation: HashMap<String, usize>,
    by_item: HashMap<String, (usize, usize)>,
    seq: u64,
}

impl State {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn add_payment(
        &mut self,
        currency: Currency,
        prices: &[(Decimal, Decimal)],
        conversation_id: Option<String>,
    ) -> IyzicoPayment {
        let payment_id = format!("{}", 25_180_000 + self.next());
        let conversation_id = conversation_id.unwrap_or_else(|| format!("order-{payment_id}"));
        let index = self.payments.len();
        let mut items = Vec::with_capacity(prices.len());
        for (n, (price, paid_price)) in prices.iter().enumerate() {
            let id = format!("{}", 26_120_000 + self.next());
            self.by_item.insert(id.clone(), (index, n));
            items.push(IyzicoItem {
                payment_transaction_id: id,
                price: *price,
                paid_price: *paid_price,
                refunds: Vec::new(),
                failed_refunds: Vec::new(),
                refunded_total: Decimal::ZERO,
            });
        }
        let payment = IyzicoPayment {
            payment_id: payment_id.clone(),
            conversation_id: conversation_id.clone(),
            currency,
            items,
            cancel: None,
            failed_cancels: Vec::new(),
            paid_at: unix_now().as_secs(),
        };
        self.by_payment.insert(payment_id, index);
        self.by_conversation.insert(conversation_id, index);
        self.payments.push(payment.clone());
        payment
    }
}

pub(crate) struct Inner {
    state: Mutex<State>,
    signer: RequestSigner,
    /// The `refundStatus` a completed and a failed entry carry.
    refund_status_values: Mutex<(i64, i64)>,
    /// Cancels only on the payment's own (Istanbul) day.
    same_day_cancel: AtomicBool,
}

/// `refundStatus` of a completed entry, and of a failed one, unless changed.
const REFUND_STATUS_VALUES: (i64, i64) = (1, 0);

/// Istanbul's offset from UTC (+03:00 all year since 2016): iyzico's day.
const ISTANBUL_OFFSET_SECS: u64 = 3 * 3600;

/// The Istanbul calendar day of `unix_seconds`, as a day number.
fn istanbul_day(unix_seconds: u64) -> u64 {
    (unix_seconds + ISTANBUL_OFFSET_SECS) / 86_400
}

/// A stateful iyzico simulator on `127.0.0.1` (see the [module docs](super)).
///
/// Every request must carry `Authorization: IYZWSv2 …` signed as iyzico checks it
/// (`HMAC-SHA256(secretKey, randomKey + path + raw body)`); a wrong signature is answered
/// with HTTP 200, `status: failure`, errorCode `1000` "Geçersiz imza", an unknown API key with
/// `1001`, a missing header with `1009`, as the sandbox does. Operations:
///
/// - `POST /payment/refund` (item): `price` ≤ what is left of the line's `paidPrice`;
///   repeated partial refunds are allowed while that holds.
/// - `POST /v2/payment/refund` (payment): `price` ≤ what is left of the whole payment; the
///   simulator takes it from the lines in basket order (filling the first line's remainder
///   first) and records one refund per line touched, all with the request's conversationId.
/// - `POST /payment/cancel` (void): the whole payment, and only while nothing has been
///   refunded (a payment with refunds must be refunded, not cancelled), and only on the
///   payment's own day in Istanbul time ([`IyzicoSim::set_same_day_cancel`], on by default;
///   [`IyzicoSim::ERR_CANCEL_NOT_SAME_DAY`] otherwise); a cancelled payment takes no refunds.
///   The cancel answers the whole `paidPrice`.
/// - `GET /v2/reporting/payment/details?paymentId=…` (or `paymentConversationId`): shaped as
///   the official SDKs model it (iyzipay-java `model/PaymentDetail.java`):
///   `payments[0].itemTransactions[].refunds[]` as `RefundTxDetail` (`refundTxId`,
///   `refundConversationId`, `refundPrice`, `refundStatus`, …), `cancels[]` as `RefundDetail`
///   (`refundId`, `cancelConversationId`, `refundPrice`, `refundStatus`, …), and
///   `paymentRefundStatus`. `refundStatus` is 1 for a refund or cancel that went through and
///   0, with `errorGroup`/`errorCode`/`errorMessage`, for one the bank refused (the
///   simulator's reading: no source documents the values; other values with
///   [`IyzicoSim::set_refund_status_values`]). Lines and payments show `price` and
///   `paidPrice`, equal unless seeded apart ([`IyzicoSim::add_payment_with_paid_prices`]). Entries younger than the lookup
///   lag ([`IyzicoSim::set_lookup_lag`]) are left out, `paymentRefundStatus` included.
///
/// Under [`Fault::Fail`] a refund or cancel that would have gone through is recorded as
/// failed (`refundStatus` 0, errorCode 10246, `REFUND_DECLINE`, carrying its conversationId
/// as `refundConversationId` / `cancelConversationId`) and answered with iyzico's
/// `status: failure` decline; no money moves.
///
/// Refund answers carry the response `signature` (HMAC over
/// `paymentId:price:currency:conversationId`, price without trailing zeros) and echo the
/// `conversationId` and `locale`; prices are JSON numbers. Business failures use the
/// simulator's own error codes ([`IyzicoSim::ERR_NOT_FOUND`] …): iyzico publishes none for
/// these cases.
pub struct IyzicoSim {
    server: SimServer<Inner>,
}

impl fmt::Debug for IyzicoSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IyzicoSim")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

const REFUND: &str = "/payment/refund";
const REFUND_V2: &str = "/v2/payment/refund";
const CANCEL: &str = "/payment/cancel";
const DETAILS: &str = "/v2/reporting/payment/details";

impl IyzicoSim {
    /// The simulator's API key.
    pub const API_KEY: &'static str = "sandbox-sim-api-key-0000000000000001";
    /// The simulator's secret key.
    pub const SECRET_KEY: &'static str = "sandbox-sim-secret-key-00000000000001";

    /// errorCode for an unknown `paymentId` / `paymentTransactionId` (simulator's own).
    pub const ERR_NOT_FOUND: &'static str = "9001";
    /// errorCode for a refund above what is left to refund (simulator's own).
    pub const ERR_OVER_REFUND: &'static str = "9002";
    /// errorCode for a refund or cancel of a cancelled payment (simulator's own).
    pub const ERR_CANCELLED: &'static str = "9003";
    /// errorCode for a cancel of a payment that has refunds (simulator's own).
    pub const ERR_CANCEL_AFTER_REFUND: &'static str = "9004";
    /// errorCode for a currency other than the payment's (simulator's own).
    pub const ERR_CURRENCY: &'static str = "9005";
    /// errorCode for a cancel after the payment's day (simulator's own; iyzico cancels only
    /// on the day of the payment and publishes no code for it).
    pub const ERR_CANCEL_NOT_SAME_DAY: &'static str = "9006";

    /// Starts a simulator on `127.0.0.1` on a free port.
    pub async fn start() -> io::Result<IyzicoSim> {
        IyzicoSim::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a simulator listening on `addr` (port 0 picks a free port).
    pub async fn start_on(addr: SocketAddr) -> io::Result<IyzicoSim> {
        let inner = Inner {
            state: Mutex::new(State::default()),
            signer: RequestSigner::new(IyzicoSim::SECRET_KEY),
            refund_status_values: Mutex::new(REFUND_STATUS_VALUES),
            same_day_cancel: AtomicBool::new(true),
        };
        let server = SimServer::start_on(addr, inner).await?;
        Ok(IyzicoSim { server })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://<addr>`, the SDKs' `uri`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The demo key pair and the base URL.
    pub fn credentials(&self) -> IyzicoCredentials {
        IyzicoCredentials {
            api_key: IyzicoSim::API_KEY,
            secret_key: IyzicoSim::SECRET_KEY,
            base_url: self.base_url(),
        }
    }

    /// Adds a paid payment with one item transaction per price; returns it with the ids
    /// the simulator gave it.
    pub fn add_payment(&self, currency: Currency, item_prices: &[Decimal]) -> IyzicoPayment {
        let prices: Vec<(Decimal, Decimal)> = item_prices.iter().map(|p| (*p, *p)).collect();
        lock(&self.server.sim().state).add_payment(currency, &prices, None)
    }

    /// Like [`add_payment`](Self::add_payment), with each line's basket `price` and what the
    /// buyer paid for it (`paidPrice`) apart, as `(price, paid_price)`: iyzico's own reporting
    /// example has `price: 1, paidPrice: 50`. Refunds are limited by `paidPrice`; the
    /// reporting lookup shows both.
    pub fn add_payment_with_paid_prices(
        &self,
        currency: Currency,
        lines: &[(Decimal, Decimal)],
    ) -> IyzicoPayment {
        lock(&self.server.sim().state).add_payment(currency, lines, None)
    }

    /// Dates payment `payment_id` as paid at `unix_seconds` (a payment is paid now when
    /// added): with the same-day cancel rule, a payment from an earlier Istanbul day cannot be
    /// cancelled. `false` when there is no such payment.
    pub fn set_paid_at(&self, payment_id: &str, unix_seconds: u64) -> bool {
        let mut state = lock(&self.server.sim().state);
        let Some(&p) = state.by_payment.get(payment_id) else {
            return false;
        };
        state.payments[p].paid_at = unix_seconds;
        true
    }

    /// The `refundStatus` values the reporting lookup gives a completed and a failed refund or
    /// cancel entry: `(1, 0)` by default (the simulator's reading; no source documents them,
    /// and iyzico's own example shows `transactionStatus: 2` on an ordinary line). Admin:
    /// `{"refund_status_completed": N, "refund_status_failed": N}`. Reset restores `(1, 0)`.
    pub fn set_refund_status_values(&self, completed: i64, failed: i64) {
        *lock(&self.server.sim().refund_status_values) = (completed, failed);
    }

    /// iyzico cancels a payment only on the day it was made (Istanbul time): on by default;
    /// a later cancel is answered `failure` with [`ERR_CANCEL_NOT_SAME_DAY`](Self::ERR_CANCEL_NOT_SAME_DAY)
    /// and nothing moves. Admin: `{"same_day_cancel": bool}`. Reset turns it back on.
    pub fn set_same_day_cancel(&self, on: bool) {
        self.server
            .sim()
            .same_day_cancel
            .store(on, Ordering::SeqCst);
    }

    /// Like [`add_payment`](Self::add_payment), with the payment's own `conversationId`.
    pub fn add_payment_with_conversation_id(
        &self,
        currency: Currency,
        item_prices: &[Decimal],
        conversation_id: &str,
    ) -> IyzicoPayment {
        let prices: Vec<(Decimal, Decimal)> = item_prices.iter().map(|p| (*p, *p)).collect();
        lock(&self.server.sim().state).add_payment(
            currency,
            &prices,
            Some(conversation_id.to_owned()),
        )
    }

    /// A snapshot of the ledger.
    pub fn ledger(&self) -> IyzicoLedger {
        IyzicoLedger {
            payments: lock(&self.server.sim().state).payments.clone(),
        }
    }

    /// One payment, by `paymentId`.
    pub fn payment(&self, payment_id: &str) -> Option<IyzicoPayment> {
        let state = lock(&self.server.sim().state);
        state
            .by_payment
            .get(payment_id)
            .map(|&i| state.payments[i].clone())
    }

    /// The provider requests received so far (admin API excluded), oldest first.
    pub fn requests(&self) -> Vec<SimRequest> {
        self.server.requests()
    }

    /// Turns request recording on or off (on by default; off for benchmarks).
    pub fn set_recording(&self, on: bool) {
        self.server.set_recording(on);
    }

    /// Applies `fault` to the next `count` provider requests.
    pub fn arm(&self, fault: Fault, count: usize) {
        self.server.arm(fault, count);
    }

    /// Faults still armed, with how many requests each has left.
    pub fn armed(&self) -> Vec<(Fault, usize)> {
        self.server.armed()
    }

    /// Clears every armed fault.
    pub fn disarm(&self) {
        self.server.disarm();
    }

    /// Hides every refund and cancel (completed or failed) from the reporting lookup until it
    /// is `lag` old, as a lagging reporting replica would (iyzico documents no lag; the admin
    /// API's `POST /__sandbox/behaviour {"lookup_lag_ms": N}` sets the same). Zero by default.
    pub fn set_lookup_lag(&self, lag: Duration) {
        self.server.set_lookup_lag(lag);
    }

    /// The lookup lag.
    pub fn lookup_lag(&self) -> Duration {
        self.server.lookup_lag()
    }

    /// Late application for every refund and lookup: each is processed `delay` after it
    /// arrived and answered then, and a client that gave up earlier finds it applied anyway
    /// ([`SimServer::set_response_delay`](super::SimServer::set_response_delay); admin
    /// `{"response_delay_ms": N}`). Zero by default.
    pub fn set_response_delay(&self, delay: Duration) {
        self.server.set_response_delay(delay);
    }

    /// The response delay ([`set_response_delay`](Self::set_response_delay)).
    pub fn response_delay(&self) -> Duration {
        self.server.response_delay()
    }

    /// Forgets payments, refunds, faults, the lookup lag and recorded requests.
    pub fn reset(&self) {
        self.server.reset();
    }
}

/// The fields of the three POST operations (absent ones are `None`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpBody {
    locale: Option<String>,
    conversation_id: Option<String>,
    #[serde(default, deserialize_with = "id")]
    payment_transaction_id: Option<String>,
    #[serde(default, deserialize_with = "id")]
    payment_id: Option<String>,
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    price: Option<Decimal>,
    currency: Option<String>,
    ip: Option<String>,
}

/// Ids come as strings from the SDKs and as numbers from some integrations.
fn id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

struct Ctx {
    locale: String,
    conversation_id: Option<String>,
    /// [`Fault::WrongAmount`]: state a price one unit above the one applied.
    misstates_amount: bool,
}

impl Inner {
    fn reset(&self) {
        *lock(&self.state) = State::default();
        *lock(&self.refund_status_values) = REFUND_STATUS_VALUES;
        self.same_day_cancel.store(true, Ordering::SeqCst);
    }

    /// `Err` is iyzico's answer to a request that fails authentication.
    #[allow(clippy::result_large_err)] // the Err is the answer itself, built once per rejected request
    fn authenticate(&self, req: &SimRequest, ctx: &Ctx) -> Result<(), SimResponse> {
        let mut values = req.headers.get_all(hyper::header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(failure("1009", "Authorization header gönderilmelidir", ctx));
        };
        let Some(parsed) = value.to_str().ok().and_then(parse_authorization) else {
            return Err(failure("1000", "Geçersiz imza", ctx));
        };
        if parsed.api_key != IyzicoSim::API_KEY {
            return Err(failure("1001", "Api bilgileri bulunamadı", ctx));
        }
        if let Some(rnd) = req.headers.get("x-iyzi-rnd")
            && rnd.as_bytes() != parsed.random_key.as_bytes()
        {
            return Err(failure("1000", "Geçersiz imza", ctx));
        }
        let expected = self
            .signer
            .signature_hex(&parsed.random_key, req.path.as_str(), &req.body);
        if !signatures_equal(&expected, &parsed.signature) {
            return Err(failure("1000", "Geçersiz imza", ctx));
        }
        Ok(())
    }

    /// A provider operation: refunds and cancels are refused by the bank under
    /// [`Fault::Fail`] (`sim.refuses()`); the lookup is answered as usual.
    fn operation(&self, req: &SimRequest, sim: &SimContext) -> SimResponse {
        let outcome = if sim.refuses() {
            Outcome::Fail
        } else {
            Outcome::Apply
        };
        let parsed = if req.body.is_empty() {
            None
        } else {
            serde_json::from_slice::<OpBody>(&req.body).ok()
        };
        let ctx = Ctx {
            locale: parsed
                .as_ref()
                .and_then(|b| b.locale.clone())
                .unwrap_or_else(|| "tr".to_owned()),
            conversation_id: parsed.as_ref().and_then(|b| b.conversation_id.clone()),
            misstates_amount: sim.misstates_amount(),
        };
        if let Err(answer) = self.authenticate(req, &ctx) {
            return answer;
        }
        let path = req.path.as_str();
        if path == DETAILS {
            return self.details(req, &ctx, sim);
        }
        let Some(body) = parsed else {
            return failure("11", "Geçersiz istek", &ctx);
        };
        if body.ip.as_deref().is_none_or(str::is_empty) {
            return failure("11", "Geçersiz istek: ip gönderilmelidir", &ctx);
        }
        match path {
            REFUND => self.refund_item(&body, &ctx, outcome),
            REFUND_V2 => self.refund_payment(&body, &ctx, outcome),
            _ => self.cancel(&body, &ctx, outcome),
        }
    }

    #[allow(clippy::result_large_err)] // the Err is the answer itself, built once per rejected request
    fn check_price(body: &OpBody, currency: Currency, ctx: &Ctx) -> Result<Decimal, SimResponse> {
        let Some(price) = body.price.filter(|p| *p > Decimal::ZERO) else {
            return Err(failure("11", "Geçersiz istek: price", ctx));
        };
        if price.normalize().scale() > currency.scale() {
            return Err(failure("11", "Geçersiz istek: price", ctx));
        }
        if let Some(code) = &body.currency
            && code != currency.code()
        {
            return Err(failure(
                IyzicoSim::ERR_CURRENCY,
                "Para birimi ödemenin para birimiyle aynı olmalıdır",
                ctx,
            ));
        }
        Ok(price)
    }

    fn refund_item(&self, body: &OpBody, ctx: &Ctx, outcome: Outcome) -> SimResponse {
        let Some(tx_id) = body.payment_transaction_id.as_deref() else {
            return failure("11", "Geçersiz istek: paymentTransactionId", ctx);
        };
        let mut state = lock(&self.state);
        let Some(&(p, i)) = state.by_item.get(tx_id) else {
            return failure(IyzicoSim::ERR_NOT_FOUND, "Ödeme kırılımı bulunamadı", ctx);
        };
        let currency = state.payments[p].currency;
        let price = match Inner::check_price(body, currency, ctx) {
            Ok(price) => price,
            Err(answer) => return answer,
        };
        if state.payments[p].cancel.is_some() {
            return failure(
                IyzicoSim::ERR_CANCELLED,
                "İptal edilmiş ödeme iade edilemez",
                ctx,
            );
        }
        if price > state.payments[p].items[i].remaining() {
            return failure(
                IyzicoSim::ERR_OVER_REFUND,
                "İade tutarı, iade edilebilir tutardan büyük olamaz",
                ctx,
            );
        }
        let refund_tx_id = format!("{}", 31_000_000 + state.next());
        let payment_id = state.payments[p].payment_id.clone();
        let refund = IyzicoRefund {
            refund_tx_id: refund_tx_id.clone(),
            conversation_id: ctx.conversation_id.clone(),
            price,
            via: "item",
            created_at: datetime(unix_now().as_secs()),
            applied_at: Instant::now(),
            error: outcome.error(),
        };
        if outcome == Outcome::Fail {
            state.payments[p].items[i].failed_refunds.push(refund);
            return declined(ctx);
        }
        state.payments[p].items[i].push(refund);
        drop(state);
        refund_success(
            &self.signer,
            &payment_id,
            Some(tx_id),
            price,
            currency,
            &refund_tx_id,
            ctx,
        )
    }

    fn refund_payment(&self, body: &OpBody, ctx: &Ctx, outcome: Outcome) -> SimResponse {
        let Some(payment_id) = body.payment_id.as_deref() else {
            return failure("11", "Geçersiz istek: paymentId", ctx);
        };
        let mut state = lock(&self.state);
        let Some(&p) = state.by_payment.get(payment_id) else {
            return failure(IyzicoSim::ERR_NOT_FOUND, "Ödeme bulunamadı", ctx);
        };
        let currency = state.payments[p].currency;
        let price = match Inner::check_price(body, currency, ctx) {
            Ok(price) => price,
            Err(answer) => return answer,
        };
        if state.payments[p].cancel.is_some() {
            return failure(
                IyzicoSim::ERR_CANCELLED,
                "İptal edilmiş ödeme iade edilemez",
                ctx,
            );
        }
        if price > state.payments[p].remaining() {
            return failure(
                IyzicoSim::ERR_OVER_REFUND,
                "İade tutarı, iade edilebilir tutardan büyük olamaz",
                ctx,
            );
        }
        let created_at = datetime(unix_now().as_secs());
        if outcome == Outcome::Fail {
            // How iyzico lists a refused payment-level refund is not documented. The simulator
            // records one failed entry per attempt, for the whole price, on the first line that
            // has something left: one attempt, one failed record carrying its conversationId.
            let first = state.payments[p]
                .items
                .iter()
                .position(|item| item.remaining() > Decimal::ZERO);
            if let Some(i) = first {
                let refund_tx_id = format!("{}", 31_000_000 + state.next());
                state.payments[p].items[i]
                    .failed_refunds
                    .push(IyzicoRefund {
                        refund_tx_id,
                        conversation_id: ctx.conversation_id.clone(),
                        price,
                        via: "payment",
                        created_at,
                        applied_at: Instant::now(),
                        error: outcome.error(),
                    });
            }
            return declined(ctx);
        }
        let mut left = price;
        let mut first_tx = String::new();
        for i in 0..state.payments[p].items.len() {
            let take = left.min(state.payments[p].items[i].remaining());
            if take <= Decimal::ZERO {
                continue;
            }
            let refund_tx_id = format!("{}", 31_000_000 + state.next());
            if first_tx.is_empty() {
                first_tx.clone_from(&refund_tx_id);
            }
            state.payments[p].items[i].push(IyzicoRefund {
                refund_tx_id,
                conversation_id: ctx.conversation_id.clone(),
                price: take,
                via: "payment",
                created_at: created_at.clone(),
                applied_at: Instant::now(),
                error: None,
            });
            left -= take;
            if left.is_zero() {
                break;
            }
        }
        drop(state);
        refund_success(
            &self.signer,
            payment_id,
            None,
            price,
            currency,
            &first_tx,
            ctx,
        )
    }

    fn cancel(&self, body: &OpBody, ctx: &Ctx, outcome: Outcome) -> SimResponse {
        let Some(payment_id) = body.payment_id.as_deref() else {
            return failure("11", "Geçersiz istek: paymentId", ctx);
        };
        let mut state = lock(&self.state);
        let Some(&p) = state.by_payment.get(payment_id) else {
            return failure(IyzicoSim::ERR_NOT_FOUND, "Ödeme bulunamadı", ctx);
        };
        if state.payments[p].cancel.is_some() {
            return failure(IyzicoSim::ERR_CANCELLED, "Ödeme zaten iptal edilmiş", ctx);
        }
        if !state.payments[p].refunded().is_zero() {
            return failure(
                IyzicoSim::ERR_CANCEL_AFTER_REFUND,
                "İadesi yapılmış ödeme iptal edilemez",
                ctx,
            );
        }
        if self.same_day_cancel.load(Ordering::SeqCst)
            && istanbul_day(state.payments[p].paid_at) != istanbul_day(unix_now().as_secs())
        {
            return failure(
                IyzicoSim::ERR_CANCEL_NOT_SAME_DAY,
                "Ödeme yalnızca yapıldığı gün iptal edilebilir; iade yapınız",
                ctx,
            );
        }
        let refund_id = format!("{}", 32_000_000 + state.next());
        let payment = &mut state.payments[p];
        let price = payment.paid_price();
        let currency = payment.currency;
        let cancel = IyzicoCancel {
            refund_id,
            conversation_id: ctx.conversation_id.clone(),
            price,
            created_at: datetime(unix_now().as_secs()),
            applied_at: Instant::now(),
            error: outcome.error(),
        };
        if outcome == Outcome::Fail {
            payment.failed_cancels.push(cancel);
            return declined(ctx);
        }
        payment.cancel = Some(cancel);
        drop(state);
        SimResponse::json(
            200,
            &CancelAnswer {
                status: "success",
                locale: &ctx.locale,
                system_time: system_time(),
                conversation_id: ctx.conversation_id.as_deref(),
                payment_id,
                price: number(format_decimal(if ctx.misstates_amount {
                    price + Decimal::ONE
                } else {
                    price
                })),
                currency: currency.code(),
                auth_code: auth_code(price),
                host_reference: "sim00000iyzihostrfn",
            },
        )
    }

    /// The reporting lookup, shaped as the official SDKs model it: iyzipay-java
    /// `model/PaymentDetail.java` with `itemTransactions[]` (`PaymentTxDetail`), their
    /// `refunds[]` (`RefundTxDetail`) and `cancels[]` (`RefundDetail`). Entries younger than the
    /// lookup lag are left out, and `paymentRefundStatus` is computed from what is shown.
    fn details(&self, req: &SimRequest, ctx: &Ctx, sim: &SimContext) -> SimResponse {
        // The reporting GET carries its conversationId in the query; the docs say it is
        // "echoed back in the response as-is".
        let conversation_id = req
            .query_param("conversationId")
            .or_else(|| ctx.conversation_id.clone());
        let ctx = &Ctx {
            locale: req
                .query_param("locale")
                .unwrap_or_else(|| ctx.locale.clone()),
            conversation_id,
            misstates_amount: false,
        };
        let state = lock(&self.state);
        let found = match (
            req.query_param("paymentId"),
            req.query_param("paymentConversationId"),
        ) {
            (Some(id), _) => state.by_payment.get(&id),
            (None, Some(conversation)) => state.by_conversation.get(&conversation),
            (None, None) => {
                return failure("11", "Geçersiz istek: paymentId", ctx);
            }
        };
        let Some(&p) = found else {
            return failure(IyzicoSim::ERR_NOT_FOUND, "Ödeme bulunamadı", ctx);
        };
        let payment = &state.payments[p];
        let currency = payment.currency.code();
        let statuses = *lock(&self.refund_status_values);
        let visible = |at: Instant| sim.visible(at);
        let mut shown_refunded = Decimal::ZERO;
        let items: Vec<Value> = payment
            .items
            .iter()
            .map(|item| {
                let mut entries: Vec<&IyzicoRefund> = item
                    .refunds
                    .iter()
                    .chain(&item.failed_refunds)
                    .filter(|r| visible(r.applied_at))
                    .collect();
                entries.sort_by_key(|r| r.applied_at);
                shown_refunded += entries
                    .iter()
                    .filter(|r| r.error.is_none())
                    .map(|r| r.price)
                    .sum::<Decimal>();
                let refunds: Vec<Value> = entries
                    .into_iter()
                    .map(|r| {
                        let mut entry = serde_json::json!({
                            "refundTxId": r.refund_tx_id,
                            "refundConversationId": r.conversation_id,
                        });
                        entry_fields(
                            &mut entry,
                            r.price,
                            r.error.as_ref(),
                            &r.created_at,
                            currency,
                            statuses,
                        );
                        entry
                    })
                    .collect();
                serde_json::json!({
                    "paymentTransactionId": item.payment_transaction_id,
                    "transactionStatus": 1,
                    "price": number(format_decimal(item.price)),
                    "paidPrice": number(format_decimal(item.paid_price)),
                    "refunds": refunds,
                })
            })
            .collect();
        let mut cancels: Vec<&IyzicoCancel> = payment
            .cancel
            .iter()
            .chain(&payment.failed_cancels)
            .filter(|c| visible(c.applied_at))
            .collect();
        cancels.sort_by_key(|c| c.applied_at);
        let cancels: Vec<Value> = cancels
            .into_iter()
            .map(|c| {
                let mut entry = serde_json::json!({
                    "refundId": c.refund_id,
                    "cancelConversationId": c.conversation_id,
                });
                entry_fields(
                    &mut entry,
                    c.price,
                    c.error.as_ref(),
                    &c.created_at,
                    currency,
                    statuses,
                );
                entry
            })
            .collect();
        let paid = number(format_decimal(payment.paid_price()));
        let price = number(format_decimal(payment.price()));
        let answer = serde_json::json!({
            "status": "success",
            "locale": ctx.locale,
            "systemTime": system_time(),
            "conversationId": ctx.conversation_id,
            "payments": [{
                "paymentId": payment.payment_id,
                "paymentStatus": 1,
                "paymentRefundStatus": refund_status(shown_refunded, payment.paid_price()),
                "price": price,
                "paidPrice": paid,
                "currency": currency,
                "paymentConversationId": payment.conversation_id,
                // Not in the SDK models; kept for the simulator's own earlier users.
                "conversationId": payment.conversation_id,
                "itemTransactions": items,
                "cancels": cancels,
            }]
        });
        drop(state);
        SimResponse::json(200, &answer)
    }

    /// `POST /__sandbox/payments`: `{"currency"?, "conversationId"?, "items": [{"price"}, …]}`.
    fn admin_add_payment(&self, body: &Value) -> Result<Value, String> {
        #[derive(Deserialize)]
        struct Item {
            #[serde(deserialize_with = "refund_core::json::decimal")]
            price: Decimal,
            #[serde(
                default,
                rename = "paidPrice",
                deserialize_with = "refund_core::json::option_decimal"
            )]
            paid_price: Option<Decimal>,
        }
        #[derive(Deserialize)]
        struct Seed {
            currency: Option<String>,
            #[serde(rename = "conversationId")]
            conversation_id: Option<String>,
            items: Vec<Item>,
            #[serde(default, rename = "paidDaysAgo")]
            paid_days_ago: Option<u64>,
        }
        let seed = Seed::deserialize(body).map_err(|_| {
            "expected {\"currency\":\"TRY\",\"items\":[{\"price\":\"60.0\",\"paidPrice\"?:\"66.0\"}, …],\"paidDaysAgo\"?:N}".to_owned()
        })?;
        let currency = match seed.currency.as_deref().map(Currency::from_str) {
            None => Currency::Try,
            Some(Ok(c)) => c,
            Some(Err(_)) => return Err("unknown currency".to_owned()),
        };
        let mut prices = Vec::with_capacity(seed.items.len());
        for item in &seed.items {
            let paid = item.paid_price.unwrap_or(item.price);
            let valid = |d: Decimal| Money::new(d, currency).is_ok_and(|m| !m.amount().is_zero());
            match (valid(item.price), valid(paid)) {
                (true, true) => prices.push((item.price, paid)),
                _ => {
                    return Err(
                        "item prices must be positive and no finer than the currency allows"
                            .to_owned(),
                    );
                }
            }
        }
        if prices.is_empty() {
            return Err("at least one item is required".to_owned());
        }
        let mut state = lock(&self.state);
        let mut payment = state.add_payment(currency, &prices, seed.conversation_id);
        if let Some(days) = seed.paid_days_ago {
            let at = unix_now()
                .as_secs()
                .saturating_sub(days.saturating_mul(86_400));
            if let Some(&p) = state.by_payment.get(&payment.payment_id) {
                state.payments[p].paid_at = at;
            }
            payment.paid_at = at;
        }
        drop(state);
        Ok(serde_json::json!({
            "paymentId": payment.payment_id,
            "conversationId": payment.conversation_id,
            "currency": currency.code(),
            "price": format_decimal(payment.price()),
            "paidPrice": format_decimal(payment.paid_price()),
            "paidAt": datetime(payment.paid_at),
            "items": payment.items.iter().map(|i| serde_json::json!({
                "paymentTransactionId": i.payment_transaction_id,
                "price": format_decimal(i.price),
                "paidPrice": format_decimal(i.paid_price),
            })).collect::<Vec<_>>(),
        }))
    }

    fn admin_ledger(&self) -> Value {
        let state = lock(&self.state);
        let payments: Vec<Value> = state
            .payments
            .iter()
            .map(|p| {
                let scale = p.currency.scale();
                serde_json::json!({
                    "id": p.payment_id,
                    "paymentId": p.payment_id,
                    "currency": p.currency.code(),
                    "amount": fixed(p.paid_price(), scale),
                    "refunded": fixed(p.refunded(), scale),
                    "remaining": fixed(p.remaining(), scale),
                    "state": p.refund_status(),
                    "cancelled": p.cancel.is_some(),
                    "price": fixed(p.price(), scale),
                    "paidAt": datetime(p.paid_at),
                    "items": p.items.iter().map(|i| serde_json::json!({
                        "paymentTransactionId": i.payment_transaction_id,
                        "price": fixed(i.price, scale),
                        "paidPrice": fixed(i.paid_price, scale),
                        "refunded": fixed(i.refunded(), scale),
                    })).collect::<Vec<_>>(),
                    "refunds": p.refunds().map(|(item, r)| serde_json::json!({
                        "amount": fixed(r.price, scale),
                        "refundTxId": r.refund_tx_id,
                        "conversationId": r.conversation_id,
                        "paymentTransactionId": item.payment_transaction_id,
                        "via": r.via,
                        "created_at": r.created_at,
                    })).collect::<Vec<_>>(),
                    "cancel": p.cancel.as_ref().map(|c| serde_json::json!({
                        "amount": fixed(c.price, scale),
                        "refundId": c.refund_id,
                        "conversationId": c.conversation_id,
                    })),
                    // Refused by the bank (`Fault::Fail`): listed, no money moved.
                    "failed_refunds": p.items.iter().flat_map(|item| item.failed_refunds.iter().map(move |r| serde_json::json!({
                        "amount": fixed(r.price, scale),
                        "refundTxId": r.refund_tx_id,
                        "conversationId": r.conversation_id,
                        "paymentTransactionId": item.payment_transaction_id,
                        "via": r.via,
                        "created_at": r.created_at,
                    }))).collect::<Vec<_>>(),
                    "failed_cancels": p.failed_cancels.iter().map(|c| serde_json::json!({
                        "amount": fixed(c.price, scale),
                        "refundId": c.refund_id,
                        "conversationId": c.conversation_id,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        drop(state);
        let (completed, failed) = *lock(&self.refund_status_values);
        serde_json::json!({
            "payments": payments,
            "refund_status_completed": completed,
            "refund_status_failed": failed,
            "same_day_cancel": self.same_day_cancel.load(Ordering::SeqCst),
        })
    }
}

impl Simulator for Inner {
    fn handle(&self, req: &SimRequest, sim: &SimContext) -> SimResponse {
        let path = req.path.as_str();
        let expected = match path {
            REFUND | REFUND_V2 | CANCEL => Method::POST,
            DETAILS => Method::GET,
            _ => {
                return SimResponse::json(
                    404,
                    &serde_json::json!({"status": "failure", "errorCode": "404", "errorMessage": "Not Found", "locale": "tr", "systemTime": system_time()}),
                );
            }
        };
        if req.method != expected {
            return SimResponse::json(
                405,
                &serde_json::json!({"status": "failure", "errorCode": "405", "errorMessage": "Method Not Allowed", "locale": "tr", "systemTime": system_time()}),
            );
        }
        self.operation(req, sim)
    }

    fn seed(&self, body: &Value) -> Result<Value, String> {
        self.admin_add_payment(body)
    }

    fn ledger(&self) -> Value {
        self.admin_ledger()
    }

    fn reset(&self) {
        Inner::reset(self);
    }

    fn admin(&self, req: &SimRequest) -> Option<SimResponse> {
        (req.method == Method::GET && req.path == "/__sandbox/credentials").then(|| {
            SimResponse::json(
                200,
                &serde_json::json!({
                    "api_key": IyzicoSim::API_KEY,
                    "secret_key": IyzicoSim::SECRET_KEY,
                }),
            )
        })
    }

    fn faultable(&self, req: &SimRequest) -> bool {
        matches!(req.path.as_str(), REFUND | REFUND_V2 | CANCEL | DETAILS)
    }

    /// iyzico's own keys: `"refund_status_completed": N`, `"refund_status_failed": N` (the
    /// reporting lookup's `refundStatus` values) and `"same_day_cancel": bool`. Every key is
    /// checked before any is applied.
    fn behaviour(&self, body: &Value) -> Result<(), String> {
        let status = |name: &str| match body.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("{name} must be a whole number")),
        };
        let completed = status("refund_status_completed")?;
        let failed = status("refund_status_failed")?;
        let same_day = match body.get("same_day_cancel") {
            None => None,
            Some(Value::Bool(on)) => Some(*on),
            Some(_) => return Err("same_day_cancel must be true or false".to_owned()),
        };
        {
            let mut values = lock(&self.refund_status_values);
            if let Some(completed) = completed {
                values.0 = completed;
            }
            if let Some(failed) = failed {
                values.1 = failed;
            }
        }
        if let Some(on) = same_day {
            self.same_day_cancel.store(on, Ordering::SeqCst);
        }
        Ok(())
    }

    fn token_expired(&self) -> SimResponse {
        failure(
            "1000",
            "Geçersiz imza",
            &Ctx {
                locale: "tr".to_owned(),
                conversation_id: None,
                misstates_amount: false,
            },
        )
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure<'a> {
    status: &'static str,
    error_code: &'a str,
    error_message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_group: Option<&'a str>,
    locale: &'a str,
    system_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retryable: Option<bool>,
}

/// Whether a money operation is applied or refused by the bank ([`Fault::Fail`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Apply,
    Fail,
}

impl Outcome {
    fn error(self) -> Option<IyzicoEntryError> {
        match self {
            Outcome::Apply => None,
            Outcome::Fail => Some(IyzicoEntryError::BANK_DECLINED),
        }
    }
}

/// iyzico's answer to a refund or cancel the bank refused: `status: failure`, errorCode 10246,
/// errorGroup `REFUND_DECLINE`, `retryable: true` (fixture `failure_refund_declined`).
fn declined(ctx: &Ctx) -> SimResponse {
    let e = IyzicoEntryError::BANK_DECLINED;
    SimResponse::json(
        200,
        &Failure {
            status: "failure",
            error_code: e.code,
            error_message: e.message,
            error_group: Some(e.group),
            locale: &ctx.locale,
            system_time: system_time(),
            conversation_id: ctx.conversation_id.as_deref(),
            retryable: Some(true),
        },
    )
}

fn failure(code: &str, message: &str, ctx: &Ctx) -> SimResponse {
    SimResponse::json(
        200,
        &Failure {
            status: "failure",
            error_code: code,
            error_message: message,
            error_group: None,
            locale: &ctx.locale,
            system_time: system_time(),
            conversation_id: ctx.conversation_id.as_deref(),
            retryable: None,
        },
    )
}

/// The fields iyzipay-java's `RefundTxDetail` and `RefundDetail` share, after the id and the
/// conversation id: `refundPrice`, `refundStatus` (1 done, 0 failed: the simulator's reading,
/// no source documents the values), `isAfterSettlement`, `createdDate`, `currencyCode`,
/// `authCode`, `hostReference`, and for a failed entry `errorGroup`, `errorCode`,
/// `errorMessage`.
fn entry_fields(
    entry: &mut Value,
    price: Decimal,
    error: Option<&IyzicoEntryError>,
    created_at: &str,
    currency: &str,
    (completed, failed): (i64, i64),
) {
    let Some(map) = entry.as_object_mut() else {
        return;
    };
    let mut put = |key: &str, value: Value| {
        map.insert(key.to_owned(), value);
    };
    put(
        "refundPrice",
        serde_json::json!(number(format_decimal(price))),
    );
    put(
        "refundStatus",
        Value::from(if error.is_none() { completed } else { failed }),
    );
    put("isAfterSettlement", Value::Bool(false));
    put("createdDate", Value::from(created_at));
    put("currencyCode", Value::from(currency));
    match error {
        None => {
            put("authCode", Value::from(auth_code(price)));
            put("hostReference", Value::from("sim00000iyzihostrfn"));
        }
        Some(e) => {
            put("errorGroup", Value::from(e.group));
            put("errorCode", Value::from(e.code));
            put("errorMessage", Value::from(e.message));
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundAnswer<'a> {
    status: &'static str,
    locale: &'a str,
    system_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<&'a str>,
    payment_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_transaction_id: Option<&'a str>,
    price: Option<Box<RawValue>>,
    currency: &'static str,
    auth_code: String,
    host_reference: &'static str,
    refund_host_reference: String,
    retryable: bool,
    signature: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CancelAnswer<'a> {
    status: &'static str,
    locale: &'a str,
    system_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<&'a str>,
    payment_id: &'a str,
    price: Option<Box<RawValue>>,
    currency: &'static str,
    auth_code: String,
    host_reference: &'static str,
}

fn refund_success(
    signer: &RequestSigner,
    payment_id: &str,
    payment_transaction_id: Option<&str>,
    price: Decimal,
    currency: Currency,
    refund_tx_id: &str,
    ctx: &Ctx,
) -> SimResponse {
    // Under Fault::WrongAmount the answer states (and signs) a price one unit above the one
    // applied: the signature holds, and only comparing the amount catches it.
    let price = if ctx.misstates_amount {
        price + Decimal::ONE
    } else {
        price
    };
    // The response signature's price has no trailing zeros at all ("15", not "15.0"), as
    // the Java SDK's `stripTrailingZeros().toPlainString()` and a JS number print it.
    let signed_price = price.normalize().to_string();
    let signature = signer.fields_signature(&[
        payment_id,
        &signed_price,
        currency.code(),
        ctx.conversation_id.as_deref().unwrap_or(""),
    ]);
    SimResponse::json(
        200,
        &RefundAnswer {
            status: "success",
            locale: &ctx.locale,
            system_time: system_time(),
            conversation_id: ctx.conversation_id.as_deref(),
            payment_id,
            payment_transaction_id,
            price: number(format_decimal(price)),
            currency: currency.code(),
            auth_code: auth_code(price),
            host_reference: "sim00000iyzihostrfn",
            refund_host_reference: format!("sim{refund_tx_id}"),
            retryable: false,
            signature,
        },
    )
}

fn system_time() -> u64 {
    u64::try_from(unix_now().as_millis()).unwrap_or(u64::MAX)
}

fn auth_code(price: Decimal) -> String {
    let n = (u128::from(system_time()) + price.mantissa().unsigned_abs()) % 1_000_000;
    format!("{n:06}")
}
