//! Pacing the requests of `refund batch` to one provider: an optional rate (`--rate N`
//! requests per second, through `governor`'s GCRA limiter, evenly spaced), and a pause that a
//! rate limit answer (429, with or without `Retry-After`) puts on *every* request to that
//! provider, not only on the worker that saw it.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use refund_core::{
    Capabilities, PaymentRef, RefundError, RefundProvider, RefundReceipt, RefundRequest,
    RefundState, VoidRequest, async_trait,
};
use tokio::time::Instant;

/// How long every request waits after a rate limit answer that did not say how long.
pub(crate) const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// The longest pause a request waits out in this run; after a longer one, its row is left for
/// a later run.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// The pace of one provider's requests, shared by all of its workers.
#[derive(Debug)]
pub(crate) struct Pacer {
    limiter: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

impl Pacer {
    /// At most `rate` requests per second, evenly spaced (no bursts); unlimited without.
    pub(crate) fn new(rate: Option<NonZeroU32>) -> Pacer {
        Pacer {
            limiter: rate
                .map(|r| RateLimiter::direct(Quota::per_second(r).allow_burst(NonZeroU32::MIN))),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until a request may leave: after any pause, and within the rate. A pause that
    /// ends more than `longest` from now is not waited out: `Err` with how long it still
    /// runs, and the caller leaves the request for a later run.
    pub(crate) async fn ready(&self, longest: Duration) -> Result<(), Duration> {
        loop {
            if let Some(until) = self.paused_until() {
                let left = until.saturating_duration_since(Instant::now());
                if left > longest {
                    return Err(left);
                }
                tokio::time::sleep_until(until).await;
                continue;
            }
            let Some(limiter) = &self.limiter else {
                return Ok(());
            };
            match limiter.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(limiter.clock().now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The end of the current pause, if one is still running.
    fn paused_until(&self) -> Option<Instant> {
        let until = *self
            .paused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        until.filter(|t| *t > Instant::now())
    }

    /// Holds every request for `pause` from now (a longer pause already running stays).
    pub(crate) fn pause(&self, pause: Duration) {
        let until = Instant::now() + pause;
        let mut current = self
            .paused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.is_none_or(|t| t < until) {
            *current = Some(until);
        }
    }

    /// Pauses every request when `error` is a rate limit answer, for as long as it asked.
    pub(crate) fn observe(&self, error: &RefundError) {
        if let RefundError::RateLimited { retry_after, .. } = error {
            self.pause(retry_after.unwrap_or(DEFAULT_PAUSE));
        }
    }
}

/// A provider whose every call waits for its [`Pacer`] and reports rate limits to it: what
/// the batch's lookups go through (its refunds are paced by the batch itself, before their
/// `sending` record is written, so that record dates the request).
#[derive(Debug)]
pub(crate) struct Paced<P> {
    inner: P,
    pacer: Arc<Pacer>,
}

impl<P: RefundProvider> Paced<P> {
    pub(crate) fn new(inner: P, pacer: Arc<Pacer>) -> Self {
        Paced { inner, pacer }
    }

    /// Waits for the pacer; a pause longer than [`LONGEST_WAIT`] is answered as the rate limit
    /// it is, without sending anything.
    async fn ready(&self) -> Result<(), RefundError> {
        self.pacer
            .ready(LONGEST_WAIT)
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

    #[tokio::test]
    async fn the_rate_spaces_requests_evenly() {
        let pacer = Pacer::new(NonZeroU32::new(20));
        let started = std::time::Instant::now();
        for _ in 0..11 {
            pacer.ready(LONGEST_WAIT).await.unwrap();
        }
        // Ten gaps of 50 ms.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(450), "{took:?}");
    }

    #[tokio::test]
    async fn a_pause_holds_every_caller_and_a_shorter_one_does_not_cut_it() {
        let pacer = Arc::new(Pacer::new(None));
        pacer.observe(&RefundError::rate_limited(
            "p",
            Some(Duration::from_millis(300)),
        ));
        pacer.pause(Duration::from_millis(10));
        let started = std::time::Instant::now();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let pacer = Arc::clone(&pacer);
                tokio::spawn(async move { pacer.ready(LONGEST_WAIT).await })
            })
            .collect();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert!(started.elapsed() >= Duration::from_millis(280));
        // Other errors pause nothing.
        pacer.observe(&RefundError::outcome_unknown("p", "reset"));
        let again = std::time::Instant::now();
        pacer.ready(LONGEST_WAIT).await.unwrap();
        assert!(again.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_pause_longer_than_the_longest_wait_is_not_waited_out() {
        let pacer = Pacer::new(None);
        pacer.pause(Duration::from_secs(3_600));
        let started = std::time::Instant::now();
        let left = pacer.ready(LONGEST_WAIT).await.unwrap_err();
        assert!(left > Duration::from_secs(3_590), "{left:?}");
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
