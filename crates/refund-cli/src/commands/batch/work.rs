//! The working pass: the scheduler (orphaned attempts first, then the rows, at most
//! `--concurrency` in flight) and each provider's clients.

use std::collections::{BinaryHeap, HashMap};
use std::num::NonZeroU32;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use indicatif::{ProgressBar, ProgressStyle};
use refund_core::{AttemptPolicy, Paced, Pacer, Reconciler, RefundProvider, RetryPolicy, Retrying};

use super::drive::{self, Ended, Ledgers, SoFar};
use super::input::Input;
use super::plan::{Plan, key_of, plan};
use super::summary::{Summary, finish, say};
use super::validate::Checks;
use super::{Args, BatchError, Provider, Row};
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
    Row(Box<(Arc<Ctx>, Row)>, std::io::Result<Ended>),
    Orphan(std::io::Result<Ended>),
}

/// When to run again: after the latest settle time of an unknown row, and after the latest
/// not-before time of a row refused for now.
#[derive(Debug, Default)]
struct Later {
    rerun_after: Option<SystemTime>,
    retry_after: Option<SystemTime>,
}

/// Rows waiting in this run for a send the provider asked to wait for, at most.
const MAX_RESUMES: usize = 100_000;

/// A row to take up again at `at` (see [`drive::RESUME_WITHIN`]).
struct Resume {
    at: SystemTime,
    seq: u64,
    ctx: Arc<Ctx>,
    row: Row,
    plan: Plan,
    so_far: SoFar,
}

impl PartialEq for Resume {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Resume {}

impl PartialOrd for Resume {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Resume {
    /// The earliest first out of a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The tasks in flight (at most `limit`), the rows waiting to be taken up again, and the
/// counts.
struct Scheduler {
    tasks: tokio::task::JoinSet<Done>,
    limit: usize,
    /// The signal that stops the run (SIGINT 2, SIGTERM 15), 0 until one comes.
    stop: tokio::sync::watch::Receiver<i32>,
    resumes: BinaryHeap<Resume>,
    seq: u64,
    summary: Summary,
    later: Later,
    bar: ProgressBar,
    journal: Appender,
}

impl Scheduler {
    fn spawn_row(&mut self, ctx: Arc<Ctx>, row: Row, plan: Plan, so_far: SoFar) {
        let bar = self.bar.clone();
        self.tasks.spawn(async move {
            let ended = drive::row(&ctx, &row, plan, so_far).await;
            match &ended {
                // Taken up again later in this run: said when it ends.
                Ok(Ended {
                    resume: Some(_), ..
                }) => {}
                Err(e) => say(
                    &bar,
                    &format!("line {}: journal write failed: {e}", row.line),
                ),
                Ok(Ended {
                    state: RowState::Refunded,
                    note,
                    ..
                }) if !note.contains("refunded before") => {}
                Ok(Ended { state, note, .. }) => say(
                    &bar,
                    &format!("line {}: {}: {note}", row.line, state.name()),
                ),
            }
            Done::Row(Box::new((ctx, row)), ended)
        });
    }

    /// Whether a signal stopped the run: nothing new is sent then.
    fn stopped(&self) -> bool {
        *self.stop.borrow() != 0
    }

    /// Starts the rows whose time to be taken up again has come, while there is room.
    fn start_due(&mut self) {
        if self.stopped() {
            return;
        }
        let now = SystemTime::now();
        while self.tasks.len() < self.limit && self.resumes.peek().is_some_and(|r| r.at <= now) {
            if let Some(r) = self.resumes.pop() {
                self.spawn_row(r.ctx, r.row, r.plan, r.so_far);
            }
        }
    }

    /// Waits for the next task to finish or the next resumed row to be due; `false` when
    /// nothing is left.
    async fn step(&mut self) -> bool {
        if self.journal.failure().is_some() || self.stopped() {
            // Nothing more is sent: rows waiting stay as journaled (retry_later).
            for _ in self.resumes.drain() {
                self.summary.worked(RowState::RetryLater);
                self.bar.inc(1);
            }
        }
        self.start_due();
        if self.tasks.is_empty() && self.resumes.is_empty() {
            return false;
        }
        let wake = self.resumes.peek().map(|r| r.at);
        let room = self.tasks.len() < self.limit;
        let running = !self.stopped();
        let mut stop = self.stop.clone();
        tokio::select! {
            Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => self.tally(done),
            () = sleep_until(wake), if wake.is_some() && room => {}
            _ = stop.changed(), if running => {}
        }
        true
    }

    /// Waits until another task may start.
    async fn room(&mut self) {
        self.start_due();
        while self.tasks.len() >= self.limit && !self.stopped() {
            self.step().await;
        }
    }

