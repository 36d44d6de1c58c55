//! Workers: claim due intents, send or reconcile them, record every attempt.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use refund_core::{
    MerchantRef, Money, PaymentRef, ProviderRegistry, Reconciler, RefundError, RefundProvider,
    RefundReceipt, Verdict,
};
use tokio::task::JoinSet;
use tokio_postgres::{Client, Row, Statement};
use tracing::Instrument;

use crate::error::OutboxError;
use crate::intent::{IntentId, IntentState, RefundIntent, reason_from_name};
use crate::migrate::migrate;
use crate::pacing::{self, DEFAULT_PAUSE, micros, millis};

/// How a worker behaves. Every worker of an outbox may have its own; the defaults suit real
/// providers (tests shorten them).
///
/// ```
/// use std::time::Duration;
/// use refund_outbox::WorkerConfig;
///
/// let config = WorkerConfig::new("web-3")
///     .with_lease(Duration::from_secs(120))
///     .with_concurrency(8);
/// assert_eq!(config.name(), "web-3");
/// assert_eq!(config.concurrency(), 8);
/// ```
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    name: String,
    lease: Duration,
    concurrency: usize,
    recheck: Duration,
    retry_backoff: Duration,
    max_backoff: Duration,
    max_refusals: u32,
    idle_poll: Duration,
}

impl WorkerConfig {
    /// The defaults, for a worker called `name` (recorded with its claims and attempts): a
    /// 2-minute lease, 4 intents at once, a first lookup 5 s after an unknown answer, temporary
    /// refusals retried after 30 s doubling up to an hour, 5 refusals before an intent counts
    /// as declined, and a poll every second when nothing is due.
    pub fn new(name: impl Into<String>) -> Self {
        WorkerConfig {
            name: name.into(),
            lease: Duration::from_secs(120),
            concurrency: 4,
            recheck: Duration::from_secs(5),
            retry_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            max_refusals: 5,
            idle_poll: Duration::from_secs(1),
        }
    }

    /// How long a claim holds an intent. It must cover one refund request and one lookup
    /// with their timeouts; a worker that dies leaves its intents to others after this.
    /// Safety does not rest on it: an attempt that may still be in flight is never resent
    /// before the provider's settle time (see [`Reconciler`]).
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

    /// How long after an unknown answer the first lookup is made (earlier than the settle
    /// time: a lookup that finds the refund settles it at once).
    #[must_use]
    pub fn with_recheck(mut self, recheck: Duration) -> Self {
        self.recheck = recheck;
        self
    }

    /// The wait after the first temporary refusal (doubling with each send, up to `max`).
    #[must_use]
    pub fn with_retry_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.retry_backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// After this many refusals the provider marked temporary, the intent counts as declined.
    #[must_use]
    pub fn with_max_refusals(mut self, max: u32) -> Self {
        self.max_refusals = max.max(1);
        self
    }

