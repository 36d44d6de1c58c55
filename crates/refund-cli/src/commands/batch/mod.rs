//! `refund batch`: refund every row of a CSV file, crash-safely (see [`crate::journal`]).
//!
//! A run reads the input twice, streaming: first to validate every row before anything is
//! sent (malformed rows, references used by more than one row, rows edited after an attempt
//! whose outcome is unknown), then to work through the rows with at most `--concurrency` in
//! flight. Neither pass keeps rows in memory; the journal's index keeps a few bytes per row.
//! The last stdout line is one JSON object: this run's counts, and `journal`, the state of
//! every input row after this run, which decides the exit code.
//!
//! Every row is driven through the one attempt lifecycle, `refund_core::AttemptPolicy`: the
//! journal stores each decision and the driver acts on its next step (see [`drive`]). The
//! modules, one job each:
//!
//! - [`input`]: the CSV reader and the row parser;
//! - [`validate`]: the validating pass;
//! - [`plan`]: what to do with a row, given the journal (and `--dry-run`);
//! - [`work`]: the scheduler and each provider's clients;
//! - [`drive`]: the driving of one row (and of an orphaned attempt) through the policy;
//! - [`summary`]: the totals, the exit code and the closing lines;
//! - [`report`]: `--report`, every row's latest state as CSV;
//! - `outbox`: the same command on the PostgreSQL outbox.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args as ClapArgs;
use refund_core::{MerchantRef, Money, PaymentRef};

use super::Connection;
use crate::exit::Failure;
use crate::journal::{Journal, OpenError};

mod drive;
mod input;
mod outbox;
mod plan;
mod report;
mod summary;
mod validate;
mod work;

#[cfg(test)]
mod scenarios;

#[cfg(test)]
mod store_tests {
    use super::connection_string_kind;

    #[test]
    fn a_connection_string_in_any_spelling_is_told_from_a_path_without_its_value() {
        for (value, kind) in [
            ("POSTGRES://u:pw@h/db", "a postgres: URL"),
            ("postgres:/u:pw@h/db", "a postgres: URL"),
            ("Postgresql://h", "a postgresql: URL"),
            ("mysql://u:pw@h", "a mysql: URL"),
            (
                "host=h password=pw dbname=d",
                "a libpq keyword connection string",
            ),
            ("dbname=d PASSWORD=pw", "a libpq keyword connection string"),
        ] {
            let got = connection_string_kind(value).unwrap_or_default();
            assert_eq!(got, kind, "{value}");
            assert!(!got.contains("pw"));
        }
        for path in [
            "refunds.journal",
            "/tmp/x/j",
            "./a:b",
            "dir/c=d.journal",
            "C:/x",
        ] {
            assert_eq!(connection_string_kind(path), None, "{path}");
        }
    }
}

