//! The working pass: the scheduler (orphaned attempts first, then the rows, at most
//! `--concurrency` in flight) and each provider's clients.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use indicatif::{ProgressBar, ProgressStyle};
use refund_core::{AttemptPolicy, Paced, Pacer, Reconciler, RefundProvider, RetryPolicy, Retrying};

use super::drive::{self, Ended, Ledgers};
use super::input::Input;
use super::plan::{Plan, key_of, plan};
use super::summary::{Summary, finish, say};
use super::validate::Checks;
use super::{Args, BatchError, Provider};
use crate::commands::Connection;
use crate::exit::Failure;
use crate::journal::{Appender, HashTable, Index, RowState};

/// A provider's clients, pace and policy for the batch.
#[derive(Debug)]
pub(super) struct Ctx {
    /// Sends refunds: one request per call, never retried or resent behind the journal's
    /// back, so every request that may move money follows its own `sending` record.
    pub(super) send: Arc<dyn RefundProvider>,
    /// Looks refunds up, paced; lookups change nothing, so they are retried.
    pub(super) look: Arc<dyn RefundProvider>,
    pub(super) pacer: Arc<Pacer>,
    pub(super) reconciler: Reconciler,
    /// The one lifecycle: what follows every send and lookup.
    pub(super) policy: AttemptPolicy,
    pub(super) journal: Appender,
    /// Whether the provider's ledger is checked before a row's first send: the provider does
    /// not refuse a reused reference, and the operator did not assert that the input never
    /// ran before.
    pub(super) check_ledger: bool,
    pub(super) ledgers: Ledgers,
}

/// Each provider's [`Ctx`], built when a row first needs it.
struct Clients<'a> {
    connection: &'a Connection,
    rate: Option<NonZeroU32>,
    journal: Appender,
    never_run_before: bool,
    built: HashMap<Provider, Option<Arc<Ctx>>>,
}

