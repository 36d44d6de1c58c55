//! The SiPay simulator.

use std::collections::VecDeque;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hyper::Method;
use refund_core::{Currency, Decimal, Money};
use refund_sipay::hash_key::HashKeySigner;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{
    Fault, RECORDED_REQUESTS_CAP, SimContext, SimRequest, SimResponse, SimServer, Simulator,
    datetime, fixed, lock, number, unix_now,
};
use crate::notifications::{Delivery, LoopbackUrl, SipayNotification, post_form};

/// The demo credentials of a [`SipaySim`] and where it listens.
///
/// They are the simulator's own values, accepted nowhere else. `Debug` redacts the secrets
/// anyway, so that printing a test's state never teaches anyone to print real ones.
#[derive(Clone)]
pub struct SipayCredentials {
    /// `app_id`.
    pub app_id: &'static str,
    /// `app_secret`.
    pub app_secret: &'static str,
    /// `merchant_key`.
    pub merchant_key: &'static str,
    /// The simulator's base URL, e.g. `http://127.0.0.1:40123`.
    pub base_url: String,
}

impl fmt::Debug for SipayCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipayCredentials")
            .field("app_id", &self.app_id)
            .field("app_secret", &"[REDACTED]")
            .field("merchant_key", &"[REDACTED]")
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// One refund in the SiPay ledger: applied ([`SipayPayment::refunds`]) or refused by the bank
/// ([`SipayPayment::failed_refunds`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipayRefund {
    /// The merchant's `refund_transaction_id`, when the request carried one.
    pub refund_transaction_id: Option<String>,
    /// The amount refunded (or, for a failed refund, asked for).
    pub amount: Decimal,
    /// The `ref_number` the success answer carried (empty for a failed refund).
    pub ref_number: String,
    /// When it was made, `YYYY-MM-DD HH:MM:SS` UTC.
    pub created_at: String,
    /// When the simulator applied (or failed) it. Check status shows it only once it is
    /// older than the lookup lag ([`SipaySim::set_lookup_lag`]).
    pub applied_at: Instant,
}

/// One payment (invoice) in the SiPay ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipayPayment {
    /// The merchant's `invoice_id`.
    pub invoice_id: String,
    /// SiPay's order number for it.
    pub order_no: String,
    /// The amount paid.
    pub amount: Decimal,
    /// The currency paid in.
    pub currency: Currency,
    /// Applied refunds, oldest first. Failed ones are not here: see `failed_refunds`.
    pub refunds: Vec<SipayRefund>,
    /// Refunds the bank refused ([`Fault::Fail`]), oldest first: no money moved, and check
    /// status lists them in `refund_info` with status `failed`.
    pub failed_refunds: Vec<SipayRefund>,
    /// Refunds accepted with 101 and not completed yet ([`SipaySim::set_pending_refunds`]),
    /// oldest first. Their amount is reserved ([`remaining`](Self::remaining)) but not in
    /// [`refunded`](Self::refunded); once completed they move to `refunds`.
    pub pending_refunds: Vec<SipayRefund>,
    /// The sum of `refunds`, kept up to date so a refund costs O(1) however many came before.
    refunded_total: Decimal,
    /// When a refund of this invoice was last accepted (100 or 101): the 30-second rule counts
    /// from here.
    last_accepted: Option<Instant>,
}

impl SipayPayment {
    /// The sum of all refunds.
    pub fn refunded(&self) -> Decimal {
        self.refunded_total
    }

    /// What can still be refunded: the amount paid less completed and pending refunds.
    pub fn remaining(&self) -> Decimal {
        self.amount - self.refunded() - self.pending()
    }

    /// The sum of the pending refunds.
    pub fn pending(&self) -> Decimal {
        self.pending_refunds.iter().map(|r| r.amount).sum()
    }

    /// The transaction status: `Completed`, `partially_refund` (some refunded) or `refund`
    /// (all refunded), as the seed's "Partial Refunds" section names the last two.
    pub fn state(&self) -> &'static str {
        let refunded = self.refunded();
        if refunded.is_zero() {
            "Completed"
        } else if refunded >= self.amount {
            "refund"
        } else {
            "partially_refund"
        }
    }
}

/// A snapshot of the SiPay ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SipayLedger {
    /// Payments in the order they were added.
    pub payments: Vec<SipayPayment>,
}

impl SipayLedger {
    /// The payment with this invoice id.
    pub fn payment(&self, invoice_id: &str) -> Option<&SipayPayment> {
        self.payments.iter().find(|p| p.invoice_id == invoice_id)
    }

    /// Every refund of every payment.
    pub fn refunds(&self) -> impl Iterator<Item = &SipayRefund> {
        self.payments.iter().flat_map(|p| p.refunds.iter())
    }
}

#[derive(Default)]
struct State {
    payments: Vec<SipayPayment>,
    index: HashMap<String, usize>,
    refund_ids: HashSet<String>,
    tokens: HashMap<String, Instant>,
    seq: u64,
    /// Pending refunds by an id unique in the process (so a completion timer that outlives a
    /// reset finds nothing).
    pending: HashMap<u64, Pending>,
}

/// A refund answered 101, waiting to be completed.
struct Pending {
    invoice_id: String,
    ref_number: String,
    /// The request carried a refund webhook key: notify on completion.
    webhook: bool,
}

/// Ids for [`Pending`] refunds, unique in the process.
static PENDING_IDS: AtomicU64 = AtomicU64::new(1);

/// What a completed refund's notification is about.
struct Completed {
    invoice_id: String,
    order_no: String,
    amount: Decimal,
    webhook: bool,
}

impl State {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn add_payment(
        &mut self,
        invoice_id: String,
        amount: Decimal,
        currency: Currency,
    ) -> SipayPayment {
        let seq = self.next();
        let payment = SipayPayment {
            order_no: format!("VP{:017}", 17_695_816_000_000_000 + seq),
            invoice_id: invoice_id.clone(),
            amount,
            currency,
            refunds: Vec::new(),
            failed_refunds: Vec::new(),
            pending_refunds: Vec::new(),
            refunded_total: Decimal::ZERO,
            last_accepted: None,
        };
        match self.index.get(&invoice_id) {
            Some(&i) => {
                self.pending.retain(|_, p| p.invoice_id != invoice_id);
                let old = &self.payments[i];
                for refund in old
                    .refunds
                    .iter()
                    .chain(&old.failed_refunds)
                    .chain(&old.pending_refunds)
                {
                    if let Some(id) = &refund.refund_transaction_id {
                        self.refund_ids.remove(id);
                    }
                }
                self.payments[i] = payment.clone();
            }
            None => {
                self.index.insert(invoice_id, self.payments.len());
                self.payments.push(payment.clone());
            }
        }
        payment
    }

    /// Completes pending refund `id`: moves it to the payment's refunds. `None` if it is no
    /// longer pending (completed already, or gone with a reset or a replaced payment).
    fn complete(&mut self, id: u64) -> Option<Completed> {
        let pending = self.pending.remove(&id)?;
        let &index = self.index.get(&pending.invoice_id)?;
        let payment = self.payments.get_mut(index)?;
        let at = payment
            .pending_refunds
            .iter()
            .position(|r| r.ref_number == pending.ref_number)?;
        let refund = payment.pending_refunds.remove(at);
        let amount = refund.amount;
        payment.refunded_total += amount;
        payment.refunds.push(refund);
        Some(Completed {
            invoice_id: pending.invoice_id,
            order_no: payment.order_no.clone(),
            amount,
            webhook: pending.webhook,
        })
    }
}

