//! `refund batch --journal postgres://…`: the batch on the refund outbox (crate
//! `refund-outbox`) instead of a journal file, so that one campaign can be worked by several
//! machines at once.
//!
//! Every valid row becomes an intent in the outbox (its reference: the row's own, or one
//! derived from the row's content and its occurrence, so every machine running the same file
//! derives the same), enqueued in transactions of up to 1,000 rows; a row whose reference is
//! already there is not enqueued twice. Then this process works the outbox as one worker
//! (`--concurrency` intents at once) until none of the file's intents is due within a few
//! seconds, and prints the same summary as the file journal, counted from the outbox. Several
//! runs, on one machine or many, share the work: the outbox's claims and leases keep each
//! intent with one worker at a time, and every attempt is committed before its request leaves.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use refund_core::{MerchantRef, PaymentRef, PaymentScope, ProviderRegistry, RefundProvider};
use refund_outbox::tokio_postgres::Client;
use refund_outbox::{
    IntentRow, IntentState, OutboxError, RefundIntent, Tracked, Worker, WorkerConfig, enqueue,
};

use super::{Args, Input, Provider, Row, Summary, finish};
use crate::commands::outbox::connect;
use crate::exit::Failure;
use crate::journal::{self, RowState};
use crate::output::{err_line, out_line};

/// Rows per enqueueing transaction.
const CHUNK: usize = 1_000;
/// The run goes on while one of the file's intents is due within this.
const HORIZON: Duration = Duration::from_secs(5);

/// The database URL, when `--journal` is one.
pub(super) fn database_url(journal: &Path) -> Option<&str> {
    let s = journal.to_str()?;
    (s.starts_with("postgres://") || s.starts_with("postgresql://")).then_some(s)
}

