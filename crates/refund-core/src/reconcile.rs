//! The reconciliation policy: what an outcome-unknown refund attempt turned out to be.
//!
//! One policy for [`Retrying`](crate::Retrying), `refund batch` and applications alike. After
//! an attempt whose outcome is unknown (a timeout, a reset, an unreadable answer, a duplicate
//! reference), the refund is looked up by its reference:
//!
//! | the lookup shows | the verdict | what to do |
//! |---|---|---|
//! | the reference, completed or pending | [`Verdict::Applied`] | record it as refunded |
//! | the reference, only as failed | [`Verdict::NotApplied`] | record it as not refunded |
//! | nothing, attempt younger than the settle time | [`Verdict::NotYetKnown`] | look again later; **do not resend** |
//! | nothing, attempt older than the settle time | [`Verdict::SafeToResend`] | resend with the **same** reference |
//! | an answer that cannot tell | [`Verdict::Undetermined`] | look again later; a person decides if it persists |
//!
//! Real providers apply requests after the client gave up, and show them in lookups only
//! later: a lookup that finds nothing is not proof until the attempt is older than the
//! provider's [settle time](crate::Capabilities::settle_time).

use std::time::{Duration, SystemTime};

use crate::attempt::Attempt;
use crate::error::RefundError;
use crate::provider::RefundProvider;
use crate::reference::{MerchantRef, PaymentRef};
use crate::state::{Reconciliation, RefundRecord, RefundState};

/// What a lookup says about one outcome-unknown attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The refund is on record, completed or pending: it was applied. Never resend.
    Applied(RefundRecord),
    /// The refund is on record only as failed: the provider processed it and no money moved.
    NotApplied(RefundRecord),
    /// Nothing is on record yet, but the attempt is younger than the settle time: it may still
    /// appear. Look again after `settles_in`; never resend before.
    NotYetKnown {
        /// How long until the attempt is older than the settle time.
        settles_in: Duration,
    },
    /// Nothing is on record and the attempt is older than the settle time: the attempt did not
    /// take effect. Resend with the same reference (a provider that deduplicates references
    /// then refuses a duplicate instead of paying twice).
    SafeToResend,
    /// The lookup cannot tell whether the refund was applied; the reason says why.
    Undetermined(String),
}

impl Verdict {
    /// A short, stable name: `applied`, `not_applied`, `not_yet_known`, `safe_to_resend`,
    /// `undetermined`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Applied(_) => "applied",
            Verdict::NotApplied(_) => "not_applied",
            Verdict::NotYetKnown { .. } => "not_yet_known",
            Verdict::SafeToResend => "safe_to_resend",
            Verdict::Undetermined(_) => "undetermined",
        }
    }
}

/// The reconciliation policy, with the settle time of one provider.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use refund_core::{Currency, MerchantRef, Money, PaymentRef, Reconciler, RefundRecord, RefundState, Verdict};
///
/// let reconciler = Reconciler::new(Duration::from_secs(60));
/// let reference = MerchantRef::new("order-42-r1")?;
/// let nothing = RefundState::new(PaymentRef::payment("INV-1"), Money::zero(Currency::Try));
/// let sent = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
///
/// // Ten seconds after the attempt, an empty lookup proves nothing yet.
/// let soon = sent + Duration::from_secs(10);
/// assert_eq!(
///     reconciler.judge(&nothing, &reference, sent, soon),
///     Verdict::NotYetKnown { settles_in: Duration::from_secs(50) }
/// );
/// // After the settle time it does.
/// let later = sent + Duration::from_secs(61);
/// assert_eq!(reconciler.judge(&nothing, &reference, sent, later), Verdict::SafeToResend);
///
/// // A lookup that lists the reference settles it at once.
/// let tl = |s| Money::parse(s, Currency::Try);
/// let applied = RefundState::new(PaymentRef::payment("INV-1"), tl("5")?)
///     .with_record(RefundRecord::new(tl("5")?).with_reference("order-42-r1"));
/// assert!(matches!(reconciler.judge(&applied, &reference, sent, soon), Verdict::Applied(_)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconciler {
    settle_time: Duration,
}

