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

use refund_core::{MerchantRef, ProviderRegistry, RefundProvider};
use refund_outbox::tokio_postgres::Client;
use refund_outbox::{IntentState, OutboxError, RefundIntent, Worker, WorkerConfig, enqueue};

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
        return report(url).await;
    }
    let input = args
        .input
        .as_deref()
        .ok_or_else(|| Failure::invalid("--input is required (or --report)"))?;
    if args.dry_run {
        return dry_run(input);
    }
    let mut db = connect(url).await?;
    refund_outbox::migrate(&mut db)
        .await
        .map_err(Failure::from)?;
    db.batch_execute("CREATE TEMP TABLE refund_batch_rows (reference text PRIMARY KEY)")
        .await
        .map_err(Failure::from)?;

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
            summary.malformed += enqueue_chunk(&mut db, &chunk).await?;
            chunk.clear();
        }
        if end {
            break;
        }
    }
    let before = states(&db).await?;

    let registry = registry(args, &providers)?;
    if let Some(rate) = args.rate.and_then(NonZeroU32::new) {
        for name in registry.names() {
            refund_outbox::set_rate(&db, name, Some(rate))
                .await
                .map_err(Failure::from)?;
        }
    }
    if !registry.is_empty() {
        let name = format!("refund-batch-{}", std::process::id());
        let config = WorkerConfig::new(name).with_concurrency(usize::from(args.concurrency));
        let worker = Worker::new(connect(url).await?, registry, config)
            .await
            .map_err(Failure::from)?;
        let watcher = &db;
        let until_done = async move {
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                match due_soon(watcher).await {
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

    let after = states(&db).await?;
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
    Ok(ExitCode::from(summary.code()))
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

/// Enqueues a chunk of rows in one transaction and records their references for this run;
/// returns the rows refused (a reference the outbox has for another refund).
async fn enqueue_chunk(db: &mut Client, chunk: &[(Row, MerchantRef)]) -> Result<u64, Failure> {
    let db_error = Failure::from;
    let tx = db.transaction().await.map_err(db_error)?;
    let mut refused = 0;
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
                let same: bool = tx
                    .query_one(
                        "SELECT provider = $2 AND payment_id = $3
                                AND COALESCE(payment_parent, '') = $4
                                AND amount = $5::text::numeric AND currency = $6
                         FROM refund_outbox_intents WHERE reference = $1",
                        &[
                            &reference.as_str(),
                            &row.provider.name(),
                            &row.payment.id(),
                            &row.payment.parent().unwrap_or(""),
                            &row.amount.amount().to_string(),
                            &row.amount.currency().code(),
                        ],
                    )
                    .await
                    .map_err(db_error)?
                    .get(0);
                if !same {
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
        tx.execute(
            "INSERT INTO refund_batch_rows (reference) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&reference.as_str()],
        )
        .await
        .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(refused)
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
async fn states(db: &Client) -> Result<HashMap<String, (IntentState, SystemTime)>, Failure> {
    let rows = db
        .query(
            "SELECT i.reference, i.state, i.not_before FROM refund_outbox_intents i
             JOIN refund_batch_rows r USING (reference)",
            &[],
        )
        .await
        .map_err(Failure::from)?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let state: String = row.get(1);
        let state = state.parse().unwrap_or(IntentState::Unknown);
        out.insert(row.get(0), (state, row.get(2)));
    }
    Ok(out)
}

/// Whether one of this run's intents is open and due within [`HORIZON`] (or claimed now).
async fn due_soon(db: &Client) -> Result<bool, refund_outbox::tokio_postgres::Error> {
    let horizon = i64::try_from(HORIZON.as_millis()).unwrap_or(i64::MAX);
    db.query_one(
        "SELECT EXISTS (SELECT 1 FROM refund_outbox_intents i JOIN refund_batch_rows r USING (reference)
                        WHERE i.state IN ('pending', 'unknown', 'retry_later')
                          AND (i.not_before <= clock_timestamp() + $1::bigint * interval '1 millisecond'
                               OR i.lease_until > clock_timestamp()))",
        &[&horizon],
    )
    .await
    .map(|row| row.get(0))
}

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

/// `--report`: every intent in the outbox as CSV, the file journal's columns.
async fn report(url: &str) -> Result<ExitCode, Failure> {
    let db = connect(url).await?;
    let rows = db
        .query(
            "SELECT provider,
                    CASE WHEN payment_scope = 'item'
                         THEN 'tx:' || payment_id || COALESCE('@' || payment_parent, '')
                         ELSE payment_id END,
                    amount::text, currency, reference, state, COALESCE(provider_reference, ''),
                    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
             FROM refund_outbox_intents ORDER BY updated_at, id",
            &[],
        )
        .await
        .map_err(Failure::from)?;
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    out.write_record(super::REPORT_HEADER)
        .map_err(Failure::other)?;
    for row in &rows {
        let fields: Vec<String> = (0..8).map(|i| row.get(i)).collect();
        out.write_record(&fields).map_err(Failure::other)?;
    }
    out.flush().map_err(Failure::other)?;
    Ok(ExitCode::SUCCESS)
}
