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

/// `--report`: every journaled row's latest state as CSV on stdout, in the order the rows
/// last changed. Reads the journal without locking or writing it.
pub(super) fn report(path: &Path) -> Result<ExitCode, Failure> {
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
            && let Err(e) = out.write_record(fields)
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
    fn the_report_spells_payments_as_the_input_does() {
        assert_eq!(input_payment("payment:INV-1"), "INV-1");
        assert_eq!(input_payment("item:11"), "tx:11");
        assert_eq!(input_payment("item:11@10"), "tx:11@10");
    }
}
