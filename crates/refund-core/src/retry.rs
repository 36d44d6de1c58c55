//! A provider wrapper that retries what is safe to retry and reconciles what is not.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::attempt::{Attempt, AttemptPolicy, AttemptState, Decision, Next};
use crate::error::RefundError;
use crate::provider::{Capabilities, RefundProvider};
use crate::receipt::{Operation, RefundReceipt, RefundStatus};
use crate::reconcile::{Judged, Reconciler, Verdict};
use crate::reference::PaymentRef;
use crate::request::{RefundRequest, ValidationError, VoidRequest};
use crate::state::RefundState;

/// How [`Retrying`] drives the [attempt lifecycle](crate::AttemptPolicy) in memory: the
/// lifecycle's knobs, plus how patient one call is (how many sends, how long a wait it sits
/// through, how long it keeps looking an unknown outcome up).
///
/// ```
/// use std::time::Duration;
/// use refund_core::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .max_attempts(4)
///     .backoff(Duration::from_millis(100), Duration::from_secs(2));
/// assert_eq!(policy.delay_for(1, false), Duration::from_millis(100));
/// assert_eq!(policy.delay_for(3, false), Duration::from_millis(400));
/// assert_eq!(policy.delay_for(9, false), Duration::from_secs(2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    lifecycle: AttemptPolicy,
    max_attempts: u32,
    longest_wait: Duration,
    reconcile: bool,
    reconcile_window: Duration,
}

impl Default for RetryPolicy {
    /// The lifecycle's defaults ([`AttemptPolicy::default`]), at most 3 sends in one call, no
    /// single wait longer than 30 s (SiPay's spacing between refunds of one invoice is 30 s),
    /// and reconciliation for up to 40 s.
    fn default() -> Self {
        RetryPolicy {
            lifecycle: AttemptPolicy::default().with_recheck(Duration::from_secs(1)),
            max_attempts: 3,
            longest_wait: Duration::from_secs(30),
            reconcile: true,
            reconcile_window: Duration::from_secs(40),
        }
    }
}

impl RetryPolicy {
    /// Sends in all within one call, the first included (at least 1): the same as the
    /// lifecycle's [`with_max_sends`](AttemptPolicy::with_max_sends).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self.lifecycle = self.lifecycle.with_max_sends(attempts);
        self
    }

    /// The first backoff and the cap; delays double in between. A wait the provider asks for
    /// that is longer than the cap (and longer than 30 s) is not waited out: the error is
    /// returned with its [`retry_after`](RefundError::retry_after).
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.lifecycle = self.lifecycle.with_backoff(initial, max);
        self.longest_wait = max.max(initial);
        self
    }

    /// Whether delays are randomised to between half and all of the computed delay, so
    /// clients that failed together do not retry together.
    #[must_use]
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.lifecycle = self.lifecycle.with_jitter(jitter);
        self
    }

    /// Whether an outcome-unknown refund is looked up (first after `delay`, the lifecycle's
    /// [recheck](AttemptPolicy::with_recheck)) when the provider supports lookups. It is
    /// never resent blindly either way.
    #[must_use]
    pub fn reconcile(mut self, reconcile: bool, delay: Duration) -> Self {
        self.reconcile = reconcile;
        self.lifecycle = self.lifecycle.with_recheck(delay);
        self
    }

    /// How long an outcome-unknown refund is looked up again while the lookup has not settled
    /// it, before the outcome-unknown error is returned. Resending happens only when the
    /// provider's [settle time](crate::Capabilities::settle_time) passes inside this window
    /// with nothing on record ([`Verdict::SafeToResend`](crate::Verdict::SafeToResend)).
    #[must_use]
    pub fn reconcile_window(mut self, window: Duration) -> Self {
        self.reconcile_window = window;
        self
    }

    /// The lifecycle itself, to change any of its other knobs.
    #[must_use]
    pub fn lifecycle(mut self, lifecycle: AttemptPolicy) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// The lifecycle this policy drives.
    pub fn attempt_policy(&self) -> &AttemptPolicy {
        &self.lifecycle
    }

    /// The delay before attempt `retry + 1`, i.e. after the `retry`-th failure (1-based),
    /// without advice from the provider.
    pub fn delay_for(&self, retry: u32, jitter: bool) -> Duration {
        self.lifecycle
            .clone()
            .with_jitter(jitter && self.jitters())
            .backoff(retry)
    }

    fn jitters(&self) -> bool {
        // The lifecycle's jitter flag, read through its backoff of a known delay.
        self.lifecycle.jitter()
    }
}