    /// How long [`Worker::run`] waits before looking again when nothing is due.
    #[must_use]
    pub fn with_idle_poll(mut self, poll: Duration) -> Self {
        self.idle_poll = poll;
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

    fn backoff(&self, sends: i32) -> Duration {
        let doublings = u32::try_from(sends.saturating_sub(1)).unwrap_or(0).min(20);
        self.retry_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// Claims due intents (`FOR UPDATE SKIP LOCKED`, with a lease), sends or reconciles them
/// through the providers of a [`ProviderRegistry`], and records every attempt. Run as many as
/// you like, on as many machines: each intent is worked by one worker at a time, and an
/// attempt that may have reached the provider is looked up before anything is resent.
///
/// Each worker owns one database connection (a `tokio_postgres::Client`, connected however
/// the application connects: `NoTls` on loopback, `tokio-postgres-rustls` elsewhere). It
/// claims only intents of providers in its registry.
///
/// ```no_run
/// # async fn example(registry: refund_core::ProviderRegistry) -> Result<(), Box<dyn std::error::Error>> {
/// use refund_outbox::{Worker, WorkerConfig};
///
/// let (client, connection) =
///     tokio_postgres::connect("postgres://app@127.0.0.1/shop", tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// let worker = Worker::new(client, registry, WorkerConfig::new("web-1")).await?;
/// worker.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
pub struct Worker {
    inner: Arc<Inner>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.inner.config.name)
            .field("providers", &self.inner.names)
            .finish_non_exhaustive()
    }
}

struct Inner {
    db: Client,
    providers: ProviderRegistry,
    names: Vec<String>,
    config: WorkerConfig,
    statements: Statements,
}

struct Statements {
    claim: Statement,
    begin_send: Statement,
    finish_send: Statement,
    lookup: Statement,
    acquire: Statement,
}

/// Claims up to `$2` due intents of the providers `$1` for worker `$3`, for `$4` ms.
const CLAIM: &str = "
    WITH due AS (
        SELECT id FROM refund_outbox_intents
        WHERE state IN ('pending', 'unknown', 'retry_later')
          AND not_before <= clock_timestamp()
          AND (lease_until IS NULL OR lease_until <= clock_timestamp())
          AND provider = ANY($1)
        ORDER BY not_before, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    UPDATE refund_outbox_intents i
    SET claim = i.claim + 1, lease_owner = $3,
        lease_until = clock_timestamp() + $4::bigint * interval '1 millisecond'
    FROM due WHERE i.id = due.id
    RETURNING i.id, i.claim, i.provider, i.payment_scope, i.payment_id, i.payment_parent,
              i.amount::text, i.currency, i.reason, i.reference, i.state, i.sends, i.refusals,
              i.last_sent_at, clock_timestamp(),
              COALESCE((SELECT p.interval_us > 0 OR p.paused_until > clock_timestamp()
                        FROM refund_outbox_pacing p WHERE p.provider = i.provider), true)";

/// Records a refund attempt of intent `$1` under claim `$2` by worker `$3`, and marks the
/// intent `unknown` (a request may be out), in one statement: committed before the request
/// leaves. No row when the claim is no longer this worker's.
const BEGIN_SEND: &str = "
    WITH intent AS (
        UPDATE refund_outbox_intents
        SET state = 'unknown', sends = sends + 1, last_sent_at = clock_timestamp(),
            updated_at = clock_timestamp()
        WHERE id = $1 AND claim = $2 AND lease_until > clock_timestamp()
          AND state IN ('pending', 'unknown', 'retry_later')
        RETURNING id, last_sent_at
    )
    INSERT INTO refund_outbox_attempts (intent_id, kind, worker, started_at)
    SELECT id, 'refund', $3, last_sent_at FROM intent
    RETURNING id, started_at";

/// Records the answer to refund attempt `$1`, and settles intent `$7` under claim `$8`: state
/// `$9`, not before `$10` (now when null), `$11` more refusals; releases the claim.
const FINISH_SEND: &str = "
    WITH attempt AS (
        UPDATE refund_outbox_attempts
        SET finished_at = clock_timestamp(), outcome = $2, error_kind = $3, provider_code = $4,
            provider_reference = $5, note = $6
        WHERE id = $1
    )
    UPDATE refund_outbox_intents
    SET state = $9, not_before = COALESCE($10, clock_timestamp()), refusals = refusals + $11,
        provider_reference = COALESCE($5, provider_reference), note = $6,
        lease_owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
    WHERE id = $7 AND claim = $8 AND state NOT IN ('refunded', 'declined', 'failed')
    RETURNING id";

/// Records a lookup of intent `$1` by worker `$2`, started at `$3`, with verdict `$4`; when
/// `$9` is not null, settles the intent under claim `$8` with state `$9`, not before `$10`,
/// and releases the claim.
const LOOKUP: &str = "
    WITH attempt AS (
        INSERT INTO refund_outbox_attempts
            (intent_id, kind, worker, started_at, finished_at, outcome, error_kind,
             provider_reference, note)
        VALUES ($1, 'lookup', $2, $3, clock_timestamp(), $4, $5, $6, $7)
    )
    UPDATE refund_outbox_intents
    SET state = $9, not_before = COALESCE($10, clock_timestamp()),
        provider_reference = COALESCE($6, provider_reference), note = $7,
        lease_owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
    WHERE id = $1 AND claim = $8 AND $9::text IS NOT NULL
      AND state NOT IN ('refunded', 'declined', 'failed')
    RETURNING id";

/// Settles intent `$1` under claim `$2` without an attempt (a row that cannot be sent).
const SETTLE: &str = "
    UPDATE refund_outbox_intents
    SET state = $3, note = $4, lease_owner = NULL, lease_until = NULL,
        updated_at = clock_timestamp()
    WHERE id = $1 AND claim = $2 AND state NOT IN ('refunded', 'declined', 'failed')";

/// What one [`Worker::run_once`] did with an intent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Worked {
    /// The intent.
    pub id: IntentId,
    /// Its state afterwards (as this worker wrote it).
    pub state: IntentState,
    /// Whether a refund request was sent.
    pub sent: bool,
    /// Whether the provider was asked about an earlier attempt first.
    pub looked_up: bool,
    /// False when the claim was lost (the lease ran out and another worker took the intent):
    /// the attempt row is written, the intent left to its new claimant.
    pub recorded: bool,
}

impl Worker {
    /// A worker on `db`, for the providers in `providers` (an intent's `provider` is its key
    /// there). Applies the outbox's migrations first (idempotent; see [`migrate`]), makes a
    /// pacing row for each provider, and prepares its statements.
    pub async fn new(
        mut db: Client,
        providers: ProviderRegistry,
        config: WorkerConfig,
    ) -> Result<Worker, OutboxError> {
        migrate(&mut db).await?;
        let names: Vec<String> = providers.names().map(str::to_owned).collect();
        for name in &names {
            db.execute(pacing::ENSURE, &[name]).await?;
        }
        let statements = Statements {
            claim: db.prepare(CLAIM).await?,
            begin_send: db.prepare(BEGIN_SEND).await?,
            finish_send: db.prepare(FINISH_SEND).await?,
            lookup: db.prepare(LOOKUP).await?,
            acquire: db.prepare(pacing::ACQUIRE).await?,
        };
        Ok(Worker {
            inner: Arc::new(Inner {
                db,
                providers,
                names,
                config,
                statements,
            }),
        })
    }

