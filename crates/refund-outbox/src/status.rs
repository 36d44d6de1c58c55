//! What the outbox holds: intents by state, and the ones that need a person.

use std::time::Duration;

use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::error::OutboxError;
use crate::intent::{IntentId, IntentState};
use crate::pacing::millis;

/// Intents by state, the ones claimed right now, and the stuck ones (see [`status`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OutboxStatus {
    /// Never sent.
    pub pending: u64,
    /// A request may have reached the provider; to be looked up.
    pub unknown: u64,
    /// To be sent again after a not-before time.
    pub retry_later: u64,
    /// Refunded.
    pub refunded: u64,
    /// Declined.
    pub declined: u64,
    /// Not refunded and not sent again without a person.
    pub failed: u64,
    /// Intents under a live lease (a worker is on them now).
    pub claimed: u64,
    /// Intents whose lease ran out with a worker's request possibly out: the next worker
    /// looks them up first.
    pub expired_leases: u64,
    /// The stuck intents, oldest first (at most the limit asked for).
    pub stuck: Vec<StuckIntent>,
}

impl OutboxStatus {
    /// The count for `state`.
    pub fn count(&self, state: IntentState) -> u64 {
        match state {
            IntentState::Pending => self.pending,
            IntentState::Unknown => self.unknown,
            IntentState::RetryLater => self.retry_later,
            IntentState::Refunded => self.refunded,
            IntentState::Declined => self.declined,
            IntentState::Failed => self.failed,
            // `sending` is never stored by the outbox.
            _ => 0,
        }
    }

    /// Every intent, whatever its state.
    pub fn total(&self) -> u64 {
        IntentState::ALL.iter().map(|s| self.count(*s)).sum()
    }
}

/// An intent that needs attention: `failed`, or not final long after it was enqueued.
/// Times are UTC, `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StuckIntent {
    /// The intent.
    pub id: IntentId,
    /// The provider's key.
    pub provider: String,
    /// The payment, as `PaymentRef` shows it (`payment:INV-1`, `item:11@22`).
    pub payment: String,
    /// `10.50 TRY`.
    pub amount: String,
    /// The merchant reference.
    pub reference: String,
    /// The state.
    pub state: IntentState,
    /// Refund requests sent.
    pub sends: i32,
    /// When it was enqueued.
    pub created_at: String,
    /// Its last change.
    pub updated_at: String,
    /// Not claimed before this.
    pub not_before: String,
    /// The worker holding it and until when, if any (also an expired one).
    pub lease: Option<String>,
    /// The latest note (the provider's answer, the lookup's verdict).
    pub note: Option<String>,
    /// Why it is listed, and what to do.
    pub why: String,
}