/// Where refund notifications go, and what became of them.
#[derive(Default)]
struct Notifier {
    url: Mutex<Option<String>>,
    deliveries: Mutex<VecDeque<Delivery>>,
}

impl Notifier {
    /// Posts a `Completed` notification for `done` to the configured URL, if any, from a task
    /// of its own; the outcome lands in `deliveries`.
    fn notify(self: &Arc<Self>, runtime: &tokio::runtime::Handle, done: &Completed) {
        let Some(url) = lock(&self.url).clone() else {
            return;
        };
        let body = SipayNotification::completed(
            done.invoice_id.as_str(),
            done.order_no.as_str(),
            fixed(done.amount, 2),
        )
        .form_body(SipaySim::APP_SECRET);
        let notifier = Arc::clone(self);
        runtime.spawn(async move {
            let answer = post_form(&url, &body).await.map_err(|e| e.to_string());
            let mut deliveries = lock(&notifier.deliveries);
            if deliveries.len() >= RECORDED_REQUESTS_CAP {
                deliveries.pop_front();
            }
            deliveries.push_back(Delivery { url, body, answer });
        });
    }
}

pub(crate) struct Inner {
    state: Arc<Mutex<State>>,
    signer: HashKeySigner,
    token_ttl_ms: AtomicU64,
    token_requests: AtomicU64,
    omit_refund_figures: AtomicBool,
    notifier: Arc<Notifier>,
    runtime: tokio::runtime::Handle,
    pending_refunds: AtomicBool,
    /// Milliseconds after which a pending refund completes on its own; `u64::MAX`: never.
    pending_completion_ms: AtomicU64,
    /// The 30-second rule's period in milliseconds; 0: off. Kept across resets.
    refund_spacing_ms: AtomicU64,
    /// Refusals that leave no failed entry (the 30-second rule, an over-refund) use their
    /// `refund_transaction_id` up as well.
    refusals_use_reference: AtomicBool,
    /// How check status shows pending refunds ([`PendingVisibility`]).
    pending_visibility: AtomicU8,
    /// `refund_info` leaves out the oldest completed refund (the total still counts it).
    refund_info_short: AtomicBool,
    /// The `refund_info` status word of a completed refund (`success` unless changed).
    completed_word: Mutex<String>,
    /// Requests without `Accept: application/json` are refused.
    require_accept: AtomicBool,
    /// Refunds without a `refund_transaction_id` are refused.
    require_refund_transaction_id: AtomicBool,
}

/// How SiPay's check status shows a refund answered 101 and not completed yet. Nothing
/// documents it; each reading is a switch (admin `{"pending_visibility": "counted" | "listed"
/// | "hidden"}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PendingVisibility {
    /// In `total_refunded_amount`, and listed in `refund_info` with status `pending` (the
    /// default, the simulator's first reading).
    #[default]
    Counted,
    /// Listed in `refund_info` as `pending`, left out of `total_refunded_amount`: the listed
    /// applied refunds then add up to more than the total.
    Listed,
    /// Neither counted nor listed: a pending refund is invisible to the lookup, and only the
    /// settle time and SiPay's 104 stand between it and a second refund.
    Hidden,
}

impl PendingVisibility {
    /// The admin API name: `counted`, `listed`, `hidden`.
    pub const fn name(self) -> &'static str {
        match self {
            PendingVisibility::Counted => "counted",
            PendingVisibility::Listed => "listed",
            PendingVisibility::Hidden => "hidden",
        }
    }

    /// Parses an admin API name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            PendingVisibility::Counted,
            PendingVisibility::Listed,
            PendingVisibility::Hidden,
        ]
        .into_iter()
        .find(|v| v.name() == name)
    }

    const fn code(self) -> u8 {
        match self {
            PendingVisibility::Counted => 0,
            PendingVisibility::Listed => 1,
            PendingVisibility::Hidden => 2,
        }
    }

    const fn from_code(code: u8) -> Self {
        match code {
            1 => PendingVisibility::Listed,
            2 => PendingVisibility::Hidden,
            _ => PendingVisibility::Counted,
        }
    }
}

/// A stateful SiPay simulator on `127.0.0.1` (see the [module docs](super)).
///
/// It issues bearer tokens (`POST /ccpayment/api/token`), verifies every refund's `hash_key`
/// by decrypting it with the app secret, keeps a ledger, allows repeated partial refunds up to
/// the paid amount, and answers `POST /ccpayment/api/checkstatus`. Status codes follow
/// SiPay's (the official PHP SDK's `ResponseStatusCode`): 100 success, 49 refund failed
/// (over-refund, or the bank refused under [`Fault::Fail`]), 31 transaction not found, 104
/// `refund_transaction_id` not unique, 30 invalid credentials, 1 validation error, 90
/// hash_key that does not decrypt, 91 hash_key over another merchant key, 68 hash_key over
/// other amount/invoice; HTTP 401 `{"message":"Unauthenticated."}` for a missing, unknown or
/// expired bearer token. Dropping the handle stops the server.
///
/// Behaving like a slow provider:
/// - **Reused references.** A `refund_transaction_id` seen before is refused with 104,
///   including the reference of a refund the bank refused. That SiPay refuses every reuse,
///   however old, and the reuse of a failed refund's id too, is **assumed**: the code's name
///   is the only source (`REFUND_TRANSACTION_ID_NOT_UNIQUE`).
/// - **Failed refunds** ([`Fault::Fail`]): recorded in [`SipayPayment::failed_refunds`] with
///   their reference and answered 49; check status lists them in `refund_info` with status
///   `failed` (entry shape and status word **assumed**, as in the fixtures). An over-refund
///   refused by SiPay's own checks (49) is not recorded and does not use up its reference.
/// - **Lookup lag** ([`SipaySim::set_lookup_lag`], admin `{"lookup_lag_ms": N}`): a refund
///   (applied or failed) is hidden from check status, both from `total_refunded_amount` and
///   from `refund_info`, until it is that old; `transaction_status` follows the visible total.
/// - **No figures** ([`SipaySim::omit_refund_figures`], admin
///   `{"omit_refund_figures": true}`): check status answers without `total_refunded_amount`
///   and `refund_info`. Nothing documents when SiPay does that; a client must not read it as
///   zero.
/// - **Pending refunds** ([`SipaySim::set_pending_refunds`], admin
///   `{"pending_refunds": true}`): refunds that pass every check are answered 101 ("refund
///   request created") and wait in [`SipayPayment::pending_refunds`], their amount reserved.
///   They complete when [`SipaySim::complete_pending_refunds`] (admin `POST
///   /__sandbox/complete_pending`) is called or, with [`SipaySim::set_pending_completion`]
///   (admin `{"pending_completion_ms": N}`), N ms after they were accepted. Check status counts
///   a pending refund in `total_refunded_amount` and lists it in `refund_info` with status
///   `pending` (both **assumed**: nothing documents how SiPay shows one).
/// - **Refund notifications** ([`SipaySim::set_refund_webhook_url`], admin
///   `{"refund_webhook_url": "http://127.0.0.1:PORT/path"}`, loopback only): when a refund that
///   carried a webhook key (`refund_web_hook_key` or Paybull's `refund_webhook_key`, any
///   non-empty name; SiPay checks the name against its panel, the simulator does not) is
///   completed — at once, or later when pending — the simulator POSTs SiPay's refund
///   notification there: `invoice_id`, `order_id` (the payment's `order_no`), `amount` (two
///   decimals), `status=Completed` and a `hash_key` over `status|amount|invoice_id|order_id`
///   with [`SipaySim::APP_SECRET`], form-encoded. One attempt, no retry (SiPay's retry policy
///   and the reply it expects are not documented); each attempt is kept in
///   [`SipaySim::notifications`] (admin `GET /__sandbox/notifications`). A failed refund
///   notifies nothing.
///
/// Never easier than SiPay (each a method and a key of `POST /__sandbox/behaviour`):
/// - **The 30-second rule** ([`SipaySim::set_refund_spacing`], `refund_spacing_ms`): a refund of
///   an invoice whose last refund was accepted within the period is answered 49 "Refund
///   Failed". Off in the library (tests across the workspace refund one invoice twice within
///   30 s), 30 s in `refund sandbox`; kept across resets.
/// - **Refusals that use the reference up** ([`SipaySim::set_refusals_use_reference`]): a 49
///   without an entry (the 30-second rule, an over-refund) spends its `refund_transaction_id`
///   too, so the resend answers 104.
/// - **Pending refunds out of the total** ([`SipaySim::set_pending_visibility`]): listed but not
///   counted, or hidden from check status altogether.
/// - **`refund_info` short of the total** ([`SipaySim::set_refund_info_short`]) and **status
///   words outside the mapping** ([`SipaySim::set_completed_status_word`]).
/// - **Required `Accept: application/json` and `refund_transaction_id`**
///   ([`SipaySim::set_require_accept`], [`SipaySim::set_require_refund_transaction_id`], both on
///   by default): without them, status 1 and nothing processed.
pub struct SipaySim {
    server: SimServer<Inner>,
}