    /// The worker's configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Claims up to [`concurrency`](WorkerConfig::with_concurrency) due intents, works them
    /// all (at once), and returns what it did; empty when nothing was due.
    pub async fn run_once(&self) -> Result<Vec<Worked>, OutboxError> {
        let claimed = self.inner.claim(self.inner.config.concurrency).await?;
        let mut tasks = JoinSet::new();
        for c in claimed {
            let inner = Arc::clone(&self.inner);
            tasks.spawn(async move { inner.work(c).await });
        }
        let mut worked = Vec::new();
        let mut failure = None;
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(w)) => worked.push(w),
                Ok(Err(e)) => failure = Some(e),
                // A panicking task: its intent stays claimed until the lease runs out, then
                // another worker reconciles it.
                Err(e) => tracing::error!(error = %e, "outbox task failed"),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(worked),
        }
    }

    /// Works intents until `shutdown` completes: keeps up to
    /// [`concurrency`](WorkerConfig::with_concurrency) in flight, claims more as they finish,
    /// and polls every [`idle_poll`](WorkerConfig::with_idle_poll) when nothing is due. On
    /// shutdown it claims nothing more and waits for the intents in flight. Returns an error
    /// when the database connection is gone (reconnect and start a new worker); other
    /// database errors are logged and retried after the poll interval.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), OutboxError> {
        let inner = &self.inner;
        let mut tasks: JoinSet<Result<Worked, OutboxError>> = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        loop {
            let free = inner.config.concurrency.saturating_sub(tasks.len());
            let mut claimed_any = false;
            if !stopping && free > 0 {
                match inner.claim(free).await {
                    Ok(claimed) => {
                        claimed_any = !claimed.is_empty();
                        for c in claimed {
                            let inner = Arc::clone(inner);
                            tasks.spawn(async move { inner.work(c).await });
                        }
                    }
                    Err(e) if e.is_connection_closed() => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "claiming refund intents failed"),
                }
            }
            if stopping && tasks.is_empty() {
                return Ok(());
            }
            let pause = if claimed_any {
                Duration::ZERO
            } else {
                inner.config.idle_poll
            };
            tokio::select! {
                () = &mut shutdown, if !stopping => stopping = true,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                    Ok(Err(e)) if e.is_connection_closed() => return Err(e),
                    Ok(Err(e)) => tracing::warn!(error = %e, "working a refund intent failed"),
                    Ok(Ok(_)) => {}
                    Err(e) => tracing::error!(error = %e, "outbox task failed"),
                },
                () = tokio::time::sleep(pause), if tasks.len() < inner.config.concurrency => {}
            }
        }
    }
}

