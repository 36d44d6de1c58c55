//! What a provider knows about a payment's refunds: the basis for reconciliation.

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::receipt::RefundStatus;
use crate::reference::{MerchantRef, PaymentRef};

/// One refund the provider has on record for a payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefundRecord {
    /// The merchant reference the refund was sent with, when the provider reports it.
    pub reference: Option<String>,
    /// The amount refunded.
    pub amount: Money,
    /// The provider's id for the refund, when it has one.
    pub provider_reference: Option<String>,
    /// Completed or pending.
    pub status: RefundStatus,
}

impl RefundRecord {
    /// A completed refund of `amount`, with no references.
    pub fn new(amount: Money) -> Self {
        RefundRecord {
            reference: None,
            amount,
            provider_reference: None,
            status: RefundStatus::Completed,
        }
    }

    /// Sets the merchant reference the refund carried.
    #[must_use]
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// Sets the provider's id for the refund.
    #[must_use]
    pub fn with_provider_reference(mut self, id: impl Into<String>) -> Self {
        self.provider_reference = Some(id.into());
        self
    }

    /// Sets the status.
    #[must_use]
    pub fn with_status(mut self, status: RefundStatus) -> Self {
        self.status = status;
        self
    }
}

/// A payment's refund state as the provider reports it.
///
/// ```
/// use refund_core::{Currency, MerchantRef, Money, PaymentRef, Reconciliation, RefundRecord, RefundState};
///
/// let tl = |s| Money::parse(s, Currency::Try);
/// let state = RefundState::new(PaymentRef::payment("INV-1"), tl("25")?)
///     .with_paid(tl("100")?)
///     .with_record(RefundRecord::new(tl("25")?).with_reference("r-1"));
///
/// assert_eq!(state.remaining().unwrap().to_string(), "75.00 TRY");
/// assert!(matches!(state.find(&MerchantRef::new("r-1")?), Reconciliation::Applied(_)));
/// assert!(matches!(state.find(&MerchantRef::new("r-2")?), Reconciliation::NotFound));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefundState {
    /// The payment.
    pub payment: PaymentRef,
    /// What was paid, when the provider reports it.
    pub paid: Option<Money>,
    /// The total refunded so far.
    pub refunded: Money,
    /// The individual refunds, when the provider lists them (failed ones included, with
    /// [`RefundStatus::Failed`]; they are not part of `refunded`).
    pub refunds: Vec<RefundRecord>,
    /// Why the provider's answer cannot say how much was refunded (figures missing, a status
    /// field that contradicts the entries), when it cannot. An undetermined state proves
    /// nothing: [`find`](Self::find) answers [`Reconciliation::Undetermined`] for every
    /// reference, and [`remaining`](Self::remaining) is `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undetermined: Option<String>,
}