pub(super) async fn run(args: &Args, url: &str) -> Result<ExitCode, Failure> {
    if args.report {
        return report(url, args.report_raw).await;
    }
    let input = args
        .input
        .as_deref()
        .ok_or_else(|| Failure::invalid("--input is required (or --report)"))?;
    if args.dry_run {
        return dry_run(input);
    }
    // Read twice (identical rows, then the rows): a pipe is read once into a temporary file.
    let spooled = super::input::Spooled::prepare(input)?;
    let input = spooled.path();
    let identical = if args.allow_identical_rows {
        HashMap::new()
    } else {
        identical_rows(input)?
    };
    let mut db = connect(url).await?;
    refund_outbox::migrate(&mut db)
        .await
        .map_err(Failure::from)?;
    // The file's intents, followed on this connection until none is due.
    let tracked = Tracked::new(&db).await.map_err(Failure::from)?;

    let mut summary = Summary::default();
    let mut providers = HashSet::new();
    let mut occurrences: HashMap<u128, u32> = HashMap::new();
    // Explicit references seen in the file: a reference names one refund, so a second row
    // with it is refused (the first was enqueued already).
    let mut own_references: HashSet<u128> = HashSet::new();
    let mut chunk: Vec<(Row, MerchantRef)> = Vec::with_capacity(CHUNK);
    let mut rows = Input::open(input)?;
    loop {
        let next = rows.next()?;
        let end = next.is_none();
        match next {
            Some(Ok(row)) => {
                summary.rows += 1;
                if let Some(own) = &row.reference
                    && !own_references.insert(fnv128(own.as_str()))
                {
                    summary.malformed += 1;
                    err_line(&format!(
                        "line {}: reference {own} is used by an earlier row: a reference names \
                         one refund, so this row is not sent (give it its own)",
                        row.line
                    ))
                    .map_err(Failure::other)?;
                    continue;
                }
                if row.reference.is_none()
                    && let Some((count, lines)) = identical.get(&fnv128(&row.content))
                {
                    summary.malformed += 1;
                    let mut shown: Vec<String> = lines.iter().map(u64::to_string).collect();
                    if *count > lines.len() as u64 {
                        shown.push(format!("and {} more", *count - lines.len() as u64));
                    }
                    err_line(&format!(
                        "line {}: the rows on lines {} are identical and have no reference: a \
                         copy pasted twice, or refunds meant to be separate? None of them is \
                         sent. Give each its own reference, or run with --allow-identical-rows \
                         if each is a refund of its own",
                        row.line,
                        shown.join(", ")
                    ))
                    .map_err(Failure::other)?;
                    continue;
                }
                let reference = reference_of(&row, &mut occurrences);
                providers.insert(row.provider);
                chunk.push((row, reference));
            }
            Some(Err((line, why))) => {
                summary.rows += 1;
                summary.malformed += 1;
                err_line(&format!("line {line}: {why}; skipped, not sent"))
                    .map_err(Failure::other)?;
            }
            None => {}
        }
        if chunk.len() >= CHUNK || (end && !chunk.is_empty()) {
            summary.malformed += enqueue_chunk(&mut db, &tracked, &chunk).await?;
            chunk.clear();
        }
        if end {
            break;
        }
    }
    let before = states(&db, &tracked).await?;

    let registry = registry(args, &providers)?;
    if let Some(rate) = args.rate.and_then(NonZeroU32::new) {
        for name in registry.names() {
            refund_outbox::set_rate(&db, name, Some(rate))
                .await
                .map_err(Failure::from)?;
        }
    }
    // The first SIGINT/SIGTERM: the worker claims nothing more and waits for the intents in
    // flight (each bounded by --timeout); a second one exits at once.
    let stop = super::work::watch_signals();
    if !registry.is_empty() {
        say_leases(&db, &before).await;
        let name = format!("refund-batch-{}", std::process::id());
        let config = WorkerConfig::new(name).with_concurrency(usize::from(args.concurrency));
        let worker = Worker::new(connect(url).await?, registry, config)
            .await
            .map_err(Failure::from)?;
        let (watcher, tracked) = (&db, &tracked);
        let mut stopped = stop.clone();
        let until_done = async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => {
                        let number = *stopped.borrow();
                        let _ = err_line(&format!(
                            "{}: no new intents are claimed; waiting for the ones in flight",
                            if number == 2 { "SIGINT" } else { "SIGTERM" }
                        ));
                        return;
                    }
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                match tracked.due_within(watcher, HORIZON).await {
                    Ok(false) => return,
                    Ok(true) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "checking the batch's intents failed");
                    }
                }
            }
        };
        worker.run(until_done).await.map_err(Failure::from)?;
    }

    let after = states(&db, &tracked).await?;
    let (mut rerun_after, mut retry_after) = (None, None);
    for (reference, (state, not_before)) in &after {
        let row_state = row_state(*state);
        match before.get(reference) {
            Some((s, _)) if s.is_final() => {
                summary.skipped += 1;
                summary.journal.count(row_state);
            }
            _ => summary.worked(row_state),
        }
        let later = |slot: &mut Option<SystemTime>| {
            *slot = Some(slot.map_or(*not_before, |t: SystemTime| t.max(*not_before)));
        };
        match state {
            IntentState::Unknown => later(&mut rerun_after),
            IntentState::RetryLater | IntentState::Pending => later(&mut retry_after),
            _ => {}
        }
    }
    finish(&summary, rerun_after, retry_after).map_err(|e| e.journal(Path::new("the outbox")))?;
    let signal = *stop.borrow();
    if signal != 0 {
        err_line(
            "stopped by a signal before every intent was worked: run the same command again to \
             go on (no intent is refunded twice)",
        )
        .map_err(Failure::other)?;
        return Ok(ExitCode::from(u8::try_from(128 + signal).unwrap_or(130)));
    }
    Ok(ExitCode::from(summary.code()))
}

/// The contents that more than one row without a reference has (by [`fnv128`]): how many rows,
/// and the first lines. Read before anything is enqueued, so none of them is sent.
fn identical_rows(input: &Path) -> Result<HashMap<u128, (u64, Vec<u64>)>, Failure> {
    let mut seen: HashMap<u128, (u64, Vec<u64>)> = HashMap::new();
    let mut rows = Input::open(input)?;
    while let Some(next) = rows.next()? {
        if let Ok(row) = next
            && row.reference.is_none()
        {
            let entry = seen.entry(fnv128(&row.content)).or_default();
            entry.0 += 1;
            if entry.1.len() < 6 {
                entry.1.push(row.line);
            }
        }
    }
    seen.retain(|_, (count, _)| *count > 1);
    Ok(seen)
}

/// FNV-1a, 128 bits: stable across machines and versions (not a security boundary: the
/// outbox refuses a reference it already has).
fn fnv128(text: &str) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in text.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
}

