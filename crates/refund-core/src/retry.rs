//! A provider wrapper that retries what is safe to retry and reconciles what is not.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::RefundError;
use crate::provider::{Capabilities, RefundProvider};
use crate::receipt::{Operation, RefundReceipt};
use crate::reconcile::{Reconciler, Verdict};
use crate::reference::PaymentRef;
use crate::request::{RefundRequest, VoidRequest};
use crate::state::RefundState;

/// How [`Retrying`] retries: bounded exponential backoff with jitter, and whether to reconcile.
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
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    jitter: bool,
    reconcile: bool,
    reconcile_delay: Duration,
    reconcile_window: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms doubling to at most 5 s, with jitter; reconcile after 1 s, looking
    /// again for up to 10 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            jitter: true,
            reconcile: true,
            reconcile_delay: Duration::from_secs(1),
            reconcile_window: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The first delay and the cap; delays double in between.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Whether delays are randomised to between half and all of the computed delay, so
    /// clients that failed together do not retry together.
    #[must_use]
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether an outcome-unknown refund is looked up (after `delay`) when the provider
    /// supports lookups. It is never resent either way.
    #[must_use]
    pub fn reconcile(mut self, reconcile: bool, delay: Duration) -> Self {
        self.reconcile = reconcile;
        self.reconcile_delay = delay;
        self
    }

    /// How long an outcome-unknown refund is looked up again (with backoff) while the lookup
    /// has not settled it, before the outcome-unknown error is returned. Resending happens only
    /// when the provider's [settle time](crate::Capabilities::settle_time) passes inside this
    /// window with nothing on record ([`Verdict::SafeToResend`]).
    #[must_use]
    pub fn reconcile_window(mut self, window: Duration) -> Self {
        self.reconcile_window = window;
        self
    }

    /// The delay before attempt `retry + 1`, i.e. after the `retry`-th failure (1-based).
    pub fn delay_for(&self, retry: u32, jitter: bool) -> Duration {
        let exp = retry.saturating_sub(1).min(31);
        let delay = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        if jitter && self.jitter {
            let half = delay / 2;
            let mut b = [0u8; 4];
            let frac = match getrandom::fill(&mut b) {
                Ok(()) => u32::from_le_bytes(b),
                Err(_) => u32::MAX / 2,
            };
            // half + half * frac / 2^32, in integer nanoseconds.
            let extra = (u128::from(frac) * half.as_nanos()) >> 32;
            half + Duration::from_nanos(u64::try_from(extra).unwrap_or(u64::MAX))
        } else {
            delay
        }
    }
}

