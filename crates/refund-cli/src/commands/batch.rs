//! `refund batch`: refund every row of a CSV file, crash-safely (see [`crate::journal`]).
//!
//! A run reads the input twice, streaming: first to validate every row before anything is
//! sent (malformed rows, references used by more than one row, rows edited after an attempt
//! whose outcome is unknown), then to work through the rows with at most `--concurrency` in
//! flight. Neither pass keeps rows in memory; the journal's index keeps a few bytes per row.
//! The last stdout line is one JSON object: this run's counts, and `journal`, the state of
//! every input row after this run, which decides the exit code.
//!
//! `--report` prints every journaled row's latest state as CSV instead (no input needed).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args as ClapArgs;
use indicatif::{ProgressBar, ProgressStyle};
use refund_core::{
    Currency, MerchantRef, Money, PaymentRef, Reconciler, RefundError, RefundProvider,
    RefundReceipt, RefundRequest, RetryPolicy, Retrying, Verdict,
};
use serde::Serialize;

use super::Connection;
use crate::exit::{Code, Failure};
use crate::journal::{
    self, Appender, Hash128, HashTable, Index, Journal, OpenError, Record, RowState, RowView,
};
use crate::output::{err_line, out_line};

mod outbox;
mod pacing;
use pacing::{Paced, Pacer};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// CSV with a header line and columns `provider,payment,amount,currency[,reference]`.
    /// `payment` is the SiPay invoice_id or the iyzico paymentId; `tx:<id>` is an iyzico
    /// paymentTransactionId (item refund), `tx:<id>@<paymentId>` also names its payment so an
    /// uncertain refund can be looked up. A reference may be used by one row only.
    #[arg(long, required_unless_present = "report")]
    input: Option<PathBuf>,
    /// The journal file (created when missing). Run again with the same journal to resume.
    /// One run at a time: a second run on a journal in use exits 5 and sends nothing.
    /// A `postgres://` URL instead: the refund outbox in that database (see docs/outbox.md),
    /// which any number of runs, on any number of machines, work at once.
    #[arg(long)]
    journal: PathBuf,
    /// Print every row of the journal as CSV with its latest state
    /// (provider,payment,amount,currency,reference,state,provider_reference,updated_at), and
    /// exit. Sends nothing and writes nothing; needs no --input.
    #[arg(long, conflicts_with_all = ["input", "dry_run"])]
    report: bool,
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
    /// What the row's key is made of (see [`journal::row_content`]).
    content: String,
    /// Its key in the journal: set by the working pass, which numbers identical rows.
    key: String,
}

/// What to do with a row, given the journal.
#[derive(Debug, Clone)]
enum Plan {
    /// Send with this reference (nothing of it can be on record, or a refused or failed
    /// attempt), after `refusals` earlier attempts with it that the provider refused (see
    /// [`RowView::refusals`]).
    Send {
        reference: MerchantRef,
        refusals: usize,
    },
    /// An attempt made at `attempted_at` has an unknown outcome: look it up first.
    Reconcile {
        reference: MerchantRef,
        attempted_at: SystemTime,
        refusals: usize,
    },
    /// The outcome is known from an earlier run.
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

/// How a row (or an orphaned attempt) ended in this run.
#[derive(Debug, Clone)]
struct Outcome {
    state: RowState,
    note: Option<String>,
    /// `refunded`: the provider's id of the refund.
    provider_reference: Option<String>,
    /// `unknown`: when the latest attempt is settled, so a rerun can decide.
    settles_at: Option<SystemTime>,
    /// `retry_later`: not before when.
    not_before: Option<SystemTime>,
    /// `retry_later`: the provider processed and refused the attempt.
    refused: bool,
}

impl Outcome {
    fn new(state: RowState, note: impl Into<String>) -> Self {
        Outcome {
            state,
            note: Some(note.into()),
            provider_reference: None,
            settles_at: None,
            not_before: None,
            refused: false,
        }
    }

    fn unknown(note: impl Into<String>, settles_at: SystemTime) -> Self {
        Outcome {
            settles_at: Some(settles_at),
            ..Outcome::new(RowState::Unknown, note)
        }
    }

    fn refunded(note: impl Into<String>, provider_reference: Option<String>) -> Self {
        Outcome {
            provider_reference,
            ..Outcome::new(RowState::Refunded, note)
        }
    }

    fn retry_later(note: impl Into<String>, not_before: SystemTime, refused: bool) -> Self {
        Outcome {
            not_before: Some(not_before),
            refused,
            ..Outcome::new(RowState::RetryLater, note)
        }
    }

    /// The journal record saying this about `key`.
    fn record(&self, key: &str, reference: &str) -> Record {
        Record {
            note: self.note.clone(),
            not_before: self.not_before.map(journal::to_millis),
            refused: self.refused,
            provider_reference: self.provider_reference.clone(),
            ..Record::new(key, reference, self.state)
        }
    }
}

/// Rows by state.
#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Totals {
    rows: u64,
    refunded: u64,
    declined: u64,
    unknown: u64,
    retry_later: u64,
    failed: u64,
}

impl Totals {
    fn count(&mut self, state: RowState) {
        self.rows += 1;
        match state {
            RowState::Refunded => self.refunded += 1,
            RowState::Declined => self.declined += 1,
            RowState::Sending | RowState::Unknown => self.unknown += 1,
            RowState::RetryLater => self.retry_later += 1,
            RowState::Failed => self.failed += 1,
        }
    }
}

