//! A small ledger for simulators of any provider: payments, refunds applied atomically,
//! references seen, failed entries, and when each entry was applied (for lookup lag).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Instant;

use refund_core::{Currency, Money};
use serde_json::{Value, json};

use super::{SimContext, lock};

/// A simulated provider's books, safe to share between the server's tasks.
///
/// Every change happens under one mutex: the over-refund check and the refund it allows are
/// one step, so concurrent refunds on one payment can never exceed what was paid. A
/// reference, once used by a refund (applied or refused by the bank), is refused when used
/// again ([`LedgerError::ReusedReference`]), as a provider that deduplicates references does;
/// a refund refused by the provider's own checks (over-refund, unknown payment) does not use
/// its reference up.
///
/// ```
/// use std::time::Duration;
/// use refund_core::{Currency, Money};
/// use refund_testkit::sim::{Fault, Ledger, LedgerError, SimContext};
///
/// let ledger = Ledger::new();
/// let try_ = |s: &str| Money::parse(s, Currency::Try).unwrap();
/// let payment = ledger.add_payment(try_("100.00"));
/// let ctx = SimContext::default();
///
/// ledger.refund(&ctx, &payment.id, Some("r-1"), try_("60.00"))?;
/// assert_eq!(ledger.refund(&ctx, &payment.id, Some("r-2"), try_("40.01")), Err(LedgerError::OverRefund));
/// assert_eq!(ledger.refund(&ctx, &payment.id, Some("r-1"), try_("1.00")), Err(LedgerError::ReusedReference));
/// // The bank refuses (Fault::Fail): a failed entry, no money moved.
/// let refused = ctx.with_fault(Fault::Fail);
/// assert_eq!(ledger.refund(&refused, &payment.id, Some("r-3"), try_("5.00")), Err(LedgerError::Refused));
/// assert_eq!(ledger.refunded(&payment.id), Some(try_("60.00")));
/// // A lagging lookup does not see what was applied a moment ago.
/// let lagging = ctx.with_lookup_lag(Duration::from_secs(60));
/// assert!(ledger.lookup(&lagging, &payment.id).unwrap().refunds.is_empty());
/// # Ok::<(), LedgerError>(())
/// ```
#[derive(Default)]
pub struct Ledger {
    state: Mutex<State>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("payments", &lock(&self.state).payments.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    payments: Vec<LedgerPayment>,
    index: HashMap<String, usize>,
    references: HashSet<String>,
    seq: u64,
}

impl State {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// One payment in a [`Ledger`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerPayment {
    /// The payment's id.
    pub id: String,
    /// What was paid.
    pub paid: Money,
    /// Refunds that moved money, oldest first.
    pub refunds: Vec<LedgerRefund>,
    /// Refunds the bank refused ([`SimContext::refuses`]), oldest first: no money moved.
    pub failed: Vec<LedgerRefund>,
    /// The sum of `refunds`, kept up to date so a refund costs O(1).
    refunded: Money,
}

impl LedgerPayment {
    /// The sum of the refunds.
    pub fn refunded(&self) -> Money {
        self.refunded
    }

    /// What can still be refunded.
    pub fn remaining(&self) -> Money {
        self.paid
            .checked_sub(&self.refunded)
            .unwrap_or_else(|_| Money::zero(self.paid.currency()))
    }
}

/// One refund in a [`Ledger`], applied or failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRefund {
    /// The ledger's own id for it (`re_000001`), what a provider answers as its refund id.
    pub id: String,
    /// The merchant's reference it was sent with, if any.
    pub reference: Option<String>,
    /// The amount refunded (for a failed refund: asked for).
    pub amount: Money,
    /// When it was applied (or failed): lookups show it once it is older than the lag
    /// ([`SimContext::visible`]).
    pub applied_at: Instant,
}

/// Why a [`Ledger`] refused a refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LedgerError {
    /// No payment with that id.
    UnknownPayment,
    /// The refund's currency is not the payment's.
    CurrencyMismatch,
    /// The reference was used before (by an applied or a failed refund).
    ReusedReference,
    /// The refund is more than what is left of the payment.
    OverRefund,
    /// The bank refused it ([`SimContext::refuses`]): recorded as a failed entry.
    Refused,
}

impl LedgerError {
    /// A short code for an answer: `unknown_payment`, `currency_mismatch`,
    /// `reused_reference`, `over_refund`, `refused`.
    pub const fn code(self) -> &'static str {
        match self {
            LedgerError::UnknownPayment => "unknown_payment",
            LedgerError::CurrencyMismatch => "currency_mismatch",
            LedgerError::ReusedReference => "reused_reference",
            LedgerError::OverRefund => "over_refund",
            LedgerError::Refused => "refused",
        }
    }
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LedgerError::UnknownPayment => "no such payment",
            LedgerError::CurrencyMismatch => "the currency is not the payment's",
            LedgerError::ReusedReference => "the reference was used before",
            LedgerError::OverRefund => "the refund exceeds what is left of the payment",
            LedgerError::Refused => "the bank refused the refund",
        })
    }
}

