//! A provider wrapper that retries what is safe to retry and reconciles what is not.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::RefundError;
use crate::provider::{Capabilities, RefundProvider};
use crate::receipt::{Operation, RefundReceipt};
use crate::reference::PaymentRef;
use crate::request::{RefundRequest, VoidRequest};
use crate::state::{Reconciliation, RefundState};

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
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms doubling to at most 5 s, with jitter; reconcile after 1 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            jitter: true,
            reconcile: true,
            reconcile_delay: Duration::from_secs(1),
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
/// - An outcome-unknown refund is **never resent**. When the provider supports lookups and
///   the policy allows, the wrapper looks the refund up by its reference: found, it returns
///   the receipt (marked [`reconciled`](RefundReceipt::reconciled)); otherwise it returns the
///   outcome-unknown error, saying what the lookup saw.
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

    /// Looks an outcome-unknown refund up by its reference: the receipt when it is on record,
    /// otherwise the original error with what the lookup saw.
    async fn reconcile(
        &self,
        request: &RefundRequest,
        error: RefundError,
    ) -> Result<RefundReceipt, RefundError> {
        tokio::time::sleep(self.policy.reconcile_delay).await;
        let state = match self.lookup(request.payment()).await {
            Ok(state) => state,
            Err(lookup) => {
                return Err(with_note(
                    error,
                    &format!("the lookup failed too ({lookup})"),
                ));
            }
        };
        let reference = request.reference();
        match state.find(reference) {
            Reconciliation::Applied(record) => {
                tracing::info!(provider = self.inner.name(), %reference, "reconciled: the refund was applied");
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
                Ok(receipt)
            }
            Reconciliation::NotFound => Err(with_note(
                error,
                &format!(
                    "a lookup found no refund with reference {reference} yet ({} refunded so far); it may still appear",
                    state.refunded
                ),
            )),
            _ => Err(with_note(
                error,
                &format!(
                    "a lookup could not tell whether reference {reference} was applied ({} refunded so far)",
                    state.refunded
                ),
            )),
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
        loop {
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
                    return self.reconcile(request, e).await;
                }
                Err(e) => self.pause_or_give_up(attempt, e).await?,
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