/// The last stdout line. The top-level counts are this run's: what it did with the rows it
/// worked on (`skipped`: rows it left as an earlier run left them). `journal` is every valid
/// input row's state after this run, touched or not.
#[derive(Debug, Default, Serialize)]
struct Summary {
    rows: u64,
    refunded: u64,
    declined: u64,
    unknown: u64,
    retry_later: u64,
    failed: u64,
    skipped: u64,
    malformed: u64,
    journal: Totals,
}

impl Summary {
    /// Counts a row this run worked on, which ended in `state`.
    fn worked(&mut self, state: RowState) {
        match state {
            RowState::Refunded => self.refunded += 1,
            RowState::Declined => self.declined += 1,
            RowState::Sending | RowState::Unknown => self.unknown += 1,
            RowState::RetryLater => self.retry_later += 1,
            RowState::Failed => self.failed += 1,
        }
        self.journal.count(state);
    }

    /// The exit code, from the journal's totals: 0 only when every row is refunded; 4 while
    /// any row is unknown or waits to be sent again; then 5 failed, 3 declined, 2 malformed.
    fn code(&self) -> u8 {
        let j = &self.journal;
        if j.unknown > 0 || j.retry_later > 0 {
            Code::Unknown as u8
        } else if j.failed > 0 {
            Code::Other as u8
        } else if j.declined > 0 {
            Code::Declined as u8
        } else if self.malformed > 0 {
            Code::Invalid as u8
        } else {
            0
        }
    }
}