use input::Input;
use report::REPORT_HEADER;
use summary::{Summary, finish};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// CSV with a header line and columns `provider,payment,amount,currency[,reference]`.
    /// `payment` is the SiPay invoice_id or the iyzico paymentId; `tx:<id>` is an iyzico
    /// paymentTransactionId (item refund), `tx:<id>@<paymentId>` also names its payment so an
    /// uncertain refund can be looked up. A reference may be used by one row only; a row
    /// without one gets a reference derived from its content (the same in every run), so
    /// refunding the same payment and amount again in a later campaign needs a reference.
    #[arg(long, required_unless_present = "report")]
    input: Option<PathBuf>,
    /// The journal file (created when missing). Run again with the same journal to resume.
    /// One run at a time: a second run on a journal in use exits 5 and sends nothing.
    /// A value that looks like a connection string (`scheme://…`, `scheme:/…`, or libpq's
    /// `host=… password=…`) is refused, never made a file: the outbox is named by `--outbox`.
    /// (`postgres://…` and `postgresql://…` still name the outbox here, for this release only.)
    #[arg(long, conflicts_with_all = ["outbox", "outbox_url_file"])]
    journal: Option<PathBuf>,
    /// The refund outbox (see docs/outbox.md) instead of a journal file: its PostgreSQL URL,
    /// which any number of runs, on any number of machines, work at once. Never printed.
    /// Without `--journal`, `--outbox` or `--outbox-url-file`, `DATABASE_URL` names it.
    #[arg(long, value_name = "URL", conflicts_with = "outbox_url_file")]
    outbox: Option<String>,
    /// The outbox's URL read from this file (first line), so that its password is neither on
    /// the command line nor in the environment.
    #[arg(long, value_name = "PATH")]
    outbox_url_file: Option<PathBuf>,
    /// Print every row of the journal with its latest state
    /// (provider,payment,amount,currency,reference,state,provider_reference,updated_at, then
    /// requested_amount,refunded_amount,attempts,first_attempt_at,last_attempt_at,last_error,
    /// decision,decided_by,decided_at,decided_why), and exit. Sends nothing and writes
    /// nothing. With --input, the input's rows in input order (a row never sent: `not_sent`);
    /// otherwise the journal's, in the order they last changed.
    #[arg(long, conflicts_with = "dry_run")]
    report: bool,
    /// `--report`: csv (the default) or jsonl (one JSON object per row, the same columns).
    #[arg(long, value_enum, default_value_t = report::ReportFormat::Csv, requires = "report")]
    report_format: report::ReportFormat,
    /// Refunds in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// At most N requests per second to each provider (refunds and lookups), evenly spaced.
    /// Whatever the rate, a rate limit answer (429) pauses every request to that provider for
    /// as long as it asks (Retry-After).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: Option<u32>,
    /// Validate the rows and print what would be done; send nothing, and neither create nor
    /// write the journal.
    #[arg(long)]
    dry_run: bool,
    /// The operator asserts that this input was never run before, with any journal: the
    /// provider's ledger is then not checked before a row's first send to a provider that does
    /// not refuse a reused reference (iyzico). Refused when the journal already has records.
    #[arg(long)]
    input_never_run_before: bool,
    /// Identical rows without a reference are meant: each is a refund of its own (they are
    /// told apart by their position among the identical ones). Without it they are refused
    /// before anything is sent.
    #[arg(long)]
    allow_identical_rows: bool,
    /// `--report`: write the cells as they are. By default a cell beginning with `=`, `+`,
    /// `-`, `@`, a tab or a carriage return gets a leading `'`, so a spreadsheet opening the
    /// report shows it as text instead of running it as a formula.
    #[arg(long, requires = "report")]
    report_raw: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Provider {
    Sipay,
    Iyzico,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Sipay => "sipay",
            Provider::Iyzico => "iyzico",
        }
    }

    fn from_name(name: &str) -> Option<Provider> {
        match name.to_ascii_lowercase().as_str() {
            "sipay" => Some(Provider::Sipay),
            "iyzico" => Some(Provider::Iyzico),
            _ => None,
        }
    }
}

/// A valid row.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    provider: Provider,
    payment: PaymentRef,
    amount: Money,
    reference: Option<MerchantRef>,
    /// What the row's key is made of (see [`crate::journal::row_content`]).
    content: String,
    /// Its key in the journal: set by the working pass, which numbers identical rows.
    key: String,
}

/// Where the batch keeps its state.
enum Store {
    File(PathBuf),
    Outbox(String),
}