impl Reconciler {
    /// A policy for a provider whose lookups may lag `settle_time` behind an attempt.
    pub const fn new(settle_time: Duration) -> Self {
        Reconciler { settle_time }
    }

    /// The policy for `provider`, with the settle time it declares in its
    /// [`Capabilities`](crate::Capabilities).
    pub fn for_provider<P: RefundProvider + ?Sized>(provider: &P) -> Self {
        Reconciler::new(provider.capabilities().settle_time)
    }

    /// The settle time.
    pub const fn settle_time(&self) -> Duration {
        self.settle_time
    }

    /// When an attempt made at `attempted_at` is settled: a lookup after this that does not
    /// find it is proof that it did not take effect.
    pub fn settles_at(&self, attempted_at: SystemTime) -> SystemTime {
        attempted_at
            .checked_add(self.settle_time)
            .unwrap_or(attempted_at)
    }

    /// Judges the attempt with `reference` made at `attempted_at`, from a lookup's `state`
    /// taken at `now`, when it is the first attempt with that reference. A clock that went
    /// backwards counts as no time passed.
    pub fn judge(
        &self,
        state: &RefundState,
        reference: &MerchantRef,
        attempted_at: SystemTime,
        now: SystemTime,
    ) -> Verdict {
        self.judge_after(state, reference, 0, attempted_at, now)
    }

    /// [`judge`](Self::judge) for an attempt that followed `earlier_failures` attempts with the
    /// same reference which the provider answered with a decline (each may have left a failed
    /// record). Only a failed record *beyond* those proves that this attempt failed too; a
    /// failed record from an earlier attempt says nothing about the latest one.
    pub fn judge_after(
        &self,
        state: &RefundState,
        reference: &MerchantRef,
        earlier_failures: usize,
        attempted_at: SystemTime,
        now: SystemTime,
    ) -> Verdict {
        let absent = match state.find(reference) {
            Reconciliation::Applied(record) => {
                return Verdict::Applied(applied_total(state, record));
            }
            Reconciliation::Failed(record) if state.failed_count(reference) > earlier_failures => {
                return Verdict::NotApplied(record.clone());
            }
            Reconciliation::Failed(_) => state.applied_records_add_up(),
            Reconciliation::NotFound => true,
            _ => false,
        };
        if !absent {
            return Verdict::Undetermined(match &state.undetermined {
                Some(why) => format!("the lookup cannot say what was refunded: {why}"),
                None => format!(
                    "the lookup lists {} refunded without a reference for every refund",
                    state.refunded
                ),
            });
        }
        let elapsed = now.duration_since(attempted_at).unwrap_or(Duration::ZERO);
        match self.settle_time.checked_sub(elapsed) {
            Some(left) if !left.is_zero() => Verdict::NotYetKnown { settles_in: left },
            _ => Verdict::SafeToResend,
        }
    }