/// Wraps a provider and retries what is safe to retry; is itself a [`RefundProvider`]: the
/// in-memory driver of the [attempt lifecycle](crate::AttemptPolicy), the same decisions as
/// `refund batch` and the outbox make, with the patience of one call.
///
/// - Retryable errors ([`RefundError::is_retryable`]: unreachable, rate limited, temporary
///   declines) are sent again when the lifecycle says, after the provider's
///   [`retry_after`](RefundError::retry_after) or the backoff, up to the policy's attempts. A
///   wait longer than the policy's cap is not waited out: the error is returned.
/// - An outcome-unknown refund is **never resent blindly**. When the provider supports lookups
///   and the policy allows, the wrapper looks it up through [`Reconciler::look_up`] for the
///   policy's [window](RetryPolicy::reconcile_window): on record, it returns the receipt
///   (marked [`reconciled`](RefundReceipt::reconciled)); on record as failed, a decline;
///   nothing on record after the settle time, it resends with the same reference (counted as
///   an attempt); otherwise it returns the outcome-unknown error, saying what the lookup saw.
/// - Lookups (`refund_state`) change nothing, so they are retried on outcome-unknown too.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use refund_core::*;
/// # async fn demo(provider: Arc<dyn RefundProvider>, request: RefundRequest) -> Result<(), RefundError> {
/// let provider = Retrying::new(provider, RetryPolicy::default());
/// let receipt = provider.refund(&request).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Retrying<P> {
    inner: P,
    policy: RetryPolicy,
}

impl<P: RefundProvider> Retrying<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, policy: RetryPolicy) -> Self {
        Retrying { inner, policy }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Sleeps until `at` by `clock`, or says no when that is beyond `patience` from now.
    async fn wait_until(&self, clock: &Clock, at: SystemTime, patience: Duration) -> bool {
        let wait = at.duration_since(clock.now()).unwrap_or(Duration::ZERO);
        if wait > patience {
            return false;
        }
        if !wait.is_zero() {
            tracing::warn!(
                provider = self.inner.name(),
                delay_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "waiting before the next step"
            );
            tokio::time::sleep(wait).await;
        }
        true
    }

    /// Waits before the next send of an operation that is never looked up (voids), or gives
    /// the error back.
    async fn pause_or_give_up(&self, attempt: u32, error: RefundError) -> Result<(), RefundError> {
        if attempt >= self.policy.max_attempts || !error.is_retryable() {
            return Err(error);
        }
        let wait = error
            .retry_after()
            .unwrap_or_else(|| self.policy.lifecycle.backoff(attempt));
        let clock = Clock::start();
        if !self
            .wait_until(&clock, clock.now() + wait, self.policy.longest_wait)
            .await
        {
            return Err(error);
        }
        Ok(())
    }

    async fn lookup(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        let mut attempt = 1;
        loop {
            match self.inner.refund_state(payment).await {
                Ok(state) => return Ok(state),
                Err(e) if !e.is_outcome_known() && attempt < self.policy.max_attempts => {
                    tokio::time::sleep(self.policy.lifecycle.backoff(attempt)).await;
                }
                Err(e) => self.pause_or_give_up(attempt, e).await?,
            }
            attempt += 1;
        }
    }

    /// The receipt a lookup recovered.
    fn reconciled_receipt(
        &self,
        request: &RefundRequest,
        judged: &Judged,
        decision: &Decision,
    ) -> RefundReceipt {
        let (amount, status) = match &judged.verdict {
            Verdict::Applied(record) => (record.amount, record.status),
            _ => (request.amount(), RefundStatus::Completed),
        };
        let mut receipt = RefundReceipt::new(
            self.inner.name(),
            Operation::Refund,
            request.payment().clone(),
            request.reference().clone(),
            amount,
            status,
        )
        .reconciled();
        if let Some(id) = &decision.refund_id {
            receipt = receipt
                .with_refund_id(id.clone())
                .with_provider_reference("refund_id", id.clone());
        }
        receipt
    }
}

/// The in-memory driver's clock: wall-clock time as of the call's start, advanced by tokio's
/// clock (so a test with paused time sees the lifecycle's times pass as it sleeps).
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall: SystemTime,
    start: tokio::time::Instant,
}