impl std::error::Error for LedgerError {}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Adds a payment of `paid` under a new id (`pay_000001`, …) and returns it.
    pub fn add_payment(&self, paid: Money) -> LedgerPayment {
        let mut state = lock(&self.state);
        let id = format!("pay_{:06}", state.next());
        insert(&mut state, id, paid)
    }

    /// Adds a payment of `paid` under `id`, replacing one with that id (its refunds, and the
    /// references they used, are forgotten).
    pub fn insert_payment(&self, id: &str, paid: Money) -> LedgerPayment {
        insert(&mut lock(&self.state), id.to_owned(), paid)
    }

    /// Refunds `amount` of payment `payment` under `reference`, atomically: an unknown
    /// payment, another currency, a reused reference or more than is left is refused and
    /// changes nothing. When the bank refuses ([`SimContext::refuses`]) a refund that passed
    /// those checks, it is recorded as a failed entry (its reference used up) and answered
    /// [`LedgerError::Refused`].
    pub fn refund(
        &self,
        ctx: &SimContext,
        payment: &str,
        reference: Option<&str>,
        amount: Money,
    ) -> Result<LedgerRefund, LedgerError> {
        let mut state = lock(&self.state);
        let &index = state
            .index
            .get(payment)
            .ok_or(LedgerError::UnknownPayment)?;
        let entry = &state.payments[index];
        if amount.currency() != entry.paid.currency() {
            return Err(LedgerError::CurrencyMismatch);
        }
        if reference.is_some_and(|r| state.references.contains(r)) {
            return Err(LedgerError::ReusedReference);
        }
        let after = entry
            .refunded
            .checked_add(&amount)
            .map_err(|_| LedgerError::OverRefund)?;
        if after > entry.paid {
            return Err(LedgerError::OverRefund);
        }
        let refund = LedgerRefund {
            id: format!("re_{:06}", state.next()),
            reference: reference.map(str::to_owned),
            amount,
            applied_at: Instant::now(),
        };
        if let Some(r) = reference {
            state.references.insert(r.to_owned());
        }
        let entry = &mut state.payments[index];
        if ctx.refuses() {
            entry.failed.push(refund);
            return Err(LedgerError::Refused);
        }
        entry.refunded = after;
        entry.refunds.push(refund.clone());
        Ok(refund)
    }

    /// A snapshot of payment `id`, every entry included.
    pub fn payment(&self, id: &str) -> Option<LedgerPayment> {
        let state = lock(&self.state);
        state.index.get(id).map(|&i| state.payments[i].clone())
    }

    /// Payment `id` as a lagging lookup shows it: only the refunds and failed entries
    /// [`SimContext::visible`] now, and `refunded()` over the visible refunds.
    pub fn lookup(&self, ctx: &SimContext, id: &str) -> Option<LedgerPayment> {
        let mut payment = self.payment(id)?;
        payment.refunds.retain(|r| ctx.visible(r.applied_at));
        payment.failed.retain(|r| ctx.visible(r.applied_at));
        let zero = Money::zero(payment.paid.currency());
        payment.refunded = payment
            .refunds
            .iter()
            .try_fold(zero, |sum, r| sum.checked_add(&r.amount))
            .unwrap_or(zero);
        Some(payment)
    }

    /// What has been refunded of payment `id` (the ground truth a conformance harness
    /// reports).
    pub fn refunded(&self, id: &str) -> Option<Money> {
        let state = lock(&self.state);
        state.index.get(id).map(|&i| state.payments[i].refunded)
    }

    /// Every payment, in the order they were added.
    pub fn payments(&self) -> Vec<LedgerPayment> {
        lock(&self.state).payments.clone()
    }

    /// Forgets everything.
    pub fn reset(&self) {
        *lock(&self.state) = State::default();
    }

    /// [`Simulator::seed`](super::Simulator::seed) for a ledger: `{"amount": "100.00",
    /// "currency": "TRY", "id": "P-1"}` (currency defaults to TRY, id to a new one).
    pub fn seed(&self, body: &Value) -> Result<Value, String> {
        let currency = match body.get("currency").and_then(Value::as_str) {
            None => Currency::Try,
            Some(code) => Currency::from_str(code).map_err(|_| "unknown currency".to_owned())?,
        };
        let amount = body
            .get("amount")
            .and_then(Value::as_str)
            .and_then(|text| Money::parse(text, currency).ok())
            .filter(|m| !m.is_zero())
            .ok_or("amount must be a positive decimal string such as \"100.00\"")?;
        let payment = match body.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => self.insert_payment(id, amount),
            _ => self.add_payment(amount),
        };
        Ok(json!({
            "id": payment.id,
            "amount": payment.paid.amount().to_string(),
            "currency": currency.code(),
        }))
    }

    /// [`Simulator::ledger`](super::Simulator::ledger) for a ledger: every payment with its
    /// refunds and failed entries.
    pub fn to_json(&self) -> Value {
        let entry = |r: &LedgerRefund| json!({"id": r.id, "reference": r.reference, "amount": r.amount.amount().to_string()});
        let payments: Vec<Value> = lock(&self.state)
            .payments
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "currency": p.paid.currency().code(),
                    "amount": p.paid.amount().to_string(),
                    "refunded": p.refunded.amount().to_string(),
                    "remaining": p.remaining().amount().to_string(),
                    "refunds": p.refunds.iter().map(entry).collect::<Vec<_>>(),
                    "failed_refunds": p.failed.iter().map(entry).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "payments": payments })
    }
}

