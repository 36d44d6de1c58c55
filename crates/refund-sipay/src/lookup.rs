//! Reading SiPay's check-status answer (`POST /ccpayment/api/checkstatus`) into a
//! [`RefundState`], without guessing.
//!
//! What the answer's figures mean is partly documented (`total_refunded_amount`,
//! `transaction_amount`, `transaction_status` `refund` / `partially_refund`: the seed and the
//! official PHP SDK's `TransactionStatusMapper`); the `refund_info` list is not (only the
//! unofficial node SDK names it, typed `any[]`, `../shared/providers/sdk-models.md` §3). So:
//!
//! - silence is never "0 refunded": without `total_refunded_amount` and `refund_info` the state
//!   is undetermined;
//! - a `refund_info` entry is failed only when its status word plainly says so in SiPay's own
//!   vocabulary ([`entry_status`]); `cancel*` words and every word no source defines are
//!   unclear, decided by the total or left undetermined;
//! - when the applied (completed or pending) entries do not add up to `total_refunded_amount`,
//!   less or more, the state is undetermined: a failed record then proves nothing (fidelity
//!   review M1).

use refund_core::{
    Currency, Money, PaymentRef, RefundError, RefundRecord, RefundState, RefundStatus,
};
use rust_decimal::Decimal;
use serde_json::value::RawValue;

use crate::NAME;
use crate::client::clip;
use crate::wire::{CheckStatusResponse, RefundInfo};

