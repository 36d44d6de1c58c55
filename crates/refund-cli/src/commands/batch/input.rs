//! The input CSV, read one row at a time, and the parsing of a row.

use std::path::Path;

use refund_core::{Currency, MerchantRef, Money, PaymentRef};

use super::{Provider, Row};
use crate::exit::Failure;
use crate::journal;

/// The input CSV, read one row at a time.
pub(super) struct Input {
    reader: csv::Reader<std::fs::File>,
    record: csv::StringRecord,
    columns: Columns,
    rows: u64,
}

/// Where each column is.
struct Columns {
    provider: usize,
    payment: usize,
    amount: usize,
    currency: usize,
    reference: Option<usize>,
}

impl Input {
    pub(super) fn open(path: &Path) -> Result<Input, Failure> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| Failure::invalid(format!("{}: {e}", path.display())))?;
        let headers = reader
            .headers()
            .map_err(|e| Failure::invalid(format!("{}: {e}", path.display())))?;
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(provider), Some(payment), Some(amount), Some(currency)) = (
            column("provider"),
            column("payment"),
            column("amount"),
            column("currency"),
        ) else {
            return Err(Failure::invalid(
                "the header must name the columns provider,payment,amount,currency (and optionally reference)",
            ));
        };
        let columns = Columns {
            provider,
            payment,
            amount,
            currency,
            reference: column("reference"),
        };
        Ok(Input {
            reader,
            record: csv::StringRecord::new(),
            columns,
            rows: 0,
        })
    }

    /// The next row: valid, or (line, why) when malformed; `None` at the end.
    pub(super) fn next(&mut self) -> Result<Option<Result<Row, Malformed>>, Failure> {
        let read = self.reader.read_record(&mut self.record);
        self.rows += 1;
        // The header is line 1; a record's own position is more exact (quoted newlines).
        let fallback = self.rows + 1;
        match read {
            Ok(false) => Ok(None),
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => Err(Failure::other(e)),
            Err(e) => {
                let line = e.position().map_or(fallback, csv::Position::line);
                Ok(Some(Err((line, e.to_string()))))
            }
            Ok(true) => {
                let line = self.record.position().map_or(fallback, csv::Position::line);
                let field = |c: usize| self.record.get(c).unwrap_or("");
                let c = &self.columns;
                let reference = c.reference.map(field).filter(|r| !r.is_empty());
                Ok(Some(
                    parse_row(
                        field(c.provider),
                        field(c.payment),
                        field(c.amount),
                        field(c.currency),
                        reference,
                    )
                    .map(|(provider, payment, amount, reference)| Row {
                        content: journal::row_content(
                            provider.name(),
                            &payment,
                            &amount,
                            reference.as_ref().map(MerchantRef::as_str),
                        ),
                        key: String::new(),
                        line,
                        provider,
                        payment,
                        amount,
                        reference,
                    })
                    .map_err(|why| (line, why)),
                ))
            }
        }
    }
}

type Parsed = (Provider, PaymentRef, Money, Option<MerchantRef>);

/// A malformed row: its line, and why.
pub(super) type Malformed = (u64, String);

pub(super) fn parse_row(
    provider: &str,
    payment: &str,
    amount: &str,
    currency: &str,
    reference: Option<&str>,
) -> Result<Parsed, String> {
    let provider = Provider::from_name(provider)
        .ok_or_else(|| format!("unknown provider {provider:?} (sipay or iyzico)"))?;
    let payment = match (provider, payment.strip_prefix("tx:")) {
        (Provider::Iyzico, Some(item)) => match item.split_once('@') {
            Some((item, parent)) => PaymentRef::item(item).in_payment(parent),
            None => PaymentRef::item(item),
        },
        (Provider::Sipay, Some(_)) => return Err("tx: ids are for iyzico only".into()),
        (_, None) => PaymentRef::payment(payment),
    };
    payment.validate().map_err(|e| e.to_string())?;
    let currency: Currency = currency.parse().map_err(|e| format!("{e}"))?;
    let amount = Money::parse(amount, currency).map_err(|e| e.to_string())?;
    if amount.is_zero() {
        return Err("the amount must be greater than zero".into());
    }
    let reference = reference
        .map(MerchantRef::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((provider, payment, amount, reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_validated_before_anything_is_sent() {
        assert!(parse_row("sipay", "INV-1", "10.50", "TRY", None).is_ok());
        assert!(parse_row("iyzico", "tx:11@10", "1", "TRY", Some("r-1")).is_ok());
        for (p, pay, a, c, r) in [
            ("paytr", "1", "1", "TRY", None),
            ("sipay", "tx:1", "1", "TRY", None),
            ("sipay", "", "1", "TRY", None),
            ("sipay", "I", "10.005", "TRY", None),
            ("sipay", "I", "-1", "TRY", None),
            ("sipay", "I", "0", "TRY", None),
            ("sipay", "I", "1", "XXX", None),
            ("sipay", "I", "1", "TRY", Some("bad ref")),
        ] {
            assert!(
                parse_row(p, pay, a, c, r).is_err(),
                "{p} {pay} {a} {c} {r:?}"
            );
        }
    }
}
