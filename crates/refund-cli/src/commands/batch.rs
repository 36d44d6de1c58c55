//! `refund batch`: refund every row of a CSV file, crash-safely (see [`crate::journal`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args as ClapArgs;
use indicatif::{ProgressBar, ProgressStyle};
use refund_core::{
    Currency, MerchantRef, Money, PaymentRef, ProviderRegistry, Reconciliation, RefundError,
    RefundProvider, RefundRequest, RetryPolicy, Retrying,
};
use serde::Serialize;
use tokio::sync::Semaphore;

use super::Connection;
use crate::exit::{Code, Failure};
use crate::journal::{Journal, Record, RowState};
use crate::output::{err_line, out_line};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// CSV with a header line and columns provider,payment,amount,currency[,reference].
    /// `payment` is the SiPay invoice_id or the iyzico paymentId; `tx:<id>` is an iyzico
    /// paymentTransactionId (item refund), `tx:<id>@<paymentId>` also names its payment so an
    /// uncertain refund can be looked up.
    #[arg(long)]
    input: PathBuf,
    /// The journal file (created when missing). Run again with the same journal to resume.
    #[arg(long)]
    journal: PathBuf,
    /// Refunds in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Validate the rows and print what would be done; send nothing.
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
    Send(MerchantRef),
    Reconcile(MerchantRef),
    Skip(&'static str),
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
    let journal = Journal::open(&args.journal)
        .map_err(|e| Failure::other(format!("journal {}: {e}", args.journal.display())))?;
    let plans: Vec<(Row, Plan)> = rows
        .into_iter()
        .map(|row| {
            let plan = plan(&row, journal.last(&row.key));
            (row, plan)
        })
        .collect();

    let mut summary = Summary {
        rows: plans.len() + malformed.len(),
        malformed: malformed.len(),
        ..Summary::default()
    };

    if args.dry_run {
        for (row, plan) in &plans {
            let what = match plan {
                Plan::Send(r) => format!("would refund {} (reference {r})", row.amount),
                Plan::Reconcile(r) => format!("would look up reference {r} before anything else"),
                Plan::Skip(why) => format!("would skip: {why}"),
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

    let registry = providers(&plans, &args.connection)?;
    let journal = Arc::new(Mutex::new(journal));
    let bar = ProgressBar::new(plans.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let gate = Arc::new(Semaphore::new(usize::from(args.concurrency)));
    let mut tasks = tokio::task::JoinSet::new();
    for (row, plan) in plans {
        if let Plan::Skip(_) = &plan {
            summary.skipped += 1;
            bar.inc(1);
            continue;
        };
        let provider = registry
            .get(row.provider.name())
            .ok_or_else(|| Failure::other(format!("no {} client", row.provider.name())))?;
        let journal = Arc::clone(&journal);
        let gate = Arc::clone(&gate);
        let bar = bar.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let outcome = process(&*provider, &row, plan, &journal).await;
            if let Err(e) = &outcome {
                bar.println(format!("line {}: {e}", row.line));
            } else if let Ok((RowState::Declined | RowState::Unknown | RowState::Failed, note)) =
                &outcome
            {
                bar.println(format!(
                    "line {}: {}",
                    row.line,
                    note.as_deref().unwrap_or("")
                ));
            }
            bar.inc(1);
            outcome
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok((state, _))) => match state {
                RowState::Refunded => summary.refunded += 1,
                RowState::Declined => summary.declined += 1,
                RowState::Unknown | RowState::Sending => summary.unknown += 1,
                RowState::Failed => summary.failed += 1,
            },
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
        err_line(&format!(
            "{} rows have an unknown outcome: run the same command again to reconcile them \
             (nothing is resent before a lookup), or check them by reference in the journal",
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

fn plan(row: &Row, last: Option<&Record>) -> Plan {
    let fresh = || row.reference.clone().unwrap_or_else(MerchantRef::generate);
    let Some(last) = last else {
        return Plan::Send(fresh());
    };
    let reference = MerchantRef::new(last.reference.clone()).unwrap_or_else(|_| fresh());
    match last.state {
        RowState::Refunded => Plan::Skip("refunded in an earlier run"),
        RowState::Declined => Plan::Skip("declined in an earlier run"),
        RowState::Failed => Plan::Send(reference),
        RowState::Sending | RowState::Unknown => Plan::Reconcile(reference),
    }
}

/// Runs one row to a terminal journal record.
async fn process(
    provider: &dyn RefundProvider,
    row: &Row,
    plan: Plan,
    journal: &Mutex<Journal>,
) -> std::io::Result<(RowState, Option<String>)> {
    let reference = match plan {
        Plan::Skip(_) => return Ok((RowState::Refunded, None)),
        Plan::Send(reference) => reference,
        Plan::Reconcile(reference) => match provider.refund_state(&row.payment).await {
            Ok(state) => match state.find(&reference) {
                Reconciliation::Applied(_) => {
                    let note = Some(format!("reconciled: reference {reference} was applied"));
                    write(journal, row, &reference, RowState::Refunded, note.clone())?;
                    return Ok((RowState::Refunded, note));
                }
                Reconciliation::NotFound => reference,
                _ => {
                    let note = Some(format!(
                        "lookup cannot tell whether reference {reference} was applied; left for a person"
                    ));
                    write(journal, row, &reference, RowState::Unknown, note.clone())?;
                    return Ok((RowState::Unknown, note));
                }
            },
            Err(e) => {
                let note = Some(format!(
                    "lookup failed ({e}); reference {reference} left unknown, nothing resent"
                ));
                write(journal, row, &reference, RowState::Unknown, note.clone())?;
                return Ok((RowState::Unknown, note));
            }
        },
    };

    let request = match RefundRequest::builder(row.payment.clone(), row.amount)
        .reference(reference.as_str())
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let note = Some(e.to_string());
            write(journal, row, &reference, RowState::Failed, note.clone())?;
            return Ok((RowState::Failed, note));
        }
    };
    // Journaled and synced before the request can leave.
    write(journal, row, &reference, RowState::Sending, None)?;
    let (state, note) = match provider.refund(&request).await {
        Ok(receipt) => (
            RowState::Refunded,
            Some(
                receipt
                    .provider_references
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ),
        Err(e) => (state_of(&e), Some(e.to_string())),
    };
    write(journal, row, &reference, state, note.clone())?;
    Ok((state, note))
}

fn state_of(e: &RefundError) -> RowState {
    match e {
        RefundError::Declined { .. } => RowState::Declined,
        e if !e.is_outcome_known() => RowState::Unknown,
        _ => RowState::Failed,
    }
}

fn write(
    journal: &Mutex<Journal>,
    row: &Row,
    reference: &MerchantRef,
    state: RowState,
    note: Option<String>,
) -> std::io::Result<()> {
    let record = Record {
        key: row.key.clone(),
        reference: reference.to_string(),
        state,
        note,
    };
    journal
        .lock()
        .map_err(|_| std::io::Error::other("journal lock poisoned"))?
        .append(&record)
}

/// Builds a client for each provider the rows use, from the provider's environment variables.
fn providers(plans: &[(Row, Plan)], connection: &Connection) -> Result<ProviderRegistry, Failure> {
    let mut registry = ProviderRegistry::new();
    let policy = RetryPolicy::default().reconcile(true, Duration::from_millis(500));
    let used = |p| {
        plans
            .iter()
            .any(|(r, plan)| r.provider == p && !matches!(plan, Plan::Skip(_)))
    };
    if used(Provider::Sipay) {
        let client = super::sipay::client(connection)?;
        registry.insert("sipay", Arc::new(Retrying::new(client, policy.clone())));
    }
    if used(Provider::Iyzico) {
        let client = super::iyzico::client(connection)?;
        registry.insert("iyzico", Arc::new(Retrying::new(client, policy)));
    }
    Ok(registry)
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
        let rec = |state| Record {
            key: "k".into(),
            reference: "r-1".into(),
            state,
            note: None,
        };
        assert!(matches!(plan(&row, None), Plan::Send(_)));
        assert!(matches!(
            plan(&row, Some(&rec(RowState::Refunded))),
            Plan::Skip(_)
        ));
        assert!(matches!(
            plan(&row, Some(&rec(RowState::Declined))),
            Plan::Skip(_)
        ));
        assert!(
            matches!(plan(&row, Some(&rec(RowState::Failed))), Plan::Send(r) if r.as_str() == "r-1")
        );
        assert!(
            matches!(plan(&row, Some(&rec(RowState::Sending))), Plan::Reconcile(r) if r.as_str() == "r-1")
        );
        assert!(matches!(
            plan(&row, Some(&rec(RowState::Unknown))),
            Plan::Reconcile(_)
        ));
    }
}
