//! `refund batch`: refund every row of a CSV file, crash-safely (see [`crate::journal`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::Args as ClapArgs;
use indicatif::{ProgressBar, ProgressStyle};
use refund_core::{
    Currency, MerchantRef, Money, PaymentRef, Reconciler, RefundError, RefundProvider,
    RefundRequest, RetryPolicy, Retrying, Verdict,
};
use serde::Serialize;
use tokio::sync::Semaphore;

use super::Connection;
use crate::exit::{Code, Failure};
use crate::journal::{self, Index, Journal, OpenError, Record, RowState};
use crate::output::{err_line, out_line};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// CSV with a header line and columns `provider,payment,amount,currency[,reference]`.
    /// `payment` is the SiPay invoice_id or the iyzico paymentId; `tx:<id>` is an iyzico
    /// paymentTransactionId (item refund), `tx:<id>@<paymentId>` also names its payment so an
    /// uncertain refund can be looked up.
    #[arg(long)]
    input: PathBuf,
    /// The journal file (created when missing). Run again with the same journal to resume.
    /// One run at a time: a second run on a journal in use exits 5 and sends nothing.
    #[arg(long)]
    journal: PathBuf,
    /// Refunds in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
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
}

/// A valid row.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    key: String,
    provider: Provider,
    payment: PaymentRef,
    amount: Money,
    reference: Option<MerchantRef>,
}

/// What to do with a row, given the journal.
#[derive(Debug, Clone)]
enum Plan {
    /// Send with this reference (nothing of it can be on record, or a failed attempt), after
    /// `refusals` earlier attempts with it that the provider refused (see [`Index::refusals`]).
    Send {
        reference: MerchantRef,
        refusals: usize,
    },
    /// An attempt made at `attempted_at` has an unknown outcome: look it up first.
    Reconcile {
        reference: MerchantRef,
        attempted_at: SystemTime,
        /// Earlier attempts with this reference the provider refused (see [`Index::refusals`]).
        refusals: usize,
    },
    /// The outcome is known from an earlier run.
    Skip(&'static str),
    /// An attempt has an unknown outcome and cannot be looked up (its journaled reference is
    /// unusable): left unknown for a person, never sent under a fresh reference.
    Stuck(String),
}

/// How a row ended in this run.
#[derive(Debug, Clone)]
struct Outcome {
    state: RowState,
    note: Option<String>,
    /// For an unknown row: when its latest attempt is settled, so a rerun can decide.
    settles_at: Option<SystemTime>,
}

impl Outcome {
    fn new(state: RowState, note: impl Into<String>) -> Self {
        Outcome {
            state,
            note: Some(note.into()),
            settles_at: None,
        }
    }

