//! A scripted [`RefundProvider`]: a test says, call by call, what the provider answers.
//!
//! In the style of tower-test's `mock::pair`: [`ScriptedProvider`] is a real
//! `RefundProvider` (name and [`Capabilities`] as the test sets them) whose refunds, voids and
//! lookups are answered from scripts queued up front ([`ScriptedProvider::refund_answers`],
//! [`ScriptedProvider::lookup_answers`], [`ScriptedProvider::void_answers`]) and, once a script
//! runs out, live through a [`Handle`] ([`Handle::next_refund`] hands over each request with a
//! [`Responder`]). It counts every call and keeps every request it saw, so the same scripted
//! scenario can be run against any driver of the attempt lifecycle — `Retrying`, the file
//! journal, the outbox — and the test checks that each ends in the same state.
//!
//! **A small ledger backs it.** An answer can say what happened to the money besides what is
//! answered: [`Answer::refunded`] applies the refund to the provider's ledger and answers a
//! receipt, [`Answer::lost_but_applied`] applies it and answers
//! [`RefundError::OutcomeUnknown`] (the answer was lost on the way back), and
//! [`Answer::refused_on_record`] leaves a *failed* record under the reference and answers a
//! decline. A lookup without a scripted answer ([`Lookup::ledger`]) shows that ledger, so a
//! driver that looks a lost answer up finds what the provider did.
//!
//! | script | the ledger afterwards | the caller sees |
//! |---|---|---|
//! | [`Answer::refunded`] | the refund, completed | a receipt |
//! | [`Answer::pending`] | the refund, pending | a pending receipt |
//! | [`Answer::receipt`] | nothing (the test's own receipt) | that receipt |
//! | [`Answer::error`] and its shorthands | nothing | that error |
//! | [`Answer::lost_but_applied`] | the refund, completed | outcome unknown |
//! | [`Answer::refused_on_record`] | a failed record under the reference | a decline |
//! | [`Answer::lost_refused`] | a failed record under the reference | outcome unknown |
//! | [`Answer::by_ledger`] | the refund, unless its reference is on record and the provider deduplicates | a receipt, or 104 |
//!
//! When no script is left: with a [`Handle`] taken, the call waits for the test to answer it
//! live; without one, a refund or void is answered with a [`RefundError::Configuration`]
//! naming the exhausted script (never a panic), and a lookup shows the ledger.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use refund_core::{PaymentRef, RefundProvider, RefundRequest, RetryPolicy, Retrying};
//! use refund_testkit::mock::{Answer, ScriptedProvider};
//!
//! // The provider applies the refund and the answer is lost; the lookup shows the ledger.
//! let provider = ScriptedProvider::new("scripted").refund_answers([Answer::lost_but_applied()]);
//! let retrying = Retrying::new(
//!     provider.clone(),
//!     RetryPolicy::default().reconcile(true, Duration::from_millis(10)),
//! );
//! let request = RefundRequest::builder(PaymentRef::payment("INV-1"), "25.00 TRY".parse()?)
//!     .reference("order-42-r1")
//!     .build()?;
//! let receipt = retrying.refund(&request).await?;
//! assert!(receipt.reconciled, "found by the lookup, never sent twice");
//! assert_eq!(provider.refund_calls(), 1);
//! assert_eq!(provider.lookup_calls(), 1);
//!
//! // Live: the test answers each call as it comes.
//! let (provider, mut handle) = ScriptedProvider::pair("live");
//! let call = tokio::spawn(async move { provider.refund(&request).await });
//! let (seen, responder) = handle.next_refund().await.expect("a refund call");
//! assert_eq!(seen.reference().as_str(), "order-42-r1");
//! responder.send(Answer::rate_limited(Some(Duration::from_secs(1))));
//! assert_eq!(call.await?.unwrap_err().kind(), "rate_limited");
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use refund_core::{
    Capabilities, Currency, Money, Operation, PaymentRef, RefundError, RefundProvider,
    RefundReceipt, RefundRecord, RefundRequest, RefundState, RefundStatus, VoidRequest,
    VoidSupport,
};
use tokio::sync::{mpsc, oneshot};

use crate::sim::lock;

/// The currencies a [`ScriptedProvider`] accepts unless told otherwise.
const DEFAULT_CURRENCIES: &[Currency] = &[Currency::Try, Currency::Usd, Currency::Eur];

