//! `refund decide`: record what a person decided for a row of a batch journal — refunded (with
//! the provider's refund id or a panel reference), not refunded, or retry now (a `failed` row
//! after its cause was fixed: sent again by the next run, with the same reference) — with who,
//! when (UTC, the record's time) and why, so that later runs and the report follow it.
//!
//! A decision never contradicts the provider's ledger and never races a request that may be in
//! flight:
//!
//! - a row whose state says a request may be in flight (`sending`, `unknown`) is looked up
//!   first (`Reconciler::look_up`); "refunded" or "not refunded" is recorded only once its
//!   attempt is older than the provider's settle time, and "retry" only when the lookup shows
//!   it was not applied;
//! - "not refunded" is looked up whatever the state, and refused whenever the lookup shows the
//!   reference applied (or cannot be made);
//! - a row already `refunded` or `declined` is final: no decision is recorded for it.
//!
//! Exit codes: 0 recorded; 2 refused (no such row, a final row, the ledger contradicts the
//! decision); 4 the lookup failed, so nothing was recorded; 5 the journal is in use or cannot be
//! written; 75 not settled yet (the attempt is younger than the settle time): nothing recorded,
//! the same command may succeed after the time it names.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use clap::{ArgGroup, Args as ClapArgs};
use refund_core::{Attempt, MerchantRef, PaymentRef, Reconciler, RefundProvider, Verdict};
use serde_json::json;

use super::Connection;
use crate::exit::{Code, Failure};
use crate::journal::{self, HashTable, Journal, OpenError, PersonDecision, Record, RowState};
use crate::output::{Format, Success};

#[derive(Debug, ClapArgs)]
#[command(group(ArgGroup::new("decision").required(true).args(["refunded", "not_refunded", "retry"])))]
pub(crate) struct Args {
    /// The batch journal file.
    #[arg(long)]
    journal: PathBuf,
    /// The row's merchant reference (its own, or the derived `b-…` one the report shows).
    #[arg(long)]
    reference: String,
    /// The refund was made (seen in the provider's panel, or made there by hand).
    #[arg(long)]
    refunded: bool,
    /// `--refunded`: the provider's id of the refund, or the panel's reference for it.
    #[arg(long, value_name = "ID", requires = "refunded")]
    refund_id: Option<String>,
    /// No refund was made, and none is to be made for this row.
    #[arg(long)]
    not_refunded: bool,
    /// Send it again now, with the same reference (a `failed` or `retry_later` row after its
    /// cause was fixed): the next `refund batch` run sends it.
    #[arg(long)]
    retry: bool,
    /// Who decides (kept in the journal and shown in the report).
    #[arg(long, value_name = "NAME")]
    by: String,
    /// Why (kept in the journal and shown in the report).
    #[arg(long, value_name = "TEXT")]
    why: String,
    #[command(flatten)]
    connection: Connection,
}

/// The decision asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    Refunded,
    NotRefunded,
    Retry,
}

impl Asked {
    fn name(self) -> &'static str {
        match self {
            Asked::Refunded => "refunded",
            Asked::NotRefunded => "not_refunded",
            Asked::Retry => "retry",
        }
    }
}

fn refused(message: impl std::fmt::Display) -> Failure {
    Failure::invalid(format!("{message}; nothing was recorded"))
}

fn not_yet(message: impl std::fmt::Display) -> Failure {
    let mut failure = Failure::other(format!("{message}; nothing was recorded"));
    failure.code = Code::TempFail;
    failure.facts.kind = "not_settled";
    failure.facts.retryable = true;
    failure
}