pub(crate) async fn run(args: Args) -> Result<ExitCode, Failure> {
    if let Some(url) = outbox::database_url(&args.journal) {
        return outbox::run(&args, url).await;
    }
    if args.report {
        return report(&args.journal);
    }
    let input = args
        .input
        .clone()
        .ok_or_else(|| Failure::invalid("--input is required (or --report)"))?;
    let journal_error =
        |e: std::io::Error| Failure::other(format!("journal {}: {e}", args.journal.display()));

    if args.dry_run {
        // Read only: a dry run neither creates, locks nor writes the journal.
        let index = Index::read_only(&args.journal).map_err(journal_error)?;
        let checks = validate(&input, &index).map_err(|e| e.journal(&args.journal))?;
        return dry_run(&input, &index, &checks).map_err(|e| e.journal(&args.journal));
    }

    // One runner per journal: the lock is taken before anything is read or sent, and held
    // until this process ends.
    let journal = match Journal::open(&args.journal) {
        Ok(journal) => journal,
        Err(OpenError::Busy) => {
            return Err(Failure::other(format!(
                "journal {} is in use by another `refund batch` run; nothing was sent. \
                 Wait for that run to finish, then run this command again",
                args.journal.display()
            )));
        }
        Err(OpenError::Io(e)) => return Err(journal_error(e)),
    };
    let checks = validate(&input, journal.index()).map_err(|e| e.journal(&args.journal))?;
    let (index, appender) = journal.into_appender().map_err(journal_error)?;
    work(&args, &input, &index, &checks, appender)
        .await
        .map_err(|e| e.journal(&args.journal))
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

// ---------------------------------------------------------------------------------------
// The validating pass
// ---------------------------------------------------------------------------------------

/// What the validating pass found, for the working pass.
#[derive(Debug, Default)]
struct Checks {
    /// Valid rows.
    valid: u64,
    /// Malformed rows (already reported).
    malformed: u64,
    /// Contents that more than one row has: only these need numbering.
    repeated: HashTable<()>,
    /// References more than one row uses, with their lines.
    shared_references: HashTable<Vec<u64>>,
    /// Attempts with an unknown outcome whose row is no longer in the input.
    orphans: Vec<Orphan>,
    /// Orphans by `provider|payment`.
    orphans_by_payment: HashMap<String, usize>,
    /// References of new rows that rows of the journal use already: the key and state of
    /// such a row.
    used_references: HashTable<(String, RowState)>,
}

/// An attempt with an unknown outcome whose row is no longer in the input: the row was
/// edited (or removed) after it.
#[derive(Debug, Clone)]
struct Orphan {
    key: String,
    reference: String,
    provider: Option<Provider>,
    /// As `PaymentRef` displays it.
    payment: String,
    /// `10.00 TRY`.
    amount: String,
    view: RowView,
}

impl Orphan {
    fn describe(&self) -> String {
        format!(
            "{} of {} with reference {}, sent at {}",
            self.amount,
            self.payment,
            self.reference,
            journal::utc(self.view.attempted_at())
        )
    }

    /// The payment to look up.
    fn payment_ref(&self) -> Option<PaymentRef> {
        if let Some(id) = self.payment.strip_prefix("payment:") {
            return Some(PaymentRef::payment(id));
        }
        let item = self.payment.strip_prefix("item:")?;
        Some(match item.split_once('@') {
            Some((item, parent)) => PaymentRef::item(item).in_payment(parent),
            None => PaymentRef::item(item),
        })
    }
}

/// The validating pass: reports malformed rows, and finds the repeated contents, the shared
/// references and the orphaned attempts, before anything is sent.
fn validate(input: &Path, index: &Index) -> Result<Checks, BatchError> {
    let hashing = index.hashing().clone();
    // Rows with an unknown outcome, by content: (occurrence, record offset). Few, normally.
    let mut unresolved: HashTable<Vec<(u32, u64)>> = HashTable::default();
    for view in index.unresolved() {
        let record = index.record_at(view.offset)?;
        if let Some(parts) = journal::parse_key(&record.key) {
            unresolved
                .entry(hashing.of(parts.content))
                .or_default()
                .push((parts.occurrence, view.offset));
        }
    }
    let mut seen_unresolved: HashTable<u32> = HashTable::default();
    let mut contents: Vec<Hash128> = Vec::new();
    let mut references: Vec<(Hash128, u64)> = Vec::new();
    // References of rows the journal has never seen (a row with its own reference is never
    // numbered past 1 unless it repeats, and then it shares its reference anyway).
    let mut new_references: HashTable<()> = HashTable::default();
    let mut checks = Checks::default();

    let mut rows = Input::open(input)?;
    while let Some(next) = rows.next()? {
        let row = match next {
            Ok(row) => row,
            Err((line, why)) => {
                checks.malformed += 1;
                err_line(&format!("line {line}: {why}; skipped, not sent"))
                    .map_err(Failure::other)?;
                continue;
            }
        };
        checks.valid += 1;
        let content = hashing.of(&row.content);
        contents.push(content);
        if let Some(reference) = &row.reference {
            let hash = hashing.of(reference.as_str());
            references.push((hash, row.line));
            if index.get(&journal::row_key(&row.content, 1)).is_none() {
                new_references.insert(hash, ());
            }
        }
        if unresolved.contains_key(&content) {
            *seen_unresolved.entry(content).or_default() += 1;
        }
    }

    contents.sort_unstable();
    for pair in contents.windows(2) {
        if pair[0] == pair[1] {
            checks.repeated.insert(pair[0], ());
        }
    }
    drop(contents);
    references.sort_unstable();
    for group in references.chunk_by(|a, b| a.0 == b.0) {
        if group.len() > 1 {
            checks
                .shared_references
                .insert(group[0].0, group.iter().map(|(_, line)| *line).collect());
        }
    }
    drop(references);
    for (hash, record) in index.rows_using(&new_references)? {
        checks
            .used_references
            .insert(hash, (record.key, record.state));
    }
    drop(new_references);

    for (content, attempts) in &unresolved {
        let present = seen_unresolved.get(content).copied().unwrap_or(0);
        for &(occurrence, offset) in attempts {
            if occurrence <= present {
                continue;
            }
            let record = index.record_at(offset)?;
            let Some(parts) = journal::parse_key(&record.key) else {
                continue;
            };
            let Some(view) = index.get(&record.key) else {
                continue;
            };
            let orphan = Orphan {
                provider: Provider::from_name(parts.provider),
                payment: parts.payment.to_owned(),
                amount: format!("{} {}", parts.amount, parts.currency),
                reference: record.reference.clone(),
                key: record.key.clone(),
                view,
            };
            let n = checks.orphans.len();
            checks
                .orphans_by_payment
                .entry(format!("{}|{}", parts.provider, parts.payment))
                .or_insert(n);
            checks.orphans.push(orphan);
        }
    }
    Ok(checks)
}

// ---------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------

fn plan(row: &Row, index: &Index, checks: &Checks, now: SystemTime) -> std::io::Result<Plan> {
    let Some(view) = index.get(&row.key) else {
        return Ok(fresh(row, index, checks));
    };
    if let RowState::Refunded | RowState::Declined = view.state {
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
    Ok(match view.state {
        RowState::Sending | RowState::Unknown => Plan::Reconcile {
            reference,
            // A journaled attempt without a time counts as made now (the index's rule).
            attempted_at: view.attempted_at(),
            refusals: view.refusals(),
        },
        RowState::RetryLater if view.not_before() > now => Plan::Wait(view.not_before()),
        RowState::RetryLater | RowState::Failed => Plan::Send {
            reference,
            refusals: view.refusals(),
        },
        RowState::Refunded | RowState::Declined => Plan::Skip(view.state),
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
    Plan::Send {
        reference: row.reference.clone().unwrap_or_else(MerchantRef::generate),
        refusals: 0,
    }
}

// ---------------------------------------------------------------------------------------
// The working pass
// ---------------------------------------------------------------------------------------

/// Prints what a run would do, row by row; sends and writes nothing.
fn dry_run(input: &Path, index: &Index, checks: &Checks) -> Result<ExitCode, BatchError> {
    let mut invalid = 0u64;
    let mut numbering: HashTable<u32> = HashTable::default();
    let mut rows = Input::open(input)?;
    while let Some(next) = rows.next()? {
        let Ok(mut row) = next else { continue };
        row.key = key_of(&row, index, checks, &mut numbering);
        let what = match plan(&row, index, checks, SystemTime::now())? {
            Plan::Send { reference, .. } => {
                format!("would refund {} (reference {reference})", row.amount)
            }
            Plan::Reconcile { reference, .. } => {
                format!("would look up reference {reference} before anything else")
            }
            Plan::Skip(state) => format!("would skip: {} in an earlier run", state.name()),
            Plan::Wait(t) => format!(
                "would skip: refused for now in an earlier run, to be sent again after {}",
                journal::utc(t)
            ),
            Plan::Stuck(why) => format!("would leave unknown: {why}"),
            Plan::Blocked(why) => format!("would leave unknown: {why}"),
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
fn key_of(row: &Row, index: &Index, checks: &Checks, numbering: &mut HashTable<u32>) -> String {
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

/// What a finished task reports.
enum Done {
    Row(std::io::Result<Outcome>),
    Orphan(std::io::Result<Outcome>),
}

async fn work(
    args: &Args,
    input: &Path,
    index: &Index,
    checks: &Checks,
    appender: Appender,
) -> Result<ExitCode, BatchError> {
    let mut summary = Summary {
        rows: checks.valid + checks.malformed,
        malformed: checks.malformed,
        ..Summary::default()
    };
    let rate = args.rate.and_then(NonZeroU32::new);
    let mut clients = Clients::new(&args.connection, rate, appender);
    let bar = ProgressBar::new(checks.valid);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let limit = usize::from(args.concurrency);
    let mut tasks = tokio::task::JoinSet::new();
    let mut rerun_after: Option<SystemTime> = None;
    let mut retry_after: Option<SystemTime> = None;
    let later = |slot: &mut Option<SystemTime>, t: SystemTime| {
        *slot = Some(slot.map_or(t, |s| s.max(t)));
    };

    // Orphaned attempts first: their lookups settle what edited rows wait for.
    for orphan in &checks.orphans {
        let Some(provider) = orphan.provider else {
            continue;
        };
        let Some(ctx) = clients.get(provider, &bar) else {
            continue;
        };
        while tasks.len() >= limit {
            if let Some(done) = tasks.join_next().await {
                tally(done, &mut summary, &mut rerun_after, &mut retry_after);
            }
        }
        let orphan = orphan.clone();
        let bar = bar.clone();
        tasks.spawn(async move {
            let outcome = reconcile_orphan(&ctx, &orphan).await;
            let note = match &outcome {
                Ok(o) => format!("{}: {}", o.state.name(), o.note.as_deref().unwrap_or("")),
                Err(e) => format!("journal write failed: {e}"),
            };
            say(
                &bar,
                &format!(
                    "journal row {:?} (no longer in the input): {note}",
                    orphan.key
                ),
            );
            Done::Orphan(outcome)
        });
    }

    let mut numbering: HashTable<u32> = HashTable::default();
    let mut rows = Input::open(input)?;
    while let Some(next) = rows.next()? {
        let Ok(mut row) = next else { continue };
        row.key = key_of(&row, index, checks, &mut numbering);
        let plan = plan(&row, index, checks, SystemTime::now())?;
        match plan {
            Plan::Skip(state) => {
                summary.skipped += 1;
                summary.journal.count(state);
                bar.inc(1);
                continue;
            }
            Plan::Wait(t) => {
                summary.skipped += 1;
                summary.journal.count(RowState::RetryLater);
                later(&mut retry_after, t);
                bar.inc(1);
                continue;
            }
            Plan::Stuck(why) | Plan::Blocked(why) => {
                say(&bar, &format!("line {}: {why}", row.line));
                summary.worked(RowState::Unknown);
                bar.inc(1);
                continue;
            }
            Plan::Invalid(why) => {
                say(&bar, &format!("line {}: {why}; not sent", row.line));
                summary.malformed += 1;
                bar.inc(1);
                continue;
            }
            Plan::Send { .. } | Plan::Reconcile { .. } => {}
        }
        let Some(ctx) = clients.get(row.provider, &bar) else {
            // No client (its configuration failed, said once above): nothing sent; the row
            // keeps whatever state the journal gives it.
            summary.failed += 1;
            summary
                .journal
                .count(index.get(&row.key).map_or(RowState::Failed, |v| v.state));
            bar.inc(1);
            continue;
        };
        while tasks.len() >= limit {
            if let Some(done) = tasks.join_next().await {
                tally(done, &mut summary, &mut rerun_after, &mut retry_after);
            }
        }
        let bar = bar.clone();
        tasks.spawn(async move {
            let outcome = process(&ctx, &row, plan).await;
            match &outcome {
                Err(e) => say(
                    &bar,
                    &format!("line {}: journal write failed: {e}", row.line),
                ),
                Ok(Outcome {
                    state: RowState::Refunded,
                    ..
                }) => {}
                Ok(Outcome { state, note, .. }) => say(
                    &bar,
                    &format!(
                        "line {}: {}: {}",
                        row.line,
                        state.name(),
                        note.as_deref().unwrap_or("")
                    ),
                ),
            }
            bar.inc(1);
            Done::Row(outcome)
        });
    }
    while let Some(done) = tasks.join_next().await {
        tally(done, &mut summary, &mut rerun_after, &mut retry_after);
    }
    bar.finish_and_clear();
    drop(clients);

    finish(&summary, rerun_after, retry_after)?;
    Ok(ExitCode::from(summary.code()))
}

/// Counts a finished task.
fn tally(
    done: Result<Done, tokio::task::JoinError>,
    summary: &mut Summary,
    rerun_after: &mut Option<SystemTime>,
    retry_after: &mut Option<SystemTime>,
) {
    let later = |slot: &mut Option<SystemTime>, t: Option<SystemTime>| {
        if let Some(t) = t {
            *slot = Some(slot.map_or(t, |s| s.max(t)));
        }
    };
    match done {
        Ok(Done::Row(Ok(outcome))) => {
            summary.worked(outcome.state);
            later(rerun_after, outcome.settles_at);
            later(retry_after, outcome.not_before);
        }
        Ok(Done::Orphan(Ok(outcome))) => later(rerun_after, outcome.settles_at),
        Ok(Done::Orphan(Err(_))) => {}
        // A journal write failed, or the task died: nothing can be said of the row.
        Ok(Done::Row(Err(_))) | Err(_) => summary.worked(RowState::Unknown),
    }
}

/// The closing lines: totals and what to do next on stderr, the JSON summary on stdout.
fn finish(
    summary: &Summary,
    rerun_after: Option<SystemTime>,
    retry_after: Option<SystemTime>,
) -> Result<(), BatchError> {
    let j = &summary.journal;
    let lines = [
        format!(
            "this run, {} rows: {} refunded, {} declined, {} unknown, {} retry later, {} failed, \
             {} skipped, {} malformed",
            summary.rows,
            summary.refunded,
            summary.declined,
            summary.unknown,
            summary.retry_later,
            summary.failed,
            summary.skipped,
            summary.malformed
        ),
        format!(
            "journal, {} rows: {} refunded, {} declined, {} unknown, {} retry later, {} failed",
            j.rows, j.refunded, j.declined, j.unknown, j.retry_later, j.failed
        ),
    ];
    for line in lines {
        err_line(&line).map_err(Failure::other)?;
    }
    let when = |t: Option<SystemTime>| match t {
        Some(t) if t > SystemTime::now() => format!("after {}", journal::utc(t)),
        _ => "now".to_owned(),
    };
    if j.unknown > 0 {
        err_line(&format!(
            "{} rows have an unknown outcome: run the same command again {} to reconcile \
             them (nothing is resent before a lookup, and nothing before the provider's settle \
             time has passed), or check them by reference: refund batch --journal … --report",
            j.unknown,
            when(rerun_after)
        ))
        .map_err(Failure::other)?;
    }
    if j.retry_later > 0 {
        err_line(&format!(
            "{} rows were refused for now or could not reach the provider: run the same command \
             again {} to send them again (with the same references)",
            j.retry_later,
            when(retry_after)
        ))
        .map_err(Failure::other)?;
    }
    out_line(&serde_json::to_string(summary).map_err(Failure::other)?).map_err(Failure::other)?;
    Ok(())
}

/// Prints one line about a row on stderr: above the progress bar on a terminal, plainly when
/// the bar is hidden (stderr redirected), so a log keeps every row's note.
fn say(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        let _ = err_line(line);
    } else {
        bar.println(line);
    }
}

// ---------------------------------------------------------------------------------------
// One row
// ---------------------------------------------------------------------------------------

/// Requests that may move money, per row and run: the first send plus resends after
/// temporary refusals or a lookup that proved the attempt did not take effect.
const ATTEMPTS: u32 = 3;
/// How long after an outcome-unknown answer the batch looks the refund up in the same run.
const RECONCILE_DELAY: Duration = Duration::from_millis(500);
/// The longest wait before a resend within the run; a longer one ends the row `retry_later`
/// for a later run.
const MAX_PAUSE: Duration = pacing::LONGEST_WAIT;
/// What SiPay asks after a refund of the same payment with its "wait and retry" 49 (the only
/// figure on record is the 30 seconds of its English 49 text; see docs/providers/sipay.md).
const SIPAY_WAIT: Duration = Duration::from_secs(30);

/// A provider's clients and pace for the batch.
#[derive(Debug)]
struct Ctx {
    /// Sends refunds: one request per call, never retried or resent behind the journal's
    /// back, so every request that may move money follows its own `sending` record.
    send: Arc<dyn RefundProvider>,
    /// Looks refunds up, paced; lookups change nothing, so they are retried.
    look: Arc<dyn RefundProvider>,
    pacer: Arc<Pacer>,
    reconciler: Reconciler,
    journal: Appender,
}

impl Ctx {
    async fn write(&self, key: &str, reference: &str, outcome: &Outcome) -> std::io::Result<()> {
        self.journal
            .append(&outcome.record(key, reference))
            .await
            .map(drop)
    }

    /// Journals `outcome` for `key` and returns it.
    async fn finish(
        &self,
        key: &str,
        reference: &MerchantRef,
        outcome: Outcome,
    ) -> std::io::Result<Outcome> {
        self.write(key, reference.as_str(), &outcome).await?;
        Ok(outcome)
    }
}

/// Each provider's [`Ctx`], built when a row first needs it.
struct Clients<'a> {
    connection: &'a Connection,
    rate: Option<NonZeroU32>,
    journal: Appender,
    built: HashMap<Provider, Option<Arc<Ctx>>>,
}

impl<'a> Clients<'a> {
    fn new(connection: &'a Connection, rate: Option<NonZeroU32>, journal: Appender) -> Self {
        Clients {
            connection,
            rate,
            journal,
            built: HashMap::new(),
        }
    }

    /// The provider's context, or `None` (said once) when its client cannot be built.
    fn get(&mut self, provider: Provider, bar: &ProgressBar) -> Option<Arc<Ctx>> {
        if let Some(ctx) = self.built.get(&provider) {
            return ctx.clone();
        }
        let send: Result<Arc<dyn RefundProvider>, Failure> = match provider {
            Provider::Sipay => super::sipay::client(self.connection).map(|c| Arc::new(c) as _),
            Provider::Iyzico => super::iyzico::client(self.connection).map(|c| Arc::new(c) as _),
        };
        let ctx = match send {
            Ok(send) => {
                let pacer = Arc::new(Pacer::new(self.rate));
                let look: Arc<dyn RefundProvider> = Arc::new(Retrying::new(
                    Paced::new(Arc::clone(&send), Arc::clone(&pacer)),
                    RetryPolicy::default(),
                ));
                Some(Arc::new(Ctx {
                    reconciler: Reconciler::for_provider(&*look),
                    send,
                    look,
                    pacer,
                    journal: self.journal.clone(),
                }))
            }
            Err(e) => {
                say(
                    bar,
                    &format!(
                        "{}: {}; its rows are not sent in this run",
                        provider.name(),
                        e.message
                    ),
                );
                None
            }
        };
        self.built.insert(provider, ctx.clone());
        ctx
    }
}

/// Runs one row to its journal record.
async fn process(ctx: &Ctx, row: &Row, plan: Plan) -> std::io::Result<Outcome> {
    let (reference, mut refusals) = match plan {
        Plan::Send {
            reference,
            refusals,
        } => (reference, refusals),
        Plan::Reconcile {
            reference,
            attempted_at,
            refusals,
        } => {
            let attempt = Attempt {
                reference: &reference,
                at: attempted_at,
                earlier_refusals: refusals,
            };
            match reconcile(&*ctx.look, &ctx.reconciler, &row.payment, &attempt, "").await {
                Some(outcome) => return ctx.finish(&row.key, &reference, outcome).await,
                // Nothing on record and the attempt is settled: resend, same reference.
                None => (reference, refusals),
            }
        }
        // Counted by the caller, never sent.
        Plan::Skip(state) => return Ok(Outcome::new(state, "")),
        Plan::Wait(t) => return Ok(Outcome::retry_later("", t, false)),
        Plan::Stuck(why) | Plan::Blocked(why) | Plan::Invalid(why) => {
            return Ok(Outcome::new(RowState::Unknown, why));
        }
    };

    let request = match RefundRequest::builder(row.payment.clone(), row.amount)
        .reference(reference.as_str())
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return ctx
                .finish(
                    &row.key,
                    &reference,
                    Outcome::new(RowState::Failed, e.to_string()),
                )
                .await;
        }
    };
    let mut attempt = 1;
    loop {
        // Within the rate and after any rate-limit pause; then journaled (with its time) and
        // synced before the request can leave. A pause too long for this run leaves the row
        // to a later one, nothing sent.
        if let Err(left) = ctx.pacer.ready(pacing::LONGEST_WAIT).await {
            let not_before = SystemTime::now() + left;
            let outcome = Outcome::retry_later(
                format!(
                    "the provider asked to pause every request until {}: not sent in this \
                     run; to be sent with reference {reference} after that",
                    journal::utc(not_before)
                ),
                not_before,
                false,
            );
            return ctx.finish(&row.key, &reference, outcome).await;
        }
        ctx.journal
            .append(&Record::new(
                row.key.as_str(),
                reference.as_str(),
                RowState::Sending,
            ))
            .await?;
        // Dated for this run's own lookup as it leaves: later than the journaled time, so
        // the more cautious of the two.
        let attempted_at = SystemTime::now();
        let error = match ctx.send.refund(&request).await {
            Ok(receipt) => {
                let outcome =
                    Outcome::refunded(receipt_note(&receipt), provider_reference(&receipt));
                return ctx.finish(&row.key, &reference, outcome).await;
            }
            Err(e) => e,
        };
        ctx.pacer.observe(&error);
        if !error.is_outcome_known() {
            // A timeout, a lost answer, or SiPay 104 (the reference reached the provider
            // before): never a decline, never a fresh send. Look it up through the policy.
            tokio::time::sleep(RECONCILE_DELAY).await;
            let why = format!("{error}; ");
            let unsettled = Attempt {
                reference: &reference,
                at: attempted_at,
                earlier_refusals: refusals,
            };
            match reconcile(&*ctx.look, &ctx.reconciler, &row.payment, &unsettled, &why).await {
                Some(outcome) => return ctx.finish(&row.key, &reference, outcome).await,
                None if attempt < ATTEMPTS => {
                    attempt += 1;
                    continue;
                }
                None => {
                    let outcome = Outcome::unknown(
                        format!(
                            "{why}nothing is on record after the settle time, so a resend with \
                             reference {reference} is safe, but this run has no attempt left: \
                             run again"
                        ),
                        SystemTime::now(),
                    );
                    return ctx.finish(&row.key, &reference, outcome).await;
                }
            }
        }
        if error.is_retryable() {
            // Refused for now, rate limited, or the provider was not reached: nothing was
            // refunded. Journaled `retry_later` with when the same request may go again (a
            // kill during the wait leaves exactly that); a refusal the provider processed is
            // marked and counted, since it may have left a failed entry under the reference.
            let wait = retry_wait(&error, attempt);
            let refused = matches!(error, RefundError::Declined { .. });
            let not_before = SystemTime::now() + wait;
            let outcome = Outcome::retry_later(
                format!(
                    "{error}; to be sent again with reference {reference} after {}",
                    journal::utc(not_before)
                ),
                not_before,
                refused,
            );
            ctx.write(&row.key, reference.as_str(), &outcome).await?;
            refusals += usize::from(refused);
            if attempt < ATTEMPTS && wait <= MAX_PAUSE {
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Ok(outcome);
        }
        let state = match error {
            RefundError::Declined { .. } => RowState::Declined,
            _ => RowState::Failed,
        };
        return ctx
            .finish(&row.key, &reference, Outcome::new(state, error.to_string()))
            .await;
    }
}

/// How long to wait before the same request may go again after the temporary refusal
/// `error` on attempt `attempt`: what the provider asked (Retry-After, SiPay's 30-second
/// rule), and at least the default retry backoff.
fn retry_wait(error: &RefundError, attempt: u32) -> Duration {
    let backoff = RetryPolicy::default().delay_for(attempt, true);
    let advice = match error {
        RefundError::RateLimited {
            retry_after: Some(wait),
            ..
        } => *wait,
        RefundError::Declined { provider, code, .. }
            if *provider == refund_sipay::NAME
                && code.parse() == Ok(refund_sipay::status_code::REFUND_FAILED) =>
        {
            SIPAY_WAIT
        }
        _ => Duration::ZERO,
    };
    backoff.max(advice)
}

/// The receipt's provider references, `name=value` separated by spaces.
fn receipt_note(receipt: &RefundReceipt) -> String {
    receipt
        .provider_references
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The provider's id of the refund in a receipt: SiPay's `ref_no`; iyzico's refund answer
/// has no refund id (its `refundTxId` is only in the reporting lookup), so the bank's
/// `refundHostReference`, or `hostReference` in older answers.
fn provider_reference(receipt: &RefundReceipt) -> Option<String> {
    ["ref_no", "refundHostReference", "hostReference"]
        .iter()
        .find_map(|name| receipt.provider_references.get(*name))
        .filter(|id| !id.is_empty())
        .cloned()
}

/// Looks up an orphaned attempt (its row is no longer in the input) and journals what the
/// lookup settles. It is never resent: once the settle time has passed with nothing on
/// record, it is journaled `failed` (not applied), and the edited row may go.
async fn reconcile_orphan(ctx: &Ctx, orphan: &Orphan) -> std::io::Result<Outcome> {
    let (Ok(reference), Some(payment)) = (
        MerchantRef::new(orphan.reference.clone()),
        orphan.payment_ref(),
    ) else {
        return Ok(Outcome::new(
            RowState::Unknown,
            format!(
                "its reference {:?} or payment {:?} cannot be looked up: check it with the \
                 provider",
                orphan.reference, orphan.payment
            ),
        ));
    };
    let attempt = Attempt {
        reference: &reference,
        at: orphan.view.attempted_at(),
        earlier_refusals: orphan.view.refusals(),
    };
    let outcome = match reconcile(&*ctx.look, &ctx.reconciler, &payment, &attempt, "").await {
        Some(outcome) => outcome,
        None => Outcome::new(
            RowState::Failed,
            format!(
                "reconciled: nothing with reference {reference} is on record after the settle \
                 time, so it did not take effect; its row is no longer in the input, so it is \
                 not resent"
            ),
        ),
    };
    ctx.finish(&orphan.key, &reference, outcome).await
}

/// One attempt whose outcome is unknown.
#[derive(Debug)]
struct Attempt<'a> {
    reference: &'a MerchantRef,
    /// When its `sending` record was written.
    at: SystemTime,
    /// Earlier attempts with the same reference the provider refused: a failed entry the
    /// lookup shows may be theirs, and says nothing about this attempt.
    earlier_refusals: usize,
}

/// Looks up an attempt whose outcome is unknown, through the core reconciliation policy:
/// the row's outcome when the lookup settles it (or cannot, yet), `None` when it is safe to
/// resend with the same reference.
///
/// `why` prefixes the notes of rows left unknown (the error that made the outcome unknown).
async fn reconcile(
    provider: &dyn RefundProvider,
    reconciler: &Reconciler,
    payment: &PaymentRef,
    attempt: &Attempt<'_>,
    why: &str,
) -> Option<Outcome> {
    let reference = attempt.reference;
    let settles_at = reconciler.settles_at(attempt.at);
    let when = journal::utc(settles_at);
    let verdict = provider.refund_state(payment).await.map(|state| {
        reconciler.judge_after(
            &state,
            reference,
            attempt.earlier_refusals,
            attempt.at,
            SystemTime::now(),
        )
    });
    Some(match verdict {
        Ok(Verdict::Applied(record)) => {
            let id = record.provider_reference;
            let shown = id
                .as_deref()
                .map(|id| format!(" (refund_id={id})"))
                .unwrap_or_default();
            Outcome::refunded(
                format!("reconciled: reference {reference} was applied{shown}"),
                id,
            )
        }
        Ok(Verdict::NotApplied(_)) => Outcome::new(
            RowState::Declined,
            format!(
                "reconciled: reference {reference} is on record as failed; nothing was refunded"
            ),
        ),
        Ok(Verdict::SafeToResend) => return None,
        Ok(Verdict::NotYetKnown { .. }) => Outcome::unknown(
            format!(
                "{why}no refund with reference {reference} on record yet, and the provider's lookup \
                 may lag: nothing resent; settles at {when}: run again after that"
            ),
            settles_at,
        ),
        Ok(Verdict::Undetermined(cannot)) => Outcome::unknown(
            format!(
                "{why}the lookup cannot tell whether reference {reference} was applied ({cannot}); \
                 nothing resent; settles at {when}: run again after that, and check it with \
                 the provider if it stays unknown"
            ),
            settles_at,
        ),
        Ok(other) => Outcome::unknown(
            format!(
                "{why}the lookup answered {} for reference {reference}; nothing resent; settles at \
                 {when}: run again after that",
                other.kind()
            ),
            settles_at,
        ),
        Err(e) => Outcome::unknown(
            format!(
                "{why}lookup failed ({e}); reference {reference} left unknown, nothing resent; \
                 settles at {when}: run again after that"
            ),
            settles_at,
        ),
    })
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

/// The report's columns.
const REPORT_HEADER: [&str; 8] = [
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
fn report(path: &Path) -> Result<ExitCode, Failure> {
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

// ---------------------------------------------------------------------------------------
// The input
// ---------------------------------------------------------------------------------------

/// The input CSV, read one row at a time.
struct Input {
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
    fn open(path: &Path) -> Result<Input, Failure> {
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
    fn next(&mut self) -> Result<Option<Result<Row, Malformed>>, Failure> {
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
type Malformed = (u64, String);

fn parse_row(
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
    use crate::journal::tests::index_of_records;

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
        let one = |state| journal(&format!("plan-{state:?}"), &[(state, "r-1", Some(1_000))]);
        let plan_of = |index: &Index| plan(&row, index, &checks, now).unwrap();
        assert!(matches!(
            plan_of(&journal("plan-empty", &[])),
            Plan::Send { refusals: 0, .. }
        ));
        assert!(matches!(
            plan_of(&one(RowState::Refunded)),
            Plan::Skip(RowState::Refunded)
        ));
        assert!(matches!(
            plan_of(&one(RowState::Declined)),
            Plan::Skip(RowState::Declined)
        ));
        assert!(matches!(
            plan_of(&one(RowState::Failed)),
            Plan::Send { reference, refusals: 0 } if reference.as_str() == "r-1"
        ));
        // Due: its not_before (2 s after the epoch) has passed.
        assert!(matches!(
            plan_of(&one(RowState::RetryLater)),
            Plan::Send { reference, .. } if reference.as_str() == "r-1"
        ));
        let future = journal::to_millis(now) + 60_000;
        assert!(matches!(
            plan_of(&journal("plan-wait", &[(RowState::RetryLater, "r-1", Some(future))])),
            Plan::Wait(t) if t > now
        ));
        let at_1s = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        assert!(matches!(
            plan_of(&one(RowState::Sending)),
            Plan::Reconcile { reference, attempted_at, refusals: 0 } if reference.as_str() == "r-1" && attempted_at == at_1s
        ));
        // `unknown` keeps the time of the attempt it is about, not its own.
        assert!(matches!(
            plan_of(&journal("plan-unknown", &[(RowState::Sending, "r-1", Some(1_000)), (RowState::Unknown, "r-1", Some(9_000))])),
            Plan::Reconcile { attempted_at, .. } if attempted_at == at_1s
        ));
        // A resend after a refused attempt (an older journal's `declined` before the resend):
        // the refusal's failed entry is not this attempt's.
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
            Plan::Reconcile { refusals: 1, .. }
        ));
        // An undated attempt (an older journal) counts as made now.
        let before = SystemTime::now();
        assert!(matches!(
            plan_of(&journal("plan-undated", &[(RowState::Sending, "r-1", None)])),
            Plan::Reconcile { attempted_at, .. } if attempted_at >= before
        ));
        // A journaled reference that cannot be used is never replaced by a fresh one, whatever
        // the state.
        for state in [RowState::Sending, RowState::Failed, RowState::RetryLater] {
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

    #[test]
    fn a_temporary_refusal_waits_what_the_provider_asked_and_at_least_the_backoff() {
        let limited = RefundError::rate_limited("sipay", Some(Duration::from_secs(7)));
        assert_eq!(retry_wait(&limited, 1), Duration::from_secs(7));
        let wait_and_retry = RefundError::declined_retryable(
            "sipay",
            "49",
            "Please wait at least 30 seconds before another refund",
        );
        assert_eq!(retry_wait(&wait_and_retry, 1), SIPAY_WAIT);
        let bank = RefundError::declined_retryable("iyzico", "10246", "bank declined");
        let backoff = retry_wait(&bank, 2);
        assert!(
            backoff >= Duration::from_millis(200) && backoff <= Duration::from_millis(400),
            "{backoff:?}"
        );
    }

    #[test]
    fn the_report_spells_payments_as_the_input_does() {
        assert_eq!(input_payment("payment:INV-1"), "INV-1");
        assert_eq!(input_payment("item:11"), "tx:11");
        assert_eq!(input_payment("item:11@10"), "tx:11@10");
    }

    #[test]
    fn the_exit_code_follows_the_journal_totals() {
        let code = |f: &dyn Fn(&mut Summary)| {
            let mut s = Summary::default();
            f(&mut s);
            s.code()
        };
        assert_eq!(code(&|s| s.journal.count(RowState::Refunded)), 0);
        assert_eq!(
            code(&|s| {
                s.journal.count(RowState::Declined);
                s.journal.count(RowState::RetryLater);
            }),
            4
        );
        assert_eq!(
            code(&|s| {
                s.journal.count(RowState::Declined);
                s.journal.count(RowState::Failed);
            }),
            5
        );
        assert_eq!(code(&|s| s.journal.count(RowState::Declined)), 3);
        assert_eq!(
            code(&|s| {
                s.journal.count(RowState::Refunded);
                s.malformed = 1;
            }),
            2
        );
    }
}
