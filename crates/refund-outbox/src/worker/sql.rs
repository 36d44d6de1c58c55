//! The worker's statements, the claimed row as it is read back, and the parameters of the
//! statements that record an attempt.

use std::time::{Instant, SystemTime};

use refund_core::{Attempt, MerchantRef, Money};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::intent::{IntentState, RefundIntent, payment_from_columns, reason_from_name};

/// Claims up to `$2` due intents of the providers `$1` for worker `$3`, for `$4` ms.
pub(super) const CLAIM: &str = "
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
pub(super) const BEGIN_SEND: &str = "
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

/// Records the answer to a refund attempt and settles the intent under its claim (see
/// [`FinishSend`] for the parameters); releases the claim. No row when the claim is no
/// longer this worker's.
pub(super) const FINISH_SEND: &str = "
    WITH attempt AS (
        UPDATE refund_outbox_attempts
        SET finished_at = clock_timestamp(), outcome = $2, error_kind = $3, provider_code = $4,
            provider_reference = $5, note = $6
        WHERE id = $1
    )
    UPDATE refund_outbox_intents
    SET state = $9, not_before = COALESCE($10, clock_timestamp()), refusals = $11,
        provider_reference = COALESCE($5, provider_reference), note = $6,
        lease_owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
    WHERE id = $7 AND claim = $8 AND state NOT IN ('refunded', 'declined', 'failed')
    RETURNING id";

/// Records a lookup and, when it settles the intent, its new state under the claim (see
/// [`Lookup`] for the parameters); releases the claim then. Without a state the intent is
/// left claimed (it is resent next, under the same claim).
pub(super) const LOOKUP: &str = "
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

/// The references of the other intents (not `$1`) of provider `$2` on payment `$3`
/// (`payment_scope`), `$4` (`payment_id`), `$5` (`payment_parent`, '' for none): refunds on
/// record under them are the outbox's own, not a relabelled copy of this intent's.
pub(super) const OTHER_REFERENCES: &str = "
    SELECT reference FROM refund_outbox_intents
    WHERE provider = $2 AND payment_scope = $3 AND payment_id = $4
      AND COALESCE(payment_parent, '') = $5 AND id <> $1";

/// Settles intent `$1` under claim `$2` without an attempt (a row that cannot be sent):
/// state `$3`, note `$4`.
pub(super) const SETTLE: &str = "
    UPDATE refund_outbox_intents
    SET state = $3, note = $4, lease_owner = NULL, lease_until = NULL,
        updated_at = clock_timestamp()
    WHERE id = $1 AND claim = $2 AND state NOT IN ('refunded', 'declined', 'failed')";

/// The parameters of [`FINISH_SEND`]: the answer to attempt `attempt`, and how intent
/// `intent` is left under claim `claim`.
#[derive(Debug)]
pub(super) struct FinishSend<'a> {
    /// The attempt row.
    pub(super) attempt: i64,
    /// The decision's outcome name.
    pub(super) outcome: &'a str,
    /// The error's kind, when the send failed.
    pub(super) error_kind: Option<&'a str>,
    /// The provider's code, when it gave one.
    pub(super) provider_code: Option<&'a str>,
    /// The provider's id of the refund.
    pub(super) provider_reference: Option<&'a str>,
    pub(super) note: &'a str,
    pub(super) intent: i64,
    pub(super) claim: i64,
    /// The state to store.
    pub(super) state: &'a str,
    /// Not claimed again before this; now when `None`.
    pub(super) not_before: Option<SystemTime>,
    /// The refusals on record after this answer.
    pub(super) refusals: i32,
}

impl FinishSend<'_> {
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.attempt,
            &self.outcome,
            &self.error_kind,
            &self.provider_code,
            &self.provider_reference,
            &self.note,
            &self.intent,
            &self.claim,
            &self.state,
            &self.not_before,
            &self.refusals,
        ]
    }
}

/// The parameters of [`LOOKUP`]: a lookup of intent `intent` by `worker`, asked at
/// `asked_at`, and (when `state` is set) how the intent is left under claim `claim`.
#[derive(Debug)]
pub(super) struct Lookup<'a> {
    pub(super) intent: i64,
    pub(super) worker: &'a str,
    pub(super) asked_at: SystemTime,
    /// The decision's outcome name (the verdict's kind, `stuck`, `lookup_failed`).
    pub(super) outcome: &'a str,
    pub(super) error_kind: Option<&'a str>,
    pub(super) provider_reference: Option<&'a str>,
    pub(super) note: &'a str,
    pub(super) claim: i64,
    /// The state to store; `None` leaves the intent claimed for a resend.
    pub(super) state: Option<&'a str>,
    pub(super) not_before: Option<SystemTime>,
}

impl Lookup<'_> {
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.intent,
            &self.worker,
            &self.asked_at,
            &self.outcome,
            &self.error_kind,
            &self.provider_reference,
            &self.note,
            &self.claim,
            &self.state,
            &self.not_before,
        ]
    }
}

/// A claimed intent, as [`CLAIM`] returns it.
pub(super) struct Claimed {
    pub(super) id: i64,
    pub(super) claim: i64,
    pub(super) provider: String,
    /// The intent, or why its row cannot be read.
    pub(super) intent: Result<RefundIntent, String>,
    pub(super) state: IntentState,
    pub(super) sends: i32,
    pub(super) refusals: i32,
    pub(super) last_sent_at: Option<SystemTime>,
    /// The database's clock at the claim, and this process's monotonic clock then: every
    /// time the worker writes or judges by is the database's, carried forward.
    db_now: SystemTime,
    local: Instant,
    /// Whether the provider had a rate or a running pause at the claim: without either,
    /// requests skip the pacing round trip (a pause that starts meanwhile holds them from
    /// their next claim on).
    pub(super) paced: bool,
}

impl Claimed {
    pub(super) fn from_row(row: &Row) -> Result<Claimed, tokio_postgres::Error> {
        let id: i64 = row.try_get(0)?;
        let provider: String = row.try_get(2)?;
        let scope: String = row.try_get(3)?;
        let payment_id: String = row.try_get(4)?;
        let parent: Option<String> = row.try_get(5)?;
        let amount: String = row.try_get(6)?;
        let currency: String = row.try_get(7)?;
        let reason: Option<String> = row.try_get(8)?;
        let reference: String = row.try_get(9)?;
        let state: String = row.try_get(10)?;
        let intent = (|| {
            let payment = payment_from_columns(&scope, payment_id, parent);
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
            // A state the outbox never writes is treated as possibly in flight: looked up
            // before anything is sent.
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
    pub(super) fn now(&self) -> SystemTime {
        self.db_now + self.local.elapsed()
    }

    /// The attempt on record: the intent's reference, its latest send's time (from the
    /// database's clock), `sends` (the row's, or one more for the send being made) and its
    /// refusals.
    pub(super) fn attempt(
        &self,
        reference: &MerchantRef,
        attempted_at: SystemTime,
        sends: i32,
    ) -> Attempt {
        Attempt::new(
            reference.clone(),
            attempted_at,
            u32::try_from(sends).unwrap_or(0),
            u32::try_from(self.refusals).unwrap_or(0),
        )
    }
}