/// Counts the intents by state and lists the stuck ones, oldest first, at most `limit`:
/// every `failed` intent, every `unknown` one the attempt policy left to a person (its latest
/// lookup's outcome is `stuck`: sent as often as the policy allows and never on the provider's
/// record), and every intent not final `stuck_after` after it was enqueued
/// (`pending`: no worker has taken it, is one running for its provider?; `unknown`: lookups
/// have not settled it; `retry_later`: refused again and again).
///
/// ```no_run
/// # async fn example(client: &tokio_postgres::Client) -> Result<(), refund_outbox::OutboxError> {
/// use std::time::Duration;
/// let status = refund_outbox::status(client, Duration::from_secs(3600), 50).await?;
/// println!("{} unknown, {} stuck", status.unknown, status.stuck.len());
/// # Ok(()) }
/// ```
pub async fn status<C: GenericClient>(
    db: &C,
    stuck_after: Duration,
    limit: u32,
) -> Result<OutboxStatus, OutboxError> {
    let mut out = OutboxStatus::default();
    for row in db.query(COUNTS, &[]).await? {
        out.add(
            &row.try_get::<_, String>(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
    }
    let rows = db
        .query(&stuck_sql(), &[&millis(stuck_after), &i64::from(limit)])
        .await?;
    for row in rows {
        out.stuck.push(
            StuckColumns {
                id: row.try_get(0)?,
                provider: row.try_get(1)?,
                payment: row.try_get(2)?,
                amount: row.try_get(3)?,
                reference: row.try_get(4)?,
                state: row.try_get(5)?,
                sends: row.try_get(6)?,
                created_at: row.try_get(7)?,
                updated_at: row.try_get(8)?,
                not_before: row.try_get(9)?,
                lease: row.try_get(10)?,
                note: row.try_get(11)?,
                left_to_person: row.try_get(12)?,
            }
            .into_stuck()?,
        );
    }
    Ok(out)
}

/// Intents by state: (state, count, under a live lease, `unknown` with an expired lease).
pub(crate) const COUNTS: &str = "
    SELECT state, count(*),
           count(*) FILTER (WHERE lease_until > clock_timestamp()),
           count(*) FILTER (WHERE lease_until <= clock_timestamp() AND state = 'unknown')
    FROM refund_outbox_intents GROUP BY state";

/// The stuck intents, `$1` ms after they were enqueued, at most `$2`, as [`StuckColumns`].
pub(crate) fn stuck_sql() -> String {
    let utc =
        |col: &str| format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
    format!(
        "SELECT id, provider,
                payment_scope || ':' || payment_id || COALESCE('@' || payment_parent, ''),
                amount::text || ' ' || currency, reference, state, sends,
                {created}, {updated}, {not_before},
                CASE WHEN lease_owner IS NULL THEN NULL
                     ELSE lease_owner || ' until ' || {lease} END,
                note, stuck
         FROM (SELECT *, state = 'unknown'
                         AND (SELECT a.outcome FROM refund_outbox_attempts a
                              WHERE a.intent_id = i.id ORDER BY a.id DESC LIMIT 1) = 'stuck'
                         AS stuck
               FROM refund_outbox_intents i) i
         WHERE state = 'failed' OR stuck
            OR (state IN ('pending', 'unknown', 'retry_later')
                AND created_at < clock_timestamp() - $1::bigint * interval '1 millisecond')
         ORDER BY created_at, id
         LIMIT $2",
        created = utc("created_at"),
        updated = utc("updated_at"),
        not_before = utc("not_before"),
        lease = utc("lease_until"),
    )
}

impl OutboxStatus {
    /// Adds one row of [`COUNTS`].
    pub(crate) fn add(&mut self, state: &str, count: i64, claimed: i64, expired: i64) {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        self.claimed += n(claimed);
        self.expired_leases += n(expired);
        let count = n(count);
        match state.parse::<IntentState>() {
            Ok(IntentState::Pending) => self.pending = count,
            Ok(IntentState::Unknown) => self.unknown = count,
            Ok(IntentState::RetryLater) => self.retry_later = count,
            Ok(IntentState::Refunded) => self.refunded = count,
            Ok(IntentState::Declined) => self.declined = count,
            Ok(IntentState::Failed) => self.failed = count,
            Ok(_) | Err(_) => {}
        }
    }
}

/// One row of [`stuck_sql`], as read by either client.
pub(crate) struct StuckColumns {
    pub(crate) id: i64,
    pub(crate) provider: String,
    pub(crate) payment: String,
    pub(crate) amount: String,
    pub(crate) reference: String,
    pub(crate) state: String,
    pub(crate) sends: i32,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) not_before: String,
    pub(crate) lease: Option<String>,
    pub(crate) note: Option<String>,
    pub(crate) left_to_person: bool,
}

impl StuckColumns {
    pub(crate) fn into_stuck(self) -> Result<StuckIntent, OutboxError> {
        let state = self
            .state
            .parse::<IntentState>()
            .map_err(|e| OutboxError::Corrupt {
                id: self.id,
                reason: e.to_string(),
            })?;
        let why = match state {
            IntentState::Unknown if self.left_to_person => {
                "unknown, left to a person: sent as often as the policy allows and the provider's lookup never lists it; nothing more is sent; check the reference with the provider (it is looked up again now and then, and settles by itself if the provider comes to list it)"
            }
            IntentState::Failed => {
                "failed: nothing was refunded and nothing more is sent; fix the cause (see the note), then set it back to retry_later, or leave it"
            }
            IntentState::Pending => {
                "pending long after it was enqueued: is a worker running with this provider in its registry?"
            }
            IntentState::Unknown => {
                "unknown: a request may have reached the provider and lookups have not settled it; check the reference with the provider"
            }
            _ => "retry_later: the provider keeps refusing it for now, or cannot be reached",
        };
        Ok(StuckIntent {
            id: IntentId(self.id),
            provider: self.provider,
            payment: self.payment,
            amount: self.amount,
            reference: self.reference,
            state,
            sends: self.sends,
            created_at: self.created_at,
            updated_at: self.updated_at,
            not_before: self.not_before,
            lease: self.lease,
            note: self.note,
            why: why.to_owned(),
        })
    }
}