/// The store the command line names: `--journal PATH`, `--outbox URL`, `--outbox-url-file
/// PATH` or `DATABASE_URL`, in that order; never a journal file named after a connection
/// string, and never a message with one in it.
fn store(args: &Args) -> Result<Store, Failure> {
    if let Some(journal) = &args.journal {
        let Some(text) = journal.to_str() else {
            return Ok(Store::File(journal.clone()));
        };
        if outbox::database_url(journal).is_some() {
            crate::output::err_line(
                "warning: --journal with a database URL is deprecated and goes away in the next \
                 release; name the outbox with --outbox URL, DATABASE_URL or --outbox-url-file \
                 PATH",
            )
            .map_err(Failure::other)?;
            return Ok(Store::Outbox(text.to_owned()));
        }
        if let Some(what) = connection_string_kind(text) {
            return Err(Failure::invalid(format!(
                "--journal: the value looks like {what}, not a file path; nothing was sent and \
                 no journal was created (the value is not printed: it may hold a password). \
                 Name the outbox with --outbox URL, DATABASE_URL or --outbox-url-file PATH"
            )));
        }
        return Ok(Store::File(journal.clone()));
    }
    if let Some(url) = &args.outbox {
        return Ok(Store::Outbox(url.clone()));
    }
    if let Some(path) = &args.outbox_url_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::configuration(format!("--outbox-url-file {}: {e}", path.display()))
        })?;
        let url = text.lines().next().unwrap_or_default().trim();
        if url.is_empty() {
            return Err(Failure::configuration(format!(
                "--outbox-url-file {}: the file is empty",
                path.display()
            )));
        }
        return Ok(Store::Outbox(url.to_owned()));
    }
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(Store::Outbox(url.trim().to_owned())),
        _ => Err(Failure::usage(
            "name where the batch keeps its state: --journal PATH (a file), or the outbox with \
             --outbox URL, --outbox-url-file PATH or DATABASE_URL",
        )),
    }
}

/// What a `--journal` value that is a connection string looks like (`a postgres: URL`, `a
/// libpq keyword connection string`), never the value itself; `None` for a path.
fn connection_string_kind(value: &str) -> Option<String> {
    let trimmed = value.trim_start();
    if let Some((scheme, rest)) = trimmed.split_once(':') {
        let is_scheme = scheme.len() >= 2
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if is_scheme && rest.starts_with('/') {
            return Some(format!("a {}: URL", scheme.to_ascii_lowercase()));
        }
    }
    const KEYWORDS: [&str; 12] = [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "sslmode",
        "sslrootcert",
        "service",
        "options",
        "connect_timeout",
    ];
    let keyword = trimmed.split_whitespace().any(|word| {
        word.split_once('=')
            .is_some_and(|(key, _)| KEYWORDS.contains(&key.trim().to_ascii_lowercase().as_str()))
    });
    keyword.then(|| "a libpq keyword connection string".to_owned())
}

/// How this process prints (`--output`): set once by [`run`], read by the summary.
static FORMAT: std::sync::OnceLock<crate::output::Format> = std::sync::OnceLock::new();

/// How the summary is printed: JSON mode wraps it in the envelope every command has.
fn format() -> crate::output::Format {
    FORMAT.get().copied().unwrap_or_default()
}

pub(crate) async fn run(args: Args, format: crate::output::Format) -> Result<ExitCode, Failure> {
    let _ = FORMAT.set(format);
    let journal = match store(&args)? {
        Store::Outbox(url) => return outbox::run(&args, &url).await,
        Store::File(path) => path,
    };
    run_file(&args, &journal).await
}