/// The row's reference: its own, or `b-` and 32 hex digits of a hash of its key (content and
/// occurrence among identical rows), the same on every machine that runs the same file.
/// `occurrences` counts rows by content hash (16 bytes and a counter per distinct row).
fn reference_of(row: &Row, occurrences: &mut HashMap<u128, u32>) -> MerchantRef {
    let n = occurrences.entry(fnv128(&row.content)).or_default();
    *n += 1;
    if let Some(r) = &row.reference {
        return r.clone();
    }
    journal::derived_reference(&journal::row_key(&row.content, *n))
}

/// Enqueues a chunk of rows in one transaction and adds their references to the run's
/// tracked set; returns the rows refused (a reference the outbox has for another refund).
async fn enqueue_chunk(
    db: &mut Client,
    tracked: &Tracked,
    chunk: &[(Row, MerchantRef)],
) -> Result<u64, Failure> {
    let tx = db.transaction().await.map_err(Failure::from)?;
    let mut refused = 0;
    let mut references = Vec::with_capacity(chunk.len());
    for (row, reference) in chunk {
        let intent = RefundIntent::new(
            row.provider.name(),
            row.payment.clone(),
            row.amount,
            reference.clone(),
        )
        .map_err(|e| Failure::invalid(format!("line {}: {e}", row.line)))?;
        match enqueue(&tx, &intent).await {
            Ok(_) => {}
            Err(OutboxError::AlreadyEnqueued { .. }) => {
                // Enqueued by an earlier run or another machine: the same refund, unless the
                // outbox has this reference for another one.
                let stored = refund_outbox::find(&tx, reference.as_str()).await?;
                if !stored.as_ref().is_some_and(|s| same_refund(s, row)) {
                    refused += 1;
                    err_line(&format!(
                        "line {}: reference {reference} is already in the outbox for another \
                         refund; not sent (give this row its own reference)",
                        row.line
                    ))
                    .map_err(Failure::other)?;
                    continue;
                }
            }
            Err(e) => return Err(e.into()),
        }
        references.push(reference.as_str());
    }
    tracked.add(&tx, &references).await?;
    tx.commit().await.map_err(Failure::from)?;
    Ok(refused)
}

/// Whether the stored intent is the row's refund: the same provider, payment and amount.
fn same_refund(stored: &IntentRow, row: &Row) -> bool {
    stored.provider == row.provider.name()
        && stored.payment.id() == row.payment.id()
        && stored.payment.parent() == row.payment.parent()
        && stored.amount == row.amount
}

/// The providers the file's rows name, built from the connection options; a provider whose
/// client cannot be built is said once, and its rows stay pending.
fn registry(args: &Args, providers: &HashSet<Provider>) -> Result<ProviderRegistry, Failure> {
    let mut registry = ProviderRegistry::new();
    for provider in providers {
        let client: Result<Arc<dyn RefundProvider>, Failure> = match provider {
            Provider::Sipay => {
                super::super::sipay::client(&args.connection).map(|c| Arc::new(c) as _)
            }
            Provider::Iyzico => {
                super::super::iyzico::client(&args.connection).map(|c| Arc::new(c) as _)
            }
        };
        match client {
            Ok(client) => registry = registry.with(client),
            Err(e) => err_line(&format!(
                "{}: {}; its rows are not sent in this run",
                provider.name(),
                e.message
            ))
            .map_err(Failure::other)?,
        }
    }
    Ok(registry)
}

