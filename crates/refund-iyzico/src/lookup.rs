//! Reading the reporting answer (`GET /v2/reporting/payment/details`) into a
//! [`RefundState`], without guessing.
//!
//! The shapes are the official SDKs' (iyzipay-java `model/ReportingPaymentDetail.java`,
//! `PaymentDetail.java`, `PaymentTxDetail.java`, `RefundTxDetail.java`, `RefundDetail.java`;
//! see [`crate::wire`]). What the values mean is mostly undocumented
//! (shared/providers/sdk-models.md §2.5, §3), so the rules are:
//!
//! - `refundStatus` 1 is a completed refund or cancel. **Assumed**, by analogy with
//!   `paymentStatus` `SUCCESS(1)`: no source gives `refundStatus` values (reading 1 as
//!   completed is the safe direction: it never invites a second refund).
//! - `refundStatus` 0 is [`RefundStatus::Failed`] **only** when the entry carries
//!   `errorCode`/`errorMessage` (the SDK models put the error fields on each entry), and so is
//!   an entry with error fields and no `refundStatus`: kept visible, never part of `refunded`.
//!   A bare 0 is unclear: the analogy with `paymentStatus` `FAILURE(0)` is weak, since
//!   iyzico's own payment-detail example shows `transactionStatus: 2` on an ordinary line
//!   (fidelity review M2), and a wrong "failed" sends a second refund.
//! - A bare 0, any other `refundStatus`, none at all, or 1 together with an error, is unknown:
//!   the state is [undetermined](RefundState::with_undetermined).
//! - A missing `itemTransactions`, `refunds` or `cancels` list, a missing `refundPrice`, or an
//!   entry in another currency is undetermined, never zero.
//! - `paymentRefundStatus` (`NOT_REFUNDED`, `PARTIALLY_REFUNDED`, `TOTALLY_REFUNDED`, the last
//!   printed with a trailing space in the docs, so compared trimmed) is checked against the
//!   completed entries and the paid price; a contradiction is undetermined.

use refund_core::{
    Currency, Decimal, Money, PaymentRef, RefundError, RefundRecord, RefundState, RefundStatus,
};

use crate::NAME;
use crate::wire::{PaymentDetail, RefundDetail, RefundTxDetail};

/// One refund or cancel entry, whichever model it came from.
struct Entry<'a> {
    kind: &'static str,
    id: Option<&'a str>,
    conversation_id: Option<&'a str>,
    price: Option<Decimal>,
    status: Option<&'a str>,
    currency: Option<&'a str>,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
}

impl<'a> Entry<'a> {
    fn refund(r: &'a RefundTxDetail) -> Self {
        Entry {
            kind: "refund",
            id: r.refund_tx_id.as_deref(),
            conversation_id: r.refund_conversation_id.as_deref(),
            price: r.refund_price,
            status: r.refund_status.as_deref(),
            currency: r.currency_code.as_deref(),
            error_code: r.error_code.as_deref(),
            error_message: r.error_message.as_deref(),
        }
    }

    fn cancel(c: &'a RefundDetail) -> Self {
        Entry {
            kind: "cancel",
            id: c.refund_id.as_deref(),
            conversation_id: c.cancel_conversation_id.as_deref(),
            price: c.refund_price,
            status: c.refund_status.as_deref(),
            currency: c.currency_code.as_deref(),
            error_code: c.error_code.as_deref(),
            error_message: c.error_message.as_deref(),
        }
    }

    /// `refund 31000001 (rf-1)`, for reasons.
    fn label(&self) -> String {
        let id = self.id.unwrap_or("without id");
        match self.conversation_id {
            Some(c) => format!("{} {id} ({c:.64})", self.kind),
            None => format!("{} {id}", self.kind),
        }
    }

    /// The entry's status, or why it cannot be read.
    fn status(&self) -> Result<RefundStatus, String> {
        let set = |v: Option<&str>| v.is_some_and(|v| !v.trim().is_empty());
        let has_error = set(self.error_code) || set(self.error_message);
        match self.status.map(str::trim) {
            Some("0") if has_error => Ok(RefundStatus::Failed),
            Some("0") => Err(format!(
                "{} has refundStatus 0 without errorCode or errorMessage: no source says 0 \
                 means failed",
                self.label()
            )),
            Some("1") if !has_error => Ok(RefundStatus::Completed),
            Some("1") => Err(format!(
                "{} has refundStatus 1 and an error (errorCode {:?}): contradictory",
                self.label(),
                self.error_code.unwrap_or("")
            )),
            None if has_error => Ok(RefundStatus::Failed),
            None => Err(format!("{} has no refundStatus", self.label())),
            Some(other) => Err(format!(
                "{} has refundStatus {other:.16}, a value no source documents",
                self.label()
            )),
        }
    }
}