    /// Judges `attempt` from a lookup's `state` taken at `now`: [`judge_after`](Self::judge_after)
    /// with the attempt's refusals, and one more rule: absence is proof only when nothing
    /// unexplained is on record. An applied refund of the attempt's [amount](Attempt::amount)
    /// listed under a reference that is neither the attempt's nor one the driver
    /// [knows](Attempt::known_references) may be this attempt relabelled by the provider, so the
    /// verdict is [`Verdict::Undetermined`], never "not applied" or "safe to resend".
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use refund_core::*;
    ///
    /// let tl = |s| Money::parse(s, Currency::Try);
    /// let sent = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    /// let attempt = Attempt::first(MerchantRef::new("r-1")?, sent).with_amount(tl("10")?);
    /// // The provider lists 10.00 refunded under a reference we never used.
    /// let relabelled = RefundState::new(PaymentRef::payment("P-1"), tl("10")?)
    ///     .with_record(RefundRecord::new(tl("10")?).with_reference("iyz-7781"));
    /// let reconciler = Reconciler::new(Duration::from_secs(60));
    /// let verdict = reconciler.judge_attempt(&relabelled, &attempt, sent + Duration::from_secs(3600));
    /// assert!(matches!(verdict, Verdict::Undetermined(_)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn judge_attempt(
        &self,
        state: &RefundState,
        attempt: &Attempt,
        now: SystemTime,
    ) -> Verdict {
        let earlier = usize::try_from(attempt.refusals).unwrap_or(usize::MAX);
        let verdict = self.judge_after(
            state,
            &attempt.reference,
            earlier,
            attempt.attempted_at,
            now,
        );
        if !matches!(
            verdict,
            Verdict::NotApplied(_) | Verdict::SafeToResend | Verdict::NotYetKnown { .. }
        ) {
            return verdict;
        }
        let Some(amount) = attempt.amount else {
            return verdict;
        };
        let stranger = state.refunds.iter().find(|r| {
            r.status.is_applied()
                && r.amount == amount
                && r.reference
                    .as_deref()
                    .is_some_and(|other| !attempt.explains(other))
        });
        match stranger {
            Some(record) => Verdict::Undetermined(format!(
                "the lookup lists an applied refund of {amount} under reference {:?}, which is not \
                 ours: it may be this attempt under a label the provider chose, so its absence is \
                 not proven",
                record.reference.as_deref().unwrap_or("")
            )),
            None => verdict,
        }
    }

    /// Looks `payment` up through `provider` and judges `attempt` by it: the one lookup entry
    /// point of every driver. The time is read from `clock` **before** the lookup is asked (a
    /// lookup's snapshot is taken somewhere between the ask and the answer, so the earlier
    /// reading is the cautious one), and the attempt's refusals are counted
    /// ([`judge_after`](Self::judge_after)). A failed lookup is returned as its error: it proves
    /// nothing either.
    ///
    /// `clock` is the driver's: the system clock, or a database's.
    pub async fn look_up<P: RefundProvider + ?Sized>(
        &self,
        provider: &P,
        payment: &PaymentRef,
        attempt: &Attempt,
        clock: impl Fn() -> SystemTime,
    ) -> Result<Judged, RefundError> {
        let asked_at = clock();
        let state = match provider.refund_state(payment).await {
            Ok(state) => state,
            Err(e) => {
                #[cfg(feature = "metrics")]
                crate::metrics::lookup(provider.name(), "lookup_failed");
                return Err(e);
            }
        };
        let verdict = self.judge_attempt(&state, attempt, asked_at);
        #[cfg(feature = "metrics")]
        crate::metrics::lookup(provider.name(), verdict.kind());
        tracing::info!(
            provider = provider.name(),
            reference = %attempt.reference,
            verdict = verdict.kind(),
            "reconciled an outcome-unknown attempt"
        );
        Ok(Judged {
            verdict,
            asked_at,
            settles_at: self.settles_at(attempt.attempted_at),
            state,
        })
    }
}

/// A lookup's verdict on one attempt, with the times it was judged by.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Judged {
    /// The verdict.
    pub verdict: Verdict,
    /// When the lookup was asked (the time it was judged by).
    pub asked_at: SystemTime,
    /// When the attempt is settled: an absence after this is proof.
    pub settles_at: SystemTime,
    /// What the lookup answered.
    pub state: RefundState,
}

impl Judged {
    /// A verdict judged at `asked_at` for an attempt that settles at `settles_at` (for tests and
    /// drivers that judge by [`Reconciler::judge_after`] themselves).
    pub fn new(
        verdict: Verdict,
        state: RefundState,
        asked_at: SystemTime,
        settles_at: SystemTime,
    ) -> Self {
        Judged {
            verdict,
            asked_at,
            settles_at,
            state,
        }
    }
}