/// What happens to the provider's ledger under an [`Answer`], besides what is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// Nothing is recorded.
    Nothing,
    /// The refund is recorded with this status (completed or pending: the money moved).
    Applied(RefundStatus),
    /// A failed record under the request's reference: processed, no money moved.
    FailedRecord,
}

/// What the answer says.
#[derive(Debug)]
enum Reply {
    /// A receipt built from the request, with this status.
    Built(RefundStatus),
    /// Exactly this receipt.
    Receipt(Box<RefundReceipt>),
    /// This error.
    Error(RefundError),
    /// The ledger decides: 104 for a reference on record when the provider deduplicates,
    /// otherwise a completed refund.
    ByLedger,
}

/// One scripted answer to a refund or void call: what the caller gets, what the provider's
/// ledger records, and how long the answer takes. See the [module docs](self) for the table.
///
/// ```
/// use std::time::Duration;
/// use refund_core::RefundError;
/// use refund_testkit::mock::Answer;
///
/// let answers = [
///     Answer::declined_retry_after("49", "Refund Failed", Duration::from_secs(30)),
///     Answer::rate_limited(None),
///     Answer::duplicate_reference(),
///     Answer::error(RefundError::outcome_unknown("p", "reset")).and_applied(),
///     Answer::refunded().after(Duration::from_millis(5)),
/// ];
/// assert_eq!(answers.len(), 5);
/// ```
#[derive(Debug)]
pub struct Answer {
    reply: Reply,
    effect: Effect,
    delay: Duration,
}

impl Answer {
    fn new(reply: Reply, effect: Effect) -> Self {
        Answer {
            reply,
            effect,
            delay: Duration::ZERO,
        }
    }

    /// Refunded: the ledger records the refund as completed and the caller gets a receipt for
    /// the request's amount, carrying a provider refund id (`<name>-refund-<n>`).
    pub fn refunded() -> Self {
        Answer::new(
            Reply::Built(RefundStatus::Completed),
            Effect::Applied(RefundStatus::Completed),
        )
    }

    /// Accepted, to be completed later (SiPay's 101): recorded as pending, a pending receipt.
    pub fn pending() -> Self {
        Answer::new(
            Reply::Built(RefundStatus::Pending),
            Effect::Applied(RefundStatus::Pending),
        )
    }

    /// Exactly `receipt`, with nothing recorded in the ledger (add [`and_applied`](Self::and_applied)
    /// to record it).
    pub fn receipt(receipt: RefundReceipt) -> Self {
        Answer::new(Reply::Receipt(Box::new(receipt)), Effect::Nothing)
    }

    /// Exactly `error`, with nothing recorded in the ledger.
    pub fn error(error: RefundError) -> Self {
        Answer::new(Reply::Error(error), Effect::Nothing)
    }

    /// The ledger decides: when the provider
    /// [deduplicates references](Capabilities::deduplicates_references) and the request's
    /// reference is on record (applied or failed), 104 ([`RefundError::DuplicateReference`]),
    /// nothing recorded; otherwise [`refunded`](Self::refunded).
    pub fn by_ledger() -> Self {
        Answer::new(Reply::ByLedger, Effect::Applied(RefundStatus::Completed))
    }

    /// A final decline (`code`, `message`), nothing recorded.
    pub fn declined(code: &str, message: &str) -> Self {
        Answer::new(Reply::Error(declined(code, message)), Effect::Nothing)
    }

    /// A temporary decline the provider marks retryable, nothing recorded.
    pub fn declined_retryable(code: &str, message: &str) -> Self {
        Answer::new(
            Reply::Error(RefundError::declined_retryable(
                NAME_PLACEHOLDER,
                code,
                message,
            )),
            Effect::Nothing,
        )
    }

    /// A temporary decline that may succeed after `wait` (SiPay's 30-second rule), nothing
    /// recorded.
    pub fn declined_retry_after(code: &str, message: &str, wait: Duration) -> Self {
        Answer::new(
            Reply::Error(RefundError::declined_retry_after(
                NAME_PLACEHOLDER,
                code,
                message,
                wait,
            )),
            Effect::Nothing,
        )
    }

    /// HTTP 429 with the pause the provider asked for, nothing recorded.
    pub fn rate_limited(retry_after: Option<Duration>) -> Self {
        Answer::new(
            Reply::Error(RefundError::rate_limited(NAME_PLACEHOLDER, retry_after)),
            Effect::Nothing,
        )
    }

