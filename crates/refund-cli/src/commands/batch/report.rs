//! `--report`: every journaled row's latest state as CSV, with what accounting needs (see
//! [`ACCOUNTING_COLUMNS`]).

use std::path::Path;
use std::process::ExitCode;

use super::summary::Totals;
use crate::exit::Failure;
use crate::journal::{self, Index, RowState};
use crate::output::err_line;

/// The report's columns.
pub(super) const REPORT_HEADER: [&str; 8] = [
    "provider",
    "payment",
    "amount",
    "currency",
    "reference",
    "state",
    "provider_reference",
    "updated_at",
];

/// The columns a file journal's report has after [`REPORT_HEADER`]'s: the requested amount;
/// the refunded amount (the amount when `refunded`, zero when `declined`, `failed` or
/// `retry_later`, empty while `unknown`); how many requests were sent; the first and last
/// attempt times (UTC); the last error or refusal the journal noted; and a person's decision
/// (`refund decide`: refunded, not_refunded or retry; who, when in UTC, why). `provider_reference`
/// is the provider's refund id.
pub(super) const ACCOUNTING_COLUMNS: [&str; 10] = [
    "requested_amount",
    "refunded_amount",
    "attempts",
    "first_attempt_at",
    "last_attempt_at",
    "last_error",
    "decision",
    "decided_by",
    "decided_at",
    "decided_why",
];

/// What the report tells of a row beyond its last record.
#[derive(Debug, Default)]
struct History {
    attempts: u32,
    first_attempt: Option<u64>,
    last_attempt: Option<u64>,
    last_error: Option<String>,
    decision: Option<(journal::PersonDecision, Option<u64>)>,
}

/// Every row's [`History`], from one pass over the journal.
fn histories(index: &Index) -> std::io::Result<std::collections::HashMap<String, History>> {
    let mut all: std::collections::HashMap<String, History> = std::collections::HashMap::new();
    index.for_each_record(|record| {
        let h = all.entry(record.key.clone()).or_default();
        match record.state {
            RowState::Sending => {
                h.attempts += 1;
                if let Some(at) = record.at {
                    h.first_attempt.get_or_insert(at);
                    h.last_attempt = Some(at);
                }
            }
            RowState::Declined | RowState::Failed | RowState::RetryLater | RowState::Unknown
                if record.decided.is_none() =>
            {
                if let Some(note) = &record.note {
                    h.last_error = Some(note.clone());
                }
            }
            _ => {}
        }
        if let Some(decided) = record.decided {
            h.decision = Some((decided, record.at));
        }
    })?;
    Ok(all)
}

/// The refunded amount of a row in `state` whose requested amount is `amount`.
fn refunded_amount(state: RowState, amount: &str) -> String {
    match state {
        RowState::Refunded => amount.to_owned(),
        RowState::Declined | RowState::Failed | RowState::RetryLater => {
            match amount.split_once('.') {
                Some((_, fraction)) => format!("0.{}", "0".repeat(fraction.len())),
                None => "0".to_owned(),
            }
        }
        RowState::Sending | RowState::Unknown => String::new(),
    }
}

/// A cell as the report writes it: with a leading `'` when it begins with a character a
/// spreadsheet takes for the start of a formula (`=`, `+`, `-`, `@`, tab, carriage return:
/// OWASP's list for CSV injection), unless `raw`.
pub(super) fn cell(value: &str, raw: bool) -> std::borrow::Cow<'_, str> {
    match value.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if !raw => format!("'{value}").into(),
        _ => value.into(),
    }
}