/// Records the decision (see the module's documentation).
pub(crate) async fn run(args: Args, format: Format) -> Result<ExitCode, Failure> {
    let asked = if args.refunded {
        Asked::Refunded
    } else if args.not_refunded {
        Asked::NotRefunded
    } else {
        Asked::Retry
    };
    if args.by.trim().is_empty() || args.why.trim().is_empty() {
        return Err(Failure::usage("--by and --why must not be empty"));
    }
    let reference = MerchantRef::new(args.reference.as_str())
        .map_err(|e| Failure::invalid(format!("--reference: {e}")))?;
    if !args.journal.is_file() {
        return Err(Failure::invalid(format!(
            "journal {}: no such file",
            args.journal.display()
        )));
    }
    let journal_error =
        |e: std::io::Error| Failure::other(format!("journal {}: {e}", args.journal.display()));
    let journal = match Journal::open(&args.journal) {
        Ok(journal) => journal,
        Err(OpenError::Busy) => {
            return Err(Failure::other(format!(
                "journal {} is in use by a `refund batch` run; nothing was recorded. Decide \
                 after that run",
                args.journal.display()
            )));
        }
        Err(OpenError::Io(e)) => return Err(journal_error(e)),
    };
    let index = journal.index();
    let mut wanted: HashTable<()> = HashTable::default();
    wanted.insert(index.hashing().of(reference.as_str()), ());
    let found = index.rows_using(&wanted).map_err(journal_error)?;
    let record = match found.as_slice() {
        [(_, record)] => record.clone(),
        [] => {
            return Err(refused(format!(
                "journal {} has no row with reference {reference}",
                args.journal.display()
            )));
        }
        _ => {
            return Err(refused(format!(
                "more than one row of journal {} uses reference {reference}",
                args.journal.display()
            )));
        }
    };
    let view = index
        .get(&record.key)
        .ok_or_else(|| Failure::other("the journal changed while it was read"))?;
    let parts = journal::parse_key(&record.key)
        .ok_or_else(|| refused(format!("the journal row {:?} cannot be read", record.key)))?;

    let state = view.state;
    if matches!(state, RowState::Refunded | RowState::Declined) {
        return Err(refused(format!(
            "reference {reference} is {} already: final",
            state.name()
        )));
    }
    let in_flight = matches!(state, RowState::Sending | RowState::Unknown);
    if asked == Asked::Retry
        && !in_flight
        && state != RowState::Failed
        && state != RowState::RetryLater
    {
        return Err(refused(format!(
            "reference {reference} is {}: only a failed or retry_later row is retried",
            state.name()
        )));
    }

    let mut refund_id = args.refund_id.clone();
    let mut looked_up = None;
    if in_flight || asked == Asked::NotRefunded {
        let provider: Arc<dyn RefundProvider> = match parts.provider {
            "sipay" => Arc::new(super::sipay::client(&args.connection)?),
            "iyzico" => Arc::new(super::iyzico::client(&args.connection)?),
            other => {
                return Err(refused(format!(
                    "unknown provider {other:?} in the journal"
                )));
            }
        };
        let payment = payment_ref(parts.payment).ok_or_else(|| {
            refused(format!(
                "the journal row's payment {:?} cannot be read",
                parts.payment
            ))
        })?;
        let attempt = Attempt::new(
            reference.clone(),
            view.attempted_at(),
            view.sends(),
            u32::try_from(view.refusals()).unwrap_or(u32::MAX),
        );
        let judged = Reconciler::for_provider(&*provider)
            .look_up(&*provider, &payment, &attempt, SystemTime::now)
            .await
            .map_err(|e| {
                let mut failure = Failure::provider(&e);
                failure.message = format!(
                    "the lookup of reference {reference} failed ({}); nothing was recorded",
                    failure.message
                );
                failure.code = Code::Unknown;
                failure
            })?;
        let settled = judged.settles_at <= judged.asked_at;
        match (&judged.verdict, asked) {
            (Verdict::Applied(_), Asked::NotRefunded) => {
                return Err(refused(format!(
                    "the provider's ledger shows reference {reference} applied: it was refunded"
                )));
            }
            (Verdict::Applied(_), Asked::Retry) => {
                return Err(refused(format!(
                    "the provider's ledger shows reference {reference} applied: never resent"
                )));
            }
            (Verdict::Applied(found), Asked::Refunded) if refund_id.is_none() => {
                refund_id.clone_from(&found.provider_reference);
            }
            (Verdict::NotYetKnown { .. }, _) => {
                return Err(not_yet(format!(
                    "reference {reference} may still appear in the provider's ledger: its \
                     attempt settles at {}; decide after that",
                    journal::utc(judged.settles_at)
                )));
            }
            (Verdict::Undetermined(why), Asked::Retry) => {
                return Err(refused(format!(
                    "the lookup cannot tell whether reference {reference} was applied ({why}): \
                     a retry could refund twice; decide refunded or not refunded instead"
                )));
            }
            (Verdict::Undetermined(why), _) if in_flight && !settled => {
                return Err(not_yet(format!(
                    "the lookup cannot tell whether reference {reference} was applied ({why}) \
                     and its attempt settles at {}; decide after that",
                    journal::utc(judged.settles_at)
                )));
            }
            (Verdict::Undetermined(why), Asked::NotRefunded) if !in_flight => {
                return Err(refused(format!(
                    "the lookup cannot tell whether reference {reference} was applied ({why}): \
                     not refunded is recorded only when the ledger does not show it"
                )));
            }
            _ => {}
        }
        looked_up = Some(judged.verdict.kind());
    }

    let decided = PersonDecision {
        decision: asked.name().to_owned(),
        by: args.by.trim().to_owned(),
        why: args.why.trim().to_owned(),
    };
    let new_state = match asked {
        Asked::Refunded => RowState::Refunded,
        Asked::NotRefunded => RowState::Declined,
        Asked::Retry => RowState::RetryLater,
    };
    let now = SystemTime::now();
    let record = Record {
        note: Some(format!(
            "decided {} by {}: {}",
            asked.name(),
            decided.by,
            decided.why
        )),
        provider_reference: refund_id.clone(),
        not_before: (asked == Asked::Retry).then(|| journal::to_millis(now)),
        decided: Some(decided.clone()),
        ..Record::new(record.key.as_str(), reference.as_str(), new_state)
    };
    let (_, appender) = journal.into_appender().map_err(journal_error)?;
    appender.append(&record).await.map_err(journal_error)?;

    let message = format!(
        "reference {reference}: {} by {} ({}); now {}{}",
        asked.name(),
        decided.by,
        decided.why,
        new_state.name(),
        if asked == Asked::Retry {
            ", sent again with the same reference by the next run"
        } else {
            ""
        }
    );
    crate::output::success(
        format,
        &Success {
            kind: "decided",
            provider: match parts.provider {
                "sipay" => Some("sipay"),
                "iyzico" => Some("iyzico"),
                _ => None,
            },
            text: message.clone(),
            message,
            reference: Some(reference.to_string()),
            data: vec![
                ("decision", json!(asked.name())),
                ("state", json!(new_state.name())),
                ("previous_state", json!(state.name())),
                ("by", json!(decided.by)),
                ("why", json!(decided.why)),
                ("refund_id", json!(refund_id)),
                ("lookup", json!(looked_up)),
            ],
        },
    )
}

/// The payment a journal key names (`payment:ID`, `item:ID`, `item:ID@PAYMENT`).
fn payment_ref(payment: &str) -> Option<PaymentRef> {
    if let Some(id) = payment.strip_prefix("payment:") {
        return Some(PaymentRef::payment(id));
    }
    let item = payment.strip_prefix("item:")?;
    Some(match item.split_once('@') {
        Some((item, parent)) => PaymentRef::item(item).in_payment(parent),
        None => PaymentRef::item(item),
    })
}
