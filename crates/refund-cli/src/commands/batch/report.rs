//! `--report`: every journaled row's latest state as CSV.

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
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    let mut totals = Totals::default();
    let mut failure: Option<csv::Error> = None;
    let mut write = |out: &mut csv::Writer<_>, fields: [&str; 8]| {
        if failure.is_none()
            && let Err(e) =
                out.write_record(fields.map(|f| cell(f, raw)).iter().map(|c| c.as_bytes()))
        {
            failure = Some(e);
        }
    };
    write(&mut out, REPORT_HEADER);
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
    fn the_report_spells_payments_as_the_input_does() {
        assert_eq!(input_payment("payment:INV-1"), "INV-1");
        assert_eq!(input_payment("item:11"), "tx:11");
        assert_eq!(input_payment("item:11@10"), "tx:11@10");
    }
}