/// One record for everything applied under `first`'s reference: a provider may list one refund
/// over several lines (iyzico's payment-level refund touches every basket line).
fn applied_total(state: &RefundState, first: &RefundRecord) -> RefundRecord {
    let mut total = first.clone();
    let mut seen_first = false;
    for record in &state.refunds {
        if record.reference != first.reference || !record.status.is_applied() {
            continue;
        }
        if !seen_first && record == first {
            seen_first = true;
            continue;
        }
        match total.amount.checked_add(&record.amount) {
            Ok(sum) => total.amount = sum,
            // Another currency or an overflow: keep the first record as found.
            Err(_) => return first.clone(),
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, Money, RefundStatus};

    fn tl(s: &str) -> Money {
        Money::parse(s, Currency::Try).unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn reference() -> MerchantRef {
        MerchantRef::new("r-1").unwrap()
    }

    const POLICY: Reconciler = Reconciler::new(Duration::from_secs(30));

    #[test]
    fn nothing_on_record_is_not_proof_until_the_settle_time_has_passed() {
        let empty = RefundState::new(PaymentRef::payment("I"), tl("0"));
        assert_eq!(
            POLICY.judge(&empty, &reference(), at(100), at(100)),
            Verdict::NotYetKnown {
                settles_in: Duration::from_secs(30)
            }
        );
        assert_eq!(
            POLICY.judge(&empty, &reference(), at(100), at(129)),
            Verdict::NotYetKnown {
                settles_in: Duration::from_secs(1)
            }
        );
        assert_eq!(
            POLICY.judge(&empty, &reference(), at(100), at(130)),
            Verdict::SafeToResend
        );
    }

    #[test]
    fn a_refund_listed_over_several_lines_is_applied_in_full() {
        let state = RefundState::new(PaymentRef::payment("I"), tl("10"))
            .with_record(RefundRecord::new(tl("6")).with_reference("r-1"))
            .with_record(RefundRecord::new(tl("4")).with_reference("r-1"));
        let Verdict::Applied(record) = POLICY.judge(&state, &reference(), at(1), at(1)) else {
            panic!("not applied")
        };
        assert_eq!(record.amount, tl("10"));
    }

    #[test]
    fn a_clock_that_went_backwards_counts_as_no_time() {
        let empty = RefundState::new(PaymentRef::payment("I"), tl("0"));
        assert!(matches!(
            POLICY.judge(&empty, &reference(), at(100), at(50)),
            Verdict::NotYetKnown { .. }
        ));
    }

    #[test]
    fn records_settle_the_attempt_at_once() {
        let applied = RefundState::new(PaymentRef::payment("I"), tl("5"))
            .with_record(RefundRecord::new(tl("5")).with_reference("r-1"));
        assert!(matches!(
            POLICY.judge(&applied, &reference(), at(100), at(100)),
            Verdict::Applied(_)
        ));
        let failed = RefundState::new(PaymentRef::payment("I"), tl("0")).with_record(
            RefundRecord::new(tl("5"))
                .with_reference("r-1")
                .with_status(RefundStatus::Failed),
        );
        assert!(matches!(
            POLICY.judge(&failed, &reference(), at(100), at(100)),
            Verdict::NotApplied(_)
        ));
    }

    #[test]
    fn a_failed_record_of_an_earlier_attempt_says_nothing_about_the_latest() {
        let failed_once = RefundState::new(PaymentRef::payment("I"), tl("0")).with_record(
            RefundRecord::new(tl("5"))
                .with_reference("r-1")
                .with_status(RefundStatus::Failed),
        );
        assert!(matches!(
            POLICY.judge_after(&failed_once, &reference(), 1, at(100), at(100)),
            Verdict::NotYetKnown { .. }
        ));
        assert_eq!(
            POLICY.judge_after(&failed_once, &reference(), 1, at(100), at(200)),
            Verdict::SafeToResend
        );
        assert!(matches!(
            POLICY.judge_after(&failed_once, &reference(), 0, at(100), at(100)),
            Verdict::NotApplied(_)
        ));
    }

    #[test]
    fn an_answer_that_cannot_tell_stays_undetermined_whatever_the_time() {
        let silent = RefundState::new(PaymentRef::payment("I"), tl("0"))
            .with_undetermined("no refund figures");
        let unreferenced = RefundState::new(PaymentRef::payment("I"), tl("5"));
        for state in [silent, unreferenced] {
            for now in [at(100), at(100_000)] {
                assert!(
                    matches!(
                        POLICY.judge(&state, &reference(), at(100), now),
                        Verdict::Undetermined(_)
                    ),
                    "{state:?}"
                );
            }
        }
    }
}