impl fmt::Debug for SipaySim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipaySim")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

const REFUND_PATH: &str = "/ccpayment/api/refund";
const CHECK_STATUS_PATH: &str = "/ccpayment/api/checkstatus";
const TOKEN_PATH: &str = "/ccpayment/api/token";

/// The `refund_info` status word of a completed refund unless changed.
const DEFAULT_COMPLETED_WORD: &str = "success";

impl SipaySim {
    /// The simulator's `app_id`.
    pub const APP_ID: &'static str = "sim-sipay-app-id-0000000000000001";
    /// The simulator's `app_secret`.
    pub const APP_SECRET: &'static str = "sim-sipay-app-secret-00000000001";
    /// The simulator's `merchant_key`: 60 characters like a real one (`$2y$10$…`), long
    /// enough that a hash_key made with line-wrapped base64 would contain a line break.
    pub const MERCHANT_KEY: &'static str =
        "$2y$10$SIMULATORmerchantKEYsim000000000000000000000000000000001";
    /// Token lifetime unless changed: the documented two hours.
    pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(2 * 60 * 60);

    /// Starts a simulator on `127.0.0.1` on a free port.
    pub async fn start() -> io::Result<SipaySim> {
        SipaySim::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a simulator listening on `addr` (port 0 picks a free port).
    pub async fn start_on(addr: SocketAddr) -> io::Result<SipaySim> {
        let inner = Inner {
            state: Arc::new(Mutex::new(State::default())),
            signer: HashKeySigner::new(SipaySim::APP_SECRET),
            token_ttl_ms: AtomicU64::new(millis(SipaySim::DEFAULT_TOKEN_TTL)),
            token_requests: AtomicU64::new(0),
            omit_refund_figures: AtomicBool::new(false),
            notifier: Arc::new(Notifier::default()),
            runtime: tokio::runtime::Handle::current(),
            pending_refunds: AtomicBool::new(false),
            pending_completion_ms: AtomicU64::new(u64::MAX),
            refund_spacing_ms: AtomicU64::new(0),
            refusals_use_reference: AtomicBool::new(false),
            pending_visibility: AtomicU8::new(PendingVisibility::Counted.code()),
            refund_info_short: AtomicBool::new(false),
            completed_word: Mutex::new(DEFAULT_COMPLETED_WORD.to_owned()),
            require_accept: AtomicBool::new(true),
            require_refund_transaction_id: AtomicBool::new(true),
        };
        let server = SimServer::start_on(addr, inner).await?;
        Ok(SipaySim { server })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://<addr>` (an unspecified listen address such as `0.0.0.0` is shown as
    /// `127.0.0.1`).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The demo credentials and the base URL.
    pub fn credentials(&self) -> SipayCredentials {
        SipayCredentials {
            app_id: SipaySim::APP_ID,
            app_secret: SipaySim::APP_SECRET,
            merchant_key: SipaySim::MERCHANT_KEY,
            base_url: self.base_url(),
        }
    }

    /// Adds a paid invoice (replacing one with the same id, refunds and all).
    pub fn add_payment(
        &self,
        invoice_id: &str,
        amount: Decimal,
        currency: Currency,
    ) -> SipayPayment {
        lock(&self.server.sim().state).add_payment(invoice_id.to_owned(), amount, currency)
    }

    /// A snapshot of the ledger.
    pub fn ledger(&self) -> SipayLedger {
        SipayLedger {
            payments: lock(&self.server.sim().state).payments.clone(),
        }
    }

    /// One payment, by invoice id.
    pub fn payment(&self, invoice_id: &str) -> Option<SipayPayment> {
        let state = lock(&self.server.sim().state);
        state
            .index
            .get(invoice_id)
            .map(|&i| state.payments[i].clone())
    }

    /// The provider requests received so far (token requests included, admin API
    /// excluded), oldest first, at most [`RECORDED_REQUESTS_CAP`](super::RECORDED_REQUESTS_CAP).
    pub fn requests(&self) -> Vec<SimRequest> {
        self.server.requests()
    }

    /// Turns request recording on or off (on by default; off for benchmarks).
    pub fn set_recording(&self, on: bool) {
        self.server.set_recording(on);
    }

    /// How many requests reached the token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.server.sim().token_requests.load(Ordering::SeqCst)
    }

    /// Sets the lifetime of tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.server
            .sim()
            .token_ttl_ms
            .store(millis(ttl), Ordering::SeqCst);
    }

    /// Revokes every token issued so far: the next request with one gets HTTP 401.
    pub fn expire_tokens(&self) {
        lock(&self.server.sim().state).tokens.clear();
    }

    /// Hides refunds younger than `lag` from check status (from the total and from
    /// `refund_info`), as a lagging provider's lookup does. Zero (the default) shows every
    /// refund at once.
    pub fn set_lookup_lag(&self, lag: Duration) {
        self.server.set_lookup_lag(lag);
    }