/// A claimed intent.
struct Claimed {
    id: i64,
    claim: i64,
    provider: String,
    /// The intent, or why its row cannot be read.
    intent: Result<RefundIntent, String>,
    state: IntentState,
    sends: i32,
    refusals: i32,
    last_sent_at: Option<SystemTime>,
    /// The database's clock at the claim, and this process's monotonic clock then: every
    /// time the worker writes or judges by is the database's, carried forward.
    db_now: SystemTime,
    local: Instant,
    /// Whether the provider had a rate or a running pause at the claim: without either,
    /// requests skip the pacing round trip (a pause that starts meanwhile holds them from
    /// their next claim on).
    paced: bool,
}

impl Claimed {
    fn from_row(row: &Row) -> Result<Claimed, tokio_postgres::Error> {
        let id: i64 = row.try_get(0)?;
        let scope: String = row.try_get(3)?;
        let payment_id: String = row.try_get(4)?;
        let parent: Option<String> = row.try_get(5)?;
        let amount: String = row.try_get(6)?;
        let currency: String = row.try_get(7)?;
        let reason: Option<String> = row.try_get(8)?;
        let reference: String = row.try_get(9)?;
        let state: String = row.try_get(10)?;
        let provider: String = row.try_get(2)?;
        let intent = (|| {
            let payment = match (scope.as_str(), parent) {
                ("item", Some(parent)) => PaymentRef::item(payment_id).in_payment(parent),
                ("item", None) => PaymentRef::item(payment_id),
                _ => PaymentRef::payment(payment_id),
            };
            let currency = currency.parse().map_err(|e| format!("currency: {e}"))?;
            let amount = Money::parse(&amount, currency).map_err(|e| format!("amount: {e}"))?;
            let reference = MerchantRef::new(reference).map_err(|e| format!("reference: {e}"))?;
            let mut intent = RefundIntent::new(provider.clone(), payment, amount, reference)
                .map_err(|e| e.to_string())?;
            if let Some(reason) = reason {
                let reason =
                    reason_from_name(&reason).ok_or_else(|| format!("reason {reason:?}"))?;
                intent = intent.with_reason(reason);
            }
            Ok(intent)
        })();
        Ok(Claimed {
            id,
            claim: row.try_get(1)?,
            provider,
            intent,
            state: state.parse().unwrap_or(IntentState::Unknown),
            sends: row.try_get(11)?,
            refusals: row.try_get(12)?,
            last_sent_at: row.try_get(13)?,
            db_now: row.try_get(14)?,
            local: Instant::now(),
            paced: row.try_get(15)?,
        })
    }

    /// Now, by the database's clock.
    fn now(&self) -> SystemTime {
        self.db_now + self.local.elapsed()
    }
}

/// How an intent is left after a request.
#[derive(Debug)]
struct Settle {
    state: IntentState,
    /// Not claimed again before this; now when `None`.
    not_before: Option<SystemTime>,
    refused: bool,
    provider_reference: Option<String>,
    note: String,
}

impl Settle {
    fn new(state: IntentState, note: impl Into<String>) -> Settle {
        Settle {
            state,
            not_before: None,
            refused: false,
            provider_reference: None,
            note: note.into(),
        }
    }

    fn after(mut self, not_before: SystemTime) -> Settle {
        self.not_before = Some(not_before);
        self
    }
}