/// What the report says, built up entry by entry; every problem makes it undetermined.
struct Reading {
    currency: Currency,
    problems: Vec<String>,
}

impl Reading {
    /// How many problems the reason names; a report with thousands of unreadable entries
    /// gives a reason of bounded length.
    const SHOWN: usize = 5;

    /// The problems, joined: the first [`Self::SHOWN`], and how many more.
    fn reason(&self) -> String {
        let mut why = self.problems[..self.problems.len().min(Self::SHOWN)].join("; ");
        if self.problems.len() > Self::SHOWN {
            why.push_str(&format!("; and {} more", self.problems.len() - Self::SHOWN));
        }
        why
    }

    fn money(&mut self, what: &str, amount: Decimal) -> Option<Money> {
        match Money::new(amount, self.currency) {
            Ok(m) => Some(m),
            Err(e) => {
                self.problems
                    .push(format!("{what} has an unusable amount {amount}: {e}"));
                None
            }
        }
    }

    /// The record of `entry`, or `None` (with the reason noted) when it cannot be read.
    fn record(&mut self, entry: &Entry<'_>) -> Option<RefundRecord> {
        let status = match entry.status() {
            Ok(s) => Some(s),
            Err(why) => {
                self.problems.push(why);
                None
            }
        };
        if let Some(code) = entry.currency.map(str::trim)
            && code != self.currency.code()
        {
            self.problems.push(format!(
                "{} is in {code:.8}, the payment in {}",
                entry.label(),
                self.currency
            ));
            return None;
        }
        let Some(price) = entry.price else {
            self.problems
                .push(format!("{} has no refundPrice", entry.label()));
            return None;
        };
        let amount = self.money(&entry.label(), price)?;
        let mut record = RefundRecord::new(amount).with_status(status?);
        if let Some(c) = entry.conversation_id {
            record = record.with_reference(c);
        }
        if let Some(id) = entry.id {
            record = record.with_provider_reference(id);
        }
        Some(record)
    }
}

/// The sum of the completed records (failed ones are never money returned).
fn completed(records: &[RefundRecord], currency: Currency) -> Result<Money, String> {
    records
        .iter()
        .filter(|r| r.status == RefundStatus::Completed)
        .try_fold(Money::zero(currency), |sum, r| sum.checked_add(&r.amount))
        .map_err(|e| format!("the refund total overflows: {e}"))
}