    /// The lookup lag ([`set_lookup_lag`](Self::set_lookup_lag)).
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

    /// When `on`, check status answers carry neither `total_refunded_amount` nor `refund_info`
    /// (off by default).
    pub fn omit_refund_figures(&self, on: bool) {
        self.server
            .sim()
            .omit_refund_figures
            .store(on, Ordering::SeqCst);
    }

    /// Where refund notifications are POSTed (see the type's docs): an `http://` loopback URL
    /// (`127.0.0.0/8`, `[::1]`, `localhost`), or `None` to stop notifying. Anything else is
    /// `InvalidInput`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = refund_testkit::sim::SipaySim::start().await?;
    /// sim.set_refund_webhook_url(Some("http://127.0.0.1:8080/hooks/sipay"))?;
    /// assert!(sim.set_refund_webhook_url(Some("https://hooks.example.com/")).is_err());
    /// sim.set_refund_webhook_url(None)?;
    /// # Ok(()) }
    /// ```
    pub fn set_refund_webhook_url(&self, url: Option<&str>) -> io::Result<()> {
        if let Some(url) = url {
            LoopbackUrl::parse(url)?;
        }
        *lock(&self.server.sim().notifier.url) = url.map(str::to_owned);
        Ok(())
    }

    /// The refund webhook URL, when set.
    pub fn refund_webhook_url(&self) -> Option<String> {
        lock(&self.server.sim().notifier.url).clone()
    }

    /// The refund notifications delivered so far (or tried), oldest first, at most
    /// [`RECORDED_REQUESTS_CAP`]. A delivery is recorded once its POST has an answer or
    /// failed; it runs in a task of its own, so wait for it rather than expect it at once.
    pub fn notifications(&self) -> Vec<Delivery> {
        lock(&self.server.sim().notifier.deliveries)
            .iter()
            .cloned()
            .collect()
    }

    /// When `on`, refunds that pass every check are answered 101 and left pending (off by
    /// default); they complete through [`complete_pending_refunds`](Self::complete_pending_refunds)
    /// or [`set_pending_completion`](Self::set_pending_completion). Turning it off leaves
    /// refunds already pending as they are.
    pub fn set_pending_refunds(&self, on: bool) {
        self.server
            .sim()
            .pending_refunds
            .store(on, Ordering::SeqCst);
    }

    /// `Some(d)`: each refund accepted as pending from now on completes on its own `d` after
    /// it was accepted (and its notification is sent). `None` (the default): pending refunds
    /// wait for [`complete_pending_refunds`](Self::complete_pending_refunds).
    pub fn set_pending_completion(&self, after: Option<Duration>) {
        self.server
            .sim()
            .pending_completion_ms
            .store(after.map_or(u64::MAX, millis), Ordering::SeqCst);
    }

    /// Completes every pending refund, oldest first (each one's notification is sent), and
    /// returns how many there were.
    pub fn complete_pending_refunds(&self) -> usize {
        self.server.sim().complete_all_pending()
    }

    /// SiPay's 30-second rule: `Some(period)` refuses a refund of an invoice whose last
    /// refund was accepted (100 or 101) less than `period` before, with 49 "Refund Failed"
    /// (SiPay's own answer, which does not say why); `None` (the library default) turns it
    /// off. `refund sandbox` runs with 30 s. Admin: `{"refund_spacing_ms": N}` (0: off). The
    /// period is the provider's rule, not a test's state: [`reset`](Self::reset) keeps it.
    pub fn set_refund_spacing(&self, period: Option<Duration>) {
        let ms = period.map_or(0, millis);
        self.server
            .sim()
            .refund_spacing_ms
            .store(ms, Ordering::SeqCst);
    }

    /// The 30-second rule's period, when on.
    pub fn refund_spacing(&self) -> Option<Duration> {
        match self.server.sim().refund_spacing_ms.load(Ordering::SeqCst) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// When `on`, a refusal that leaves no failed entry — the 30-second rule's 49, an
    /// over-refund's 49 — uses its `refund_transaction_id` up too, so a resend with the same
    /// reference answers 104 (off by default; a bank refusal, [`Fault::Fail`], always uses it
    /// up). Whether SiPay does this is documented nowhere. Admin:
    /// `{"refusals_use_reference": bool}`.
    pub fn set_refusals_use_reference(&self, on: bool) {
        self.server
            .sim()
            .refusals_use_reference
            .store(on, Ordering::SeqCst);
    }

    /// How check status shows pending (101) refunds ([`PendingVisibility`]; counted by
    /// default).
    pub fn set_pending_visibility(&self, visibility: PendingVisibility) {
        self.server
            .sim()
            .pending_visibility
            .store(visibility.code(), Ordering::SeqCst);
    }

    /// When `on`, check status's `refund_info` leaves out the oldest completed refund while
    /// `total_refunded_amount` still counts it, so the listed records fall short of the
    /// total: a failed entry next to them then proves nothing (off by default). Admin:
    /// `{"refund_info_short": bool}`.
    pub fn set_refund_info_short(&self, on: bool) {
        self.server
            .sim()
            .refund_info_short
            .store(on, Ordering::SeqCst);
    }

    /// The status word `refund_info` gives a completed refund: `success` by default;
    /// `cancelled`, say, for a word outside the client's mapping (SiPay may well call a
    /// same-day void that). Admin: `{"completed_status_word": "cancelled"}`.
    pub fn set_completed_status_word(&self, word: &str) {
        *lock(&self.server.sim().completed_word) = word.to_owned();
    }

    /// Whether requests must carry `Accept: application/json` (on by default: SiPay's Turkish
    /// refund page marks it "Zorunlu", and the client sends it). Without it SiPay's answer is
    /// not documented; the simulator refuses with status 1, nothing processed. Admin:
    /// `{"require_accept": bool}`.
    pub fn set_require_accept(&self, on: bool) {
        self.server.sim().require_accept.store(on, Ordering::SeqCst);
    }

    /// Whether a refund must carry a non-empty `refund_transaction_id` (on by default: SiPay's
    /// English page marks it mandatory, sdk-models.md §1.4, and the client always sends the
    /// reference). Without it: status 1, nothing processed. Admin:
    /// `{"require_refund_transaction_id": bool}`.
    pub fn set_require_refund_transaction_id(&self, on: bool) {
        self.server
            .sim()
            .require_refund_transaction_id
            .store(on, Ordering::SeqCst);
    }

    /// Applies `fault` to the next `count` refund/check-status requests (after any faults
    /// armed before).
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

    /// Forgets payments, refunds (pending ones too), tokens, faults, recorded requests and
    /// notifications and the token count, turns the lookup lag, omitted figures and pending
    /// refunds off, and forgets the refund webhook URL.
    pub fn reset(&self) {
        self.server.reset();
    }
}

impl Inner {
    fn reset(&self) {
        *lock(&self.state) = State::default();
        self.token_requests.store(0, Ordering::SeqCst);
        self.omit_refund_figures.store(false, Ordering::SeqCst);
        self.pending_refunds.store(false, Ordering::SeqCst);
        self.pending_completion_ms.store(u64::MAX, Ordering::SeqCst);
        self.refusals_use_reference.store(false, Ordering::SeqCst);
        self.pending_visibility
            .store(PendingVisibility::Counted.code(), Ordering::SeqCst);
        self.refund_info_short.store(false, Ordering::SeqCst);
        *lock(&self.completed_word) = DEFAULT_COMPLETED_WORD.to_owned();
        self.require_accept.store(true, Ordering::SeqCst);
        self.require_refund_transaction_id
            .store(true, Ordering::SeqCst);
        *lock(&self.notifier.url) = None;
        lock(&self.notifier.deliveries).clear();
    }

