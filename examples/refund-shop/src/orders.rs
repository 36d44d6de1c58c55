//! The shop's own table, `shop_orders`, on sqlx: an order is `paid`, then `returned` (its
//! refund intent is in the outbox, written in the same transaction), then, for SiPay,
//! `refund_completed` once SiPay's verified notification says so.

use refund_core::{MerchantRef, Money, PaymentRef, PaymentScope};
use refund_outbox::sqlx::sqlx::{self, PgConnection, PgPool, Row};
use refund_outbox::{IntentId, OutboxError, RefundIntent};

use crate::error::ShopError;

/// The shop's migration (idempotent), compiled in.
const MIGRATION: &str = include_str!("../migrations/0001_orders.sql");

/// Creates `shop_orders` when missing, then brings the outbox's schema up to date.
pub async fn migrate(pool: &PgPool) -> Result<(), ShopError> {
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(MIGRATION).execute(&mut *conn).await?;
    refund_outbox::sqlx::migrate(&mut conn).await?;
    Ok(())
}

/// An order as the shop stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The shop's order number.
    pub id: i64,
    /// Which provider took the payment: `sipay` or `iyzico` (the outbox registry's key).
    pub provider: String,
    /// The provider's reference to the payment.
    pub payment: PaymentRef,
    /// What was paid, and what a return refunds.
    pub amount: Money,
    /// `paid`, `returned` or `refund_completed`.
    pub status: String,
}

/// The merchant reference of an order's return refund: derived from the order id alone, so a
/// repeated return can never make a second intent (the outbox's references are unique).
pub fn return_reference(order_id: i64) -> Result<MerchantRef, OutboxError> {
    MerchantRef::new(format!("shop-order-{order_id}-return"))
        .map_err(|e| OutboxError::InvalidIntent(e.to_string()))
}

/// Adds a paid order (what the checkout would have written).
pub async fn insert(pool: &PgPool, order: &Order) -> Result<(), ShopError> {
    let scope = match order.payment.scope() {
        PaymentScope::Item => "item",
        _ => "payment",
    };
    sqlx::query(
        "INSERT INTO shop_orders (id, provider, payment_scope, payment_id, payment_parent, \
         amount, currency, status) VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, 'paid')",
    )
    .bind(order.id)
    .bind(&order.provider)
    .bind(scope)
    .bind(order.payment.id())
    .bind(order.payment.parent())
    .bind(order.amount.amount().to_string())
    .bind(order.amount.currency().code())
    .execute(pool)
    .await?;
    Ok(())
}

const SELECT: &str = "SELECT id, provider, payment_scope, payment_id, payment_parent, \
                      amount::text, currency, status FROM shop_orders";

fn order_of(row: &sqlx::postgres::PgRow) -> Result<Order, ShopError> {
    let scope: String = row.try_get(2)?;
    let id: String = row.try_get(3)?;
    let parent: Option<String> = row.try_get(4)?;
    let payment = match (scope.as_str(), parent) {
        ("item", Some(parent)) => PaymentRef::item(id).in_payment(parent),
        ("item", None) => PaymentRef::item(id),
        _ => PaymentRef::payment(id),
    };
    let amount: String = row.try_get(5)?;
    let currency: String = row.try_get(6)?;
    let amount = format!("{amount} {currency}")
        .parse::<Money>()
        .map_err(|e| ShopError::Config(format!("an order's amount is unreadable: {e}")))?;
    Ok(Order {
        id: row.try_get(0)?,
        provider: row.try_get(1)?,
        payment,
        amount,
        status: row.try_get(7)?,
    })
}

/// One order, by id.
pub async fn find(pool: &PgPool, id: i64) -> Result<Option<Order>, ShopError> {
    let row = sqlx::query(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(order_of).transpose()
}

/// Every order, by id.
pub async fn all(pool: &PgPool) -> Result<Vec<Order>, ShopError> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY id"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(order_of).collect()
}

/// What a return did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    /// The order is now `returned` and its refund intent is enqueued (committed together).
    Accepted(IntentId),
    /// The order was returned before: nothing was written (a repeated POST).
    AlreadyReturned {
        /// The order's status.
        status: String,
    },
    /// No such order.
    NotFound,
    /// The order is `paid`, but an intent with its reference is already in the outbox (not
    /// written by this service's returns): nothing was written, the order stays `paid`.
    Conflict,
}

/// Returns an order: in ONE transaction, locks the order row, marks it `returned` and enqueues
/// its refund intent; both commit or neither does. A second return of the same order (even at
/// the same moment: the row lock orders them) finds it returned and writes nothing.
pub async fn return_order(pool: &PgPool, id: i64) -> Result<Returned, ShopError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(&format!("{SELECT} WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(order) = row.as_ref().map(order_of).transpose()? else {
        return Ok(Returned::NotFound);
    };
    if order.status != "paid" {
        return Ok(Returned::AlreadyReturned {
            status: order.status,
        });
    }
    sqlx::query("UPDATE shop_orders SET status = 'returned', returned_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    match enqueue(&mut tx, &order).await {
        Ok(intent) => {
            tx.commit().await?;
            Ok(Returned::Accepted(intent))
        }
        Err(OutboxError::AlreadyEnqueued { .. }) => {
            tx.rollback().await?;
            Ok(Returned::Conflict)
        }
        // Dropping `tx` rolls the order's change back with it.
        Err(e) => Err(e.into()),
    }
}

async fn enqueue(conn: &mut PgConnection, order: &Order) -> Result<IntentId, OutboxError> {
    let intent = RefundIntent::new(
        order.provider.clone(),
        order.payment.clone(),
        order.amount,
        return_reference(order.id)?,
    )?;
    refund_outbox::sqlx::enqueue(conn, &intent).await
}

/// Settles a SiPay order whose verified notification says its refund completed: the
/// `returned` order of that invoice and amount becomes `refund_completed`. Returns the order
/// settled, `None` when none matched (a repeat, or a refund made elsewhere).
pub async fn complete_sipay_refund(
    pool: &PgPool,
    invoice_id: &str,
    amount: Money,
) -> Result<Option<i64>, ShopError> {
    let id = sqlx::query_scalar(
        "UPDATE shop_orders SET status = 'refund_completed', completed_at = now() \
         WHERE provider = 'sipay' AND payment_scope = 'payment' AND payment_id = $1 \
         AND amount = $2::numeric AND currency = $3 AND status = 'returned' RETURNING id",
    )
    .bind(invoice_id)
    .bind(amount.amount().to_string())
    .bind(amount.currency().code())
    .fetch_optional(pool)
    .await?;
    Ok(id)
}
