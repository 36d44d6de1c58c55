//! Workers: claim due intents, send them or look them up, and store what the attempt
//! lifecycle ([`AttemptPolicy`]) decides. The deciding is `refund_core`'s; this module only
//! drives it: one claim, one lookup or send, the decision written under the claim, and the
//! decision's [`Next`] step carried out with the outbox's own means (a resend within the
//! claim, or a row's `not_before`).

mod config;
mod sql;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use refund_core::{
    AttemptPolicy, Decision, MerchantRef, Next, ProviderRegistry, Reconciler, RefundError,
    RefundProvider,
};
use tokio::task::JoinSet;
use tokio_postgres::{Client, Statement};
use tracing::Instrument;

pub use config::WorkerConfig;
use sql::{
    BEGIN_SEND, CLAIM, Claimed, FINISH_SEND, FinishSend, LOOKUP, Lookup, OTHER_REFERENCES, SETTLE,
};

use crate::error::OutboxError;
use crate::intent::{IntentId, IntentState, RefundIntent, scope_name};
use crate::migrate::migrate;
use crate::pacing::{self, DEFAULT_PAUSE, micros, millis};

/// Claims due intents (`FOR UPDATE SKIP LOCKED`, with a lease), sends or reconciles them
/// through the providers of a [`ProviderRegistry`], and records every attempt. Run as many as
/// you like, on as many machines: each intent is worked by one worker at a time, and an
/// attempt that may have reached the provider is looked up before anything is resent.
///
/// What follows each send and each lookup is decided by the worker's [`AttemptPolicy`]
/// ([`WorkerConfig::with_policy`]), the same lifecycle `Retrying` and `refund batch` drive.
///
/// Each worker owns one database connection (a `tokio_postgres::Client`, connected however
/// the application connects: `NoTls` on loopback, `refund_outbox::connect` with TLS as the
/// URL's `sslmode` says (feature `tls`), or a connector of its own). It
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
    others: Statement,
    acquire: Statement,
}

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
            others: db.prepare(OTHER_REFERENCES).await?,
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

/// How a decision is stored: the state (never `sending`: the outbox's in-flight state is
/// `unknown`, written before the request leaves) and the not-before time (`None`: now).
fn stored(
    decision: &Decision,
    now: SystemTime,
    stuck_recheck: Duration,
) -> (IntentState, Option<SystemTime>) {
    let state = match decision.state {
        IntentState::Sending => IntentState::Unknown,
        other => other,
    };
    let not_before = match decision.next {
        Next::Done => None,
        Next::Send { at } | Next::LookUp { at } => Some(at),
        // A person decides; looked up now and then meanwhile, since a lookup that finds the
        // refund settles it (a step this build does not know is treated the same way).
        _ => Some(now + stuck_recheck),
    };
    (state, not_before)
}

/// What a lookup left to do.
enum Looked {
    /// The intent is settled for now: its state, and whether the claim was still this
    /// worker's.
    Left(IntentState, bool),
    /// Send it again now, with the same reference, under this claim.
    Resend,
}

