//! Pacing the requests to one provider: an optional rate (evenly spaced, no bursts) and a pause
//! that a rate limit answer (429, with or without `Retry-After`) puts on *every* request to that
//! provider, not only on the caller that saw it.
//!
//! [`Pacer`] is the shared pace, [`Paced`] a [`RefundProvider`] whose every call waits for it
//! and reports rate limits back to it. Beside [`Retrying`](crate::Retrying), which decides what
//! to do after a failure, `Paced` decides only *when* a request may leave. It has no
//! dependencies beyond tokio's clock: a minimum interval between requests (the GCRA of a rate
//! with a burst of one) and a shared pause.
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::sync::Arc;
//! use std::time::Duration;
//! use refund_core::{Paced, Pacer, RefundError, RefundProvider};
//!
//! /// At most 20 requests a second to `provider`, whoever sends them, and none for as long
//! /// as the provider asks after a 429.
//! fn paced<P: RefundProvider>(provider: P, pacer: &Arc<Pacer>) -> Paced<P> {
//!     Paced::new(provider, Arc::clone(pacer))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pacer = Arc::new(Pacer::new(NonZeroU32::new(20)));
//! // A 429 seen by one caller holds every caller of this pacer.
//! pacer.observe(&RefundError::rate_limited("sipay", Some(Duration::from_millis(20))));
//! assert!(pacer.ready(Duration::from_secs(5)).await.is_ok());
//! // A pause longer than the caller will wait is not waited out: it says how long is left.
//! pacer.pause(Duration::from_secs(3_600));
//! let left = pacer.ready(Duration::from_secs(5)).await.unwrap_err();
//! assert!(left > Duration::from_secs(3_590));
//! # }
//! ```

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::error::RefundError;
use crate::provider::{Capabilities, RefundProvider};
use crate::receipt::RefundReceipt;
use crate::reference::PaymentRef;
use crate::request::{RefundRequest, VoidRequest};
use crate::state::RefundState;

/// The pace of one provider's requests, shared by all of its callers.
#[derive(Debug)]
pub struct Pacer {
    interval: Option<Duration>,
    state: Mutex<PaceState>,
}

#[derive(Debug, Default)]
struct PaceState {
    /// The earliest time the next request may leave (within the rate).
    next_slot: Option<Instant>,
    /// Every request waits until then (a rate limit answer).
    paused_until: Option<Instant>,
}

impl Pacer {
    /// How long every request waits after a rate limit answer that did not say how long.
    pub const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

    /// At most `rate` requests per second, evenly spaced (no bursts); unlimited without.
    pub fn new(rate: Option<NonZeroU32>) -> Pacer {
        Pacer::with_interval(rate.map(|r| Duration::from_secs(1) / r.get()))
    }

    /// At least `interval` between two requests; unlimited without.
    pub fn with_interval(interval: Option<Duration>) -> Pacer {
        Pacer {
            interval: interval.filter(|i| !i.is_zero()),
            state: Mutex::new(PaceState::default()),
        }
    }

    /// The least time between two requests, if there is a rate.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a request may leave: after any pause, and within the rate. A pause that
    /// ends more than `longest` from now is not waited out: `Err` with how long it still
    /// runs, and the caller leaves the request for later (nothing is reserved then).
    pub async fn ready(&self, longest: Duration) -> Result<(), Duration> {
        let mut reserved = false;
        loop {
            let until = {
                let mut state = self.state();
                let now = Instant::now();
                match state.paused_until.filter(|t| *t > now) {
                    Some(until) => {
                        let left = until - now;
                        if left > longest {
                            return Err(left);
                        }
                        until
                    }
                    None => match self.interval {
                        Some(interval) if !reserved => {
                            let slot = state.next_slot.map_or(now, |s| s.max(now));
                            state.next_slot = Some(slot + interval);
                            reserved = true;
                            if slot <= now {
                                return Ok(());
                            }
                            slot
                        }
                        _ => return Ok(()),
                    },
                }
            };
            tokio::time::sleep_until(until).await;
        }
    }