/// A check-status answer as a [`RefundState`] that never guesses.
///
/// - `refunded` is `total_refunded_amount` when present, else the sum of the `refund_info`
///   entries that are completed or pending.
/// - Neither figure: **undetermined**. Nothing documents when SiPay leaves them out
///   (`sdk-models.md` §0.3, §3), so silence never counts as "0 refunded".
/// - A total without `refund_info`: the records are unknown, so [`RefundState::find`] answers
///   `Undetermined` for any reference unless the total is zero.
/// - `refund_info` entries: see [`entry_status`]. Failed ones are `RefundStatus::Failed`
///   records (visible, not in `refunded`). Entries whose status we cannot read are decided by
///   the total (see below) or leave the state undetermined.
/// - `transaction_status` is cross-checked against the figures ([`contradiction`]).
pub(crate) fn state_from(
    payment: &PaymentRef,
    r: &CheckStatusResponse,
    secrets: &[&str],
) -> Result<RefundState, RefundError> {
    let unreadable = |what: String| RefundError::outcome_unknown(NAME, what);
    let currency = match r.currency_code.as_deref().map(str::trim) {
        None | Some("") => Currency::Try,
        Some(code) => parse_currency(code).ok_or_else(|| {
            unreadable(format!(
                "check status currency {:?} is unknown",
                clip(code, secrets)
            ))
        })?,
    };
    let money = |d: Decimal, what: &str| {
        Money::new(d, currency).map_err(|e| {
            unreadable(format!(
                "check status {what} {d} is not a valid amount: {e}"
            ))
        })
    };
    let paid = r
        .transaction_amount
        .map(|p| money(p, "transaction_amount"))
        .transpose()?;
    let total = r
        .total_refunded_amount
        .map(|t| money(t, "total_refunded_amount"))
        .transpose()?;

    let mut undetermined: Option<String> = None;
    let mut records: Vec<RefundRecord> = Vec::new();
    let refunded = match (total, read_refund_info(r.refund_info.as_deref(), secrets)) {
        (None, Listing::Absent) => {
            undetermined = Some(
                "check status carried neither total_refunded_amount nor refund_info; nothing \
                 documents when SiPay leaves them out, so this is not \"0 refunded\""
                    .into(),
            );
            Money::zero(currency)
        }
        (total, Listing::Unreadable(why)) => {
            undetermined = Some(why);
            total.unwrap_or_else(|| Money::zero(currency))
        }
        (Some(total), Listing::Absent) => total,
        (total, Listing::Entries(entries)) => {
            let mut parsed = Vec::with_capacity(entries.len());
            for entry in &entries {
                let amount = entry
                    .amount
                    .map(|a| money(a, "refund_info amount"))
                    .transpose()?;
                let reference = entry
                    .refund_transaction_id
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty());
                parsed.push((reference, amount, entry_status(entry.status.as_deref())));
            }
            // Completed, pending and unclear entries need an amount to be counted.
            if parsed
                .iter()
                .any(|(_, amount, status)| amount.is_none() && *status != EntryStatus::Failed)
            {
                undetermined = Some(
                    "a refund_info entry that is not listed as failed has no amount (entry \
                     shape assumed)"
                        .into(),
                );
            }
            let listed = |wanted: &dyn Fn(EntryStatus) -> bool| {
                parsed
                    .iter()
                    .filter(|(_, _, s)| wanted(*s))
                    .filter_map(|(_, a, _)| *a)
                    .try_fold(Money::zero(currency), |sum, a| {
                        sum.checked_add(&a)
                            .map_err(|e| unreadable(format!("refund_info amounts: {e}")))
                    })
            };
            let applied = listed(&|s| matches!(s, EntryStatus::Completed | EntryStatus::Pending))?;
            let unclear = listed(&|s| s == EntryStatus::Unclear)?;
            let has_unclear = parsed.iter().any(|(_, _, s)| *s == EntryStatus::Unclear);
            // What the entries whose status we cannot read turn out to be, when the total
            // says; `None` leaves the state undetermined and them unlisted (never "failed").
            let mut unclear_as: Option<RefundStatus> = None;
            let refunded = match total {
                Some(total) => {
                    if has_unclear {
                        // Deduced from the total, assuming total and list describe the same
                        // moment: when the readable applied entries already make the total,
                        // the unclear ones are not in it (not refunded); when all of them
                        // together make it, they are. Otherwise nothing can be said.
                        if applied == total {
                            unclear_as = Some(RefundStatus::Failed);
                        } else if applied.checked_add(&unclear).ok() == Some(total) {
                            unclear_as = Some(RefundStatus::Completed);
                        } else if undetermined.is_none() {
                            undetermined = Some(format!(
                                "refund_info entries with a status we cannot read ({}) do not \
                                 reconcile with total_refunded_amount {total}",
                                unclear_statuses(&entries, secrets)
                            ));
                        }
                    } else if applied != total && undetermined.is_none() {
                        // Less or more: either way the list does not explain the total (a
                        // refund under a word we read as failed, an unlisted one, pending
                        // refunds outside the total), so no entry's absence or failure proves
                        // anything (fidelity review M1).
                        let relation = if applied > total { "more" } else { "less" };
                        undetermined = Some(format!(
                            "refund_info lists {applied} completed or pending, {relation} than \
                             total_refunded_amount {total}: the listed refunds do not account \
                             for what SiPay says was refunded"
                        ));
                    }
                    total
                }
                None => {
                    if has_unclear && undetermined.is_none() {
                        undetermined = Some(format!(
                            "refund_info entries with a status we cannot read ({}) and no \
                             total_refunded_amount to check them against",
                            unclear_statuses(&entries, secrets)
                        ));
                    }
                    applied
                }
            };
            for (reference, amount, status) in parsed {
                // A record needs an amount; an amount-less entry has already made the state
                // undetermined, unless it is a failed one (then it only goes unlisted).
                let Some(amount) = amount else { continue };
                let status = match status {
                    EntryStatus::Completed => RefundStatus::Completed,
                    EntryStatus::Pending => RefundStatus::Pending,
                    EntryStatus::Failed => RefundStatus::Failed,
                    EntryStatus::Unclear => match unclear_as {
                        Some(deduced) => deduced,
                        // The state is undetermined and its reason names the word.
                        None => continue,
                    },
                };
                let mut record = RefundRecord::new(amount).with_status(status);
                if let Some(reference) = reference {
                    record = record.with_reference(reference);
                }
                records.push(record);
            }
            refunded
        }
    };
    if undetermined.is_none() {
        undetermined = contradiction(r, refunded, paid);
    }
    let mut state = RefundState::new(payment.clone(), refunded);
    if let Some(paid) = paid {
        state = state.with_paid(paid);
    }
    for record in records {
        state = state.with_record(record);
    }
    if let Some(reason) = undetermined {
        state = state.with_undetermined(reason);
    }
    Ok(state)
}

