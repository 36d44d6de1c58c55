//! Refund notifications (webhooks): a provider's own word that a refund reached a state,
//! after the provider crate has verified it.
//!
//! Provider crates verify a notification's signature and turn it into a
//! [`RefundNotification`]; applications then settle a pending refund with it the same way for
//! any provider, and the [`Reconciler`](crate::Reconciler)'s verdicts come out of it too.

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::receipt::{RefundReceipt, RefundStatus};
use crate::reconcile::Verdict;
use crate::reference::PaymentRef;
use crate::state::RefundRecord;

/// What a notification says happened to the refund.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotificationStatus {
    /// The provider completed the refund: the money is on its way back.
    Completed,
    /// The provider says the refund failed: no money moved.
    Failed,
    /// A status the provider crate does not recognise, kept verbatim. Never a success: it
    /// settles nothing.
    Unrecognised(String),
}

/// A verified refund notification, provider-neutral.
///
/// ```
/// use refund_core::*;
///
/// let tl = |s| Money::parse(s, Currency::Try);
/// let pending = RefundReceipt::new(
///     "sipay", Operation::Refund, PaymentRef::payment("INV-1"),
///     MerchantRef::new("r-1")?, tl("10.50")?, RefundStatus::Pending,
/// );
/// let notice = RefundNotification::new(
///     "sipay", PaymentRef::payment("INV-1"), tl("10.50")?, NotificationStatus::Completed,
/// );
/// assert_eq!(notice.settles(&pending), Some(RefundStatus::Completed));
/// assert!(matches!(notice.verdict(), Verdict::Applied(_)));
///
/// let odd = RefundNotification::new(
///     "sipay", PaymentRef::payment("INV-1"), tl("10.50")?,
///     NotificationStatus::Unrecognised("Processing".into()),
/// );
/// assert_eq!(odd.settles(&pending), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefundNotification {
    /// The provider that sent it, as [`RefundProvider::name`](crate::RefundProvider::name).
    pub provider: String,
    /// The payment refunded.
    pub payment: PaymentRef,
    /// The amount the notification is about.
    pub amount: Money,
    /// What happened.
    pub status: NotificationStatus,
    /// The merchant reference of the refund, when the provider sends it back.
    pub reference: Option<String>,
    /// The provider's own id of the refund or order, when it sends one.
    pub provider_reference: Option<String>,
}

impl RefundNotification {
    /// A notification with no references.
    pub fn new(
        provider: impl Into<String>,
        payment: PaymentRef,
        amount: Money,
        status: NotificationStatus,
    ) -> Self {
        RefundNotification {
            provider: provider.into(),
            payment,
            amount,
            status,
            reference: None,
            provider_reference: None,
        }
    }

    /// Sets the merchant reference.
    #[must_use]
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// Sets the provider's id.
    #[must_use]
    pub fn with_provider_reference(mut self, id: impl Into<String>) -> Self {
        self.provider_reference = Some(id.into());
        self
    }

    /// The refund record this notification proves: completed or failed; `None` for a status
    /// nobody recognised.
    pub fn record(&self) -> Option<RefundRecord> {
        let status = match self.status {
            NotificationStatus::Completed => RefundStatus::Completed,
            NotificationStatus::Failed => RefundStatus::Failed,
            _ => return None,
        };
        let mut record = RefundRecord::new(self.amount).with_status(status);
        record.reference.clone_from(&self.reference);
        record
            .provider_reference
            .clone_from(&self.provider_reference);
        Some(record)
    }

    /// What the reconciliation policy makes of it: completed is [`Verdict::Applied`], failed
    /// is [`Verdict::NotApplied`], anything else [`Verdict::Undetermined`].
    pub fn verdict(&self) -> Verdict {
        match (self.record(), &self.status) {
            (Some(record), NotificationStatus::Completed) => Verdict::Applied(record),
            (Some(record), _) => Verdict::NotApplied(record),
            (None, status) => Verdict::Undetermined(format!(
                "{} sent a notification with a status nobody recognises: {status:?}",
                self.provider
            )),
        }
    }

    /// The final status of `receipt` if this notification settles it: the same provider and
    /// payment, the same amount, and — when both carry one — the same reference. Only a
    /// [`Pending`](RefundStatus::Pending) receipt can be settled; an unrecognised status settles
    /// nothing. Two pending refunds of the same amount on one payment cannot be told apart by
    /// a notification that carries no reference: either matches.
    pub fn settles(&self, receipt: &RefundReceipt) -> Option<RefundStatus> {
        let same = receipt.status == RefundStatus::Pending
            && receipt.provider == self.provider
            && receipt.payment == self.payment
            && receipt.amount == self.amount
            && self
                .reference
                .as_deref()
                .is_none_or(|r| r == receipt.reference.as_str());
        if !same {
            return None;
        }
        self.record().map(|record| record.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, MerchantRef, Operation};

    fn tl(s: &str) -> Money {
        Money::parse(s, Currency::Try).unwrap()
    }

    fn pending(amount: &str) -> RefundReceipt {
        RefundReceipt::new(
            "sipay",
            Operation::Refund,
            PaymentRef::payment("INV-1"),
            MerchantRef::new("r-1").unwrap(),
            tl(amount),
            RefundStatus::Pending,
        )
    }

    fn notice(status: NotificationStatus) -> RefundNotification {
        RefundNotification::new("sipay", PaymentRef::payment("INV-1"), tl("10"), status)
    }

    #[test]
    fn only_a_matching_pending_refund_is_settled() {
        let done = notice(NotificationStatus::Completed);
        assert_eq!(done.settles(&pending("10")), Some(RefundStatus::Completed));
        assert_eq!(done.settles(&pending("10.01")), None);
        let mut completed = pending("10");
        completed.status = RefundStatus::Completed;
        assert_eq!(done.settles(&completed), None);
        assert_eq!(done.with_reference("r-2").settles(&pending("10")), None);
        assert_eq!(
            notice(NotificationStatus::Failed).settles(&pending("10")),
            Some(RefundStatus::Failed)
        );
    }

    #[test]
    fn an_unrecognised_status_is_never_a_success() {
        let odd = notice(NotificationStatus::Unrecognised("Done?".into()));
        assert_eq!(odd.record(), None);
        assert_eq!(odd.settles(&pending("10")), None);
        assert!(matches!(odd.verdict(), Verdict::Undetermined(_)));
        assert!(matches!(
            notice(NotificationStatus::Failed).verdict(),
            Verdict::NotApplied(_)
        ));
    }
}
