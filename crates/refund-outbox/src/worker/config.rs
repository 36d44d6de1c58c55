//! How a worker behaves: its name, lease, concurrency and poll, and the attempt lifecycle's
//! knobs ([`AttemptPolicy`]), which it shares with every other driver.

use std::time::Duration;

use refund_core::AttemptPolicy;

/// How a worker behaves. Every worker of an outbox may have its own; the defaults suit real
/// providers (tests shorten them).
///
/// What follows a send or a lookup is decided by the [`AttemptPolicy`] (the one lifecycle of
/// `refund_core`, shared with `Retrying` and `refund batch`); its defaults are
/// [`AttemptPolicy::default()`]: temporary refusals and rate limits without a `Retry-After`
/// wait 2 s doubling to 10 minutes (jittered), the 3rd refusal is final, an unknown answer is
/// first looked up after 5 s, and after 3 sends under one reference a lookup that would allow
/// another one leaves the intent to a person instead. [`with_recheck`](Self::with_recheck),
/// [`with_retry_backoff`](Self::with_retry_backoff) and
/// [`with_max_refusals`](Self::with_max_refusals) set those knobs;
/// [`with_policy`](Self::with_policy) replaces the whole policy.
///
/// ```
/// use std::time::Duration;
/// use refund_core::AttemptPolicy;
/// use refund_outbox::WorkerConfig;
///
/// let config = WorkerConfig::new("web-3")
///     .with_lease(Duration::from_secs(120))
///     .with_concurrency(8)
///     .with_policy(AttemptPolicy::default().with_max_sends(2))
///     .with_recheck(Duration::from_secs(10));
/// assert_eq!(config.name(), "web-3");
/// assert_eq!(config.concurrency(), 8);
/// assert_eq!(config.policy().max_sends(), 2);
/// assert_eq!(config.policy().recheck(), Duration::from_secs(10));
/// ```
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub(super) name: String,
    pub(super) lease: Duration,
    pub(super) concurrency: usize,
    pub(super) idle_poll: Duration,
    pub(super) stuck_recheck: Duration,
    pub(super) policy: AttemptPolicy,
}

impl WorkerConfig {
    /// The defaults, for a worker called `name` (recorded with its claims and attempts): a
    /// 2-minute lease, 4 intents at once, a poll every second when nothing is due, a stuck
    /// intent looked up again once an hour, and [`AttemptPolicy::default()`] (see above).
    pub fn new(name: impl Into<String>) -> Self {
        WorkerConfig {
            name: name.into(),
            lease: Duration::from_secs(120),
            concurrency: 4,
            idle_poll: Duration::from_secs(1),
            stuck_recheck: Duration::from_secs(3600),
            policy: AttemptPolicy::default(),
        }
    }

    /// How long a claim holds an intent. It must cover one refund request and one lookup
    /// with their timeouts; a worker that dies leaves its intents to others after this.
    /// Safety does not rest on it: an attempt that may still be in flight is never resent
    /// before the provider's settle time (see [`Reconciler`](refund_core::Reconciler)).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many intents the worker claims and works at once, over its one connection.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Replaces the attempt lifecycle's knobs (backoff, jitter, refusals, sends, recheck,
    /// whether `failed` is final), including any set before by the other builders.
    #[must_use]
    pub fn with_policy(mut self, policy: AttemptPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long after an unknown answer the first lookup is made (earlier than the settle
    /// time: a lookup that finds the refund settles it at once), and how often an
    /// undetermined one is repeated ([`AttemptPolicy::with_recheck`]).
    #[must_use]
    pub fn with_recheck(mut self, recheck: Duration) -> Self {
        self.policy = self.policy.with_recheck(recheck);
        self
    }

    /// The wait after the first temporary refusal or rate limit without a `Retry-After`
    /// (doubling with each send, up to `max`; [`AttemptPolicy::with_backoff`]). A wait the
    /// provider asks for (a `Retry-After`, SiPay's 30 seconds between refunds of one invoice)
    /// is kept instead.
    #[must_use]
    pub fn with_retry_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.policy = self.policy.with_backoff(first, max);
        self
    }

    /// After this many refusals the provider processed, the intent counts as declined
    /// ([`AttemptPolicy::with_max_refusals`]).
    #[must_use]
    pub fn with_max_refusals(mut self, max: u32) -> Self {
        self.policy = self.policy.with_max_refusals(max);
        self
    }

    /// How long [`Worker::run`](super::Worker::run) waits before looking again when nothing
    /// is due.
    #[must_use]
    pub fn with_idle_poll(mut self, poll: Duration) -> Self {
        self.idle_poll = poll;
        self
    }

    /// How long an intent left to a person (stuck: sent the policy's most times and never on
    /// the provider's record) waits before it is looked up again (default an hour). It stays
    /// `unknown` and is listed by [`status`](crate::status) meanwhile; the occasional lookup
    /// settles it by itself if the provider's record comes to show it, without spending the
    /// provider's rate limit on a lookup every few seconds.
    #[must_use]
    pub fn with_stuck_recheck(mut self, wait: Duration) -> Self {
        self.stuck_recheck = wait;
        self
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Intents at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The attempt lifecycle's knobs.
    pub fn policy(&self) -> &AttemptPolicy {
        &self.policy
    }

    /// The wait before a stuck intent is looked up again.
    pub fn stuck_recheck(&self) -> Duration {
        self.stuck_recheck
    }
}