impl Inner {
    fn policy(&self) -> &AttemptPolicy {
        &self.config.policy
    }

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
        if let RefundError::RateLimited { .. } = error {
            let pause = millis(error.retry_after().unwrap_or(DEFAULT_PAUSE));
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
                    .unsendable(&c, &format!("row cannot be read: {why}"), worked)
                    .await;
            }
            // Claimed only for this worker's providers: not reached.
            (_, None) => return Ok(worked),
        };
        if c.state.may_be_in_flight()
            && let Some(attempted_at) = c.last_sent_at
        {
            worked.looked_up = true;
            let reconciler = Reconciler::for_provider(&*provider);
            match self
                .look_up(&c, intent, &*provider, &reconciler, attempted_at)
                .await?
            {
                Looked::Left(state, recorded) => {
                    worked.state = state;
                    worked.recorded = recorded;
                    return Ok(worked);
                }
                Looked::Resend => {}
            }
        }
        let (state, sent, recorded) = self.send(&c, intent, &*provider).await?;
        worked.state = state;
        worked.sent = sent;
        worked.recorded = recorded;
        Ok(worked)
    }

    async fn unsendable(
        &self,
        c: &Claimed,
        why: &str,
        mut worked: Worked,
    ) -> Result<Worked, OutboxError> {
        tracing::error!(
            intent = c.id,
            why,
            "refund intent cannot be sent; marked failed"
        );
        let failed = IntentState::Failed.as_str();
        let n = self
            .db
            .execute(SETTLE, &[&c.id, &c.claim, &failed, &why])
            .await?;
        worked.state = IntentState::Failed;
        worked.recorded = n > 0;
        Ok(worked)
    }

    /// Looks up the latest attempt of an intent that may be in flight
    /// ([`Reconciler::look_up`], judged by the database's clock read before the lookup is
    /// asked), and stores what [`AttemptPolicy::after_lookup`] decides.
    async fn look_up(
        &self,
        c: &Claimed,
        intent: &RefundIntent,
        provider: &dyn RefundProvider,
        reconciler: &Reconciler,
        attempted_at: SystemTime,
    ) -> Result<Looked, OutboxError> {
        // What the lookup is judged with: the attempt, its amount, and the references of the
        // outbox's other intents on the same payment (an applied refund of this amount under
        // any other reference may be this attempt relabelled by the provider: not proof of
        // absence).
        let payment = intent.payment();
        let others = self
            .db
            .query(
                &self.statements.others,
                &[
                    &c.id,
                    &c.provider,
                    &scope_name(payment.scope()),
                    &payment.id(),
                    &payment.parent().unwrap_or(""),
                ],
            )
            .await?
            .iter()
            .filter_map(|row| row.try_get::<_, String>(0).ok())
            .filter_map(|r| MerchantRef::new(r).ok())
            .collect::<Vec<_>>();
        let attempt = c
            .attempt(intent.reference(), attempted_at, c.sends)
            .with_amount(intent.amount())
            .with_known_references(others);
        let span = tracing::info_span!(
            "refund_outbox.attempt",
            kind = "lookup",
            intent = c.id,
            provider = %c.provider,
            reference = %intent.reference(),
            worker = %self.config.name,
            verdict = tracing::field::Empty,
        );
        async {
            self.pace(c).await?;
            let started = c.now();
            #[cfg(feature = "metrics")]
            let timer = std::time::Instant::now();
            let looked = reconciler
                .look_up(provider, intent.payment(), &attempt, || c.now())
                .await;
            #[cfg(feature = "metrics")]
            crate::metrics::attempt("lookup", timer.elapsed());
            if let Err(e) = &looked {
                self.observe(&c.provider, e).await?;
            }
            let now = c.now();
            let decision = self.policy().after_lookup(&attempt, looked.as_ref(), now);
            tracing::Span::current().record("verdict", decision.outcome);
            let resend = matches!(decision.next, Next::Send { at } if at <= now);
            let (state, not_before) = stored(&decision, now, self.config.stuck_recheck);
            let state = (!resend).then_some(state);
            let rows = self
                .db
                .query(
                    &self.statements.lookup,
                    &Lookup {
                        intent: c.id,
                        worker: &self.config.name,
                        asked_at: looked.as_ref().map_or(started, |j| j.asked_at),
                        outcome: decision.outcome,
                        error_kind: looked.as_ref().err().map(RefundError::kind),
                        provider_reference: decision.refund_id.as_deref(),
                        note: &decision.note,
                        claim: c.claim,
                        state: state.map(IntentState::as_str),
                        not_before,
                    }
                    .params(),
                )
                .await?;
            #[cfg(feature = "metrics")]
            crate::metrics::decision(&decision);
            Ok(match state {
                None => Looked::Resend,
                Some(state) => {
                    if matches!(decision.next, Next::Person) {
                        tracing::warn!(state = %state, note = %decision.note, "refund intent left to a person");
                    } else {
                        tracing::info!(state = %state, "reconciled an outcome-unknown refund attempt");
                    }
                    Looked::Left(state, !rows.is_empty())
                }
            })
        }
        .instrument(span)
        .await
    }

    /// Sends the intent once: paced, with its attempt row committed before the request
    /// leaves; stores what [`AttemptPolicy::after_send`] decides. Returns the state it was
    /// left in, whether a request was sent, and whether the claim was still this worker's.
    async fn send(
        &self,
        c: &Claimed,
        intent: &RefundIntent,
        provider: &dyn RefundProvider,
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
                let w = self.unsendable(c, &e.to_string(), w).await?;
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
            let attempt_row: i64 = begun.try_get(0)?;
            let attempted_at: SystemTime = begun.try_get(1)?;
            // This send, counted: BEGIN_SEND added it to the row's sends.
            let attempt = c.attempt(intent.reference(), attempted_at, c.sends + 1);
            // The attempt row is committed: only now may the request leave.
            #[cfg(feature = "metrics")]
            let timer = std::time::Instant::now();
            let answer = provider.refund(&request).await;
            #[cfg(feature = "metrics")]
            crate::metrics::attempt("refund", timer.elapsed());
            if let Err(e) = &answer {
                self.observe(&c.provider, e).await?;
            }
            let now = c.now();
            let decision = self.policy().after_send(&attempt, answer.as_ref(), now);
            let error = answer.as_ref().err();
            let span = tracing::Span::current();
            span.record("outcome", decision.outcome);
            if let Some(e) = error {
                span.record("error_kind", e.kind());
            }
            let (state, not_before) = stored(&decision, now, self.config.stuck_recheck);
            let rows = self
                .db
                .query(
                    &self.statements.finish_send,
                    &FinishSend {
                        attempt: attempt_row,
                        outcome: decision.outcome,
                        error_kind: error.map(RefundError::kind),
                        provider_code: error.and_then(RefundError::provider_code),
                        provider_reference: decision.refund_id.as_deref(),
                        note: &decision.note,
                        intent: c.id,
                        claim: c.claim,
                        state: state.as_str(),
                        not_before,
                        refusals: i32::try_from(decision.attempt.refusals).unwrap_or(i32::MAX),
                    }
                    .params(),
                )
                .await?;
            #[cfg(feature = "metrics")]
            crate::metrics::decision(&decision);
            let recorded = !rows.is_empty();
            if recorded {
                tracing::info!(state = %state, "refund attempt recorded");
            } else {
                tracing::warn!(state = %state, "refund attempt recorded, but the claim was lost: the intent is left to its new claimant");
            }
            Ok((state, true, recorded))
        }
        .instrument(span)
        .await
    }
}