/// `--report`: every journaled row's latest state as CSV on stdout, in the order the rows
/// last changed. Reads the journal without locking or writing it. Formula-safe unless `raw`
/// (see [`cell`]).
pub(super) fn report(path: &Path, raw: bool) -> Result<ExitCode, Failure> {
    let journal_error =
        |e: std::io::Error| Failure::other(format!("journal {}: {e}", path.display()));
    if !path.exists() {
        return Err(Failure::invalid(format!(
            "journal {}: no such file",
            path.display()
        )));
    }
    let index = Index::read_only(path).map_err(journal_error)?;
    let mut histories = histories(&index).map_err(journal_error)?;
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    let mut totals = Totals::default();
    let mut failure: Option<csv::Error> = None;
    let mut write = |out: &mut csv::Writer<_>, fields: [&str; 8], extra: [&str; 10]| {
        if failure.is_none()
            && let Err(e) = out.write_record(
                fields
                    .iter()
                    .chain(extra.iter())
                    .map(|f| cell(f, raw))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(|c| c.as_bytes()),
            )
        {
            failure = Some(e);
        }
    };
    write(&mut out, REPORT_HEADER, ACCOUNTING_COLUMNS);
    index
        .for_each_last(|record| {
            // An attempt without a later record is an unknown outcome.
            let state = match record.state {
                RowState::Sending => RowState::Unknown,
                other => other,
            };
            totals.count(state);
            let updated = record
                .at
                .map(|ms| journal::utc(journal::from_millis(ms)))
                .unwrap_or_default();
            let provider_reference = record.provider_reference.as_deref().unwrap_or("");
            let h = histories.remove(&record.key).unwrap_or_default();
            let time = |ms: Option<u64>| {
                ms.map(|ms| journal::utc(journal::from_millis(ms)))
                    .unwrap_or_default()
            };
            let attempts = h.attempts.to_string();
            let (first, last) = (time(h.first_attempt), time(h.last_attempt));
            let (decision, by, decided_at, why) = match &h.decision {
                Some((d, at)) => (
                    d.decision.as_str(),
                    d.by.as_str(),
                    time(*at),
                    d.why.as_str(),
                ),
                None => ("", "", String::new(), ""),
            };
            let last_error = h.last_error.as_deref().unwrap_or("");
            let amount = journal::parse_key(&record.key)
                .map(|p| p.amount)
                .unwrap_or("");
            let refunded = refunded_amount(state, amount);
            let extra = [
                amount,
                &refunded,
                &attempts,
                &first,
                &last,
                last_error,
                decision,
                by,
                &decided_at,
                why,
            ];
            match journal::parse_key(&record.key) {
                Some(parts) => {
                    let payment = input_payment(parts.payment);
                    write(
                        &mut out,
                        [
                            parts.provider,
                            &payment,
                            parts.amount,
                            parts.currency,
                            &record.reference,
                            state.name(),
                            provider_reference,
                            &updated,
                        ],
                        extra,
                    );
                }
                None => write(
                    &mut out,
                    [
                        "",
                        &record.key,
                        "",
                        "",
                        &record.reference,
                        state.name(),
                        provider_reference,
                        &updated,
                    ],
                    extra,
                ),
            }
        })
        .map_err(journal_error)?;
    if let Some(e) = failure {
        return Err(Failure::other(e));
    }
    out.flush().map_err(Failure::other)?;
    drop(out);
    err_line(&format!(
        "journal, {} rows: {} refunded, {} declined, {} unknown, {} retry later, {} failed",
        totals.rows,
        totals.refunded,
        totals.declined,
        totals.unknown,
        totals.retry_later,
        totals.failed
    ))
    .map_err(Failure::other)?;
    Ok(ExitCode::SUCCESS)
}

/// A payment as the input spells it: `INV-1`, `tx:11`, `tx:11@10`.
fn input_payment(shown: &str) -> String {
    if let Some(id) = shown.strip_prefix("payment:") {
        id.to_owned()
    } else if let Some(item) = shown.strip_prefix("item:") {
        format!("tx:{item}")
    } else {
        shown.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_cells_that_a_spreadsheet_would_run_get_a_leading_quote() {
        for (value, safe) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+SUM(1,2)", "'+SUM(1,2)"),
            ("-2+3", "'-2+3"),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("INV-1", "INV-1"),
            ("", ""),
        ] {
            assert_eq!(cell(value, false), safe, "{value:?}");
            assert_eq!(cell(value, true), value, "raw: {value:?}");
        }
    }

    #[test]
    fn the_refunded_amount_is_the_amount_zero_or_unknown_by_state() {
        assert_eq!(refunded_amount(RowState::Refunded, "10.50"), "10.50");
        assert_eq!(refunded_amount(RowState::Declined, "10.50"), "0.00");
        assert_eq!(refunded_amount(RowState::Failed, "7"), "0");
        assert_eq!(refunded_amount(RowState::Unknown, "10.50"), "");
    }

    #[test]
    fn the_report_spells_payments_as_the_input_does() {
        assert_eq!(input_payment("payment:INV-1"), "INV-1");
        assert_eq!(input_payment("item:11"), "tx:11");
        assert_eq!(input_payment("item:11@10"), "tx:11@10");
    }
}