/// The state and not-before time of each of this run's intents.
/// Says, on stderr, which of the file's unfinished intents another worker holds a lease on (a
/// worker that died leaves its leases until they expire), and how long this run may wait for
/// them. Only a message: a failed query is logged and the run goes on.
async fn say_leases(db: &Client, before: &HashMap<String, (IntentState, SystemTime)>) {
    let open: Vec<&str> = before
        .iter()
        .filter(|(_, (state, _))| !state.is_final())
        .map(|(reference, _)| reference.as_str())
        .collect();
    if open.is_empty() {
        return;
    }
    let leased = db
        .query(
            "SELECT lease_owner, count(*)::bigint, \
                    ceil(extract(epoch FROM max(lease_until) - now()))::bigint \
             FROM refund_outbox_intents \
             WHERE reference = ANY($1) AND lease_owner IS NOT NULL AND lease_until > now() \
             GROUP BY lease_owner ORDER BY lease_owner",
            &[&open],
        )
        .await;
    match leased {
        Ok(rows) => {
            for row in rows {
                let (Ok(owner), Ok(count), Ok(secs)) = (
                    row.try_get::<_, String>(0),
                    row.try_get::<_, i64>(1),
                    row.try_get::<_, i64>(2),
                ) else {
                    continue;
                };
                let _ = err_line(&format!(
                    "waiting up to {} s for {count} intents claimed by worker {owner} (its \
                     lease must expire before this run may take them)",
                    secs.max(0)
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading the outbox's leases failed"),
    }
}

async fn states(
    db: &Client,
    tracked: &Tracked,
) -> Result<HashMap<String, (IntentState, SystemTime)>, Failure> {
    Ok(tracked
        .states(db)
        .await?
        .into_iter()
        .map(|s| (s.reference, (s.state, s.not_before)))
        .collect())
}

/// The row state an intent's state counts as: the same names and meanings as the file
/// journal's (`failed` is final there too: a person decides).
fn row_state(state: IntentState) -> RowState {
    match state {
        IntentState::Refunded => RowState::Refunded,
        IntentState::Declined => RowState::Declined,
        IntentState::Unknown => RowState::Unknown,
        IntentState::Failed => RowState::Failed,
        // Pending: not sent yet, to be sent by a later run.
        _ => RowState::RetryLater,
    }
}

/// `--dry-run`: validates the rows and prints the reference each would be enqueued with;
/// connects to nothing.
fn dry_run(input: &Path) -> Result<ExitCode, Failure> {
    let mut occurrences = HashMap::new();
    let mut malformed = 0u64;
    let mut rows = Input::open(input)?;
    while let Some(next) = rows.next()? {
        match next {
            Ok(row) => {
                let reference = reference_of(&row, &mut occurrences);
                out_line(&format!(
                    "line {}: {} {}: would enqueue {} (reference {reference})",
                    row.line,
                    row.provider.name(),
                    row.payment,
                    row.amount
                ))
                .map_err(Failure::other)?;
            }
            Err((line, why)) => {
                malformed += 1;
                err_line(&format!("line {line}: {why}; would be skipped"))
                    .map_err(Failure::other)?;
            }
        }
    }
    Ok(ExitCode::from(if malformed == 0 {
        0
    } else {
        crate::exit::Code::Invalid as u8
    }))
}

/// `--report`: every intent in the outbox as CSV, the file journal's columns, in the order
/// they last changed; the totals on stderr, as the file journal's report says them.
/// Formula-safe unless `raw`, as the file journal's (`super::report::cell`).
async fn report(url: &str, raw: bool) -> Result<ExitCode, Failure> {
    let db = connect(url).await?;
    let rows = refund_outbox::report(&db).await?;
    let mut totals = Summary::default();
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    out.write_record(super::REPORT_HEADER)
        .map_err(Failure::other)?;
    for row in &rows {
        let state = row_state(row.state);
        totals.journal.count(state);
        let amount = row.amount.amount().to_string();
        let payment = input_payment(&row.payment);
        let updated = journal::utc(row.updated_at);
        let cells = [
            row.provider.as_str(),
            &payment,
            &amount,
            row.amount.currency().code(),
            &row.reference,
            row.state.as_str(),
            row.provider_reference.as_deref().unwrap_or(""),
            &updated,
        ]
        .map(|c| super::report::cell(c, raw));
        out.write_record(cells.iter().map(|c| c.as_bytes()))
            .map_err(Failure::other)?;
    }
    out.flush().map_err(Failure::other)?;
    drop(out);
    let j = &totals.journal;
    err_line(&format!(
        "journal, {} rows: {} refunded, {} declined, {} unknown, {} retry later, {} failed",
        j.rows, j.refunded, j.declined, j.unknown, j.retry_later, j.failed
    ))
    .map_err(Failure::other)?;
    Ok(ExitCode::SUCCESS)
}

/// A payment as the input spells it: `INV-1`, `tx:11`, `tx:11@10`.
fn input_payment(payment: &PaymentRef) -> String {
    match (payment.scope(), payment.parent()) {
        (PaymentScope::Item, Some(parent)) => format!("tx:{}@{parent}", payment.id()),
        (PaymentScope::Item, None) => format!("tx:{}", payment.id()),
        _ => payment.id().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_report_spells_payments_as_the_input_does() {
        assert_eq!(input_payment(&PaymentRef::payment("INV-1")), "INV-1");
        assert_eq!(input_payment(&PaymentRef::item("11")), "tx:11");
        assert_eq!(
            input_payment(&PaymentRef::item("11").in_payment("10")),
            "tx:11@10"
        );
    }
}