/// Whether a refund with a given reference is on record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reconciliation<'a> {
    /// A refund with that reference is on record as completed or pending: it was applied.
    Applied(&'a RefundRecord),
    /// The reference is on record only as failed ([`RefundStatus::Failed`]): the provider
    /// processed it and no money moved.
    Failed(&'a RefundRecord),
    /// Every recorded refund carries a reference and none matches: not applied (so far).
    NotFound,
    /// The lookup cannot tell: some refunds carry no reference, the listed refunds do not add
    /// up to the total, or the answer itself is undetermined
    /// ([`RefundState::undetermined`]).
    Undetermined,
}

impl RefundState {
    /// A state with `refunded` so far and no individual records.
    pub fn new(payment: PaymentRef, refunded: Money) -> Self {
        RefundState {
            payment,
            paid: None,
            refunded,
            refunds: Vec::new(),
            undetermined: None,
        }
    }

    /// Marks the state as unable to say how much was refunded, and why.
    #[must_use]
    pub fn with_undetermined(mut self, reason: impl Into<String>) -> Self {
        self.undetermined = Some(reason.into());
        self
    }

    /// Whether the provider's answer says how much was refunded.
    pub fn is_determined(&self) -> bool {
        self.undetermined.is_none()
    }

    /// Sets what was paid.
    #[must_use]
    pub fn with_paid(mut self, paid: Money) -> Self {
        self.paid = Some(paid);
        self
    }

    /// Adds one refund record.
    #[must_use]
    pub fn with_record(mut self, record: RefundRecord) -> Self {
        self.refunds.push(record);
        self
    }

    /// What can still be refunded, when the paid amount is known and the state is determined.
    pub fn remaining(&self) -> Option<Money> {
        if !self.is_determined() {
            return None;
        }
        self.paid?.checked_sub(&self.refunded).ok()
    }

    /// Looks for the refund sent with `reference`.
    ///
    /// - An undetermined state proves nothing: [`Reconciliation::Undetermined`].
    /// - A completed or pending record with the reference: [`Reconciliation::Applied`].
    /// - Only failed records with the reference: [`Reconciliation::Failed`] when the applied
    ///   records account for `refunded`; otherwise [`Reconciliation::Undetermined`] (the
    ///   unexplained refunded amount may be this refund).
    /// - No record with the reference: [`Reconciliation::NotFound`] only when the applied
    ///   records all carry references and add up to `refunded`; otherwise a missing match proves
    ///   nothing and the answer is [`Reconciliation::Undetermined`].
    ///
    /// `NotFound` means "not on record *yet*": lookups lag behind refunds, so it is the
    /// [`Reconciler`](crate::Reconciler) that decides when absence is safe to act on.
    pub fn find(&self, reference: &MerchantRef) -> Reconciliation<'_> {
        if !self.is_determined() {
            return Reconciliation::Undetermined;
        }
        let mut failed = None;
        for record in &self.refunds {
            if record.reference.as_deref() != Some(reference.as_str()) {
                continue;
            }
            if record.status.is_applied() {
                return Reconciliation::Applied(record);
            }
            failed = failed.or(Some(record));
        }
        // A failed record proves "not applied" only when the applied records account for
        // everything the provider says was refunded: otherwise the unexplained part may be
        // this very refund under a status word or a listing the client cannot read.
        if let Some(record) = failed {
            return if self.applied_records_add_up() {
                Reconciliation::Failed(record)
            } else {
                Reconciliation::Undetermined
            };
        }
        if self.applied_records_add_up() {
            Reconciliation::NotFound
        } else {
            Reconciliation::Undetermined
        }
    }

    /// How many records carry `reference` with [`RefundStatus::Failed`].
    pub fn failed_count(&self, reference: &MerchantRef) -> usize {
        self.refunds
            .iter()
            .filter(|r| {
                r.status == RefundStatus::Failed
                    && r.reference.as_deref() == Some(reference.as_str())
            })
            .count()
    }

    /// Whether the completed and pending records all carry references and add up to
    /// `refunded`: only then does a reference missing from them prove anything.
    pub(crate) fn applied_records_add_up(&self) -> bool {
        let applied = || self.refunds.iter().filter(|r| r.status.is_applied());
        let all_referenced = applied().all(|r| r.reference.is_some());
        let listed = applied().try_fold(Money::zero(self.refunded.currency()), |sum, r| {
            sum.checked_add(&r.amount)
        });
        self.is_determined() && all_referenced && listed.is_ok_and(|sum| sum == self.refunded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    fn tl(s: &str) -> Money {
        Money::parse(s, Currency::Try).unwrap()
    }

    fn r(s: &str) -> MerchantRef {
        MerchantRef::new(s).unwrap()
    }

    #[test]
    fn a_total_without_records_is_undetermined() {
        let s = RefundState::new(PaymentRef::payment("I"), tl("10"));
        assert_eq!(s.find(&r("a")), Reconciliation::Undetermined);
    }

    #[test]
    fn nothing_refunded_means_not_found() {
        let s = RefundState::new(PaymentRef::payment("I"), tl("0"));
        assert_eq!(s.find(&r("a")), Reconciliation::NotFound);
    }

    #[test]
    fn an_unreferenced_record_makes_absence_unprovable() {
        let s = RefundState::new(PaymentRef::payment("I"), tl("15"))
            .with_record(RefundRecord::new(tl("10")).with_reference("b"))
            .with_record(RefundRecord::new(tl("5")));
        assert_eq!(s.find(&r("a")), Reconciliation::Undetermined);
        assert!(matches!(s.find(&r("b")), Reconciliation::Applied(_)));
    }

    #[test]
    fn failed_records_are_visible_but_not_refunded() {
        let s = RefundState::new(PaymentRef::payment("I"), tl("10"))
            .with_record(RefundRecord::new(tl("10")).with_reference("ok"))
            .with_record(
                RefundRecord::new(tl("5"))
                    .with_reference("bad")
                    .with_status(RefundStatus::Failed),
            );
        assert!(matches!(s.find(&r("ok")), Reconciliation::Applied(_)));
        assert!(matches!(s.find(&r("bad")), Reconciliation::Failed(_)));
        assert_eq!(s.find(&r("other")), Reconciliation::NotFound);
    }

    #[test]
    fn a_failed_record_with_an_unexplained_total_proves_nothing() {
        // SiPay says 25.00 went back, and the only entry, ours, reads failed: the 25.00 may be
        // ours under a word the client reads as failure ("cancelled" for a void).
        let s = RefundState::new(PaymentRef::payment("I"), tl("25")).with_record(
            RefundRecord::new(tl("25"))
                .with_reference("r")
                .with_status(RefundStatus::Failed),
        );
        assert_eq!(s.find(&r("r")), Reconciliation::Undetermined);
    }

    #[test]
    fn a_failed_and_a_completed_record_with_one_reference_count_as_applied() {
        let s = RefundState::new(PaymentRef::payment("I"), tl("5"))
            .with_record(
                RefundRecord::new(tl("5"))
                    .with_reference("a")
                    .with_status(RefundStatus::Failed),
            )
            .with_record(RefundRecord::new(tl("5")).with_reference("a"));
        assert!(matches!(s.find(&r("a")), Reconciliation::Applied(_)));
    }

    #[test]
    fn an_undetermined_state_proves_nothing() {
        let s = RefundState::new(PaymentRef::payment("I"), tl("0"))
            .with_paid(tl("10"))
            .with_record(RefundRecord::new(tl("5")).with_reference("a"))
            .with_undetermined("no refund figures in the answer");
        assert_eq!(s.find(&r("a")), Reconciliation::Undetermined);
        assert_eq!(s.find(&r("b")), Reconciliation::Undetermined);
        assert_eq!(s.remaining(), None);
        assert!(!s.is_determined());
    }

    #[test]
    fn remaining_needs_the_paid_amount() {
        let s = RefundState::new(PaymentRef::payment("I"), tl("15"));
        assert_eq!(s.remaining(), None);
        assert_eq!(s.with_paid(tl("20")).remaining(), Some(tl("5")));
    }
}
