//! What to do with a row, given the journal: the start of its lifecycle in this run, and
//! `--dry-run`, which prints that for every row.

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use refund_core::{Attempt, MerchantRef};

use super::input::Input;
use super::validate::Checks;
use super::{BatchError, Row};
use crate::exit::{Code, Failure};
use crate::journal::{self, HashTable, Index, RowState, RowView};
use crate::output::out_line;

/// What to do with a row, given the journal.
#[derive(Debug, Clone)]
pub(super) enum Plan {
    /// Never sent under this journal: the first send, with `reference` (the row's own, the
    /// one derived from its key, or one journaled before any request left). `refusals` counts
    /// refusals the journal records for it anyway (none, normally).
    First {
        reference: MerchantRef,
        refusals: u32,
    },
    /// Refused for now by an earlier run and due: sent again under the journaled attempt.
    Resend(Attempt),
    /// An attempt may have reached the provider (`sending`, `unknown`): looked up first.
    LookUp(Attempt),
    /// The outcome is final from an earlier run.
    Skip(RowState),
    /// Refused for now by an earlier run: not to be sent before this time.
    Wait(SystemTime),
    /// An attempt may be on record under a reference that cannot be used again (the
    /// journaled one is unusable): left unknown for a person, never sent under a fresh one.
    Stuck(String),
    /// Edited after an attempt whose outcome is unknown: not sent until that attempt is
    /// reconciled. Counts as unknown.
    Blocked(String),
    /// Refused by validation (a reference that more rows use). Counts as malformed.
    Invalid(String),
}

/// The attempt the journal records for a row under `reference`.
pub(super) fn attempt_of(view: &RowView, reference: MerchantRef) -> Attempt {
    Attempt::new(
        reference,
        view.attempted_at(),
        view.sends(),
        u32::try_from(view.refusals()).unwrap_or(u32::MAX),
    )
}

pub(super) fn plan(
    row: &Row,
    index: &Index,
    checks: &Checks,
    now: SystemTime,
) -> std::io::Result<Plan> {
    let Some(view) = index.get(&row.key) else {
        return Ok(fresh(row, index, checks));
    };
    if view.state.is_final() {
        return Ok(Plan::Skip(view.state));
    }
    let last = index.record_at(view.offset)?;
    if last.key != row.key {
        return Ok(Plan::Stuck(format!(
            "the journal's record for this row belongs to another row ({:?}); left as it is, \
             nothing sent",
            last.key
        )));
    }
    let reference = match MerchantRef::new(last.reference.clone()) {
        Ok(reference) => reference,
        Err(e) => {
            return Ok(Plan::Stuck(format!(
                "the journaled reference {:?} cannot be used ({e}): an earlier attempt may be on \
                 record under it, so the row is left unknown and never sent under a new \
                 reference; check the payment with the provider",
                last.reference
            )));
        }
    };
    if view.state == RowState::RetryLater && view.not_before() > now {
        return Ok(Plan::Wait(view.not_before()));
    }
    if view.sends() == 0 {
        // Journaled, but no request ever left under this reference (a pause longer than the
        // run waits, or a check of the provider's ledger that could not tell).
        return Ok(Plan::First {
            reference,
            refusals: u32::try_from(view.refusals()).unwrap_or(u32::MAX),
        });
    }
    Ok(match view.state {
        RowState::RetryLater => Plan::Resend(attempt_of(&view, reference)),
        // `sending`, `unknown`: a request may have reached the provider.
        _ => Plan::LookUp(attempt_of(&view, reference)),
    })
}