    /// Completes every pending refund, oldest first, notifying for each; returns how many.
    fn complete_all_pending(&self) -> usize {
        let done: Vec<Completed> = {
            let mut state = lock(&self.state);
            let mut ids: Vec<u64> = state.pending.keys().copied().collect();
            ids.sort_unstable();
            ids.into_iter()
                .filter_map(|id| state.complete(id))
                .collect()
        };
        for completed in done.iter().filter(|c| c.webhook) {
            self.notifier.notify(&self.runtime, completed);
        }
        done.len()
    }

    /// Completes pending refund `id` after `delay`, from a task that holds the simulator only
    /// weakly: a stopped simulator completes nothing.
    fn complete_later(&self, id: u64, delay: Duration) {
        let state: Weak<Mutex<State>> = Arc::downgrade(&self.state);
        let notifier: Weak<Notifier> = Arc::downgrade(&self.notifier);
        let runtime = self.runtime.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(state) = state.upgrade() else {
                return;
            };
            let done = lock(&state).complete(id);
            if let (Some(done), Some(notifier)) = (done, notifier.upgrade())
                && done.webhook
            {
                notifier.notify(&runtime, &done);
            }
        });
    }

    fn token(&self, req: &SimRequest) -> SimResponse {
        self.token_requests.fetch_add(1, Ordering::SeqCst);
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return status(1, "The given data was invalid.", None);
        };
        let (Some(app_id), Some(app_secret)) = (text(&body, "app_id"), text(&body, "app_secret"))
        else {
            return status(1, "The app id and app secret fields are required.", None);
        };
        if app_id != SipaySim::APP_ID || app_secret != SipaySim::APP_SECRET {
            return SimResponse::json(
                200,
                &serde_json::json!({"status_code": 30, "status_description": "Invalid Credentials", "data": null}),
            );
        }
        let ttl = Duration::from_millis(self.token_ttl_ms.load(Ordering::SeqCst));
        let now = unix_now();
        let token = {
            let mut state = lock(&self.state);
            let seq = state.next();
            let token = format!("sim.{seq:x}.{:x}{:08x}", now.as_nanos(), std::process::id());
            let now_instant = Instant::now();
            state.tokens.retain(|_, expiry| *expiry > now_instant);
            state.tokens.insert(token.clone(), now_instant + ttl);
            token
        };
        SimResponse::json(
            200,
            &serde_json::json!({
                "status_code": 100,
                "status_description": "Successfully Generated token",
                "data": {
                    "token": token,
                    "is_3d": 1,
                    "expires_at": datetime((now + ttl).as_secs()),
                }
            }),
        )
    }

    /// `None` when the request carries exactly one valid, unexpired bearer token.
    fn unauthenticated(&self, req: &SimRequest) -> Option<SimResponse> {
        let mut values = req.headers.get_all(hyper::header::AUTHORIZATION).iter();
        let valid = match (values.next(), values.next()) {
            (Some(value), None) => value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|token| {
                    lock(&self.state)
                        .tokens
                        .get(token)
                        .is_some_and(|expiry| *expiry > Instant::now())
                }),
            _ => false,
        };
        (!valid).then(unauthenticated)
    }

    /// Checks a hash_key against the fields it must sign: `Err` is the SiPay answer.
    #[allow(clippy::result_large_err)] // the Err is the answer itself, built once per rejected request
    fn check_hash(
        &self,
        hash_key: &str,
        fields: &[&str],
        invoice_id: &str,
    ) -> Result<(), SimResponse> {
        let Ok(plain) = self.signer.validate(hash_key) else {
            return Err(status(90, "Invalid hash key", Some(invoice_id)));
        };
        if plain.len() != fields.len() {
            return Err(status(90, "Invalid hash key", Some(invoice_id)));
        }
        if plain.last().map(String::as_str) != fields.last().copied() {
            return Err(status(
                91,
                "Hash key does not match the merchant key",
                Some(invoice_id),
            ));
        }
        if plain.iter().zip(fields).any(|(a, b)| a != b) {
            return Err(status(
                68,
                "Hash mismatch: amount, currency or invoice id does not match the hash key",
                Some(invoice_id),
            ));
        }
        Ok(())
    }

    /// Everything a refund request must pass before the ledger is touched: the bearer token,
    /// the body, the credentials, the hash_key and the amount. `Err` is SiPay's answer.
    #[allow(clippy::result_large_err)] // the Err is the answer itself, built once per rejected request
    fn refund_input(&self, req: &SimRequest) -> Result<RefundInput, SimResponse> {
        if let Some(denied) = self.unauthenticated(req) {
            return Err(denied);
        }
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return Err(status(1, "The given data was invalid.", None));
        };
        let invoice_id = text(&body, "invoice_id");
        let amount_text = text(&body, "amount");
        let fields = [
            ("invoice id", invoice_id.is_some()),
            ("amount", amount_text.is_some()),
            ("app id", text(&body, "app_id").is_some()),
            ("app secret", text(&body, "app_secret").is_some()),
            ("merchant key", text(&body, "merchant_key").is_some()),
            ("hash key", text(&body, "hash_key").is_some()),
        ];
        if let Some((missing, _)) = fields.iter().find(|(_, present)| !present) {
            return Err(status(
                1,
                &format!("The {missing} field is required."),
                invoice_id.as_deref(),
            ));
        }
        let (Some(invoice_id), Some(amount_text)) = (invoice_id, amount_text) else {
            return Err(status(1, "The given data was invalid.", None));
        };
        if text(&body, "app_id").as_deref() != Some(SipaySim::APP_ID)
            || text(&body, "app_secret").as_deref() != Some(SipaySim::APP_SECRET)
            || text(&body, "merchant_key").as_deref() != Some(SipaySim::MERCHANT_KEY)
        {
            return Err(status(30, "Invalid Credentials", Some(&invoice_id)));
        }
        let hash_key = text(&body, "hash_key").unwrap_or_default();
        self.check_hash(
            &hash_key,
            &[&amount_text, &invoice_id, SipaySim::MERCHANT_KEY],
            &invoice_id,
        )?;
        let amount = match Decimal::from_str(amount_text.trim()) {
            Ok(a) if a > Decimal::ZERO && a.normalize().scale() <= 2 => a,
            _ => {
                return Err(status(
                    1,
                    "The amount must be a number greater than 0 with at most 2 decimals.",
                    Some(&invoice_id),
                ));
            }
        };
        let refund_transaction_id =
            text(&body, "refund_transaction_id").filter(|id| !id.is_empty());
        if refund_transaction_id.is_none()
            && self.require_refund_transaction_id.load(Ordering::SeqCst)
        {
            return Err(status(
                1,
                "The refund transaction id field is required.",
                Some(&invoice_id),
            ));
        }
        let webhook = ["refund_web_hook_key", "refund_webhook_key"]
            .iter()
            .any(|field| text(&body, field).is_some_and(|key| !key.trim().is_empty()));
        Ok(RefundInput {
            invoice_id,
            amount,
            refund_transaction_id,
            webhook,
        })
    }

    fn refund(&self, req: &SimRequest) -> SimResponse {
        match self.refund_input(req) {
            Ok(input) => self.apply(input, Bank::Pays),
            Err(answer) => answer,
        }
    }

    /// [`Fault::Fail`]: the refund passes SiPay's checks and the bank refuses it.
    fn refund_failed(&self, req: &SimRequest) -> SimResponse {
        match self.refund_input(req) {
            Ok(input) => self.apply(input, Bank::Refuses),
            Err(answer) => answer,
        }
    }

    /// The ledger step of a refund that passed [`refund_input`](Self::refund_input).
    fn apply(&self, input: RefundInput, bank: Bank) -> SimResponse {
        let RefundInput {
            invoice_id,
            amount,
            refund_transaction_id,
            webhook,
        } = input;
        let mut state = lock(&self.state);
        let Some(&index) = state.index.get(&invoice_id) else {
            return status(31, "Transaction not found", Some(&invoice_id));
        };
        // A reference seen before is refused whether its refund was applied or failed (the
        // latter assumed; see the type's docs).
        if let Some(id) = &refund_transaction_id
            && state.refund_ids.contains(id)
        {
            let order_no = state.payments[index].order_no.clone();
            return refund_answer(
                104,
                "Refund transaction id is not unique",
                &order_no,
                &invoice_id,
                "",
            );
        }
        let payment = &state.payments[index];
        let spacing = Duration::from_millis(self.refund_spacing_ms.load(Ordering::SeqCst));
        let too_soon = !spacing.is_zero()
            && payment
                .last_accepted
                .is_some_and(|at| at.elapsed() < spacing);
        if too_soon || (bank == Bank::Pays && amount > payment.remaining()) {
            // SiPay's 49 "Refund Failed" says neither which rule refused it nor whether the
            // reference is spent: with `refusals_use_reference` it is.
            let order_no = payment.order_no.clone();
            if let Some(id) = refund_transaction_id
                && self.refusals_use_reference.load(Ordering::SeqCst)
            {
                state.refund_ids.insert(id);
            }
            return refund_answer(49, "Refund Failed", &order_no, &invoice_id, "");
        }
        let seq = state.next();
        let created_at = datetime(unix_now().as_secs());
        if let Some(id) = &refund_transaction_id {
            state.refund_ids.insert(id.clone());
        }
        let payment = &mut state.payments[index];
        let order_no = payment.order_no.clone();
        if bank == Bank::Refuses {
            payment.failed_refunds.push(SipayRefund {
                refund_transaction_id,
                amount,
                ref_number: String::new(),
                created_at,
                applied_at: Instant::now(),
            });
            drop(state);
            return refund_answer(49, "Refund Failed", &order_no, &invoice_id, "");
        }
        let ref_number = format!("{:012}", 602_800_000_000_u64 + seq);
        let refund = SipayRefund {
            refund_transaction_id,
            amount,
            ref_number: ref_number.clone(),
            created_at,
            applied_at: Instant::now(),
        };
        payment.last_accepted = Some(Instant::now());
        if self.pending_refunds.load(Ordering::SeqCst) {
            payment.pending_refunds.push(refund);
            let id = PENDING_IDS.fetch_add(1, Ordering::Relaxed);
            state.pending.insert(
                id,
                Pending {
                    invoice_id: invoice_id.clone(),
                    ref_number: ref_number.clone(),
                    webhook,
                },
            );
            drop(state);
            let after = self.pending_completion_ms.load(Ordering::SeqCst);
            if after != u64::MAX {
                self.complete_later(id, Duration::from_millis(after));
            }
            // The official PHP SDK's text for 101, in English.
            return refund_answer(
                101,
                "Refund request created; our team will complete the refund",
                &order_no,
                &invoice_id,
                &ref_number,
            );
        }
        payment.refunded_total += amount;
        payment.refunds.push(refund);
        drop(state);
        if webhook {
            let done = Completed {
                invoice_id: invoice_id.clone(),
                order_no: order_no.clone(),
                amount,
                webhook,
            };
            self.notifier.notify(&self.runtime, &done);
        }
        refund_answer(
            100,
            "Refund completed successfully",
            &order_no,
            &invoice_id,
            &ref_number,
        )
    }

    fn check_status(&self, req: &SimRequest, ctx: &SimContext) -> SimResponse {
        if let Some(denied) = self.unauthenticated(req) {
            return denied;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return status(1, "The given data was invalid.", None);
        };
        let (Some(invoice_id), Some(merchant_key), Some(hash_key)) = (
            text(&body, "invoice_id"),
            text(&body, "merchant_key"),
            text(&body, "hash_key"),
        ) else {
            return status(
                1,
                "The invoice id, merchant key and hash key fields are required.",
                None,
            );
        };
        if merchant_key != SipaySim::MERCHANT_KEY {
            return status(30, "Invalid Credentials", Some(&invoice_id));
        }
        if let Err(answer) = self.check_hash(&hash_key, &[&invoice_id, &merchant_key], &invoice_id)
        {
            return answer;
        }
        let show_refunds = matches!(body.get("show_refund_info"), Some(Value::String(s)) if s == "Y")
            || matches!(body.get("show_refund_info"), Some(Value::Bool(true)));
        let state = lock(&self.state);
        let Some(&index) = state.index.get(&invoice_id) else {
            return status(31, "Transaction not found", Some(&invoice_id));
        };
        let payment = &state.payments[index];
        // What a lagging lookup shows: refunds (applied or failed) older than the lag.
        let visible = |r: &&SipayRefund| ctx.visible(r.applied_at);
        // Pending refunds count as refunded unless switched otherwise (assumed; see the type's
        // docs).
        let pending_visibility =
            PendingVisibility::from_code(self.pending_visibility.load(Ordering::SeqCst));
        let counted_pending: &[SipayRefund] = match pending_visibility {
            PendingVisibility::Counted => &payment.pending_refunds,
            _ => &[],
        };
        let refunded: Decimal = payment
            .refunds
            .iter()
            .chain(counted_pending)
            .filter(visible)
            .map(|r| r.amount)
            .sum();
        let transaction_status = if refunded.is_zero() {
            "Completed"
        } else if refunded >= payment.amount {
            "refund"
        } else {
            "partially_refund"
        };
        let omit = self.omit_refund_figures.load(Ordering::SeqCst);
        let completed_word = lock(&self.completed_word).clone();
        let short = self.refund_info_short.load(Ordering::SeqCst);
        let listed_pending: &[SipayRefund] = match pending_visibility {
            PendingVisibility::Hidden => &[],
            _ => &payment.pending_refunds,
        };
        let refund_info = (show_refunds && !omit).then(|| {
            let applied = payment
                .refunds
                .iter()
                .filter(visible)
                .skip(usize::from(short))
                .map(|r| (r, completed_word.as_str()));
            let failed = payment
                .failed_refunds
                .iter()
                .filter(visible)
                .map(|r| (r, "failed"));
            let pending = listed_pending
                .iter()
                .filter(visible)
                .map(|r| (r, "pending"));
            let mut entries: Vec<(&SipayRefund, &str)> =
                applied.chain(failed).chain(pending).collect();
            entries.sort_by_key(|(r, _)| r.applied_at);
            entries
                .into_iter()
                .map(|(r, status)| RefundInfo {
                    refund_transaction_id: r.refund_transaction_id.as_deref(),
                    amount: fixed(r.amount, 2),
                    status,
                    created_at: &r.created_at,
                })
                .collect::<Vec<_>>()
        });
        let answer = CheckStatus {
            status_code: 100,
            status_description: "Successfully completed",
            transaction_status,
            order_id: &payment.order_no,
            transaction_id: payment.order_no.get(2..).unwrap_or_default(),
            message: "",
            reason: "",
            bank_status_code: "00",
            invoice_id: &payment.invoice_id,
            total_refunded_amount: if omit {
                None
            } else {
                number(fixed(refunded, 2))
            },
            product_price: fixed(payment.amount, 2),
            transaction_amount: number(fixed(payment.amount, 2)),
            transaction_type: "Auth",
            installment: 1,
            currency_code: payment.currency.code(),
            refund_info,
        };
        SimResponse::json(200, &answer)
    }

    /// `POST /__sandbox/payments`: `{"invoice_id"?, "amount", "currency"?}`.
    fn admin_add_payment(&self, body: &Value) -> Result<Value, String> {
        let currency = match text(body, "currency") {
            None => Currency::Try,
            Some(code) => Currency::from_str(&code).map_err(|_| "unknown currency".to_owned())?,
        };
        let amount = text(body, "amount").ok_or("amount is required")?;
        let amount = match Money::parse(&amount, currency) {
            Ok(m) if !m.amount().is_zero() => m.amount(),
            _ => return Err("amount must be a positive decimal such as \"100.00\"".to_owned()),
        };
        let mut state = lock(&self.state);
        let invoice_id = match text(body, "invoice_id") {
            Some(id) if !id.is_empty() => id,
            _ => format!("SIM-INV-{}", state.next()),
        };
        let payment = state.add_payment(invoice_id, amount, currency);
        drop(state);
        Ok(serde_json::json!({
            "invoice_id": payment.invoice_id,
            "order_no": payment.order_no,
            "amount": fixed(payment.amount, currency.scale()),
            "currency": currency.code(),
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
                    "id": p.invoice_id,
                    "invoice_id": p.invoice_id,
                    "order_no": p.order_no,
                    "currency": p.currency.code(),
                    "amount": fixed(p.amount, scale),
                    "refunded": fixed(p.refunded(), scale),
                    "remaining": fixed(p.remaining(), scale),
                    "state": p.state(),
                    "refunds": p.refunds.iter().map(|r| serde_json::json!({
                        "refund_transaction_id": r.refund_transaction_id,
                        "amount": fixed(r.amount, scale),
                        "ref_number": r.ref_number,
                        "created_at": r.created_at,
                    })).collect::<Vec<_>>(),
                    "failed_refunds": p.failed_refunds.iter().map(|r| serde_json::json!({
                        "refund_transaction_id": r.refund_transaction_id,
                        "amount": fixed(r.amount, scale),
                        "created_at": r.created_at,
                    })).collect::<Vec<_>>(),
                    "pending_refunds": p.pending_refunds.iter().map(|r| serde_json::json!({
                        "refund_transaction_id": r.refund_transaction_id,
                        "amount": fixed(r.amount, scale),
                        "ref_number": r.ref_number,
                        "created_at": r.created_at,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        drop(state);
        serde_json::json!({
            "payments": payments,
            "token_requests": self.token_requests.load(Ordering::SeqCst),
            "omit_refund_figures": self.omit_refund_figures.load(Ordering::SeqCst),
            "pending_refunds": self.pending_refunds.load(Ordering::SeqCst),
            "pending_completion_ms": match self.pending_completion_ms.load(Ordering::SeqCst) {
                u64::MAX => Value::Null,
                ms => Value::from(ms),
            },
            "refund_webhook_url": lock(&self.notifier.url).clone(),
            "refund_spacing_ms": self.refund_spacing_ms.load(Ordering::SeqCst),
            "refusals_use_reference": self.refusals_use_reference.load(Ordering::SeqCst),
            "pending_visibility": PendingVisibility::from_code(self.pending_visibility.load(Ordering::SeqCst)).name(),
            "refund_info_short": self.refund_info_short.load(Ordering::SeqCst),
            "completed_status_word": lock(&self.completed_word).clone(),
            "require_accept": self.require_accept.load(Ordering::SeqCst),
            "require_refund_transaction_id": self.require_refund_transaction_id.load(Ordering::SeqCst),
        })
    }

    fn admin_notifications(&self) -> Value {
        let deliveries: Vec<Value> = lock(&self.notifier.deliveries)
            .iter()
            .map(|d| match &d.answer {
                Ok(status) => serde_json::json!({"url": d.url, "body": d.body, "status": status}),
                Err(why) => serde_json::json!({"url": d.url, "body": d.body, "error": why}),
            })
            .collect();
        serde_json::json!({ "notifications": deliveries })
    }
}

impl Simulator for Inner {
    /// Under [`Fault::Fail`] a refund is checked like any other, then recorded as failed with
    /// its reference and answered 49 "Refund Failed"; other requests (check status) are
    /// answered as usual: a bank refusal is about refunds. SiPay's refund answer states no
    /// amount, so [`Fault::WrongAmount`] changes nothing.
    fn handle(&self, req: &SimRequest, ctx: &SimContext) -> SimResponse {
        let path = req.path.as_str();
        let known = matches!(path, REFUND_PATH | CHECK_STATUS_PATH | TOKEN_PATH);
        if !known {
            return SimResponse::json(404, &serde_json::json!({"message": "Not Found"}));
        }
        if req.method != Method::POST {
            return SimResponse::json(
                405,
                &serde_json::json!({"message": format!("The {} method is not supported for this route. Supported methods: POST.", req.method)}),
            );
        }
        if self.require_accept.load(Ordering::SeqCst) && !accepts_json(req) {
            return status(1, "The Accept header must be application/json.", None);
        }
        match path {
            REFUND_PATH if ctx.refuses() => self.refund_failed(req),
            REFUND_PATH => self.refund(req),
            CHECK_STATUS_PATH => self.check_status(req, ctx),
            _ => self.token(req),
        }
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

    /// `GET /__sandbox/credentials`, `GET /__sandbox/notifications` (the refund
    /// notifications delivered: url, body, and status or error) and `POST
    /// /__sandbox/complete_pending` (completes every pending refund: `{"completed": n}`).
    fn admin(&self, req: &SimRequest) -> Option<SimResponse> {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/__sandbox/credentials") => Some(SimResponse::json(
                200,
                &serde_json::json!({
                    "app_id": SipaySim::APP_ID,
                    "app_secret": SipaySim::APP_SECRET,
                    "merchant_key": SipaySim::MERCHANT_KEY,
                }),
            )),
            ("GET", "/__sandbox/notifications") => {
                Some(SimResponse::json(200, &self.admin_notifications()))
            }
            ("POST", "/__sandbox/complete_pending") => {
                let completed = self.complete_all_pending();
                Some(SimResponse::json(
                    200,
                    &serde_json::json!({ "completed": completed }),
                ))
            }
            _ => None,
        }
    }

    fn faultable(&self, req: &SimRequest) -> bool {
        matches!(req.path.as_str(), REFUND_PATH | CHECK_STATUS_PATH)
    }

    fn token_expired(&self) -> SimResponse {
        lock(&self.state).tokens.clear();
        unauthenticated()
    }

    /// SiPay's own keys: `"omit_refund_figures": bool`, `"pending_refunds": bool`,
    /// `"pending_completion_ms": N | null`, `"refund_webhook_url": "http://127.0.0.1:…" |
    /// null`, `"refund_spacing_ms": N` (the 30-second rule; 0 off), `"refusals_use_reference":
    /// bool`, `"pending_visibility": "counted" | "listed" | "hidden"`, `"refund_info_short":
    /// bool`, `"completed_status_word": "…"`, `"require_accept": bool` and
    /// `"require_refund_transaction_id": bool`. Every key is checked before any is applied.
    fn behaviour(&self, body: &Value) -> Result<(), String> {
        let flag = |name: &str| match body.get(name) {
            None => Ok(None),
            Some(Value::Bool(on)) => Ok(Some(*on)),
            Some(_) => Err(format!("{name} must be true or false")),
        };
        let omit = flag("omit_refund_figures")?;
        let pending = flag("pending_refunds")?;
        let completion =
            match body.get("pending_completion_ms") {
                None => None,
                Some(Value::Null) => Some(u64::MAX),
                Some(v) => Some(v.as_u64().filter(|ms| *ms != u64::MAX).ok_or(
                    "pending_completion_ms must be a whole number of milliseconds or null",
                )?),
            };
        let spacing = match body.get("refund_spacing_ms") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or("refund_spacing_ms must be a whole number of milliseconds (0: off)")?,
            ),
        };
        let use_up = flag("refusals_use_reference")?;
        let short = flag("refund_info_short")?;
        let accept = flag("require_accept")?;
        let refund_id = flag("require_refund_transaction_id")?;
        let visibility = match body.get("pending_visibility") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(PendingVisibility::from_name)
                    .ok_or("pending_visibility must be \"counted\", \"listed\" or \"hidden\"")?,
            ),
        };
        let word = match body.get("completed_status_word") {
            None => None,
            Some(Value::String(w)) if !w.is_empty() && w.len() <= 64 => Some(w.clone()),
            Some(_) => {
                return Err("completed_status_word must be a word of 1 to 64 bytes".to_owned());
            }
        };
        let url = match body.get("refund_webhook_url") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(url)) => {
                LoopbackUrl::parse(url).map_err(|e| format!("refund_webhook_url: {e}"))?;
                Some(Some(url.clone()))
            }
            Some(_) => return Err("refund_webhook_url must be a URL or null".to_owned()),
        };
        if let Some(on) = omit {
            self.omit_refund_figures.store(on, Ordering::SeqCst);
        }
        if let Some(on) = pending {
            self.pending_refunds.store(on, Ordering::SeqCst);
        }
        if let Some(ms) = completion {
            self.pending_completion_ms.store(ms, Ordering::SeqCst);
        }
        if let Some(url) = url {
            *lock(&self.notifier.url) = url;
        }
        if let Some(ms) = spacing {
            self.refund_spacing_ms.store(ms, Ordering::SeqCst);
        }
        let flags = [
            (use_up, &self.refusals_use_reference),
            (short, &self.refund_info_short),
            (accept, &self.require_accept),
            (refund_id, &self.require_refund_transaction_id),
        ];
        for (value, flag) in flags {
            if let Some(on) = value {
                flag.store(on, Ordering::SeqCst);
            }
        }
        if let Some(visibility) = visibility {
            self.pending_visibility
                .store(visibility.code(), Ordering::SeqCst);
        }
        if let Some(word) = word {
            *lock(&self.completed_word) = word;
        }
        Ok(())
    }
}