impl Clock {
    fn start() -> Self {
        Clock {
            wall: SystemTime::now(),
            start: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> SystemTime {
        self.wall + self.start.elapsed()
    }
}

fn with_note(error: RefundError, note: &str) -> RefundError {
    match error {
        RefundError::OutcomeUnknown {
            provider,
            reason,
            source,
            ..
        } => match source {
            Some(source) => {
                RefundError::outcome_unknown_from(provider, format!("{reason}; {note}"), source)
            }
            None => RefundError::outcome_unknown(provider, format!("{reason}; {note}")),
        },
        RefundError::DuplicateReference {
            provider,
            code,
            message,
            ..
        } => RefundError::duplicate_reference(provider, code, format!("{message}; {note}")),
        other => other,
    }
}

#[async_trait]
impl<P: RefundProvider> RefundProvider for Retrying<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn validate(&self, request: &RefundRequest) -> Result<(), RefundError> {
        self.inner.validate(request)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        let lifecycle = &self.policy.lifecycle;
        let reconciler = Reconciler::for_provider(&self.inner);
        let can_look_up = self.policy.reconcile && self.inner.capabilities().refund_lookup;
        let clock = Clock::start();
        let deadline = clock.now() + self.policy.reconcile_window;
        let mut attempt =
            Attempt::first(request.reference().clone(), clock.now()).with_amount(request.amount());
        let mut sends = 0u32;
        loop {
            // One send, dated as it leaves.
            attempt = if sends == 0 {
                Attempt::first(request.reference().clone(), clock.now())
                    .with_amount(request.amount())
            } else {
                attempt.resent(clock.now())
            };
            sends += 1;
            let error = match self.inner.refund(request).await {
                Ok(receipt) => return Ok(receipt),
                Err(e) => e,
            };
            let mut decision = lifecycle.after_send(&attempt, Err(&error), clock.now());
            // Then the lifecycle's steps, until one sends again or ends the call.
            loop {
                attempt = decision.attempt.clone();
                match decision.next {
                    Next::Done => {
                        return Err(match decision.state {
                            AttemptState::Declined if decision.outcome == "not_applied" => {
                                RefundError::declined(
                                    self.inner.name(),
                                    "failed_on_record",
                                    format!(
                                        "the provider lists refund {} as failed; no money moved",
                                        request.reference()
                                    ),
                                )
                            }
                            // The reference is used up: nothing was refunded under it, and
                            // only a new reference can send it again — input to fix.
                            AttemptState::Failed if decision.outcome == "used_up" => {
                                RefundError::InvalidRequest(ValidationError::field(
                                    "reference",
                                    decision.note.clone(),
                                ))
                            }
                            // The lifecycle's refusal limit: a decline, no longer temporary.
                            AttemptState::Declined if error.is_retryable() => {
                                RefundError::declined(
                                    self.inner.name(),
                                    error.provider_code().unwrap_or("declined").to_owned(),
                                    decision.note.clone(),
                                )
                            }
                            _ => with_note(error, &decision.note),
                        });
                    }
                    Next::Person => return Err(with_note(error, &decision.note)),
                    Next::Send { at } => {
                        if sends >= self.policy.max_attempts {
                            let note = format!("{}; but no attempt is left", decision.note);
                            return Err(with_note(error, &note));
                        }
                        if !self.wait_until(&clock, at, self.policy.longest_wait).await {
                            return Err(error);
                        }
                        tracing::warn!(
                            provider = self.inner.name(),
                            reference = %request.reference(),
                            outcome = decision.outcome,
                            "sending again with the same reference"
                        );
                        break;
                    }
                    Next::LookUp { at } => {
                        if !can_look_up {
                            return Err(error);
                        }
                        let patience = deadline
                            .duration_since(clock.now())
                            .unwrap_or(Duration::ZERO);
                        if !self.wait_until(&clock, at, patience).await {
                            return Err(with_note(error, &decision.note));
                        }
                        let judged = reconciler
                            .look_up(self, request.payment(), &attempt, || clock.now())
                            .await;
                        decision = lifecycle.after_lookup(&attempt, judged.as_ref(), clock.now());
                        if let (AttemptState::Refunded, Ok(judged)) = (decision.state, &judged) {
                            return Ok(self.reconciled_receipt(request, judged, &decision));
                        }
                    }
                }
            }
        }
    }

    async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        let mut attempt = 1;
        loop {
            match self.inner.void(request).await {
                Ok(receipt) => return Ok(receipt),
                Err(e) => self.pause_or_give_up(attempt, e).await?,
            }
            attempt += 1;
        }
    }

    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        self.lookup(payment).await
    }
}