    /// Holds every request for `pause` from now (a longer pause already running stays).
    pub fn pause(&self, pause: Duration) {
        let until = Instant::now() + pause;
        let mut state = self.state();
        if state.paused_until.is_none_or(|t| t < until) {
            state.paused_until = Some(until);
        }
    }

    /// Pauses every request when `error` is a rate limit answer, for as long as it asked
    /// ([`DEFAULT_PAUSE`](Self::DEFAULT_PAUSE) when it did not say).
    pub fn observe(&self, error: &RefundError) {
        if let RefundError::RateLimited { .. } = error {
            self.pause(error.retry_after().unwrap_or(Self::DEFAULT_PAUSE));
        }
    }
}

/// A provider whose every call waits for its [`Pacer`] and reports rate limits to it.
///
/// A pause longer than the longest wait ([`Paced::with_longest_wait`], 5 s by default) is
/// answered as the rate limit it is ([`RefundError::RateLimited`] with the time left), without
/// sending anything.
#[derive(Debug)]
pub struct Paced<P> {
    inner: P,
    pacer: Arc<Pacer>,
    longest: Duration,
}

impl<P: RefundProvider> Paced<P> {
    /// The longest pause a call waits out by default.
    pub const LONGEST_WAIT: Duration = Duration::from_secs(5);

    /// `inner`, paced by `pacer` (share one pacer among everything that calls one provider).
    pub fn new(inner: P, pacer: Arc<Pacer>) -> Self {
        Paced {
            inner,
            pacer,
            longest: Self::LONGEST_WAIT,
        }
    }

    /// Waits out pauses up to `longest`; a longer one is answered as a rate limit.
    #[must_use]
    pub fn with_longest_wait(mut self, longest: Duration) -> Self {
        self.longest = longest;
        self
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The pacer.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    async fn ready(&self) -> Result<(), RefundError> {
        self.pacer
            .ready(self.longest)
            .await
            .map_err(|left| RefundError::rate_limited(self.inner.name(), Some(left)))
    }

    fn seen<T>(&self, result: Result<T, RefundError>) -> Result<T, RefundError> {
        if let Err(e) = &result {
            self.pacer.observe(e);
        }
        result
    }
}

#[async_trait]
impl<P: RefundProvider> RefundProvider for Paced<P> {
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
        self.ready().await?;
        self.seen(self.inner.refund(request).await)
    }

    async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        self.ready().await?;
        self.seen(self.inner.void(request).await)
    }

    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        self.ready().await?;
        self.seen(self.inner.refund_state(payment).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONGEST: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn the_rate_spaces_requests_evenly() {
        let pacer = Pacer::new(NonZeroU32::new(20));
        let started = Instant::now();
        for _ in 0..11 {
            pacer.ready(LONGEST).await.unwrap();
        }
        // Ten gaps of 50 ms, and no burst.
        assert_eq!(started.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller_and_a_shorter_one_does_not_cut_it() {
        let pacer = Arc::new(Pacer::new(None));
        pacer.observe(&RefundError::rate_limited(
            "p",
            Some(Duration::from_millis(300)),
        ));
        pacer.pause(Duration::from_millis(10));
        let started = Instant::now();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let pacer = Arc::clone(&pacer);
                tokio::spawn(async move { pacer.ready(LONGEST).await })
            })
            .collect();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert!(started.elapsed() >= Duration::from_millis(300));
        // Other errors pause nothing.
        pacer.observe(&RefundError::outcome_unknown("p", "reset"));
        let again = Instant::now();
        pacer.ready(LONGEST).await.unwrap();
        assert_eq!(again.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_without_retry_after_pauses_the_default() {
        let pacer = Pacer::new(None);
        pacer.observe(&RefundError::rate_limited("p", None));
        let started = Instant::now();
        pacer.ready(LONGEST).await.unwrap();
        assert_eq!(started.elapsed(), Pacer::DEFAULT_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_longest_wait_is_not_waited_out() {
        let pacer = Pacer::new(None);
        pacer.pause(Duration::from_secs(3_600));
        let started = Instant::now();
        let left = pacer.ready(LONGEST).await.unwrap_err();
        assert!(left > Duration::from_secs(3_590), "{left:?}");
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