    /// The provider could not be reached (connection refused): nothing sent, nothing recorded.
    pub fn unreachable() -> Self {
        Answer::new(
            Reply::Error(RefundError::unreachable(
                NAME_PLACEHOLDER,
                "connection refused (scripted)",
            )),
            Effect::Nothing,
        )
    }

    /// No trustworthy answer (a timeout, a reset), and nothing recorded: the request never
    /// reached the ledger.
    pub fn outcome_unknown(reason: &str) -> Self {
        Answer::new(
            Reply::Error(RefundError::outcome_unknown(NAME_PLACEHOLDER, reason)),
            Effect::Nothing,
        )
    }

    /// SiPay's 104: the reference was seen before. Nothing recorded.
    pub fn duplicate_reference() -> Self {
        Answer::new(
            Reply::Error(RefundError::duplicate_reference(
                NAME_PLACEHOLDER,
                "104",
                "Refund transaction id is not unique",
            )),
            Effect::Nothing,
        )
    }

    /// A lost answer: the provider applied the refund (completed, in the ledger), and the
    /// caller gets [`RefundError::OutcomeUnknown`].
    pub fn lost_but_applied() -> Self {
        Answer::outcome_unknown("the connection closed before the answer (scripted)").and_applied()
    }

    /// The bank refused it: a failed record under the request's reference, and a final
    /// decline (`code`, `message`).
    pub fn refused_on_record(code: &str, message: &str) -> Self {
        Answer::declined(code, message).and_failed_record()
    }

    /// The bank refused it and the answer was lost: a failed record under the reference, and
    /// [`RefundError::OutcomeUnknown`].
    pub fn lost_refused() -> Self {
        Answer::outcome_unknown("the connection closed before the answer (scripted)")
            .and_failed_record()
    }

    /// The same answer, with the refund applied (completed) to the ledger as well.
    #[must_use]
    pub fn and_applied(mut self) -> Self {
        self.effect = Effect::Applied(RefundStatus::Completed);
        self
    }

    /// The same answer, with the refund applied as pending to the ledger as well.
    #[must_use]
    pub fn and_pending(mut self) -> Self {
        self.effect = Effect::Applied(RefundStatus::Pending);
        self
    }

    /// The same answer, with a failed record under the reference left in the ledger.
    #[must_use]
    pub fn and_failed_record(mut self) -> Self {
        self.effect = Effect::FailedRecord;
        self
    }

    /// The same answer, given `delay` after the call (the ledger is changed at once, as a
    /// provider does the work before its answer travels back).
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl From<RefundError> for Answer {
    fn from(error: RefundError) -> Self {
        Answer::error(error)
    }
}

impl From<RefundReceipt> for Answer {
    fn from(receipt: RefundReceipt) -> Self {
        Answer::receipt(receipt)
    }
}

impl From<Result<RefundReceipt, RefundError>> for Answer {
    fn from(result: Result<RefundReceipt, RefundError>) -> Self {
        match result {
            Ok(receipt) => Answer::receipt(receipt),
            Err(error) => Answer::error(error),
        }
    }
}

/// The provider name errors are built with before the provider's own replaces it.
const NAME_PLACEHOLDER: &str = "scripted";

fn declined(code: &str, message: &str) -> RefundError {
    RefundError::declined(NAME_PLACEHOLDER, code, message)
}

/// One scripted answer to a lookup (`refund_state`).
///
/// ```
/// use refund_core::{Money, Currency, PaymentRef, RefundState};
/// use refund_testkit::mock::Lookup;
///
/// let lookups = [
///     Lookup::nothing(),                       // lag: not on record yet
///     Lookup::undetermined("no refund figures"), // cannot tell
///     Lookup::state(RefundState::new(PaymentRef::payment("I"), Money::zero(Currency::Try))),
///     Lookup::ledger(),                        // what the provider did
/// ];
/// assert_eq!(lookups.len(), 4);
/// ```
#[derive(Debug)]
pub struct Lookup {
    kind: LookupKind,
    delay: Duration,
}

#[derive(Debug)]
enum LookupKind {
    State(Box<RefundState>),
    Nothing,
    Undetermined(String),
    Ledger,
    Error(RefundError),
}

impl Lookup {
    fn new(kind: LookupKind) -> Self {
        Lookup {
            kind,
            delay: Duration::ZERO,
        }
    }