/// The plan of a row the journal has never seen: sent, unless validation refuses it.
fn fresh(row: &Row, index: &Index, checks: &Checks) -> Plan {
    if let Some(reference) = &row.reference
        && let Some(lines) = checks
            .shared_references
            .get(&index.hashing().of(reference.as_str()))
    {
        let mut shown: Vec<String> = lines.iter().take(6).map(u64::to_string).collect();
        if lines.len() > shown.len() {
            shown.push(format!("and {} more", lines.len() - shown.len()));
        }
        return Plan::Invalid(format!(
            "reference {reference} is used by the rows on lines {}: a reference names one \
             refund, so none of them is sent until each has its own",
            shown.join(", ")
        ));
    }
    if let Some(reference) = &row.reference
        && let Some((key, state)) = checks
            .used_references
            .get(&index.hashing().of(reference.as_str()))
    {
        return Plan::Invalid(format!(
            "reference {reference} is already used by another row of the journal ({key:?}, \
             {}): a reference names one refund, so give this row its own",
            state.name()
        ));
    }
    if let Some((count, lines)) = checks.identical.get(&index.hashing().of(&row.content)) {
        let mut shown: Vec<String> = lines.iter().map(u64::to_string).collect();
        if *count > lines.len() as u64 {
            shown.push(format!("and {} more", *count - lines.len() as u64));
        }
        return Plan::Invalid(format!(
            "the rows on lines {} are identical and have no reference: a copy pasted twice, \
             or refunds meant to be separate? None of them is sent. Give each its own \
             reference, or run with --allow-identical-rows if each is a refund of its own",
            shown.join(", ")
        ));
    }
    let id = format!("{}|{}", row.provider.name(), row.payment);
    if let Some(orphan) = checks
        .orphans_by_payment
        .get(&id)
        .and_then(|&n| checks.orphans.get(n))
    {
        return Plan::Blocked(format!(
            "not sent: an earlier attempt for this payment, from a row that is no longer in the \
             input (was it edited?), has an unknown outcome: {}. This row waits until that \
             attempt is reconciled, which this run and the next ones do by looking it up (it is \
             never resent). Run again once it is settled: this row is then sent as it stands, so \
             if the earlier attempt turns out refunded the payment gets both; change or remove \
             this row then if that is not what you want",
            orphan.describe()
        ));
    }
    Plan::First {
        // The same reference in every run over this input, journal or not: the provider's
        // ledger can tell that it was sent before.
        reference: row
            .reference
            .clone()
            .unwrap_or_else(|| journal::derived_reference(&row.key)),
        refusals: 0,
    }
}

/// Prints what a run would do, row by row; sends and writes nothing.
pub(super) fn dry_run(
    input: &Path,
    index: &Index,
    checks: &Checks,
) -> Result<ExitCode, BatchError> {
    let mut invalid = 0u64;
    let mut numbering: HashTable<u32> = HashTable::default();
    let mut rows = Input::open(input)?;
    while let Some(next) = rows.next()? {
        let Ok(mut row) = next else { continue };
        if checks.refused_lines.contains(&row.line) {
            // Refused by its provider in the validating pass (counted there): never sent.
            continue;
        }
        row.key = key_of(&row, index, checks, &mut numbering);
        let what = match plan(&row, index, checks, SystemTime::now())? {
            Plan::First { reference, .. } => {
                format!("would refund {} (reference {reference})", row.amount)
            }
            Plan::Resend(attempt) => format!(
                "would refund {} again (reference {}, refused for now in an earlier run)",
                row.amount, attempt.reference
            ),
            Plan::LookUp(attempt) => format!(
                "would look up reference {} before anything else",
                attempt.reference
            ),
            Plan::Skip(state) => format!("would skip: {} in an earlier run", state.name()),
            Plan::Wait(t) => format!(
                "would skip: refused for now in an earlier run, to be sent again after {}",
                journal::utc(t)
            ),
            Plan::Stuck(why) | Plan::Blocked(why) => format!("would leave unknown: {why}"),
            Plan::Invalid(why) => {
                invalid += 1;
                format!("would refuse: {why}")
            }
        };
        out_line(&format!(
            "line {}: {} {}: {what}",
            row.line,
            row.provider.name(),
            row.payment
        ))
        .map_err(Failure::other)?;
    }
    for orphan in &checks.orphans {
        out_line(&format!(
            "journal row {:?}: would look up reference {} (an attempt with an unknown outcome \
             whose row is no longer in the input); never resent",
            orphan.key, orphan.reference
        ))
        .map_err(Failure::other)?;
    }
    Ok(ExitCode::from(if checks.malformed + invalid == 0 {
        0
    } else {
        Code::Invalid as u8
    }))
}

