//! The outbox for applications on sqlx (feature `sqlx`): [`migrate`], [`enqueue`],
//! [`status`] and [`set_rate`] over an sqlx [`PgConnection`], beside the tokio-postgres
//! functions of the crate root, with the same statements and the same guarantees.
//!
//! An sqlx [`Transaction<'_, Postgres>`](::sqlx::Transaction) derefs to a `PgConnection`, so
//! the intent is written inside the application's own transaction and commits or rolls back
//! with its change:
//!
//! ```no_run
//! # async fn example(pool: refund_outbox::sqlx::sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! use refund_core::{MerchantRef, PaymentRef};
//! use refund_outbox::RefundIntent;
//!
//! let mut tx = pool.begin().await?;
//! refund_outbox::sqlx::sqlx::query("UPDATE orders SET status = 'returned' WHERE id = $1")
//!     .bind(42_i64)
//!     .execute(&mut *tx)
//!     .await?;
//! let intent = RefundIntent::new(
//!     "sipay",
//!     PaymentRef::payment("INV-2026-0042"),
//!     "25.00 TRY".parse()?,
//!     MerchantRef::new("order-42-return-1")?,
//! )?;
//! refund_outbox::sqlx::enqueue(&mut tx, &intent).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! Workers stay on tokio-postgres ([`Worker`](crate::Worker)): they own one connection each
//! and prepare their statements once.

use std::num::NonZeroU32;
use std::time::Duration;

/// The sqlx crate the functions here take connections of, re-exported so an application
/// names the same version.
pub use ::sqlx;

use ::sqlx::postgres::PgConnection;
use ::sqlx::{Connection, Row};

use crate::error::OutboxError;
use crate::intent::{ENQUEUE, EXISTING, EnqueueParams, IntentId, RefundIntent};
use crate::migrate::{CREATE_MIGRATIONS, CURRENT, LOCK, MIGRATION_LOCK, RECORD, missing};
use crate::pacing::{SET_RATE, interval_us, millis};
use crate::status::{COUNTS, OutboxStatus, StuckColumns, stuck_sql};

/// [`crate::migrate`] over sqlx: brings the outbox schema up to
/// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) in one transaction under the same advisory lock
/// (tokio-postgres and sqlx callers migrating at once apply each version once). Returns the
/// versions it applied.
pub async fn migrate(conn: &mut PgConnection) -> Result<Vec<i32>, OutboxError> {
    let mut tx = conn.begin().await?;
    ::sqlx::query(LOCK)
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    ::sqlx::raw_sql(CREATE_MIGRATIONS).execute(&mut *tx).await?;
    let current: i32 = ::sqlx::query_scalar(CURRENT).fetch_one(&mut *tx).await?;
    let mut applied = Vec::new();
    for m in missing(current)? {
        let failed = |source| OutboxError::SqlxMigration {
            version: m.version,
            name: m.name,
            source,
        };
        ::sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        ::sqlx::query(RECORD)
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        applied.push(m.version);
    }
    tx.commit().await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "refund outbox schema migrated");
    }
    Ok(applied)
}

/// [`crate::enqueue`] over sqlx: puts `intent` in the outbox as part of the transaction
/// `conn` is in (pass `&mut tx` for an sqlx `Transaction`), or on its own. A reference
/// already in the outbox is refused with [`OutboxError::AlreadyEnqueued`] without failing
/// the statement, so the transaction stays usable.
pub async fn enqueue(
    conn: &mut PgConnection,
    intent: &RefundIntent,
) -> Result<IntentId, OutboxError> {
    let p = EnqueueParams::of(intent);
    let inserted: Option<i64> = ::sqlx::query_scalar(ENQUEUE)
        .bind(p.provider)
        .bind(p.scope)
        .bind(p.payment_id)
        .bind(p.payment_parent)
        .bind(&p.amount)
        .bind(p.currency)
        .bind(p.reason)
        .bind(p.reference)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(id) = inserted {
        tracing::debug!(intent = id, reference = %intent.reference(), provider = %intent.provider(), "refund intent enqueued");
        return Ok(IntentId(id));
    }
    let existing: Option<i64> = ::sqlx::query_scalar(EXISTING)
        .bind(p.reference)
        .fetch_optional(&mut *conn)
        .await?;
    Err(OutboxError::AlreadyEnqueued {
        reference: p.reference.to_owned(),
        existing: existing.map(IntentId),
    })
}

/// [`crate::status`] over sqlx: intents by state and the stuck ones, oldest first, at most
/// `limit`.
pub async fn status(
    conn: &mut PgConnection,
    stuck_after: Duration,
    limit: u32,
) -> Result<OutboxStatus, OutboxError> {
    let mut out = OutboxStatus::default();
    for row in ::sqlx::query(COUNTS).fetch_all(&mut *conn).await? {
        out.add(
            &row.try_get::<String, _>(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
    }
    let rows = ::sqlx::query(&stuck_sql())
        .bind(millis(stuck_after))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
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

/// [`crate::set_rate`] over sqlx: at most `rate` requests per second to `provider` from every
/// worker together; `None` removes the limit.
pub async fn set_rate(
    conn: &mut PgConnection,
    provider: &str,
    rate: Option<NonZeroU32>,
) -> Result<(), OutboxError> {
    ::sqlx::query(SET_RATE)
        .bind(provider)
        .bind(interval_us(rate))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