/// A refund request that passed SiPay's checks.
struct RefundInput {
    invoice_id: String,
    amount: Decimal,
    refund_transaction_id: Option<String>,
    /// It carried a refund webhook key (either spelling).
    webhook: bool,
}

/// What the bank does with a refund that passed SiPay's checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bank {
    Pays,
    Refuses,
}

#[derive(Serialize)]
struct RefundInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_transaction_id: Option<&'a str>,
    amount: String,
    status: &'a str,
    created_at: &'a str,
}

#[derive(Serialize)]
struct CheckStatus<'a> {
    status_code: u16,
    status_description: &'static str,
    transaction_status: &'static str,
    order_id: &'a str,
    transaction_id: &'a str,
    message: &'static str,
    reason: &'static str,
    bank_status_code: &'static str,
    invoice_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_refunded_amount: Option<Box<RawValue>>,
    product_price: String,
    transaction_amount: Option<Box<RawValue>>,
    transaction_type: &'static str,
    installment: u8,
    currency_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_info: Option<Vec<RefundInfo<'a>>>,
}

#[derive(Serialize)]
struct RefundAnswer<'a> {
    status_code: u16,
    status_description: &'a str,
    order_no: &'a str,
    invoice_id: &'a str,
    ref_no: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    ref_number: &'a str,
}