    /// Counts a finished task, or keeps its row to be taken up again.
    fn tally(&mut self, done: Result<Done, tokio::task::JoinError>) {
        let latest = |slot: &mut Option<SystemTime>, t: Option<SystemTime>| {
            if let Some(t) = t {
                *slot = Some(slot.map_or(t, |s| s.max(t)));
            }
        };
        match done {
            Ok(Done::Row(held, Ok(mut ended))) => {
                if let Some(resume) = ended.resume.take()
                    && self.resumes.len() < MAX_RESUMES
                {
                    let (ctx, row) = *held;
                    self.seq += 1;
                    self.resumes.push(Resume {
                        at: resume.at,
                        seq: self.seq,
                        ctx,
                        row,
                        plan: resume.plan,
                        so_far: resume.so_far,
                    });
                    return;
                }
                self.summary.worked(ended.state);
                self.bar.inc(1);
                match ended.state {
                    RowState::Unknown => latest(&mut self.later.rerun_after, ended.after),
                    RowState::RetryLater => latest(&mut self.later.retry_after, ended.after),
                    _ => {}
                }
            }
            Ok(Done::Orphan(Ok(ended))) if ended.state == RowState::Unknown => {
                latest(&mut self.later.rerun_after, ended.after);
            }
            Ok(Done::Orphan(_)) => {}
            // A journal write failed, or the task died: nothing can be said of the row.
            Ok(Done::Row(_, Err(_))) | Err(_) => {
                self.summary.worked(RowState::Unknown);
                self.bar.inc(1);
            }
        }
    }
}

async fn sleep_until(at: Option<SystemTime>) {
    if let Some(wait) = at.and_then(|t| t.duration_since(SystemTime::now()).ok()) {
        tokio::time::sleep(wait).await;
    }
}

/// How long a stopped run waits for the requests in flight to be answered and journaled; those
/// still in flight after it stay `sending` in the journal (a rerun looks them up first).
pub(super) const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Watches for SIGINT and SIGTERM: the first stops the run (its signal number is sent on the
/// channel), a second one exits at once (130 for SIGINT, 143 for SIGTERM), which is as safe as
/// a SIGKILL: every request in flight followed its `sending` record.
pub(super) fn watch_signals() -> tokio::sync::watch::Receiver<i32> {
    let (tx, rx) = tokio::sync::watch::channel(0);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            tokio::spawn(async move {
                loop {
                    let number = tokio::select! {
                        Some(()) = int.recv() => 2,
                        Some(()) = term.recv() => 15,
                        else => return,
                    };
                    if *tx.borrow() != 0 {
                        std::process::exit(128 + number);
                    }
                    let _ = tx.send(number);
                }
            });
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

pub(super) async fn work(
    args: &Args,
    input: &Path,
    index: &Index,
    checks: &Checks,
    appender: Appender,
) -> Result<ExitCode, BatchError> {
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
    let mut s = Scheduler {
        tasks: tokio::task::JoinSet::new(),
        limit: usize::from(args.concurrency),
        stop: watch_signals(),
        resumes: BinaryHeap::new(),
        seq: 0,
        summary: Summary {
            rows: checks.valid + checks.malformed,
            malformed: checks.malformed,
            ..Summary::default()
        },
        later: Later::default(),
        bar: bar.clone(),
        journal: appender.clone(),
    };

    // Orphaned attempts first: their lookups settle what edited rows wait for.
    for orphan in &checks.orphans {
        if appender.failure().is_some() || s.stopped() {
            break;
        }
        let Some(provider) = orphan.provider else {
            continue;
        };
        let Some(ctx) = clients.get(provider, &bar) else {
            continue;
        };
        s.room().await;
        let orphan = orphan.clone();
        let bar = bar.clone();
        s.tasks.spawn(async move {
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
        if appender.failure().is_some() || s.stopped() {
            break;
        }
        let Ok(mut row) = next else { continue };
        if checks.refused_lines.contains(&row.line) {
            // Refused by its provider in the validating pass (counted there): never sent.
            continue;
        }
        row.key = key_of(&row, index, checks, &mut numbering);
        let plan = plan(&row, index, checks, SystemTime::now())?;
        let summary = &mut s.summary;
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
                s.later.retry_after = Some(s.later.retry_after.map_or(t, |l| l.max(t)));
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
        s.room().await;
        if s.stopped() {
            break;
        }
        s.spawn_row(ctx, row, plan, SoFar::default());
    }
    let signal = loop {
        if s.stopped() {
            break *s.stop.borrow();
        }
        if !s.step().await {
            break *s.stop.borrow();
        }
    };
    if signal != 0 {
        // Stopped: nothing new was sent since; the requests in flight get STOP_GRACE to be
        // answered and journaled.
        let in_flight = s.tasks.len();
        say(
            &bar,
            &format!(
                "{}: no new requests are sent; waiting up to {} s for the {in_flight} in flight",
                if signal == 2 { "SIGINT" } else { "SIGTERM" },
                STOP_GRACE.as_secs()
            ),
        );
        let _ = tokio::time::timeout(STOP_GRACE, async { while s.step().await {} }).await;
        let left = s.tasks.len();
        if left > 0 {
            s.tasks.abort_all();
            for _ in 0..left {
                s.summary.worked(RowState::Unknown);
            }
            say(
                &bar,
                &format!(
                    "{left} requests still in flight after {} s are left `sending` in the \
                     journal: a rerun looks them up before anything is resent",
                    STOP_GRACE.as_secs()
                ),
            );
        }
    }
    bar.finish_and_clear();
    drop(clients);

    if let Some(why) = appender.failure() {
        return Err(BatchError::Journal(std::io::Error::other(format!(
            "{why} (the run stopped: {} rows refunded in it before that; rerun with the \
             journal restored, or check the rows with the provider)",
            s.summary.refunded
        ))));
    }
    finish(&s.summary, s.later.rerun_after, s.later.retry_after)?;
    if signal != 0 {
        err_stopped()?;
        return Ok(ExitCode::from(u8::try_from(128 + signal).unwrap_or(130)));
    }
    Ok(ExitCode::from(s.summary.code()))
}

/// The last stderr line of a stopped run.
fn err_stopped() -> Result<(), BatchError> {
    crate::output::err_line(
        "stopped by a signal before every row was worked: run the same command again to go on \
         (no row is refunded twice)",
    )
    .map_err(Failure::other)?;
    Ok(())
}
