//! The input CSV, read one row at a time, and the parsing of a row.
//!
//! The reader is strict: a record with more or fewer fields than the header is malformed
//! (an unquoted comma in a value would otherwise shift or drop a column), a header that
//! names a column twice is refused, and so is a line longer than [`MAX_LINE`] bytes (the
//! input is never read whole). An input that is not a regular file (a pipe, `-` for stdin)
//! is read once into a private temporary file first ([`Spooled`]), since a run reads its
//! input twice.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use refund_core::{Currency, MerchantRef, Money, PaymentRef};

use super::{Provider, Row};
use crate::exit::Failure;
use crate::journal;

/// The longest line of an input file, in bytes: far beyond any real row (a row is under
/// 300 bytes), and a bound on what one row can make the reader hold.
pub(super) const MAX_LINE: usize = 64 * 1024;

/// A reader that fails on a line longer than [`MAX_LINE`], naming its line.
#[derive(Debug)]
struct Limited<R> {
    inner: R,
    /// The current line (from 1) and how many bytes of it were read.
    line: u64,
    run: usize,
}

impl<R> Limited<R> {
    fn new(inner: R) -> Self {
        Limited {
            inner,
            line: 1,
            run: 0,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.line += 1;
                self.run = 0;
            } else {
                self.run += 1;
                if self.run > MAX_LINE {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "line {} is longer than {MAX_LINE} bytes: not a row of refunds; \
                             the input is refused and nothing was sent",
                            self.line
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// The input as a regular file: the file itself, or a private temporary copy of a pipe (or of
/// stdin, for `-`), removed when this is dropped.
#[derive(Debug)]
pub(super) struct Spooled {
    path: PathBuf,
    temporary: bool,
}

impl Spooled {
    /// `path` when it is a regular file; else its content, read once (a line over
    /// [`MAX_LINE`] refuses it), in a new file only this user can read.
    pub(super) fn prepare(path: &Path) -> Result<Spooled, Failure> {
        let stdin = path.as_os_str() == "-";
        if !stdin && std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return Ok(Spooled {
                path: path.to_path_buf(),
                temporary: false,
            });
        }
        let shown = || {
            if stdin {
                "stdin".to_owned()
            } else {
                path.display().to_string()
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let spool = std::env::temp_dir().join(format!(
            "refund-batch-input-{}-{nanos}.csv",
            std::process::id()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options
            .open(&spool)
            .map_err(|e| Failure::other(format!("{}: {e}", spool.display())))?;
        let spooled = Spooled {
            path: spool,
            temporary: true,
        };
        let copied = if stdin {
            std::io::copy(&mut Limited::new(std::io::stdin().lock()), &mut out)
        } else {
            File::open(path).and_then(|f| std::io::copy(&mut Limited::new(f), &mut out))
        };
        copied.map_err(|e| Failure::invalid(format!("{}: {e}", shown())))?;
        Ok(spooled)
    }

    /// The regular file to read.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The input CSV, read one row at a time.
pub(super) struct Input {
    reader: csv::Reader<Limited<File>>,
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
        let file =
            File::open(path).map_err(|e| Failure::invalid(format!("{}: {e}", path.display())))?;
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(Limited::new(file));
        let headers = reader
            .headers()
            .map_err(|e| Failure::invalid(format!("{}: {}", path.display(), csv_error(&e))))?;
        let mut names: Vec<String> = headers.iter().map(str::to_ascii_lowercase).collect();
        names.sort_unstable();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Failure::invalid(format!(
                "{}: line 1: the header names the column {:?} twice: which one holds the value \
                 is anybody's guess, so the input is refused and nothing was sent",
                path.display(),
                twice[0]
            )));
        }
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
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                Err(Failure::invalid(csv_error(&e)))
            }
            Err(e) => {
                let line = e.position().map_or(fallback, csv::Position::line);
                Ok(Some(Err((line, csv_error(&e)))))
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

/// What a CSV error says, without the reader's own framing.
fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "{len} fields where the header has {expected_len} (an unquoted comma in a value?): \
             not read as a row"
        ),
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
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
    // What the provider's capabilities refuse is refused here, before anything is sent, not
    // journaled `failed` at send time.
    let caps = match provider {
        Provider::Sipay => refund_sipay::CAPABILITIES,
        Provider::Iyzico => refund_iyzico::CAPABILITIES,
    };
    if !caps.supports_currency(currency) {
        let takes: Vec<&str> = caps.currencies.iter().map(|c| c.code()).collect();
        return Err(format!(
            "{} does not refund in {} (it refunds in {})",
            provider.name(),
            currency.code(),
            takes.join(", ")
        ));
    }
    caps.check_scope(provider.name(), &payment)
        .map_err(|e| e.to_string())?;
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
            ("sipay", "I", "1", "USD", None),
        ] {
            assert!(
                parse_row(p, pay, a, c, r).is_err(),
                "{p} {pay} {a} {c} {r:?}"
            );
        }
    }
}