/// `refund_info` as read: absent (or `null`), a list of entries, or something we cannot read.
enum Listing {
    Absent,
    Entries(Vec<RefundInfo>),
    Unreadable(String),
}

fn read_refund_info(raw: Option<&RawValue>, secrets: &[&str]) -> Listing {
    let Some(raw) = raw else {
        return Listing::Absent;
    };
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        return Listing::Unreadable(format!(
            "refund_info is not a list ({}); its shape is assumed, so the answer cannot say \
             what was refunded",
            clip(raw.get(), secrets)
        ));
    };
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match serde_json::from_str::<RefundInfo>(item.get()) {
            Ok(entry) => entries.push(entry),
            Err(_) => {
                return Listing::Unreadable(format!(
                    "refund_info entry {i} is not of the assumed shape ({})",
                    clip(item.get(), secrets)
                ));
            }
        }
    }
    Listing::Entries(entries)
}

/// What a `refund_info` entry's `status` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryStatus {
    Completed,
    Pending,
    Failed,
    /// Missing, or a word we do not know.
    Unclear,
}

/// Reads a `refund_info` entry's `status`. **No source lists the values**
/// (`sdk-models.md` §3; the node SDK types `refund_info` as `any[]`), so:
///
/// - **Failed** only for words that say "failed" in SiPay's own vocabulary: `failed` /
///   `refund failed` (code 49's English text in the seed, `sipay-refund-en.md`: "Refund
///   Failed", its table: "49 Failed"), `başarısız` / `iade başarısız` (49's Turkish text in the
///   official PHP SDK, "İade Başarısız"; the Turkish seed's "Başarısız Yanıt" for a failed
///   answer), and `49` itself. A wrong "failed" sends a second refund, so nothing else is
///   failed: not `declined`, `rejected`, `error` (no SiPay source uses them for a refund), and
///   above all not `cancelled` / `canceled` / `iptal`, since SiPay runs same-day refunds as
///   voids (cancels) through the refund endpoint (`sipay-refund-en.md`), where "cancelled" may
///   be the success word.
/// - **Completed** and **Pending** for the obvious English and Turkish words, the refund
///   webhook's `Completed` (SiPay's refund webhook page), a sibling gateway's "Awaiting
///   Refunded", and the codes `100` / `101` as text (all assumed). The total checks them
///   ([`state_from`]): applied entries that do not add up to it leave the state undetermined.
/// - **Unclear** for a missing status and every other word: decided by the total, or
///   undetermined.
///
/// Whole words only: "unsuccessful" is not "success".
fn entry_status(status: Option<&str>) -> EntryStatus {
    let Some(status) = status else {
        return EntryStatus::Unclear;
    };
    // Turkish dotted capital I lowercases to "i" plus a combining dot: read it as "i".
    let lower = status
        .replace('İ', "i")
        .to_lowercase()
        .replace(['_', '-'], " ");
    let s = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.as_str() {
        "success" | "successful" | "succeeded" | "completed" | "complete" | "approved"
        | "refunded" | "başarılı" | "tamamlandı" | "100" => EntryStatus::Completed,
        "pending"
        | "waiting"
        | "awaiting"
        | "awaiting refunded"
        | "created"
        | "refund request created"
        | "processing"
        | "in progress"
        | "bekliyor"
        | "beklemede"
        | "101" => EntryStatus::Pending,
        "failed" | "refund failed" | "başarısız" | "iade başarısız" | "49" => {
            EntryStatus::Failed
        }
        _ => EntryStatus::Unclear,
    }
}

/// The unreadable statuses of `entries`, for a message.
fn unclear_statuses(entries: &[RefundInfo], secrets: &[&str]) -> String {
    let statuses: Vec<String> = entries
        .iter()
        .filter(|e| entry_status(e.status.as_deref()) == EntryStatus::Unclear)
        .map(|e| match e.status.as_deref() {
            Some(s) => format!("{:?}", clip(s, secrets)),
            None => "none".to_owned(),
        })
        .take(4)
        .collect();
    statuses.join(", ")
}