    fn unknown(note: impl Into<String>, settles_at: SystemTime) -> Self {
        Outcome {
            settles_at: Some(settles_at),
            ..Outcome::new(RowState::Unknown, note)
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    rows: usize,
    refunded: usize,
    declined: usize,
    unknown: usize,
    failed: usize,
    skipped: usize,
    malformed: usize,
}

pub(crate) async fn run(args: Args) -> Result<ExitCode, Failure> {
    let (rows, malformed) = read_rows(&args.input)?;
    for (line, why) in &malformed {
        err_line(&format!("line {line}: {why}; skipped, not sent")).map_err(Failure::other)?;
    }
    let journal_error =
        |e: std::io::Error| Failure::other(format!("journal {}: {e}", args.journal.display()));

    if args.dry_run {
        // Read only: a dry run neither creates, locks nor writes the journal.
        let index = Index::read_only(&args.journal).map_err(journal_error)?;
        for row in &rows {
            let what = match plan(row, &index) {
                Plan::Send { reference, .. } => {
                    format!("would refund {} (reference {reference})", row.amount)
                }
                Plan::Reconcile { reference, .. } => {
                    format!("would look up reference {reference} before anything else")
                }
                Plan::Skip(why) => format!("would skip: {why}"),
                Plan::Stuck(why) => format!("would leave unknown: {why}"),
            };
            out_line(&format!(
                "line {}: {} {}: {what}",
                row.line,
                row.provider.name(),
                row.payment
            ))
            .map_err(Failure::other)?;
        }
        return Ok(ExitCode::from(if malformed.is_empty() {
            0
        } else {
            Code::Invalid as u8
        }));
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
    let plans: Vec<(Row, Plan)> = rows
        .into_iter()
        .map(|row| {
            let plan = plan(&row, journal.index());
            (row, plan)
        })
        .collect();

    let mut summary = Summary {
        rows: plans.len() + malformed.len(),
        malformed: malformed.len(),
        ..Summary::default()
    };

    let clients = providers(&plans, &args.connection)?;
    let journal = Arc::new(Mutex::new(journal));
    let bar = ProgressBar::new(plans.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let gate = Arc::new(Semaphore::new(usize::from(args.concurrency)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut rerun_after: Option<SystemTime> = None;
    for (row, plan) in plans {
        match plan {
            Plan::Skip(_) => {
                summary.skipped += 1;
                bar.inc(1);
                continue;
            }
            Plan::Stuck(why) => {
                say(&bar, &format!("line {}: {why}", row.line));
                summary.unknown += 1;
                bar.inc(1);
                continue;
            }
            Plan::Send { .. } | Plan::Reconcile { .. } => {}
        }
        let client = clients
            .get(&row.provider)
            .cloned()
            .ok_or_else(|| Failure::other(format!("no {} client", row.provider.name())))?;
        let journal = Arc::clone(&journal);
        let gate = Arc::clone(&gate);
        let bar = bar.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let outcome = process(&client, &row, plan, &journal).await;
            match &outcome {
                Err(e) => say(&bar, &format!("line {}: {e}", row.line)),
                Ok(Outcome {
                    state: RowState::Declined | RowState::Unknown | RowState::Failed,
                    note,
                    ..
                }) => say(
                    &bar,
                    &format!("line {}: {}", row.line, note.as_deref().unwrap_or("")),
                ),
                Ok(_) => {}
            }
            bar.inc(1);
            outcome
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(outcome)) => {
                match outcome.state {
                    RowState::Refunded => summary.refunded += 1,
                    RowState::Declined => summary.declined += 1,
                    RowState::Unknown | RowState::Sending => summary.unknown += 1,
                    RowState::Failed => summary.failed += 1,
                }
                if let Some(at) = outcome.settles_at {
                    rerun_after = Some(rerun_after.map_or(at, |t| t.max(at)));
                }
            }
            // A journal write failed: stop counting this row as anything but unknown.
            Ok(Err(_)) | Err(_) => summary.unknown += 1,
        }
    }
    bar.finish_and_clear();

    err_line(&format!(
        "{} rows: {} refunded, {} declined, {} unknown, {} failed, {} skipped, {} malformed",
        summary.rows,
        summary.refunded,
        summary.declined,
        summary.unknown,
        summary.failed,
        summary.skipped,
        summary.malformed
    ))
    .map_err(Failure::other)?;
    if summary.unknown > 0 {
        let when = match rerun_after {
            Some(t) if t > SystemTime::now() => format!("after {}", journal::utc(t)),
            _ => "later".to_owned(),
        };
        err_line(&format!(
            "{} rows have an unknown outcome: run the same command again {when} to reconcile \
             them (nothing is resent before a lookup, and nothing before the provider's settle \
             time has passed), or check them by reference in the journal",
            summary.unknown
        ))
        .map_err(Failure::other)?;
    }
    out_line(&serde_json::to_string(&summary).map_err(Failure::other)?).map_err(Failure::other)?;

    let code = if summary.unknown > 0 {
        Code::Unknown as u8
    } else if summary.failed > 0 {
        Code::Other as u8
    } else if summary.declined > 0 {
        Code::Declined as u8
    } else if summary.malformed > 0 {
        Code::Invalid as u8
    } else {
        0
    };
    Ok(ExitCode::from(code))
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

fn plan(row: &Row, journal: &Index) -> Plan {
    let fresh = || row.reference.clone().unwrap_or_else(MerchantRef::generate);
    let Some(last) = journal.last(&row.key) else {
        return Plan::Send {
            reference: fresh(),
            refusals: 0,
        };
    };
    let stored = MerchantRef::new(last.reference.clone());
    match last.state {
        RowState::Refunded => Plan::Skip("refunded in an earlier run"),
        RowState::Declined => Plan::Skip("declined in an earlier run"),
        // Nothing reached the provider: the same reference again, or a new one if it was the
        // reference itself that could not be used.
        RowState::Failed => match stored {
            Ok(reference) => Plan::Send {
                reference,
                refusals: journal.refusals(&row.key),
            },
            Err(_) => Plan::Send {
                reference: fresh(),
                refusals: 0,
            },
        },
        RowState::Sending | RowState::Unknown => match stored {
            Ok(reference) => Plan::Reconcile {
                reference,
                // A journaled attempt without a time counts as made now (the index's rule).
                attempted_at: journal
                    .attempted_at(&row.key)
                    .unwrap_or_else(SystemTime::now),
                refusals: journal.refusals(&row.key),
            },
            Err(e) => Plan::Stuck(format!(
                "the journaled reference {:?} of an attempt with an unknown outcome cannot be \
                 used ({e}); left unknown, nothing sent: check the payment with the provider",
                last.reference
            )),
        },
    }
}

/// Requests that may move money, per row and run: the first send plus resends after
/// temporary refusals or a lookup that proved the attempt did not take effect.
const ATTEMPTS: u32 = 3;
/// How long after an outcome-unknown answer the batch looks the refund up in the same run.
const RECONCILE_DELAY: Duration = Duration::from_millis(500);
/// The longest pause a rate limit may ask for before the row is given up for this run.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Runs one row to a terminal journal record.
async fn process(
    client: &Client,
    row: &Row,
    plan: Plan,
    journal: &Mutex<Journal>,
) -> std::io::Result<Outcome> {
    let reconciler = Reconciler::for_provider(&*client.look);
    let (reference, mut refusals) = match plan {
        Plan::Skip(why) => return Ok(Outcome::new(RowState::Refunded, why)),
        Plan::Stuck(why) => return Ok(Outcome::new(RowState::Unknown, why)),
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
            match reconcile(&*client.look, &reconciler, row, &attempt, "").await {
                Some(outcome) => {
                    write(
                        journal,
                        row,
                        &reference,
                        outcome.state,
                        outcome.note.clone(),
                    )?;
                    return Ok(outcome);
                }
                // Nothing on record and the attempt is settled: resend, same reference.
                None => (reference, refusals),
            }
        }
    };

    let request = match RefundRequest::builder(row.payment.clone(), row.amount)
        .reference(reference.as_str())
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let outcome = Outcome::new(RowState::Failed, e.to_string());
            write(
                journal,
                row,
                &reference,
                outcome.state,
                outcome.note.clone(),
            )?;
            return Ok(outcome);
        }
    };
    let mut attempt = 1;
    let outcome = loop {
        // Journaled (with its time) and synced before the request can leave.
        let attempted_at = write(journal, row, &reference, RowState::Sending, None)?;
        let error = match client.send.refund(&request).await {
            Ok(receipt) => {
                break Outcome::new(
                    RowState::Refunded,
                    receipt
                        .provider_references
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            Err(e) => e,
        };
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
            match reconcile(&*client.look, &reconciler, row, &unsettled, &why).await {
                Some(outcome) => break outcome,
                None if attempt < ATTEMPTS => {
                    attempt += 1;
                    continue;
                }
                None => {
                    break Outcome::unknown(
                        format!(
                            "{why}nothing is on record after the settle time, so a resend with \
                             reference {reference} is safe, but this run has no attempt left: \
                             run again"
                        ),
                        SystemTime::now(),
                    );
                }
            }
        }
        match pause_before_retry(&error, attempt) {
            Some(pause) => {
                // Nothing was processed, or the refusal was temporary: the same request again,
                // after its own `sending` record. A refusal is journaled `declined` (a kill
                // before the resend leaves the row declined, which it was) and counted, since
                // it may have left a failed entry under the reference.
                let refused = matches!(error, RefundError::Declined { .. });
                write(
                    journal,
                    row,
                    &reference,
                    if refused {
                        RowState::Declined
                    } else {
                        RowState::Failed
                    },
                    Some(format!("{error}; retrying")),
                )?;
                refusals += usize::from(refused);
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            None => {
                let state = match error {
                    RefundError::Declined { .. } => RowState::Declined,
                    _ => RowState::Failed,
                };
                break Outcome::new(state, error.to_string());
            }
        }
    };
    write(
        journal,
        row,
        &reference,
        outcome.state,
        outcome.note.clone(),
    )?;
    Ok(outcome)
}

/// How long to wait before sending the same request again after `error` on attempt `attempt`,
/// or `None` when it is not to be retried in this run.
fn pause_before_retry(error: &RefundError, attempt: u32) -> Option<Duration> {
    if !error.is_retryable() || attempt >= ATTEMPTS {
        return None;
    }
    let backoff = RetryPolicy::default().delay_for(attempt, true);
    match error {
        RefundError::RateLimited {
            retry_after: Some(wait),
            ..
        } if *wait > MAX_PAUSE => None,
        RefundError::RateLimited {
            retry_after: Some(wait),
            ..
        } => Some(backoff.max(*wait)),
        _ => Some(backoff),
    }
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
    row: &Row,
    attempt: &Attempt<'_>,
    why: &str,
) -> Option<Outcome> {
    let reference = attempt.reference;
    let settles_at = reconciler.settles_at(attempt.at);
    let when = journal::utc(settles_at);
    let verdict = provider.refund_state(&row.payment).await.map(|state| {
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
            let id = record
                .provider_reference
                .map(|id| format!(" (refund_id={id})"))
                .unwrap_or_default();
            Outcome::new(
                RowState::Refunded,
                format!("reconciled: reference {reference} was applied{id}"),
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

/// Appends a record for `row`, stamped now; returns that time.
fn write(
    journal: &Mutex<Journal>,
    row: &Row,
    reference: &MerchantRef,
    state: RowState,
    note: Option<String>,
) -> std::io::Result<SystemTime> {
    let now = SystemTime::now();
    let record = Record {
        key: row.key.clone(),
        reference: reference.to_string(),
        state,
        note,
        at: Some(journal::to_millis(now)),
    };
    journal
        .lock()
        .map_err(|_| std::io::Error::other("journal lock poisoned"))?
        .append(&record)?;
    Ok(now)
}

/// A provider's clients for the batch.
#[derive(Debug, Clone)]
struct Client {
    /// Sends refunds: one request per call, never retried or resent behind the journal's
    /// back, so every request that may move money follows its own `sending` record.
    send: Arc<dyn RefundProvider>,
    /// Looks refunds up; lookups change nothing, so they are retried.
    look: Arc<dyn RefundProvider>,
}

/// Builds a client for each provider the rows use, from the provider's environment variables.
fn providers(
    plans: &[(Row, Plan)],
    connection: &Connection,
) -> Result<HashMap<Provider, Client>, Failure> {
    let mut clients = HashMap::new();
    let used = |p| {
        plans.iter().any(|(r, plan)| {
            r.provider == p && matches!(plan, Plan::Send { .. } | Plan::Reconcile { .. })
        })
    };
    let client = |send: Arc<dyn RefundProvider>| Client {
        look: Arc::new(Retrying::new(Arc::clone(&send), RetryPolicy::default())),
        send,
    };
    if used(Provider::Sipay) {
        clients.insert(
            Provider::Sipay,
            client(Arc::new(super::sipay::client(connection)?)),
        );
    }
    if used(Provider::Iyzico) {
        clients.insert(
            Provider::Iyzico,
            client(Arc::new(super::iyzico::client(connection)?)),
        );
    }
    Ok(clients)
}

/// Reads the CSV: valid rows, and (line, reason) for each malformed one.
/// Malformed rows: (line number, why).
type Malformed = Vec<(u64, String)>;

fn read_rows(path: &std::path::Path) -> Result<(Vec<Row>, Malformed), Failure> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Failure::invalid(format!("{}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| Failure::invalid(format!("{}: {e}", path.display())))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(c_provider), Some(c_payment), Some(c_amount), Some(c_currency)) = (
        column("provider"),
        column("payment"),
        column("amount"),
        column("currency"),
    ) else {
        return Err(Failure::invalid(
            "the header must name the columns provider,payment,amount,currency (and optionally reference)",
        ));
    };
    let c_reference = column("reference");

    let mut rows = Vec::new();
    let mut malformed = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(index as u64 + 2, |p| p.line());
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                malformed.push((line, e.to_string()));
                continue;
            }
        };
        let field = |c: usize| record.get(c).unwrap_or("");
        let reference = c_reference.map(field).filter(|r| !r.is_empty());
        match parse_row(
            field(c_provider),
            field(c_payment),
            field(c_amount),
            field(c_currency),
            reference,
        ) {
            Ok((provider, payment, amount, reference)) => {
                // The key is the row's content, plus which occurrence of identical content it
                // is: reordering the file does not change a row's identity.
                let content = format!(
                    "{}|{}|{}|{}",
                    provider.name(),
                    payment,
                    amount,
                    reference.as_ref().map_or("", MerchantRef::as_str)
                );
                let n = seen.entry(content.clone()).or_default();
                *n += 1;
                rows.push(Row {
                    line,
                    key: format!("{content}#{n}"),
                    provider,
                    payment,
                    amount,
                    reference,
                });
            }
            Err(why) => malformed.push((line, why)),
        }
    }
    Ok((rows, malformed))
}

type Parsed = (Provider, PaymentRef, Money, Option<MerchantRef>);

fn parse_row(
    provider: &str,
    payment: &str,
    amount: &str,
    currency: &str,
    reference: Option<&str>,
) -> Result<Parsed, String> {
    let provider = match provider.to_ascii_lowercase().as_str() {
        "sipay" => Provider::Sipay,
        "iyzico" => Provider::Iyzico,
        other => return Err(format!("unknown provider {other:?} (sipay or iyzico)")),
    };
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

    #[test]
    fn plans_follow_the_journal() {
        let row = Row {
            line: 2,
            key: "k".into(),
            provider: Provider::Sipay,
            payment: PaymentRef::payment("I"),
            amount: Money::parse("1", Currency::Try).unwrap(),
            reference: None,
        };
        let journal = |lines: &[(RowState, &str, Option<u64>)]| {
            Index::from_records(lines.iter().map(|(state, reference, at)| Record {
                key: "k".into(),
                reference: (*reference).into(),
                state: *state,
                note: None,
                at: *at,
            }))
        };
        let one = |state| journal(&[(state, "r-1", Some(1_000))]);
        assert!(matches!(
            plan(&row, &Index::default()),
            Plan::Send { refusals: 0, .. }
        ));
        assert!(matches!(
            plan(&row, &one(RowState::Refunded)),
            Plan::Skip(_)
        ));
        assert!(matches!(
            plan(&row, &one(RowState::Declined)),
            Plan::Skip(_)
        ));
        assert!(matches!(
            plan(&row, &one(RowState::Failed)),
            Plan::Send { reference, refusals: 0 } if reference.as_str() == "r-1"
        ));
        let at_1s = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        assert!(matches!(
            plan(&row, &one(RowState::Sending)),
            Plan::Reconcile { reference, attempted_at, refusals: 0 } if reference.as_str() == "r-1" && attempted_at == at_1s
        ));
        // `unknown` keeps the time of the attempt it is about, not its own.
        assert!(matches!(
            plan(&row, &journal(&[(RowState::Sending, "r-1", Some(1_000)), (RowState::Unknown, "r-1", Some(9_000))])),
            Plan::Reconcile { attempted_at, .. } if attempted_at == at_1s
        ));
        // A resend after a refused attempt: the refusal's failed entry is not this attempt's.
        assert!(matches!(
            plan(
                &row,
                &journal(&[
                    (RowState::Sending, "r-1", Some(1_000)),
                    (RowState::Declined, "r-1", Some(2_000)),
                    (RowState::Sending, "r-1", Some(3_000)),
                    // A 429 leaves no entry: not a refusal.
                    (RowState::Failed, "r-1", Some(4_000)),
                    (RowState::Sending, "r-1", Some(5_000)),
                ])
            ),
            Plan::Reconcile { refusals: 1, .. }
        ));
        // An undated attempt (an older journal) counts as made now.
        let before = SystemTime::now();
        assert!(matches!(
            plan(&row, &journal(&[(RowState::Sending, "r-1", None)])),
            Plan::Reconcile { attempted_at, .. } if attempted_at >= before
        ));
        // An unknown attempt whose reference cannot be used is never sent under a new one.
        assert!(matches!(
            plan(
                &row,
                &journal(&[(RowState::Sending, "bad ref", Some(1_000))])
            ),
            Plan::Stuck(_)
        ));
    }
}