/// The batch on a journal file.
async fn run_file(args: &Args, journal_path: &Path) -> Result<ExitCode, Failure> {
    if args.report {
        let Some(given) = &args.input else {
            return report::report(journal_path, args.report_raw, args.report_format, None);
        };
        return report_in_input_order(args, given, journal_path);
    }
    let given = args
        .input
        .clone()
        .ok_or_else(|| Failure::invalid("--input is required (or --report)"))?;
    // Read twice below: a pipe (or `-`, stdin) is read once into a temporary file first.
    let spooled = input::Spooled::prepare(&given)?;
    let input = spooled.path().to_path_buf();
    let journal_error =
        |e: std::io::Error| Failure::other(format!("journal {}: {e}", journal_path.display()));

    if args.dry_run {
        // Read only: a dry run neither creates, locks nor writes the journal.
        let index = crate::journal::Index::read_only(journal_path).map_err(journal_error)?;
        let checks =
            validate::validate(&input, &index, args.allow_identical_rows, &args.connection)
                .map_err(|e| e.journal(journal_path))?;
        return plan::dry_run(&input, &index, &checks).map_err(|e| e.journal(journal_path));
    }

    // One runner per journal: the lock is taken before anything is read or sent, and held
    // until this process ends.
    let journal = match Journal::open(journal_path) {
        Ok(journal) => journal,
        Err(OpenError::Busy) => {
            return Err(Failure::other(format!(
                "journal {} is in use by another `refund batch` run; nothing was sent. \
                 Wait for that run to finish, then run this command again",
                journal_path.display()
            )));
        }
        Err(OpenError::Io(e)) => return Err(journal_error(e)),
    };
    if args.input_never_run_before && !journal.index().is_empty() {
        return Err(Failure::invalid(format!(
            "--input-never-run-before: journal {} already has records, so this input (or \
             another) was run with it before; nothing was sent. Run without the flag: the \
             provider's ledger is then checked before each row's first send",
            journal_path.display()
        )));
    }
    let checks = validate::validate(
        &input,
        journal.index(),
        args.allow_identical_rows,
        &args.connection,
    )
    .map_err(|e| e.journal(journal_path))?;
    let (index, appender) = journal.into_appender().map_err(journal_error)?;
    work::work(args, &input, &index, &checks, appender)
        .await
        .map_err(|e| e.journal(journal_path))
}

/// `--report --input`: the input's rows, in input order, each with its journal row (found by
/// the key the working pass gives it).
fn report_in_input_order(
    args: &Args,
    given: &Path,
    journal_path: &Path,
) -> Result<ExitCode, Failure> {
    let spooled = input::Spooled::prepare(given)?;
    let input = spooled.path().to_path_buf();
    if !journal_path.exists() {
        return Err(Failure::invalid(format!(
            "journal {}: no such file",
            journal_path.display()
        )));
    }
    let journal_error =
        |e: std::io::Error| Failure::other(format!("journal {}: {e}", journal_path.display()));
    let index = crate::journal::Index::read_only(journal_path).map_err(journal_error)?;
    let checks = validate::validate(&input, &index, args.allow_identical_rows, &args.connection)
        .map_err(|e| e.journal(journal_path))?;
    let rows = |each: &mut dyn FnMut(&str, &[&str])| -> Result<(), Failure> {
        let mut numbering = crate::journal::HashTable::default();
        let mut reader = Input::open(&input)?;
        while let Some(next) = reader.next()? {
            let Ok(row) = next else { continue };
            if checks.refused_lines.contains(&row.line) {
                continue;
            }
            let key = plan::key_of(&row, &index, &checks, &mut numbering);
            let payment = report::input_payment(&row.payment.to_string());
            let amount = row.amount.amount().to_string();
            let reference = row.reference.as_ref().map_or("", |r| r.as_str());
            each(
                &key,
                &[
                    row.provider.name(),
                    &payment,
                    &amount,
                    row.amount.currency().code(),
                    reference,
                ],
            );
        }
        Ok(())
    };
    report::report(
        journal_path,
        args.report_raw,
        args.report_format,
        Some(&rows),
    )
}

/// A failure of the batch: a journal I/O error (named with the journal's path by
/// [`BatchError::journal`]), or anything else.
#[derive(Debug)]
enum BatchError {
    Journal(std::io::Error),
    Other(Failure),
}

impl BatchError {
    fn journal(self, path: &Path) -> Failure {
        match self {
            BatchError::Journal(e) => Failure::other(format!("journal {}: {e}", path.display())),
            BatchError::Other(f) => f,
        }
    }
}

impl From<std::io::Error> for BatchError {
    fn from(e: std::io::Error) -> Self {
        BatchError::Journal(e)
    }
}

impl From<Failure> for BatchError {
    fn from(f: Failure) -> Self {
        BatchError::Other(f)
    }
}
