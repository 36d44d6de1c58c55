//! `--report`: every journaled row's latest state as CSV, with what accounting needs (see
//! [`ACCOUNTING_COLUMNS`]).

use std::path::Path;
use std::process::ExitCode;

use super::summary::Totals;
use crate::exit::Failure;
use crate::journal::{self, HashTable, Index, RowState};
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

/// Every row's [`History`], from one pass over the journal, by the keyed hash of its key (as
/// the index keeps rows: a few dozen bytes a row, plus the text of its last error or decision).
fn histories(index: &Index) -> std::io::Result<HashTable<History>> {
    let mut all: HashTable<History> = HashTable::default();
    let hashing = index.hashing().clone();
    index.for_each_record(|record| {
        let h = all.entry(hashing.of(&record.key)).or_default();
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

/// The report's format (`--report-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    /// CSV with a header line; formula-safe cells unless `--report-raw`.
    #[default]
    Csv,
    /// One JSON object per row, the CSV's column names as keys, values as they are (JSON is
    /// not opened by spreadsheets, so no cell gets a `'`).
    Jsonl,
}

/// Writes the report's rows in one format.
struct Writer<W: std::io::Write> {
    csv: Option<csv::Writer<W>>,
    json: Option<W>,
    raw: bool,
    failure: Option<String>,
}

impl<W: std::io::Write> Writer<W> {
    fn new(out: W, format: ReportFormat, raw: bool) -> Self {
        match format {
            ReportFormat::Csv => Writer {
                csv: Some(csv::Writer::from_writer(out)),
                json: None,
                raw,
                failure: None,
            },
            ReportFormat::Jsonl => Writer {
                csv: None,
                json: Some(out),
                raw,
                failure: None,
            },
        }
    }

    fn header(&mut self) {
        if let Some(csv) = &mut self.csv {
            let all: Vec<&str> = REPORT_HEADER
                .iter()
                .chain(ACCOUNTING_COLUMNS.iter())
                .copied()
                .collect();
            if let Err(e) = csv.write_record(&all) {
                self.failure.get_or_insert(e.to_string());
            }
        }
    }

    fn row(&mut self, cells: &[&str]) {
        if self.failure.is_some() {
            return;
        }
        if let Some(csv) = &mut self.csv {
            let safe: Vec<_> = cells.iter().map(|c| cell(c, self.raw)).collect();
            if let Err(e) = csv.write_record(safe.iter().map(|c| c.as_bytes())) {
                self.failure = Some(e.to_string());
            }
        }
        if let Some(out) = &mut self.json {
            let object: serde_json::Map<String, serde_json::Value> = REPORT_HEADER
                .iter()
                .chain(ACCOUNTING_COLUMNS.iter())
                .zip(cells)
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            let line = serde_json::Value::Object(object).to_string();
            if let Err(e) = writeln!(out, "{line}") {
                self.failure = Some(e.to_string());
            }
        }
    }

    fn finish(self) -> Result<(), String> {
        if let Some(why) = self.failure {
            return Err(why);
        }
        if let Some(mut csv) = self.csv {
            csv.flush().map_err(|e| e.to_string())?;
        }
        if let Some(mut out) = self.json {
            out.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The report's cells for a row's last record, with its [`History`].
fn cells(record: &journal::Record, h: &History) -> Vec<String> {
    // An attempt without a later record is an unknown outcome.
    let state = match record.state {
        RowState::Sending => RowState::Unknown,
        other => other,
    };
    let time = |ms: Option<u64>| {
        ms.map(|ms| journal::utc(journal::from_millis(ms)))
            .unwrap_or_default()
    };
    let provider_reference = record.provider_reference.clone().unwrap_or_default();
    let (provider, payment, amount, currency) = match journal::parse_key(&record.key) {
        Some(parts) => (
            parts.provider.to_owned(),
            input_payment(parts.payment),
            parts.amount.to_owned(),
            parts.currency.to_owned(),
        ),
        None => (
            String::new(),
            record.key.clone(),
            String::new(),
            String::new(),
        ),
    };
    let (decision, by, decided_at, why) = match &h.decision {
        Some((d, at)) => (d.decision.clone(), d.by.clone(), time(*at), d.why.clone()),
        None => Default::default(),
    };
    vec![
        provider,
        payment,
        amount.clone(),
        currency,
        record.reference.clone(),
        state.name().to_owned(),
        provider_reference,
        time(record.at),
        amount.clone(),
        refunded_amount(state, &amount),
        h.attempts.to_string(),
        time(h.first_attempt),
        time(h.last_attempt),
        h.last_error.clone().unwrap_or_default(),
        decision,
        by,
        decided_at,
        why,
    ]
}

/// Calls its argument with each input row's journal key and input cells (provider, payment,
/// amount, currency, reference), in input order.
pub(super) type InputRows<'a> = dyn Fn(&mut dyn FnMut(&str, &[&str])) -> Result<(), Failure> + 'a;

/// `--report`: every journaled row's latest state on stdout (CSV, or JSON lines), in the order
/// the rows last changed — or, given the rows' keys (`--input` with `--report`), in that order,
/// a row the journal does not have reported `not_sent`. Reads the journal without locking or
/// writing it. Formula-safe unless `raw` (see [`cell`]).
pub(super) fn report(
    path: &Path,
    raw: bool,
    format: ReportFormat,
    in_order: Option<&InputRows<'_>>,
) -> Result<ExitCode, Failure> {
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
    let mut out = Writer::new(std::io::stdout().lock(), format, raw);
    let mut totals = Totals::default();
    out.header();
    match in_order {
        None => index
            .for_each_last(|record| {
                let h = histories
                    .remove(&index.hashing().of(&record.key))
                    .unwrap_or_default();
                let row = cells(&record, &h);
                totals.count(row_state(&record));
                out.row(&row.iter().map(String::as_str).collect::<Vec<_>>());
            })
            .map_err(journal_error)?,
        Some(rows) => {
            let mut failure = None;
            rows(&mut |key, input_cells| {
                let found = index.get(key).map(|view| index.record_at(view.offset));
                match found {
                    Some(Ok(record)) => {
                        let h = histories.get(&index.hashing().of(key)).map_or_else(
                            History::default,
                            |h| History {
                                attempts: h.attempts,
                                first_attempt: h.first_attempt,
                                last_attempt: h.last_attempt,
                                last_error: h.last_error.clone(),
                                decision: h.decision.clone(),
                            },
                        );
                        let row = cells(&record, &h);
                        totals.count(row_state(&record));
                        out.row(&row.iter().map(String::as_str).collect::<Vec<_>>());
                    }
                    Some(Err(e)) => {
                        failure.get_or_insert(e);
                    }
                    None => {
                        // Never sent: the input's cells, state not_sent.
                        let mut row: Vec<&str> = input_cells.to_vec();
                        row.resize(REPORT_HEADER.len() + ACCOUNTING_COLUMNS.len(), "");
                        row[5] = "not_sent";
                        row[8] = input_cells.get(2).copied().unwrap_or("");
                        row[10] = "0";
                        out.row(&row);
                    }
                }
            })?;
            if let Some(e) = failure {
                return Err(journal_error(e));
            }
        }
    }
    out.finish().map_err(Failure::other)?;
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

/// The state a record counts as in the totals.
fn row_state(record: &journal::Record) -> RowState {
    match record.state {
        RowState::Sending => RowState::Unknown,
        other => other,
    }
}

/// A payment as the input spells it: `INV-1`, `tx:11`, `tx:11@10`.
pub(super) fn input_payment(shown: &str) -> String {
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