/// The row's key: its content, numbered among identical rows.
pub(super) fn key_of(
    row: &Row,
    index: &Index,
    checks: &Checks,
    numbering: &mut HashTable<u32>,
) -> String {
    let content = index.hashing().of(&row.content);
    let occurrence = if checks.repeated.contains_key(&content) {
        let n = numbering.entry(content).or_default();
        *n += 1;
        *n
    } else {
        1
    };
    journal::row_key(&row.content, occurrence)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use refund_core::{Currency, Money, PaymentRef};

    use super::super::Provider;
    use super::*;
    use crate::journal::Record;
    use crate::journal::tests::index_of_records;

    #[test]
    fn plans_follow_the_journal() {
        let row = Row {
            line: 2,
            key: "k".into(),
            content: "c".into(),
            provider: Provider::Sipay,
            payment: PaymentRef::payment("I"),
            amount: Money::parse("1", Currency::Try).unwrap(),
            reference: None,
        };
        let checks = Checks::default();
        let now = SystemTime::now();
        let journal = |name: &str, lines: &[(RowState, &str, Option<u64>)]| {
            let records: Vec<Record> = lines
                .iter()
                .map(|(state, reference, at)| Record {
                    at: *at,
                    // A retry_later record's not_before: 1 s after it.
                    not_before: at
                        .filter(|_| *state == RowState::RetryLater)
                        .map(|a| a + 1_000),
                    ..Record::new("k", *reference, *state)
                })
                .collect();
            index_of_records(name, &records)
        };
        let sent_then = |name: &str, state| {
            journal(
                &format!("plan-{name}"),
                &[
                    (RowState::Sending, "r-1", Some(1_000)),
                    (state, "r-1", Some(1_500)),
                ],
            )
        };
        let plan_of = |index: &Index| plan(&row, index, &checks, now).unwrap();
        // A fresh row without a reference gets the one derived from its key.
        assert!(matches!(
            plan_of(&journal("plan-empty", &[])),
            Plan::First { reference, refusals: 0 } if reference == journal::derived_reference("k")
        ));
        for state in [RowState::Refunded, RowState::Declined, RowState::Failed] {
            assert!(
                matches!(plan_of(&sent_then(state.name(), state)), Plan::Skip(s) if s == state),
                "{state:?} is final"
            );
        }
        // Due: its not_before (2.5 s after the epoch) has passed; one send on record.
        assert!(matches!(
            plan_of(&sent_then("retry", RowState::RetryLater)),
            Plan::Resend(a) if a.reference.as_str() == "r-1" && a.sends == 1
        ));
        let future = journal::to_millis(now) + 60_000;
        assert!(matches!(
            plan_of(&journal("plan-wait", &[(RowState::RetryLater, "r-1", Some(future))])),
            Plan::Wait(t) if t > now
        ));
        // Journaled retry_later without any request (a long pause): still the first send.
        assert!(matches!(
            plan_of(&journal("plan-never-sent", &[(RowState::RetryLater, "r-1", Some(1_000))])),
            Plan::First { reference, .. } if reference.as_str() == "r-1"
        ));
        let at_1s = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        assert!(matches!(
            plan_of(&journal("plan-sending", &[(RowState::Sending, "r-1", Some(1_000))])),
            Plan::LookUp(a) if a.reference.as_str() == "r-1" && a.attempted_at == at_1s && a.sends == 1
        ));
        // `unknown` keeps the time of the attempt it is about, not its own.
        assert!(matches!(
            plan_of(&sent_then("unknown", RowState::Unknown)),
            Plan::LookUp(a) if a.attempted_at == at_1s
        ));
        // Every send and every refusal under the reference counts (an older journal's
        // `declined` and `failed` before a resend included).
        assert!(matches!(
            plan_of(&journal(
                "plan-refused",
                &[
                    (RowState::Sending, "r-1", Some(1_000)),
                    (RowState::Declined, "r-1", Some(2_000)),
                    (RowState::Sending, "r-1", Some(3_000)),
                    (RowState::Failed, "r-1", Some(4_000)),
                    (RowState::Sending, "r-1", Some(5_000)),
                ]
            )),
            Plan::LookUp(a) if a.refusals == 1 && a.sends == 3
        ));
        // An undated attempt (an older journal) counts as made now.
        let before = SystemTime::now();
        assert!(matches!(
            plan_of(&journal("plan-undated", &[(RowState::Sending, "r-1", None)])),
            Plan::LookUp(a) if a.attempted_at >= before
        ));
        // A journaled reference that cannot be used is never replaced by a fresh one.
        for state in [RowState::Sending, RowState::RetryLater] {
            assert!(
                matches!(
                    plan_of(&journal(
                        &format!("plan-bad-{state:?}"),
                        &[(state, "bad ref", Some(1_000))]
                    )),
                    Plan::Stuck(_)
                ),
                "{state:?}"
            );
        }
    }
}