fn refund_answer(
    code: u16,
    description: &str,
    order_no: &str,
    invoice_id: &str,
    ref_number: &str,
) -> SimResponse {
    SimResponse::json(
        200,
        &RefundAnswer {
            status_code: code,
            status_description: description,
            order_no,
            invoice_id,
            ref_no: ref_number,
            ref_number,
        },
    )
}

/// A SiPay application answer without an order: `{"status_code", "status_description",
/// "invoice_id"?}` with HTTP 200.
fn status(code: u16, description: &str, invoice_id: Option<&str>) -> SimResponse {
    let mut answer = serde_json::json!({"status_code": code, "status_description": description});
    if let (Some(id), Some(map)) = (invoice_id, answer.as_object_mut()) {
        map.insert("invoice_id".to_owned(), Value::String(id.to_owned()));
    }
    SimResponse::json(200, &answer)
}

fn unauthenticated() -> SimResponse {
    SimResponse::raw_json(401, r#"{"message":"Unauthenticated."}"#)
}

/// A body field as text: strings as they are, numbers in their JSON form.
fn text(body: &Value, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether an `Accept` header names `application/json` (parameters allowed). SiPay's page
/// requires `Accept: application/json`; a wildcard (`*/*`, what HTTP clients send by default)
/// is not that.
fn accepts_json(req: &SimRequest) -> bool {
    req.headers
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|range| range.split(';').next())
        .any(|range| range.trim().eq_ignore_ascii_case("application/json"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