fn insert(state: &mut State, id: String, paid: Money) -> LedgerPayment {
    let payment = LedgerPayment {
        id: id.clone(),
        paid,
        refunds: Vec::new(),
        failed: Vec::new(),
        refunded: Money::zero(paid.currency()),
    };
    match state.index.get(&id) {
        Some(&i) => {
            let old = std::mem::replace(&mut state.payments[i], payment.clone());
            for r in old.refunds.iter().chain(&old.failed) {
                if let Some(reference) = &r.reference {
                    state.references.remove(reference);
                }
            }
        }
        None => {
            state.index.insert(id, state.payments.len());
            state.payments.push(payment.clone());
        }
    }
    payment
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::sim::Fault;

    fn try_(text: &str) -> Money {
        Money::parse(text, Currency::Try).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn concurrent_refunds_never_exceed_what_was_paid() {
        let ledger = Arc::new(Ledger::new());
        let payment = ledger.add_payment(try_("100.00"));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let ledger = Arc::clone(&ledger);
                let id = payment.id.clone();
                std::thread::spawn(move || {
                    (0..20)
                        .filter(|n| {
                            let reference = format!("t{t}-{n}");
                            let ctx = SimContext::default();
                            ledger
                                .refund(&ctx, &id, Some(&reference), try_("1.50"))
                                .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        let ok: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        assert_eq!(ok, 66, "100.00 / 1.50 = 66 refunds fit");
        assert_eq!(ledger.refunded(&payment.id), Some(try_("99.00")));
    }

    #[test]
    fn refusals_change_nothing_and_a_failed_entry_uses_its_reference_up() {
        let ledger = Ledger::new();
        let id = ledger.add_payment(try_("10.00")).id;
        let ctx = SimContext::default();
        assert_eq!(
            ledger.refund(&ctx, "nope", None, try_("1")),
            Err(LedgerError::UnknownPayment)
        );
        let usd = Money::parse("1", Currency::Usd).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ledger.refund(&ctx, &id, None, usd),
            Err(LedgerError::CurrencyMismatch)
        );
        assert_eq!(
            ledger.refund(&ctx, &id, Some("big"), try_("10.01")),
            Err(LedgerError::OverRefund)
        );
        // An over-refund did not use "big" up.
        assert!(ledger.refund(&ctx, &id, Some("big"), try_("1")).is_ok());
        let refused = ctx.with_fault(Fault::FailLostResponse);
        assert_eq!(
            ledger.refund(&refused, &id, Some("f"), try_("1")),
            Err(LedgerError::Refused)
        );
        assert_eq!(
            ledger.refund(&ctx, &id, Some("f"), try_("1")),
            Err(LedgerError::ReusedReference)
        );
        let p = ledger.payment(&id).unwrap_or_else(|| panic!("seeded"));
        assert_eq!(p.refunded(), try_("1"));
        assert_eq!(p.failed.len(), 1);
        assert_eq!(p.failed[0].reference.as_deref(), Some("f"));
    }

    #[test]
    fn lookups_lag_and_replacing_a_payment_forgets_its_references() {
        let ledger = Ledger::new();
        ledger.insert_payment("P", try_("10"));
        let ctx = SimContext::default();
        assert!(ledger.refund(&ctx, "P", Some("r"), try_("4")).is_ok());
        let lagging = ctx.with_lookup_lag(Duration::from_secs(60));
        let seen = ledger
            .lookup(&lagging, "P")
            .unwrap_or_else(|| panic!("seeded"));
        assert!(seen.refunds.is_empty());
        assert!(seen.refunded().is_zero());
        let now = ledger.lookup(&ctx, "P").unwrap_or_else(|| panic!("seeded"));
        assert_eq!(now.refunded(), try_("4"));
        ledger.insert_payment("P", try_("10"));
        assert!(ledger.refund(&ctx, "P", Some("r"), try_("4")).is_ok());
    }

    #[test]
    fn seeding_and_the_ledger_json() {
        let ledger = Ledger::new();
        let created = ledger
            .seed(&json!({"amount": "100.00", "id": "P-1"}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(created["id"], "P-1");
        assert!(ledger.seed(&json!({"amount": "-1"})).is_err());
        assert!(
            ledger
                .seed(&json!({"amount": "1", "currency": "XXX"}))
                .is_err()
        );
        let ctx = SimContext::default();
        assert!(ledger.refund(&ctx, "P-1", Some("r"), try_("2.5")).is_ok());
        let shown = ledger.to_json();
        assert_eq!(shown["payments"][0]["refunded"], "2.50");
        assert_eq!(shown["payments"][0]["refunds"][0]["reference"], "r");
    }
}