    /// Exactly `state`, as the test built it.
    pub fn state(state: RefundState) -> Self {
        Lookup::new(LookupKind::State(Box::new(state)))
    }

    /// A determined answer with nothing refunded and no records: what a lagging lookup shows
    /// before the refund is on record.
    pub fn nothing() -> Self {
        Lookup::new(LookupKind::Nothing)
    }

    /// The ledger's records, marked undetermined for `reason`: an answer that cannot say what
    /// was refunded.
    pub fn undetermined(reason: &str) -> Self {
        Lookup::new(LookupKind::Undetermined(reason.to_owned()))
    }

    /// What the provider's ledger holds for the payment: the refunds the scripts applied
    /// (completed and pending, summed as refunded) and the failed records, less those younger
    /// than the [lookup lag](ScriptedProvider::lookup_lag).
    pub fn ledger() -> Self {
        Lookup::new(LookupKind::Ledger)
    }

    /// The lookup fails with `error`.
    pub fn error(error: RefundError) -> Self {
        Lookup::new(LookupKind::Error(error))
    }

    /// The same answer, given `delay` after the call.
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl From<RefundState> for Lookup {
    fn from(state: RefundState) -> Self {
        Lookup::state(state)
    }
}

impl From<RefundError> for Lookup {
    fn from(error: RefundError) -> Self {
        Lookup::error(error)
    }
}

impl From<Result<RefundState, RefundError>> for Lookup {
    fn from(result: Result<RefundState, RefundError>) -> Self {
        match result {
            Ok(state) => Lookup::state(state),
            Err(error) => Lookup::error(error),
        }
    }
}

/// Answers one refund (or void) call live: [`send`](Self::send) it an [`Answer`] (or
/// anything that converts: a receipt, a `RefundError`, a `Result`). Dropping it unanswered
/// answers the caller [`RefundError::OutcomeUnknown`]: the answer was lost.
#[derive(Debug)]
pub struct Responder {
    tx: oneshot::Sender<Answer>,
}

impl Responder {
    /// Answers the call.
    pub fn send(self, answer: impl Into<Answer>) {
        // The caller may have given up (a timeout around the call): nothing to answer then.
        let _ = self.tx.send(answer.into());
    }
}

/// Answers one lookup call live: [`send`](Self::send) it a [`Lookup`] (or a `RefundState`,
/// a `RefundError`, a `Result`). Dropping it unanswered fails the lookup with
/// [`RefundError::OutcomeUnknown`].
#[derive(Debug)]
pub struct LookupResponder {
    tx: oneshot::Sender<Lookup>,
}

impl LookupResponder {
    /// Answers the lookup.
    pub fn send(self, lookup: impl Into<Lookup>) {
        let _ = self.tx.send(lookup.into());
    }
}

/// The test's end of a [`ScriptedProvider`]: each call that finds no queued answer arrives
/// here, in order, to be answered live.
#[derive(Debug)]
pub struct Handle {
    refunds: mpsc::UnboundedReceiver<(RefundRequest, Responder)>,
    voids: mpsc::UnboundedReceiver<(VoidRequest, Responder)>,
    lookups: mpsc::UnboundedReceiver<(PaymentRef, LookupResponder)>,
}

impl Handle {
    /// The next refund call without a queued answer, with its responder; `None` once the
    /// provider (every clone of it) is gone.
    pub async fn next_refund(&mut self) -> Option<(RefundRequest, Responder)> {
        self.refunds.recv().await
    }

    /// The next void call without a queued answer, with its responder.
    pub async fn next_void(&mut self) -> Option<(VoidRequest, Responder)> {
        self.voids.recv().await
    }