/// Builds the refund state of `payment` (a whole payment, or the basket line `item_id` of it)
/// from its entry in the report. `Err` only when not even the currency is known, or the line
/// asked for is not in the payment.
pub(crate) fn state_from_detail(
    payment: &PaymentRef,
    detail: &PaymentDetail,
    item_id: Option<&str>,
    currency: Currency,
) -> Result<RefundState, RefundError> {
    let mut reading = Reading {
        currency,
        problems: Vec::new(),
    };
    let lines = match &detail.item_transactions {
        Some(lines) => lines.as_slice(),
        None => {
            reading
                .problems
                .push("the report has no itemTransactions list".into());
            &[]
        }
    };
    if let Some(id) = item_id
        && detail.item_transactions.is_some()
        && !lines
            .iter()
            .any(|l| l.payment_transaction_id.as_deref() == Some(id))
    {
        return Err(RefundError::declined(
            NAME,
            "item_not_found",
            format!("the payment has no basket line {id}"),
        ));
    }
    // Every line's refunds are read, whatever the scope: the cross-check with
    // paymentRefundStatus is about the whole payment.
    let mut all_refunds = Vec::new();
    let mut scoped = Vec::new();
    for line in lines {
        let Some(refunds) = &line.refunds else {
            reading.problems.push(format!(
                "basket line {} has no refunds list",
                line.payment_transaction_id
                    .as_deref()
                    .unwrap_or("without id")
            ));
            continue;
        };
        let in_scope = item_id.is_none_or(|id| line.payment_transaction_id.as_deref() == Some(id));
        for r in refunds {
            if let Some(record) = reading.record(&Entry::refund(r)) {
                if in_scope {
                    scoped.push(record.clone());
                }
                all_refunds.push(record);
            }
        }
    }
    let mut cancels = Vec::new();
    match &detail.cancels {
        Some(list) => {
            for c in list {
                if let Some(record) = reading.record(&Entry::cancel(c)) {
                    cancels.push(record);
                }
            }
        }
        None => reading
            .problems
            .push("the report has no cancels list".into()),
    }
    cross_check(&mut reading, detail, &all_refunds, &cancels);

    // A cancel returns the whole payment, so it is on record for every line of it.
    scoped.extend(cancels);
    let refunded = match completed(&scoped, currency) {
        Ok(sum) => sum,
        Err(why) => {
            reading.problems.push(why);
            Money::zero(currency)
        }
    };
    let paid = match item_id {
        None => detail.paid_price.or(detail.price),
        Some(id) => lines
            .iter()
            .find(|l| l.payment_transaction_id.as_deref() == Some(id))
            .and_then(|l| l.paid_price.or(l.price)),
    };
    let paid = paid.and_then(|p| reading.money("the paid price", p));
    let mut state = RefundState::new(payment.clone(), refunded);
    if let Some(p) = paid {
        state = state.with_paid(p);
    }
    for r in scoped {
        state = state.with_record(r);
    }
    if !reading.problems.is_empty() {
        let why = reading.reason();
        tracing::warn!(reason = %why, "the iyzico report cannot say what was refunded");
        state = state.with_undetermined(why);
    }
    Ok(state)
}

/// Checks `paymentRefundStatus` against the completed entries and the paid price.
///
/// - `NOT_REFUNDED`: no completed refund. A completed cancel is allowed: no source says which
///   status a cancelled payment shows (assumed: a cancel is not a refund; `TOTALLY_REFUNDED`
///   is accepted for it too).
/// - `PARTIALLY_REFUNDED`: something completed, less than the paid price.
/// - `TOTALLY_REFUNDED`: the completed entries add up to `paidPrice` or to `price` (the docs
///   do not say which one the status is measured against; assumed either).
/// - Never more than was paid.
fn cross_check(
    reading: &mut Reading,
    detail: &PaymentDetail,
    refunds: &[RefundRecord],
    cancels: &[RefundRecord],
) {
    let currency = reading.currency;
    let sums = completed(refunds, currency).and_then(|refunded| {
        completed(cancels, currency).and_then(|cancelled| {
            refunded
                .amount()
                .checked_add(cancelled.amount())
                .map(|total| (refunded, total))
                .ok_or_else(|| "the refund total overflows".to_owned())
        })
    });
    let (refunded, total) = match sums {
        Ok(sums) => sums,
        Err(why) => {
            reading.problems.push(why);
            return;
        }
    };
    let paid = detail.paid_price.or(detail.price);
    let status = detail.payment_refund_status.as_deref().map(str::trim);
    let contradiction = || {
        format!(
            "paymentRefundStatus {} contradicts the entries: the completed refunds and cancels add up to {total} of {} paid",
            status.unwrap_or(""),
            paid.map_or_else(|| "an unknown amount".to_owned(), |p| p.to_string()),
        )
    };
    if let Some(p) = detail.paid_price.into_iter().chain(detail.price).max()
        && total > p
    {
        reading.problems.push(format!(
            "the completed refunds and cancels add up to {total}, more than the {p} paid"
        ));
        return;
    }
    let problem = match status {
        None => Some("the report has no paymentRefundStatus to check the entries against".into()),
        Some("NOT_REFUNDED") => (!refunded.amount().is_zero()).then(contradiction),
        Some("PARTIALLY_REFUNDED") => match paid {
            Some(p) if total > Decimal::ZERO && total < p => None,
            Some(_) => Some(contradiction()),
            None => {
                Some("PARTIALLY_REFUNDED cannot be checked: the report has no paid price".into())
            }
        },
        Some("TOTALLY_REFUNDED") => {
            let matches = [detail.paid_price, detail.price]
                .into_iter()
                .flatten()
                .any(|p| p == total);
            (!matches).then(contradiction)
        }
        Some(other) => Some(format!(
            "paymentRefundStatus {other:.32} is not a documented value"
        )),
    };
    reading.problems.extend(problem);
}