/// Wraps a provider and retries what is safe to retry; is itself a [`RefundProvider`].
///
/// - Retryable errors ([`RefundError::is_retryable`]: unreachable, rate limited, temporary
///   declines) are retried with backoff, up to the policy's attempts. A rate limit that asks
///   for a longer pause than the policy's cap is returned, not waited out.
/// - An outcome-unknown refund is **never resent blindly**. When the provider supports lookups
///   and the policy allows, the wrapper reconciles it through the [`Reconciler`] with the
///   provider's settle time, looking again with backoff for the policy's
///   [window](RetryPolicy::reconcile_window): on record, it returns the receipt (marked
///   [`reconciled`](RefundReceipt::reconciled)); on record as failed, a decline; nothing on
///   record after the settle time, it resends with the same reference (counted as an attempt);
///   otherwise it returns the outcome-unknown error, saying what the lookup saw.
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

    /// Waits before the next attempt, or gives the error back when no attempt is left or
    /// the error is not retryable.
    async fn pause_or_give_up(&self, attempt: u32, error: RefundError) -> Result<(), RefundError> {
        if attempt >= self.policy.max_attempts || !error.is_retryable() {
            return Err(error);
        }
        let mut delay = self.policy.delay_for(attempt, true);
        if let RefundError::RateLimited {
            retry_after: Some(wait),
            ..
        } = &error
        {
            if *wait > self.policy.max_backoff {
                return Err(error);
            }
            delay = delay.max(*wait);
        }
        tracing::warn!(
            provider = self.inner.name(),
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error,
            "retrying"
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Reconciles an outcome-unknown attempt made at `attempted_at`: the refund's final result,
    /// or `Err(error)` back when it is safe to resend.
    async fn reconcile(
        &self,
        request: &RefundRequest,
        error: RefundError,
        earlier_failures: usize,
        attempted_at: SystemTime,
    ) -> Result<Result<RefundReceipt, RefundError>, RefundError> {
        let reconciler = Reconciler::for_provider(&self.inner);
        let reference = request.reference();
        let deadline = tokio::time::Instant::now() + self.policy.reconcile_window;
        let mut wait = self.policy.reconcile_delay;
        let mut round = 1;
        loop {
            tokio::time::sleep(wait).await;
            let seen = match self.lookup(request.payment()).await {
                Ok(state) => reconciler.judge_after(
                    &state,
                    reference,
                    earlier_failures,
                    attempted_at,
                    SystemTime::now(),
                ),
                Err(lookup) => Verdict::Undetermined(format!("the lookup failed ({lookup})")),
            };
            tracing::info!(provider = self.inner.name(), %reference, verdict = seen.kind(), "reconciling");
            wait = self
                .policy
                .delay_for(round, true)
                .max(self.policy.reconcile_delay);
            round += 1;
            let note = match seen {
                Verdict::Applied(record) => {
                    let mut receipt = RefundReceipt::new(
                        self.inner.name(),
                        Operation::Refund,
                        request.payment().clone(),
                        reference.clone(),
                        record.amount,
                        record.status,
                    )
                    .reconciled();
                    if let Some(id) = &record.provider_reference {
                        receipt = receipt.with_provider_reference("refund_id", id.clone());
                    }
                    return Ok(Ok(receipt));
                }
                Verdict::NotApplied(_) => {
                    return Ok(Err(RefundError::declined(
                        self.inner.name(),
                        "failed_on_record",
                        format!("the provider lists refund {reference} as failed; no money moved"),
                    )));
                }
                Verdict::SafeToResend => return Err(error),
                Verdict::NotYetKnown { settles_in } => {
                    // Look again right after the attempt settles, if that is soon enough.
                    wait = wait.min(settles_in + Duration::from_millis(1));
                    format!(
                        "no refund with reference {reference} is on record yet, and {}'s lookups may lag up to {} s behind an attempt; look it up again later, never resend with a new reference",
                        self.inner.name(),
                        reconciler.settle_time().as_secs()
                    )
                }
                Verdict::Undetermined(why) => {
                    format!("reference {reference} could not be reconciled: {why}")
                }
            };
            if tokio::time::Instant::now() + wait > deadline {
                return Ok(Err(with_note(error, &note)));
            }
        }
    }

    async fn lookup(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        let mut attempt = 1;
        loop {
            match self.inner.refund_state(payment).await {
                Ok(state) => return Ok(state),
                Err(e) if !e.is_outcome_known() && attempt < self.policy.max_attempts => {
                    tokio::time::sleep(self.policy.delay_for(attempt, true)).await;
                }
                Err(e) => self.pause_or_give_up(attempt, e).await?,
            }
            attempt += 1;
        }
    }
}

fn with_note(error: RefundError, note: &str) -> RefundError {
    match error {
        RefundError::OutcomeUnknown {
            provider,
            reason,
            source,
        } => RefundError::OutcomeUnknown {
            provider,
            reason: format!("{reason}; {note}"),
            source,
        },
        RefundError::DuplicateReference {
            provider,
            code,
            message,
        } => RefundError::DuplicateReference {
            provider,
            code,
            message: format!("{message}; {note}"),
        },
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

    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        let mut attempt = 1;
        // Declined attempts with this reference: each may have left a failed record that a
        // later lookup must not mistake for the fate of a later attempt.
        let mut declined = 0;
        loop {
            let attempted_at = SystemTime::now();
            match self.inner.refund(request).await {
                Ok(receipt) => return Ok(receipt),
                Err(e) if !e.is_outcome_known() => {
                    if !(self.policy.reconcile && self.inner.capabilities().refund_lookup) {
                        return Err(e);
                    }
                    tracing::warn!(
                        provider = self.inner.name(),
                        reference = %request.reference(),
                        error = %e,
                        "outcome unknown; reconciling through a lookup"
                    );
                    match self.reconcile(request, e, declined, attempted_at).await {
                        Ok(result) => return result,
                        Err(e) if attempt >= self.policy.max_attempts => {
                            return Err(with_note(
                                e,
                                "nothing is on record after the settle time, so a resend with the same reference is safe, but no attempt is left",
                            ));
                        }
                        Err(_) => tracing::warn!(
                            provider = self.inner.name(),
                            reference = %request.reference(),
                            "nothing on record after the settle time; resending with the same reference"
                        ),
                    }
                }
                Err(e) => {
                    declined += usize::from(matches!(e, RefundError::Declined { .. }));
                    self.pause_or_give_up(attempt, e).await?;
                }
            }
            attempt += 1;
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