    /// The next lookup call without a queued answer, with its responder.
    pub async fn next_lookup(&mut self) -> Option<(PaymentRef, LookupResponder)> {
        self.lookups.recv().await
    }
}

/// Where calls without a queued answer go once a [`Handle`] is taken.
struct Live {
    refunds: mpsc::UnboundedSender<(RefundRequest, Responder)>,
    voids: mpsc::UnboundedSender<(VoidRequest, Responder)>,
    lookups: mpsc::UnboundedSender<(PaymentRef, LookupResponder)>,
}

/// One record in the provider's ledger.
#[derive(Clone, Debug)]
struct Entry {
    payment: PaymentRef,
    record: RefundRecord,
    /// When the provider recorded it (tokio's clock, so paused-time tests see lag pass).
    at: tokio::time::Instant,
}

#[derive(Default)]
struct Script {
    refunds: VecDeque<Answer>,
    voids: VecDeque<Answer>,
    lookups: VecDeque<Lookup>,
    live: Option<Live>,
    ledger: Vec<Entry>,
    paid: HashMap<PaymentRef, Money>,
    lookup_lag: Duration,
    refunds_seen: Vec<RefundRequest>,
    voids_seen: Vec<VoidRequest>,
    lookups_seen: Vec<PaymentRef>,
    issued: u64,
}

struct Shared {
    name: &'static str,
    capabilities: Mutex<Capabilities>,
    script: Mutex<Script>,
}

/// A [`RefundProvider`] whose answers the test scripts call by call (see the
/// [module docs](self)). Clones share one script, one ledger and one set of counters, so a
/// test keeps a clone to inspect while a driver owns another.
///
/// By default it refunds TRY, USD and EUR, partially and repeatedly, looks refunds up, does
/// not deduplicate references, and declares the [default settle
/// time](Capabilities::DEFAULT_SETTLE_TIME).
#[derive(Clone)]
pub struct ScriptedProvider {
    shared: Arc<Shared>,
}

impl fmt::Debug for ScriptedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedProvider")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl ScriptedProvider {
    /// A provider called `name` with no answers queued.
    pub fn new(name: &'static str) -> Self {
        let capabilities = Capabilities::new(DEFAULT_CURRENCIES)
            .with_partial_refunds(true)
            .with_refund_lookup(true);
        ScriptedProvider {
            shared: Arc::new(Shared {
                name,
                capabilities: Mutex::new(capabilities),
                script: Mutex::new(Script::default()),
            }),
        }
    }

    /// A provider and the [`Handle`] that answers its calls live (tower-test's `mock::pair`).
    pub fn pair(name: &'static str) -> (Self, Handle) {
        let provider = ScriptedProvider::new(name);
        let handle = provider.handle();
        (provider, handle)
    }

    /// The [`Handle`] that answers, from now on, every call that finds no queued answer. A
    /// second call replaces the first handle (whose receivers then see nothing more).
    pub fn handle(&self) -> Handle {
        let (refund_tx, refunds) = mpsc::unbounded_channel();
        let (void_tx, voids) = mpsc::unbounded_channel();
        let (lookup_tx, lookups) = mpsc::unbounded_channel();
        lock(&self.shared.script).live = Some(Live {
            refunds: refund_tx,
            voids: void_tx,
            lookups: lookup_tx,
        });
        Handle {
            refunds,
            voids,
            lookups,
        }
    }

    /// Sets every capability at once.
    #[must_use]
    pub fn capabilities(self, capabilities: Capabilities) -> Self {
        *lock(&self.shared.capabilities) = capabilities;
        self
    }

    /// Sets the settle time it declares.
    #[must_use]
    pub fn settle_time(self, settle_time: Duration) -> Self {
        self.change_capabilities(|c| c.with_settle_time(settle_time))
    }

    /// Sets whether it declares refund lookups.
    #[must_use]
    pub fn refund_lookup(self, lookup: bool) -> Self {
        self.change_capabilities(|c| c.with_refund_lookup(lookup))
    }

    /// Sets whether it declares that it refuses a reused reference (SiPay's 104); with it,
    /// [`Answer::by_ledger`] answers 104 for a reference on record.
    #[must_use]
    pub fn deduplicates_references(self, dedup: bool) -> Self {
        self.change_capabilities(|c| c.with_reference_dedup(dedup))
    }

    /// Sets how it voids; a void is answered from [`void_answers`](Self::void_answers).
    #[must_use]
    pub fn void_support(self, void: VoidSupport) -> Self {
        self.change_capabilities(|c| c.with_void(void))
    }

    fn change_capabilities(self, change: impl FnOnce(Capabilities) -> Capabilities) -> Self {
        {
            let mut capabilities = lock(&self.shared.capabilities);
            *capabilities = change(*capabilities);
        }
        self
    }

    /// Queues answers for the next refund calls, after any queued before.
    #[must_use]
    pub fn refund_answers(self, answers: impl IntoIterator<Item = Answer>) -> Self {
        self.push_refund_answers(answers);
        self
    }

    /// Queues answers for the next lookups, after any queued before.
    #[must_use]
    pub fn lookup_answers(self, lookups: impl IntoIterator<Item = Lookup>) -> Self {
        self.push_lookup_answers(lookups);
        self
    }

