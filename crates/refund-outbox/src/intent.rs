//! Refund intents and enqueueing them inside the application's transaction.

use std::fmt;

use refund_core::{MerchantRef, Money, PaymentRef, PaymentScope, RefundReason, RefundRequest};
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::error::OutboxError;

/// The id of an intent in the outbox (`refund_outbox_intents.id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IntentId(pub i64);

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an intent stands: the one state set of the attempt lifecycle
/// ([`AttemptState`](refund_core::AttemptState)), stored under its names.
///
/// | state | means | a worker |
/// |---|---|---|
/// | `pending` | never sent | sends it |
/// | `unknown` | a request may have reached the provider: an attempt is out, or its outcome was unknown | looks it up (after `not_before`) and resends only on [`Verdict::SafeToResend`](refund_core::Verdict) |
/// | `retry_later` | refused for now, rate limited, not reached, or proven absent | sends it again, with the same reference, after `not_before` |
/// | `refunded` | final: the provider refunded it | — |
/// | `declined` | final: the provider refused it, or a lookup found it failed | — |
/// | `failed` | final: nothing was refunded and nothing more is sent: the request was invalid, the credentials were rejected, the reference was used up by refusals | — (a person decides) |
///
/// The outbox never stores `sending`: its in-flight state is `unknown`, committed before the
/// request leaves.
pub use refund_core::AttemptState as IntentState;

/// A refund the application has decided on: which provider, which payment, how much, and the
/// merchant's own reference for it (the key that makes it happen at most once).
///
/// ```
/// use refund_core::{MerchantRef, Money, PaymentRef, RefundReason};
/// use refund_outbox::RefundIntent;
///
/// let intent = RefundIntent::new(
///     "sipay",
///     PaymentRef::payment("INV-2026-0042"),
///     "25.00 TRY".parse::<Money>()?,
///     MerchantRef::new("order-42-return-1")?,
/// )?
/// .with_reason(RefundReason::BuyerRequest);
/// assert_eq!(intent.reference().as_str(), "order-42-return-1");
/// assert_eq!(intent.request()?.amount().to_string(), "25.00 TRY");
///
/// // A refund of nothing is refused before it reaches the database.
/// let zero = RefundIntent::new("sipay", PaymentRef::payment("INV-1"), "0 TRY".parse()?, MerchantRef::new("r-0")?);
/// assert!(zero.is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundIntent {
    provider: String,
    payment: PaymentRef,
    amount: Money,
    reference: MerchantRef,
    reason: Option<RefundReason>,
}

impl RefundIntent {
    /// An intent to refund `amount` of `payment` through the provider registered under
    /// `provider` in the workers' [`ProviderRegistry`](refund_core::ProviderRegistry), with
    /// the merchant reference `reference`. Checked as a [`RefundRequest`] would be (a positive
    /// amount, valid payment ids); the provider's own checks come when it is sent.
    pub fn new(
        provider: impl Into<String>,
        payment: PaymentRef,
        amount: Money,
        reference: MerchantRef,
    ) -> Result<RefundIntent, OutboxError> {
        let intent = RefundIntent {
            provider: provider.into(),
            payment,
            amount,
            reference,
            reason: None,
        };
        if intent.provider.trim().is_empty() || intent.provider.len() > 64 {
            return Err(OutboxError::InvalidIntent(
                "the provider name must be 1 to 64 characters".to_owned(),
            ));
        }
        intent.request()?;
        Ok(intent)
    }

    /// Sets why the merchant refunds (sent to providers that take a reason).
    #[must_use]
    pub fn with_reason(mut self, reason: RefundReason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The provider's key in the workers' registry.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The payment to refund.
    pub fn payment(&self) -> &PaymentRef {
        &self.payment
    }

    /// The amount.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// The merchant's reference.
    pub fn reference(&self) -> &MerchantRef {
        &self.reference
    }

    /// The reason, when set.
    pub fn reason(&self) -> Option<RefundReason> {
        self.reason
    }

    /// The request a worker sends for it: always with the intent's own reference.
    pub fn request(&self) -> Result<RefundRequest, OutboxError> {
        let mut builder = RefundRequest::builder(self.payment.clone(), self.amount)
            .reference(self.reference.as_str());
        if let Some(reason) = self.reason {
            builder = builder.reason(reason);
        }
        builder
            .build()
            .map_err(|e| OutboxError::InvalidIntent(e.to_string()))
    }
}

/// `refund_reason` as stored.
pub(crate) fn reason_name(reason: RefundReason) -> &'static str {
    match reason {
        RefundReason::BuyerRequest => "buyer_request",
        RefundReason::DoublePayment => "double_payment",
        RefundReason::Fraud => "fraud",
        _ => "other",
    }
}