impl<'a> Clients<'a> {
    /// The provider's context, or `None` (said once) when its client cannot be built.
    fn get(&mut self, provider: Provider, bar: &ProgressBar) -> Option<Arc<Ctx>> {
        if let Some(ctx) = self.built.get(&provider) {
            return ctx.clone();
        }
        let send: Result<Arc<dyn RefundProvider>, Failure> = match provider {
            Provider::Sipay => {
                super::super::sipay::client(self.connection).map(|c| Arc::new(c) as _)
            }
            Provider::Iyzico => {
                super::super::iyzico::client(self.connection).map(|c| Arc::new(c) as _)
            }
        };
        let ctx = match send {
            Ok(send) => {
                let pacer = Arc::new(Pacer::new(self.rate));
                let look: Arc<dyn RefundProvider> = Arc::new(Retrying::new(
                    Paced::new(Arc::clone(&send), Arc::clone(&pacer))
                        .with_longest_wait(drive::HORIZON),
                    RetryPolicy::default(),
                ));
                Some(Arc::new(Ctx {
                    reconciler: Reconciler::for_provider(&*look),
                    check_ledger: !self.never_run_before
                        && !send.capabilities().deduplicates_references,
                    send,
                    look,
                    pacer,
                    policy: AttemptPolicy::default(),
                    journal: self.journal.clone(),
                    ledgers: Ledgers::default(),
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

/// What a finished task reports.
enum Done {
    Row(std::io::Result<Ended>),
    Orphan(std::io::Result<Ended>),
}

/// When to run again: after the latest settle time of an unknown row, and after the latest
/// not-before time of a row refused for now.
#[derive(Debug, Default)]
struct Later {
    rerun_after: Option<SystemTime>,
    retry_after: Option<SystemTime>,
}

pub(super) async fn work(
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
    let mut clients = Clients {
        connection: &args.connection,
        rate: args.rate.and_then(NonZeroU32::new),
        journal: appender.clone(),
        never_run_before: args.input_never_run_before,
        built: HashMap::new(),
    };
    let bar = ProgressBar::new(checks.valid);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let limit = usize::from(args.concurrency);
    let mut tasks = tokio::task::JoinSet::new();
    let mut later = Later::default();

    // Orphaned attempts first: their lookups settle what edited rows wait for.
    for orphan in &checks.orphans {
        if appender.failure().is_some() {
            break;
        }
        let Some(provider) = orphan.provider else {
            continue;
        };
        let Some(ctx) = clients.get(provider, &bar) else {
            continue;
        };
        while tasks.len() >= limit {
            if let Some(done) = tasks.join_next().await {
                tally(done, &mut summary, &mut later);
            }
        }
        let orphan = orphan.clone();
        let bar = bar.clone();
        tasks.spawn(async move {
            let ended = drive::orphan(&ctx, &orphan).await;
            let note = match &ended {
                Ok(e) => format!("{}: {}", e.state.name(), e.note),
                Err(e) => format!("journal write failed: {e}"),
            };
            say(
                &bar,
                &format!(
                    "journal row {:?} (no longer in the input): {note}",
                    orphan.key
                ),
            );
            Done::Orphan(ended)
        });
    }

    let mut numbering: HashTable<u32> = HashTable::default();
    let mut rows = Input::open(input)?;
    while let Some(next) = rows.next()? {
        // A journal that cannot be written (or is no longer at its path) stops the run:
        // nothing more is sent.
        if appender.failure().is_some() {
            break;
        }
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
                later.retry_after = Some(later.retry_after.map_or(t, |s| s.max(t)));
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
            Plan::First { .. } | Plan::Resend(_) | Plan::LookUp(_) => {}
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
                tally(done, &mut summary, &mut later);
            }
        }
        let bar = bar.clone();
        tasks.spawn(async move {
            let ended = drive::row(&ctx, &row, plan).await;
            match &ended {
                Err(e) => say(
                    &bar,
                    &format!("line {}: journal write failed: {e}", row.line),
                ),
                Ok(Ended {
                    state: RowState::Refunded,
                    note,
                    ..
                }) if !note.starts_with("refunded before") => {}
                Ok(Ended { state, note, .. }) => say(
                    &bar,
                    &format!("line {}: {}: {note}", row.line, state.name()),
                ),
            }
            bar.inc(1);
            Done::Row(ended)
        });
    }
    while let Some(done) = tasks.join_next().await {
        tally(done, &mut summary, &mut later);
    }
    bar.finish_and_clear();
    drop(clients);

    if let Some(why) = appender.failure() {
        return Err(BatchError::Journal(std::io::Error::other(format!(
            "{why} (the run stopped: {} rows refunded in it before that; rerun with the \
             journal restored, or check the rows with the provider)",
            summary.refunded
        ))));
    }
    finish(&summary, later.rerun_after, later.retry_after)?;
    Ok(ExitCode::from(summary.code()))
}

/// Counts a finished task.
fn tally(done: Result<Done, tokio::task::JoinError>, summary: &mut Summary, later: &mut Later) {
    let latest = |slot: &mut Option<SystemTime>, t: Option<SystemTime>| {
        if let Some(t) = t {
            *slot = Some(slot.map_or(t, |s| s.max(t)));
        }
    };
    match done {
        Ok(Done::Row(Ok(ended))) => {
            summary.worked(ended.state);
            match ended.state {
                RowState::Unknown => latest(&mut later.rerun_after, ended.after),
                RowState::RetryLater => latest(&mut later.retry_after, ended.after),
                _ => {}
            }
        }
        Ok(Done::Orphan(Ok(ended))) if ended.state == RowState::Unknown => {
            latest(&mut later.rerun_after, ended.after);
        }
        Ok(Done::Orphan(_)) => {}
        // A journal write failed, or the task died: nothing can be said of the row.
        Ok(Done::Row(Err(_))) | Err(_) => summary.worked(RowState::Unknown),
    }
}