    /// Queues answers for the next void calls, after any queued before.
    #[must_use]
    pub fn void_answers(self, answers: impl IntoIterator<Item = Answer>) -> Self {
        lock(&self.shared.script).voids.extend(answers);
        self
    }

    /// Lookups from the ledger ([`Lookup::ledger`], [`Lookup::undetermined`]) leave out records
    /// younger than `lag`, as a lagging provider's lookup does (measured on tokio's clock, so a
    /// test with paused time sees the lag pass as it sleeps). Zero by default.
    #[must_use]
    pub fn lookup_lag(self, lag: Duration) -> Self {
        lock(&self.shared.script).lookup_lag = lag;
        self
    }

    /// Records what was paid for `payment`: lookups from the ledger then carry it.
    #[must_use]
    pub fn paid(self, payment: PaymentRef, amount: Money) -> Self {
        lock(&self.shared.script).paid.insert(payment, amount);
        self
    }

    /// Queues more refund answers on a provider in use.
    pub fn push_refund_answers(&self, answers: impl IntoIterator<Item = Answer>) {
        lock(&self.shared.script).refunds.extend(answers);
    }

    /// Queues more lookup answers on a provider in use.
    pub fn push_lookup_answers(&self, lookups: impl IntoIterator<Item = Lookup>) {
        lock(&self.shared.script).lookups.extend(lookups);
    }

    /// How many refund answers are still queued.
    pub fn refund_answers_left(&self) -> usize {
        lock(&self.shared.script).refunds.len()
    }

    /// How many lookup answers are still queued.
    pub fn lookup_answers_left(&self) -> usize {
        lock(&self.shared.script).lookups.len()
    }

    /// How many refund calls it received.
    pub fn refund_calls(&self) -> usize {
        lock(&self.shared.script).refunds_seen.len()
    }

    /// How many lookups (`refund_state` calls) it received.
    pub fn lookup_calls(&self) -> usize {
        lock(&self.shared.script).lookups_seen.len()
    }

    /// How many void calls it received.
    pub fn void_calls(&self) -> usize {
        lock(&self.shared.script).voids_seen.len()
    }

    /// Every refund request received, oldest first.
    pub fn refunds_seen(&self) -> Vec<RefundRequest> {
        lock(&self.shared.script).refunds_seen.clone()
    }

    /// Every void request received, oldest first.
    pub fn voids_seen(&self) -> Vec<VoidRequest> {
        lock(&self.shared.script).voids_seen.clone()
    }

    /// Every payment looked up, oldest first.
    pub fn lookups_seen(&self) -> Vec<PaymentRef> {
        lock(&self.shared.script).lookups_seen.clone()
    }

    /// What the ledger holds for `payment`, lag or not, without counting a lookup.
    pub fn ledger_state(&self, payment: &PaymentRef) -> RefundState {
        self.ledger_of(&lock(&self.shared.script), payment, Duration::ZERO)
    }

    /// The sum of the completed and pending refunds on record for `payment`.
    pub fn refunded(&self, payment: &PaymentRef) -> Money {
        self.ledger_state(payment).refunded
    }

    fn currency(&self) -> Currency {
        lock(&self.shared.capabilities)
            .currencies
            .first()
            .copied()
            .unwrap_or(Currency::Try)
    }

    /// The ledger's state for `payment`: records of the payment itself and of its items, at
    /// least `lag` old.
    fn ledger_of(&self, script: &Script, payment: &PaymentRef, lag: Duration) -> RefundState {
        let belongs = |entry: &&Entry| {
            (entry.payment == *payment || entry.payment.parent() == Some(payment.id()))
                && entry.at.elapsed() >= lag
        };
        let paid = script.paid.get(payment).copied();
        let currency = paid
            .map(|p| p.currency())
            .or_else(|| {
                script
                    .ledger
                    .iter()
                    .find(belongs)
                    .map(|e| e.record.amount.currency())
            })
            .unwrap_or_else(|| self.currency());
        let mut refunded = Money::zero(currency);
        let mut state_records = Vec::new();
        for entry in script.ledger.iter().filter(belongs) {
            if entry.record.status.is_applied() {
                // Amounts in another currency cannot be summed: such a ledger is the test's
                // own doing, and the sum keeps what it can.
                refunded = refunded
                    .checked_add(&entry.record.amount)
                    .unwrap_or(refunded);
            }
            state_records.push(entry.record.clone());
        }
        let mut state = RefundState::new(payment.clone(), refunded);
        if let Some(paid) = paid {
            state = state.with_paid(paid);
        }
        state_records
            .into_iter()
            .fold(state, RefundState::with_record)
    }

