//! Reading intents back: one by reference, every one for a report, and a set of references
//! followed together (a campaign's rows) until none of them is due.

use std::time::{Duration, SystemTime};

use refund_core::{Money, PaymentRef};
use tokio_postgres::{GenericClient, Row};

use crate::error::OutboxError;
use crate::intent::{IntentId, IntentState, payment_from_columns};
use crate::pacing::millis;

/// One intent as the outbox holds it, with its latest state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntentRow {
    /// The intent.
    pub id: IntentId,
    /// The provider's key.
    pub provider: String,
    /// The payment.
    pub payment: PaymentRef,
    /// The amount.
    pub amount: Money,
    /// The merchant reference.
    pub reference: String,
    /// The latest state.
    pub state: IntentState,
    /// The provider's id of the refund, once one is known (a receipt's or a lookup's).
    pub provider_reference: Option<String>,
    /// Refund requests sent.
    pub sends: i32,
    /// Not claimed before this.
    pub not_before: SystemTime,
    /// Its last change.
    pub updated_at: SystemTime,
    /// Whether a worker holds it under a live lease now.
    pub claimed: bool,
}

const COLUMNS: &str = "i.id, i.provider, i.payment_scope, i.payment_id, i.payment_parent,
    i.amount::text, i.currency, i.reference, i.state, i.provider_reference, i.sends,
    i.not_before, i.updated_at, COALESCE(i.lease_until > clock_timestamp(), false)";

impl IntentRow {
    fn from_row(row: &Row) -> Result<IntentRow, OutboxError> {
        let id: i64 = row.try_get(0)?;
        let corrupt = |reason: String| OutboxError::Corrupt { id, reason };
        let scope: String = row.try_get(2)?;
        let amount: String = row.try_get(5)?;
        let currency: String = row.try_get(6)?;
        let currency = currency
            .parse()
            .map_err(|e| corrupt(format!("currency: {e}")))?;
        let state: String = row.try_get(8)?;
        Ok(IntentRow {
            id: IntentId(id),
            provider: row.try_get(1)?,
            payment: payment_from_columns(&scope, row.try_get(3)?, row.try_get(4)?),
            amount: Money::parse(&amount, currency).map_err(|e| corrupt(format!("amount: {e}")))?,
            reference: row.try_get(7)?,
            state: state.parse().map_err(|e| corrupt(format!("{e}")))?,
            provider_reference: row.try_get(9)?,
            sends: row.try_get(10)?,
            not_before: row.try_get(11)?,
            updated_at: row.try_get(12)?,
            claimed: row.try_get(13)?,
        })
    }
}

/// The intent with merchant reference `reference`, if the outbox has it (as this
/// transaction sees it).
pub async fn find<C: GenericClient>(
    db: &C,
    reference: &str,
) -> Result<Option<IntentRow>, OutboxError> {
    let sql = format!("SELECT {COLUMNS} FROM refund_outbox_intents i WHERE i.reference = $1");
    db.query_opt(&sql, &[&reference])
        .await?
        .as_ref()
        .map(IntentRow::from_row)
        .transpose()
}

/// Every intent in the outbox, in the order they last changed (then by id).
pub async fn report<C: GenericClient>(db: &C) -> Result<Vec<IntentRow>, OutboxError> {
    let sql = format!("SELECT {COLUMNS} FROM refund_outbox_intents i ORDER BY i.updated_at, i.id");
    db.query(&sql, &[])
        .await?
        .iter()
        .map(IntentRow::from_row)
        .collect()
}

/// Where one followed intent stands (see [`Tracked::states`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Standing {
    /// The merchant reference.
    pub reference: String,
    /// The latest state.
    pub state: IntentState,
    /// Not claimed before this.
    pub not_before: SystemTime,
}

/// A set of references followed together, such as the rows of one campaign, so that a
/// driver can ask where they all stand and whether any is due soon, however many there are,
/// without sending them back and forth.
///
/// The set lives in a temporary table of one connection (`pg_temp`): every call must use
/// that same connection (a transaction on it included), and the set is gone when the
/// connection closes. One set per connection; [`Tracked::new`] on a connection that has one
/// empties it.
///
/// ```no_run
/// # async fn example(db: &mut tokio_postgres::Client) -> Result<(), refund_outbox::OutboxError> {
/// use std::time::Duration;
/// use refund_outbox::Tracked;
///
/// let tracked = Tracked::new(&*db).await?;
/// let tx = db.transaction().await?;
/// // … enqueue(&tx, …) for each row, then:
/// tracked.add(&tx, &["order-1-r1", "order-2-r1"]).await?;
/// tx.commit().await?;
/// while tracked.due_within(&*db, Duration::from_secs(5)).await? {
///     tokio::time::sleep(Duration::from_millis(250)).await;
/// }
/// for s in tracked.states(&*db).await? {
///     println!("{} {}", s.reference, s.state);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Tracked {}

impl Tracked {
    /// An empty set on `db`'s connection.
    pub async fn new<C: GenericClient>(db: &C) -> Result<Tracked, OutboxError> {
        db.batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS refund_outbox_tracked (reference text PRIMARY KEY);
             TRUNCATE pg_temp.refund_outbox_tracked",
        )
        .await?;
        Ok(Tracked {})
    }

    /// Adds `references` to the set (one statement; a reference already in it stays once).
    /// Inside the transaction that enqueues them, they join the set when it commits.
    pub async fn add<C: GenericClient>(
        &self,
        db: &C,
        references: &[&str],
    ) -> Result<(), OutboxError> {
        if references.is_empty() {
            return Ok(());
        }
        db.execute(
            "INSERT INTO pg_temp.refund_outbox_tracked (reference)
             SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            &[&references],
        )
        .await?;
        Ok(())
    }

    /// The state and not-before time of every intent of the set the outbox has.
    pub async fn states<C: GenericClient>(&self, db: &C) -> Result<Vec<Standing>, OutboxError> {
        let rows = db
            .query(
                "SELECT i.id, i.reference, i.state, i.not_before FROM refund_outbox_intents i
                 JOIN pg_temp.refund_outbox_tracked t USING (reference)",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get(0)?;
                let state: String = row.try_get(2)?;
                Ok(Standing {
                    reference: row.try_get(1)?,
                    state: state.parse().map_err(|e| OutboxError::Corrupt {
                        id,
                        reason: format!("{e}"),
                    })?,
                    not_before: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Whether an intent of the set is open and due within `horizon` (by the database's
    /// clock), or claimed by a worker now.
    pub async fn due_within<C: GenericClient>(
        &self,
        db: &C,
        horizon: Duration,
    ) -> Result<bool, OutboxError> {
        Ok(db
            .query_one(
                "SELECT EXISTS (
                     SELECT 1 FROM refund_outbox_intents i
                     JOIN pg_temp.refund_outbox_tracked t USING (reference)
                     WHERE i.state IN ('pending', 'unknown', 'retry_later')
                       AND (i.not_before <= clock_timestamp() + $1::bigint * interval '1 millisecond'
                            OR i.lease_until > clock_timestamp()))",
                &[&millis(horizon)],
            )
            .await?
            .try_get(0)?)
    }
}