/// `transaction_status` against the figures; the reason when they contradict each other.
///
/// Only two values have a source, the seed's "Partial Refunds" (`seeds/sipay-refund-en.md`,
/// also SiPay's refund page): "If the full transaction amount is submitted in the refund
/// request, the transaction status will be updated as refund", and 7 of 10 TRY refunded
/// makes it `partially_refund`. So:
/// - `refund` with figures below what was paid (or zero): undetermined. The status says
///   money went back that the figures do not show, e.g. figures lagging behind.
/// - `partially_refund` with nothing refunded: undetermined, for the same reason. Whether
///   partial refunds that add up to the whole turn it into `refund` is not documented, so
///   `partially_refund` with everything refunded is not a contradiction.
/// - Other values are not checked: nobody lists them. More refunded than paid contradicts
///   itself whatever the status.
fn contradiction(r: &CheckStatusResponse, refunded: Money, paid: Option<Money>) -> Option<String> {
    let of_paid = || paid.map_or_else(|| "an unknown amount".to_owned(), |p| p.to_string());
    if let Some(paid) = paid
        && refunded > paid
    {
        return Some(format!(
            "total refunded {refunded} is more than transaction_amount {paid}"
        ));
    }
    let status = r
        .transaction_status
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase());
    match status.as_deref() {
        Some("refund") => {
            // "Everything" is transaction_amount or product_price: no source says which one a
            // full refund brings total_refunded_amount to (transaction_amount may include
            // commission).
            let whole: Vec<Decimal> = [paid.map(|p| p.amount()), r.product_price]
                .into_iter()
                .flatten()
                .collect();
            let full = whole.is_empty() || whole.contains(&refunded.amount());
            (refunded.is_zero() || !full).then(|| {
                format!(
                    "transaction_status \"refund\" says fully refunded, but the figures say \
                     {refunded} of {}",
                    of_paid()
                )
            })
        }
        Some("partially_refund") => refunded.is_zero().then(|| {
            format!(
                "transaction_status \"partially_refund\" says partly refunded, but the figures \
                 say nothing of {} was",
                of_paid()
            )
        }),
        _ => None,
    }
}

/// ISO codes, SiPay's `TL`, and ISO numeric codes.
fn parse_currency(code: &str) -> Option<Currency> {
    match code.to_ascii_uppercase().as_str() {
        "TL" | "949" => Some(Currency::Try),
        "840" => Some(Currency::Usd),
        "978" => Some(Currency::Eur),
        "826" => Some(Currency::Gbp),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_read_in_sipay_forms() {
        assert_eq!(parse_currency("TRY"), Some(Currency::Try));
        assert_eq!(parse_currency("tl"), Some(Currency::Try));
        assert_eq!(parse_currency("949"), Some(Currency::Try));
        assert_eq!(parse_currency("XYZ"), None);
    }

    #[test]
    fn only_sipays_own_failure_words_are_failed_and_cancel_words_are_unclear() {
        for word in [
            "failed",
            "Refund Failed",
            "REFUND_FAILED",
            "başarısız",
            "İade Başarısız",
            "49",
        ] {
            assert_eq!(entry_status(Some(word)), EntryStatus::Failed, "{word}");
        }
        for word in [
            "cancelled",
            "canceled",
            "CANCELED",
            "iptal",
            "declined",
            "rejected",
            "refused",
            "error",
            "hata",
            "reddedildi",
            "failure",
            "unsuccessful",
            "iade_sirasinda",
            "",
        ] {
            assert_eq!(entry_status(Some(word)), EntryStatus::Unclear, "{word}");
        }
        assert_eq!(entry_status(None), EntryStatus::Unclear);
        assert_eq!(entry_status(Some("Completed")), EntryStatus::Completed);
        assert_eq!(
            entry_status(Some("awaiting_refunded")),
            EntryStatus::Pending
        );
    }
}