pub(crate) fn reason_from_name(name: &str) -> Option<RefundReason> {
    Some(match name {
        "buyer_request" => RefundReason::BuyerRequest,
        "double_payment" => RefundReason::DoublePayment,
        "fraud" => RefundReason::Fraud,
        "other" => RefundReason::Other,
        _ => return None,
    })
}

/// The payment of a row, from its `payment_scope`, `payment_id` and `payment_parent`.
pub(crate) fn payment_from_columns(scope: &str, id: String, parent: Option<String>) -> PaymentRef {
    match (scope, parent) {
        ("item", Some(parent)) => PaymentRef::item(id).in_payment(parent),
        ("item", None) => PaymentRef::item(id),
        _ => PaymentRef::payment(id),
    }
}

pub(crate) fn scope_name(scope: PaymentScope) -> &'static str {
    match scope {
        PaymentScope::Item => "item",
        _ => "payment",
    }
}

/// Puts `intent` in the outbox as part of the caller's transaction (or, given a plain
/// client, on its own): it commits or rolls back with the application's own change, and
/// a worker sends it only once it is committed.
///
/// A reference that is already in the outbox, committed or in a transaction that commits
/// first, is refused with [`OutboxError::AlreadyEnqueued`]; the statement does not fail, so
/// the caller's transaction stays usable (`INSERT … ON CONFLICT DO NOTHING` on the unique
/// reference: no second intent, never a second refund).
///
/// ```no_run
/// # async fn example(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use refund_core::{MerchantRef, PaymentRef};
/// use refund_outbox::{OutboxError, RefundIntent, enqueue};
///
/// let tx = client.transaction().await?;
/// tx.execute("UPDATE orders SET status = 'returned' WHERE id = $1", &[&42_i64]).await?;
/// let intent = RefundIntent::new(
///     "sipay",
///     PaymentRef::payment("INV-2026-0042"),
///     "25.00 TRY".parse()?,
///     MerchantRef::new("order-42-return-1")?,
/// )?;
/// match enqueue(&tx, &intent).await {
///     Ok(id) => println!("refund intent {id} enqueued"),
///     Err(OutboxError::AlreadyEnqueued { existing, .. }) => println!("already there: {existing:?}"),
///     Err(e) => return Err(e.into()),
/// }
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub async fn enqueue<C: GenericClient>(
    db: &C,
    intent: &RefundIntent,
) -> Result<IntentId, OutboxError> {
    let p = EnqueueParams::of(intent);
    let inserted = db
        .query_opt(
            ENQUEUE,
            &[
                &p.provider,
                &p.scope,
                &p.payment_id,
                &p.payment_parent,
                &p.amount,
                &p.currency,
                &p.reason,
                &p.reference,
            ],
        )
        .await?;
    if let Some(row) = inserted {
        let id = IntentId(row.try_get(0)?);
        tracing::debug!(intent = id.0, reference = %intent.reference, provider = %intent.provider, "refund intent enqueued");
        return Ok(id);
    }
    let existing = db
        .query_opt(EXISTING, &[&intent.reference.as_str()])
        .await?
        .map(|row| row.try_get(0).map(IntentId))
        .transpose()?;
    Err(OutboxError::AlreadyEnqueued {
        reference: intent.reference.as_str().to_owned(),
        existing,
    })
}

/// Inserts an intent unless its reference is taken; returns its id when inserted.
pub(crate) const ENQUEUE: &str = "
    INSERT INTO refund_outbox_intents
        (provider, payment_scope, payment_id, payment_parent, amount, currency, reason, reference)
    VALUES ($1, $2, $3, $4, $5::text::numeric, $6, $7, $8)
    ON CONFLICT ON CONSTRAINT refund_outbox_intents_reference_key DO NOTHING
    RETURNING id";

/// The id of the intent with reference `$1`.
pub(crate) const EXISTING: &str = "SELECT id FROM refund_outbox_intents WHERE reference = $1";

/// The parameters of [`ENQUEUE`], in order.
pub(crate) struct EnqueueParams<'a> {
    pub(crate) provider: &'a str,
    pub(crate) scope: &'static str,
    pub(crate) payment_id: &'a str,
    pub(crate) payment_parent: Option<&'a str>,
    pub(crate) amount: String,
    pub(crate) currency: &'static str,
    pub(crate) reason: Option<&'static str>,
    pub(crate) reference: &'a str,
}

impl EnqueueParams<'_> {
    pub(crate) fn of(intent: &RefundIntent) -> EnqueueParams<'_> {
        EnqueueParams {
            provider: &intent.provider,
            scope: scope_name(intent.payment.scope()),
            payment_id: intent.payment.id(),
            payment_parent: intent.payment.parent(),
            amount: intent.amount.amount().to_string(),
            currency: intent.amount.currency().code(),
            reason: intent.reason.map(reason_name),
            reference: intent.reference.as_str(),
        }
    }
}