    /// Takes the next queued refund (or void) answer, or the live channel.
    fn next_answer(&self, void: bool) -> Next<Answer> {
        let mut script = lock(&self.shared.script);
        let queued = if void {
            script.voids.pop_front()
        } else {
            script.refunds.pop_front()
        };
        match queued {
            Some(answer) => Next::Queued(answer),
            None => match &script.live {
                Some(_) => Next::Live,
                None => Next::Exhausted,
            },
        }
    }

    /// Carries out `answer` for a refund of `amount` under `reference`.
    fn carry_out(
        &self,
        answer: Answer,
        operation: Operation,
        payment: &PaymentRef,
        reference: &refund_core::MerchantRef,
        amount: Money,
    ) -> (Result<RefundReceipt, RefundError>, Duration) {
        let name = self.shared.name;
        let dedup = lock(&self.shared.capabilities).deduplicates_references;
        let mut script = lock(&self.shared.script);
        let Answer {
            reply,
            mut effect,
            delay,
        } = answer;
        if let Reply::ByLedger = reply {
            let on_record = script
                .ledger
                .iter()
                .any(|e| e.record.reference.as_deref() == Some(reference.as_str()));
            if dedup && on_record {
                effect = Effect::Nothing;
            }
        }
        script.issued += 1;
        let refund_id = format!("{name}-refund-{}", script.issued);
        match effect {
            Effect::Nothing => {}
            Effect::Applied(status) => script.ledger.push(Entry {
                payment: payment.clone(),
                record: RefundRecord::new(amount)
                    .with_reference(reference.as_str())
                    .with_provider_reference(refund_id.clone())
                    .with_status(status),
                at: tokio::time::Instant::now(),
            }),
            Effect::FailedRecord => script.ledger.push(Entry {
                payment: payment.clone(),
                record: RefundRecord::new(amount)
                    .with_reference(reference.as_str())
                    .with_status(RefundStatus::Failed),
                at: tokio::time::Instant::now(),
            }),
        }
        drop(script);
        let built = |status| {
            RefundReceipt::new(
                name,
                operation,
                payment.clone(),
                reference.clone(),
                amount,
                status,
            )
            .with_refund_id(refund_id.clone())
            .with_provider_reference("refund_id", refund_id.clone())
        };
        let result = match reply {
            Reply::Built(status) => Ok(built(status)),
            Reply::Receipt(receipt) => Ok(*receipt),
            Reply::Error(error) => Err(renamed(error, name)),
            Reply::ByLedger if effect == Effect::Nothing => Err(RefundError::duplicate_reference(
                name,
                "104",
                "Refund transaction id is not unique",
            )),
            Reply::ByLedger => Ok(built(RefundStatus::Completed)),
        };
        (result, delay)
    }