impl Inner {
    async fn claim(&self, n: usize) -> Result<Vec<Claimed>, OutboxError> {
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let rows = self
            .db
            .query(
                &self.statements.claim,
                &[
                    &self.names,
                    &limit,
                    &self.config.name,
                    &millis(self.config.lease),
                ],
            )
            .await?;
        let claimed = rows
            .iter()
            .map(Claimed::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if !claimed.is_empty() {
            tracing::debug!(worker = %self.config.name, claimed = claimed.len(), "claimed refund intents");
        }
        Ok(claimed)
    }

    /// Waits for a slot in the provider's shared pace (when it has a rate or a pause).
    async fn pace(&self, c: &Claimed) -> Result<(), OutboxError> {
        if !c.paced {
            return Ok(());
        }
        let provider = c.provider.as_str();
        let wait: i64 = self
            .db
            .query_one(&self.statements.acquire, &[&provider])
            .await?
            .try_get(0)?;
        if wait > 0 {
            tokio::time::sleep(micros(wait)).await;
        }
        Ok(())
    }

    /// Pauses every worker's requests to `provider` after a rate limit answer.
    async fn observe(&self, provider: &str, error: &RefundError) -> Result<(), OutboxError> {
        if let RefundError::RateLimited { retry_after, .. } = error {
            let pause = millis(retry_after.unwrap_or(DEFAULT_PAUSE));
            self.db.execute(pacing::PAUSE, &[&provider, &pause]).await?;
        }
        Ok(())
    }

    async fn work(&self, c: Claimed) -> Result<Worked, OutboxError> {
        let mut worked = Worked {
            id: IntentId(c.id),
            state: c.state,
            sent: false,
            looked_up: false,
            recorded: true,
        };
        let (intent, provider) = match (&c.intent, self.providers.get(&c.provider)) {
            (Ok(intent), Some(provider)) => (intent, provider),
            (Err(why), _) => {
                return self
                    .unsendable(c.id, c.claim, &format!("row cannot be read: {why}"), worked)
                    .await;
            }
            // Claimed only for this worker's providers: not reached.
            (_, None) => return Ok(worked),
        };
        let reconciler = Reconciler::for_provider(&*provider);
        if c.state == IntentState::Unknown
            && let Some(attempted_at) = c.last_sent_at
        {
            worked.looked_up = true;
            // `None`: nothing on record after the settle time, so resent below with the same
            // reference.
            if let Some((state, recorded)) = self
                .reconcile(&c, intent, &*provider, &reconciler, attempted_at)
                .await?
            {
                worked.state = state;
                worked.recorded = recorded;
                return Ok(worked);
            }
        }
        let (state, sent, recorded) = self.send(&c, intent, &*provider, &reconciler).await?;
        worked.state = state;
        worked.sent = sent;
        worked.recorded = recorded;
        Ok(worked)
    }

    async fn unsendable(
        &self,
        id: i64,
        claim: i64,
        why: &str,
        mut worked: Worked,
    ) -> Result<Worked, OutboxError> {
        tracing::error!(
            intent = id,
            why,
            "refund intent cannot be sent; marked failed"
        );
        let n = self
            .db
            .execute(SETTLE, &[&id, &claim, &IntentState::Failed.as_str(), &why])
            .await?;
        worked.state = IntentState::Failed;
        worked.recorded = n > 0;
        Ok(worked)
    }

    /// Looks up the latest attempt of an `unknown` intent through the reconciliation policy.
    /// `None` when it is safe to resend; otherwise the state it was left in, and whether the
    /// claim was still this worker's.
    async fn reconcile(
        &self,
        c: &Claimed,
        intent: &RefundIntent,
        provider: &dyn RefundProvider,
        reconciler: &Reconciler,
        attempted_at: SystemTime,
    ) -> Result<Option<(IntentState, bool)>, OutboxError> {
        let reference = intent.reference();
        let span = tracing::info_span!(
            "refund_outbox.attempt",
            kind = "lookup",
            intent = c.id,
            provider = %c.provider,
            reference = %reference,
            worker = %self.config.name,
            verdict = tracing::field::Empty,
        );
        async {
            self.pace(c).await?;
            let started = c.now();
            let looked = provider.refund_state(intent.payment()).await;
            if let Err(e) = &looked {
                self.observe(&c.provider, e).await?;
            }
            let earlier = usize::try_from(c.refusals).unwrap_or(0);
            // Judged by the database's clock, as of when the lookup was asked.
            let verdict = looked.map(|state| {
                reconciler.judge_after(&state, reference, earlier, attempted_at, started)
            });
            let settles_at = reconciler.settles_at(attempted_at);
            let recheck_at = (c.now() + self.config.recheck).max(settles_at);
            let (kind, error_kind, settle) = match &verdict {
                Ok(Verdict::SafeToResend) => ("safe_to_resend", None, None),
                Ok(Verdict::Applied(record)) => {
                    let mut settle = Settle::new(
                        IntentState::Refunded,
                        format!("reconciled: reference {reference} was applied"),
                    );
                    settle.provider_reference = record.provider_reference.clone();
                    ("applied", None, Some(settle))
                }
                Ok(Verdict::NotApplied(_)) => (
                    "not_applied",
                    None,
                    Some(Settle::new(
                        IntentState::Declined,
                        format!(
                            "reconciled: reference {reference} is on record as failed; nothing was refunded"
                        ),
                    )),
                ),
                Ok(Verdict::NotYetKnown { .. }) => (
                    "not_yet_known",
                    None,
                    Some(
                        Settle::new(
                            IntentState::Unknown,
                            format!(
                                "no refund with reference {reference} on record yet, and the provider's lookup may lag: nothing resent before the settle time"
                            ),
                        )
                        .after(settles_at),
                    ),
                ),
                Ok(Verdict::Undetermined(why)) => (
                    "undetermined",
                    None,
                    Some(
                        Settle::new(
                            IntentState::Unknown,
                            format!("the lookup cannot tell whether reference {reference} was applied ({why}); nothing resent"),
                        )
                        .after(recheck_at),
                    ),
                ),
                Ok(other) => (
                    other.kind(),
                    None,
                    Some(
                        Settle::new(
                            IntentState::Unknown,
                            format!("the lookup answered {}; nothing resent", other.kind()),
                        )
                        .after(recheck_at),
                    ),
                ),
                Err(e) => (
                    "lookup_failed",
                    Some(e.kind()),
                    Some(
                        Settle::new(
                            IntentState::Unknown,
                            format!("lookup failed ({e}); nothing resent"),
                        )
                        .after(recheck_at),
                    ),
                ),
            };
            tracing::Span::current().record("verdict", kind);
            let (state, note, provider_reference, not_before) = match &settle {
                Some(s) => (
                    Some(s.state.as_str()),
                    s.note.as_str(),
                    s.provider_reference.as_deref(),
                    s.not_before,
                ),
                None => (
                    None,
                    "nothing on record after the settle time: resent with the same reference",
                    None,
                    None,
                ),
            };
            let rows = self
                .db
                .query(
                    &self.statements.lookup,
                    &[
                        &c.id,
                        &self.config.name,
                        &started,
                        &kind,
                        &error_kind,
                        &provider_reference,
                        &note,
                        &c.claim,
                        &state,
                        &not_before,
                    ],
                )
                .await?;
            Ok(settle.map(|s| {
                tracing::info!(state = %s.state, "reconciled an outcome-unknown refund attempt");
                (s.state, !rows.is_empty())
            }))
        }
        .instrument(span)
        .await
    }

    /// Sends the intent once: paced, with its attempt row committed before the request
    /// leaves. Returns the state it was left in, whether a request was sent, and whether the
    /// claim was still this worker's.
    async fn send(
        &self,
        c: &Claimed,
        intent: &RefundIntent,
        provider: &dyn RefundProvider,
        reconciler: &Reconciler,
    ) -> Result<(IntentState, bool, bool), OutboxError> {
        let request = match intent.request() {
            Ok(r) => r,
            Err(e) => {
                let w = Worked {
                    id: IntentId(c.id),
                    state: c.state,
                    sent: false,
                    looked_up: false,
                    recorded: true,
                };
                let w = self.unsendable(c.id, c.claim, &e.to_string(), w).await?;
                return Ok((w.state, false, w.recorded));
            }
        };
        let span = tracing::info_span!(
            "refund_outbox.attempt",
            kind = "refund",
            intent = c.id,
            provider = %c.provider,
            reference = %intent.reference(),
            worker = %self.config.name,
            attempt = c.sends + 1,
            outcome = tracing::field::Empty,
            error_kind = tracing::field::Empty,
        );
        async {
            // Within the shared pace first, so the attempt's time is the request's.
            self.pace(c).await?;
            let Some(begun) = self
                .db
                .query_opt(
                    &self.statements.begin_send,
                    &[&c.id, &c.claim, &self.config.name],
                )
                .await?
            else {
                tracing::warn!("claim lost before sending; nothing sent");
                return Ok((c.state, false, false));
            };
            let attempt: i64 = begun.try_get(0)?;
            let attempted_at: SystemTime = begun.try_get(1)?;
            // The attempt row is committed: only now may the request leave.
            let answer = provider.refund(&request).await;
            let sends = c.sends + 1;
            let (outcome, settle, error) = match answer {
                Ok(receipt) => {
                    let mut settle = Settle::new(IntentState::Refunded, receipt_note(&receipt));
                    settle.provider_reference = provider_reference(&receipt);
                    ("refunded", settle, None)
                }
                Err(e) => {
                    self.observe(&c.provider, &e).await?;
                    let (outcome, settle) = self.after_error(c, &e, sends, attempted_at, reconciler);
                    (outcome, settle, Some(e))
                }
            };
            let span = tracing::Span::current();
            span.record("outcome", outcome);
            if let Some(e) = &error {
                span.record("error_kind", e.kind());
            }
            let rows = self
                .db
                .query(
                    &self.statements.finish_send,
                    &[
                        &attempt,
                        &outcome,
                        &error.as_ref().map(RefundError::kind),
                        &error.as_ref().and_then(RefundError::provider_code),
                        &settle.provider_reference,
                        &settle.note,
                        &c.id,
                        &c.claim,
                        &settle.state.as_str(),
                        &settle.not_before,
                        &i32::from(settle.refused),
                    ],
                )
                .await?;
            let recorded = !rows.is_empty();
            if recorded {
                tracing::info!(state = %settle.state, "refund attempt recorded");
            } else {
                tracing::warn!(state = %settle.state, "refund attempt recorded, but the claim was lost: the intent is left to its new claimant");
            }
            Ok((settle.state, true, recorded))
        }
        .instrument(span)
        .await
    }

    /// The attempt's outcome name and the intent's next state after `error`.
    fn after_error(
        &self,
        c: &Claimed,
        error: &RefundError,
        sends: i32,
        attempted_at: SystemTime,
        reconciler: &Reconciler,
    ) -> (&'static str, Settle) {
        let reference = c.intent.as_ref().map_or("", |i| i.reference().as_str());
        if !error.is_outcome_known() {
            // A timeout, a lost answer, SiPay's 104: never a decline, never a fresh send.
            // Looked up after the recheck delay (and resent only once settled and absent).
            let recheck = (c.now() + self.config.recheck).min(reconciler.settles_at(attempted_at));
            return (
                "unknown",
                Settle::new(
                    IntentState::Unknown,
                    format!("{error}; to be looked up before anything is resent"),
                )
                .after(recheck),
            );
        }
        if error.is_retryable() {
            let refused = matches!(error, RefundError::Declined { .. });
            let refusals = u32::try_from(c.refusals).unwrap_or(0) + u32::from(refused);
            if refused && refusals >= self.config.max_refusals {
                let mut settle = Settle::new(
                    IntentState::Declined,
                    format!("{error}; refused {refusals} times, not sent again"),
                );
                settle.refused = true;
                return ("declined", settle);
            }
            let wait = match error {
                RefundError::RateLimited { retry_after, .. } => {
                    retry_after.unwrap_or(DEFAULT_PAUSE)
                }
                _ => self.config.backoff(sends),
            };
            let not_before = c.now() + wait;
            let mut settle = Settle::new(
                IntentState::RetryLater,
                format!("{error}; to be sent again with reference {reference}"),
            )
            .after(not_before);
            settle.refused = refused;
            return ("retry_later", settle);
        }
        match error {
            RefundError::Declined { .. } => (
                "declined",
                Settle::new(IntentState::Declined, error.to_string()),
            ),
            _ => (
                "failed",
                Settle::new(IntentState::Failed, error.to_string()),
            ),
        }
    }
}

/// The receipt's provider references, `name=value` separated by spaces.
fn receipt_note(receipt: &RefundReceipt) -> String {
    receipt
        .provider_references
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The provider's id of the refund in a receipt: SiPay's `ref_no`, iyzico's bank reference,
/// or else the first identifier the receipt carries.
fn provider_reference(receipt: &RefundReceipt) -> Option<String> {
    ["ref_no", "refundHostReference", "hostReference"]
        .iter()
        .find_map(|name| receipt.provider_references.get(*name))
        .or_else(|| receipt.provider_references.values().next())
        .filter(|id| !id.is_empty())
        .cloned()
}