    async fn answer_call(
        &self,
        operation: Operation,
        payment: &PaymentRef,
        reference: &refund_core::MerchantRef,
        amount: Money,
        live: impl FnOnce(&Live, Responder) -> bool,
    ) -> Result<RefundReceipt, RefundError> {
        let name = self.shared.name;
        let what = match operation {
            Operation::Void => "void",
            _ => "refund",
        };
        let answer = match self.next_answer(operation == Operation::Void) {
            Next::Queued(answer) => answer,
            Next::Exhausted => {
                return Err(RefundError::configuration(
                    name,
                    format!("scripted provider: no {what} answer left and no handle to ask"),
                ));
            }
            Next::Live => {
                let (tx, rx) = oneshot::channel();
                let sent = {
                    let script = lock(&self.shared.script);
                    script
                        .live
                        .as_ref()
                        .is_some_and(|channels| live(channels, Responder { tx }))
                };
                if !sent {
                    return Err(RefundError::configuration(
                        name,
                        format!("scripted provider: no {what} answer left and the handle is gone"),
                    ));
                }
                match rx.await {
                    Ok(answer) => answer,
                    Err(_) => {
                        return Err(RefundError::outcome_unknown(
                            name,
                            "the scripted responder was dropped unanswered: the answer was lost",
                        ));
                    }
                }
            }
        };
        let (result, delay) = self.carry_out(answer, operation, payment, reference, amount);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        result
    }
}

enum Next<T> {
    Queued(T),
    Live,
    Exhausted,
}

/// `error` as provider `name`'s (scripted errors are built before the provider is known).
fn renamed(error: RefundError, name: &'static str) -> RefundError {
    if error.provider() != Some(NAME_PLACEHOLDER) || name == NAME_PLACEHOLDER {
        return error;
    }
    match error {
        RefundError::Declined {
            code,
            message,
            retryable,
            retry_after,
            ..
        } => match (retryable, retry_after) {
            (true, Some(wait)) => RefundError::declined_retry_after(name, code, message, wait),
            (true, None) => RefundError::declined_retryable(name, code, message),
            _ => RefundError::declined(name, code, message),
        },
        RefundError::RateLimited { retry_after, .. } => {
            RefundError::rate_limited(name, retry_after)
        }
        RefundError::Unreachable { source, .. } => RefundError::unreachable(name, source),
        RefundError::OutcomeUnknown { reason, source, .. } => match source {
            Some(source) => RefundError::outcome_unknown_from(name, reason, source),
            None => RefundError::outcome_unknown(name, reason),
        },
        RefundError::DuplicateReference { code, message, .. } => {
            RefundError::duplicate_reference(name, code, message)
        }
        other => other,
    }
}

#[async_trait]
impl RefundProvider for ScriptedProvider {
    fn name(&self) -> &'static str {
        self.shared.name
    }

    fn capabilities(&self) -> Capabilities {
        *lock(&self.shared.capabilities)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        lock(&self.shared.script).refunds_seen.push(request.clone());
        let seen = request.clone();
        self.answer_call(
            Operation::Refund,
            request.payment(),
            request.reference(),
            request.amount(),
            move |live, responder| live.refunds.send((seen, responder)).is_ok(),
        )
        .await
    }

    async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        lock(&self.shared.script).voids_seen.push(request.clone());
        let paid = lock(&self.shared.script)
            .paid
            .get(request.payment())
            .copied()
            .unwrap_or_else(|| Money::zero(self.currency()));
        let seen = request.clone();
        self.answer_call(
            Operation::Void,
            request.payment(),
            request.reference(),
            paid,
            move |live, responder| live.voids.send((seen, responder)).is_ok(),
        )
        .await
    }

    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        let name = self.shared.name;
        let queued = {
            let mut script = lock(&self.shared.script);
            script.lookups_seen.push(payment.clone());
            match script.lookups.pop_front() {
                Some(lookup) => Next::Queued(lookup),
                None if script.live.is_some() => Next::Live,
                None => Next::Exhausted,
            }
        };
        let lookup = match queued {
            Next::Queued(lookup) => lookup,
            Next::Exhausted => Lookup::ledger(),
            Next::Live => {
                let (tx, rx) = oneshot::channel();
                let sent = lock(&self.shared.script).live.as_ref().is_some_and(|live| {
                    live.lookups
                        .send((payment.clone(), LookupResponder { tx }))
                        .is_ok()
                });
                if !sent {
                    Lookup::ledger()
                } else {
                    match rx.await {
                        Ok(lookup) => lookup,
                        Err(_) => Lookup::error(RefundError::outcome_unknown(
                            name,
                            "the scripted lookup responder was dropped unanswered",
                        )),
                    }
                }
            }
        };
        let Lookup { kind, delay } = lookup;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match kind {
            LookupKind::State(state) => Ok(*state),
            LookupKind::Nothing => {
                let script = lock(&self.shared.script);
                let currency = script
                    .paid
                    .get(payment)
                    .map_or_else(|| self.currency(), Money::currency);
                let mut state = RefundState::new(payment.clone(), Money::zero(currency));
                if let Some(paid) = script.paid.get(payment) {
                    state = state.with_paid(*paid);
                }
                Ok(state)
            }
            LookupKind::Undetermined(reason) => {
                let script = lock(&self.shared.script);
                Ok(self
                    .ledger_of(&script, payment, script.lookup_lag)
                    .with_undetermined(reason))
            }
            LookupKind::Ledger => {
                let script = lock(&self.shared.script);
                Ok(self.ledger_of(&script, payment, script.lookup_lag))
            }
            LookupKind::Error(error) => Err(renamed(error, name)),
        }
    }
}
