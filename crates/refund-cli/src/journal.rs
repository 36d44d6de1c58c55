//! The batch journal: an append-only JSON-lines file that makes `refund batch` crash-safe.
//!
//! Every row gets a `sending` record, written and synced to disk *before* its refund request
//! leaves, and a record after it. A batch killed at any moment — SIGKILL included — and run
//! again with the same journal therefore knows, for every row, one of:
//!
//! - `refunded` / `declined`: the outcome is known, the row is skipped;
//! - a `sending` record with nothing after it, or `unknown`: the request may have reached the
//!   provider; the row is reconciled through the provider's lookup by its reference before
//!   anything is resent, and only resent (with the same reference) once the attempt is older
//!   than the provider's settle time and the lookup still does not show it;
//! - `retry_later`: the provider refused the attempt for now (a temporary decline, a rate
//!   limit) or could not be reached; the same request is sent again, with the same reference,
//!   once its `not_before` time has passed. A refusal the provider processed (`refused`) is
//!   counted, because it may have left a failed entry under the reference that says nothing
//!   about a later attempt (journals from before `retry_later` journaled such a refusal
//!   `declined` before the resend; those are counted too);
//! - `failed`: nothing was refunded and nothing more is sent by itself (a request the provider
//!   cannot take, rejected credentials, a reference the provider will not take again, an
//!   attempt whose row left the input): final, a person decides (as in the outbox);
//! - nothing: never sent.
//!
//! Every record carries the UTC time it was written (`at`, unix milliseconds), so the age of
//! an attempt survives restarts and moves between machines. A `sending` record without one
//! (written by an older version) dates its attempt by the first later record that has a
//! time, or else counts as attempted *now*: the later an attempt is assumed, the longer
//! before anything is resent.
//!
//! One run at a time: [`Journal::open`] takes an exclusive lock on the file (advisory, held
//! until the process exits — a SIGKILL releases it too), and a second run on the same journal
//! is refused before it reads a row.
//!
//! A torn last line (the process died mid-write) is ignored: its row is then judged by the
//! records before it, which is always the more cautious answer.
//!
//! **Memory.** The [`Index`] keeps, per row, only what resuming needs: a 128-bit keyed hash of
//! the row's key, the byte offset of its last record, its state, one time and a refusal count
//! (40 bytes a row in the table). Whatever else a row needs — its reference, its note — is
//! read back from the file at that offset, and only for rows that are not finished.
//!
//! **Durability.** [`Appender`] writes records from one thread and syncs them in groups: every
//! record waiting when a sync starts is covered by it, and no caller is answered before the
//! sync that covers its record has returned. A row's request therefore never leaves before
//! its `sending` record is on disk, however many rows are in flight.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// Where a row stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RowState {
    /// About to send: the outcome is unknown until a later record follows.
    Sending,
    /// Refunded (from a receipt or a reconciling lookup).
    Refunded,
    /// The provider refused it for good; the outcome is known.
    Declined,
    /// The request may have reached the provider and no answer came back.
    Unknown,
    /// Refused for now, or the provider could not be reached: nothing was refunded, and the
    /// same request is sent again after `not_before`.
    RetryLater,
    /// Nothing was refunded and nothing more is sent by itself: final, a person decides.
    Failed,
}

impl RowState {
    /// Whether nothing more happens to the row by itself (`refunded`, `declined`, `failed`).
    pub(crate) fn is_final(self) -> bool {
        matches!(
            self,
            RowState::Refunded | RowState::Declined | RowState::Failed
        )
    }

    /// The state a lifecycle decision stores (`pending` is never journaled: a row without
    /// records is pending).
    pub(crate) fn of(state: refund_core::AttemptState) -> RowState {
        use refund_core::AttemptState as S;
        match state {
            S::Sending => RowState::Sending,
            S::RetryLater => RowState::RetryLater,
            S::Refunded => RowState::Refunded,
            S::Declined => RowState::Declined,
            S::Failed => RowState::Failed,
            // `unknown`, and anything newer: the cautious state, looked up before any resend.
            _ => RowState::Unknown,
        }
    }

    /// The name used in the journal, the summary and the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RowState::Sending => "sending",
            RowState::Refunded => "refunded",
            RowState::Declined => "declined",
            RowState::Unknown => "unknown",
            RowState::RetryLater => "retry_later",
            RowState::Failed => "failed",
        }
    }
}

/// One journal line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Identifies the row: its content and which occurrence of that content it is (see
    /// [`row_key`]), so an edited input is not confused with the journaled one.
    pub(crate) key: String,
    /// The merchant reference the refund is (or was) sent with.
    pub(crate) reference: String,
    /// The state.
    pub(crate) state: RowState,
    /// A short note: the receipt's provider references, the error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    /// When the record was written: UTC, unix milliseconds. Missing in journals written
    /// before attempt times were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) at: Option<u64>,
    /// `retry_later`: not to be sent again before this time (UTC, unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) not_before: Option<u64>,
    /// `retry_later`: the provider processed the attempt and refused it (rather than not
    /// processing it at all), so its lookup may list a failed entry under the reference.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) refused: bool,
    /// `refunded`: the provider's id of the refund (SiPay `ref_no`, iyzico
    /// `refundHostReference` from a receipt or the refund's id from a lookup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provider_reference: Option<String>,
    /// What a person decided for the row (`refund decide`); the record's `at` is when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) decided: Option<PersonDecision>,
}

/// A person's decision for a row, kept in its journal record (see `refund decide`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PersonDecision {
    /// `refunded`, `not_refunded` or `retry`.
    pub(crate) decision: String,
    /// Who decided.
    pub(crate) by: String,
    /// Why.
    pub(crate) why: String,
}

impl Record {
    /// A record of `state` for the row `key`, without a note or times.
    pub(crate) fn new(
        key: impl Into<String>,
        reference: impl Into<String>,
        state: RowState,
    ) -> Self {
        Record {
            key: key.into(),
            reference: reference.into(),
            state,
            note: None,
            at: None,
            not_before: None,
            refused: false,
            provider_reference: None,
            decided: None,
        }
    }

    /// The record as one journal line, stamped with the current time if it has none.
    #[cfg(test)]
    fn to_line(&self) -> std::io::Result<Vec<u8>> {
        let mut line = if self.at.is_some() {
            serde_json::to_vec(self)
        } else {
            let mut stamped = self.clone();
            stamped.at = Some(to_millis(SystemTime::now()));
            serde_json::to_vec(&stamped)
        }
        .map_err(std::io::Error::other)?;
        line.push(b'\n');
        Ok(line)
    }
}

/// What the index reads of a journal line: no allocation unless a string has escapes.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    reference: Cow<'a, str>,
    state: RowState,
    #[serde(default)]
    at: Option<u64>,
    #[serde(default)]
    not_before: Option<u64>,
    #[serde(default)]
    refused: bool,
}

// ---------------------------------------------------------------------------------------
// Row keys
// ---------------------------------------------------------------------------------------

/// A row's content as its key spells it: `provider|payment|amount|reference`, e.g.
/// `sipay|payment:INV-1|10.00 TRY|` or `iyzico|item:11@10|5.0 TRY|r-1`.
pub(crate) fn row_content(
    provider: &str,
    payment: &impl std::fmt::Display,
    amount: &impl std::fmt::Display,
    reference: Option<&str>,
) -> String {
    format!("{provider}|{payment}|{amount}|{}", reference.unwrap_or(""))
}

/// The key of the `occurrence`th row (from 1) with this content: reordering the file does
/// not change a row's identity, and identical rows stay distinct.
pub(crate) fn row_key(content: &str, occurrence: u32) -> String {
    format!("{content}#{occurrence}")
}

/// The reference of a row that has none of its own: `b-` and 32 hex digits of a 128-bit FNV-1a
/// hash of its key (content and occurrence among identical rows). The same on every machine
/// and in every run over the same file, journal or not, so a rerun whose journal was lost
/// sends the same reference again, and the provider's ledger can tell it was sent before.
pub(crate) fn derived_reference(key: &str) -> refund_core::MerchantRef {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in key.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    refund_core::MerchantRef::new(format!("b-{h:032x}"))
        .unwrap_or_else(|_| refund_core::MerchantRef::generate())
}

/// A row key taken apart (see [`row_content`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyParts<'a> {
    /// `sipay`, `iyzico`.
    pub(crate) provider: &'a str,
    /// As `PaymentRef` displays it: `payment:INV-1`, `item:11`, `item:11@10`.
    pub(crate) payment: &'a str,
    /// The amount, e.g. `10.00`.
    pub(crate) amount: &'a str,
    /// The currency code, e.g. `TRY`.
    pub(crate) currency: &'a str,
    /// The row's own reference, or empty when it had none.
    pub(crate) reference: &'a str,
    /// Everything before `#occurrence`.
    pub(crate) content: &'a str,
    /// Which occurrence of this content.
    pub(crate) occurrence: u32,
}

/// Takes a key apart, from the right: payment ids may contain `|` or `#`, references and
/// amounts cannot.
pub(crate) fn parse_key(key: &str) -> Option<KeyParts<'_>> {
    let (content, occurrence) = key.rsplit_once('#')?;
    let occurrence = occurrence.parse().ok()?;
    let (provider, rest) = content.split_once('|')?;
    let (rest, reference) = rest.rsplit_once('|')?;
    let (payment, money) = rest.rsplit_once('|')?;
    let (amount, currency) = money.split_once(' ')?;
    Some(KeyParts {
        provider,
        payment,
        amount,
        currency,
        reference,
        content,
        occurrence,
    })
}

// ---------------------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------------------

/// A 128-bit keyed hash of a string: two SipHash-1-3 runs with independent random keys.
/// Only ever held in memory, so the keys are fresh per process; a collision between two of
/// a million keys has a probability around 2^-88.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Hash128(u64, u64);

impl Hash for Hash128 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already uniformly random: one half picks the bucket, equality checks both.
        state.write_u64(self.0);
    }
}

/// 32 bits of a reference's hash, kept per row: a reference change going unseen (2^-32)
/// only keeps counting older refusals, which errs on the side of an `unknown` row.
fn fingerprint(reference: Hash128) -> u32 {
    u32::try_from(reference.0 >> 32).unwrap_or_default()
}

/// The hasher of tables keyed by [`Hash128`]: passes its first half through.
#[derive(Debug, Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A table keyed by [`Hash128`].
pub(crate) type HashTable<V> = HashMap<Hash128, V, BuildHasherDefault<PassThrough>>;

/// Makes [`Hash128`]s.
#[derive(Clone, Debug)]
pub(crate) struct Hashing(RandomState, RandomState);

impl Hashing {
    pub(crate) fn new() -> Self {
        Hashing(RandomState::new(), RandomState::new())
    }

    pub(crate) fn of(&self, text: &str) -> Hash128 {
        Hash128(self.0.hash_one(text), self.1.hash_one(text))
    }
}

// ---------------------------------------------------------------------------------------
// The index
// ---------------------------------------------------------------------------------------

/// What the index keeps of one row: 24 bytes.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Where the row's last record starts in the file.
    offset: u64,
    /// `sending`/`unknown`: when the latest attempt was made; `retry_later`: not before when
    /// (unix ms, 0 for none).
    time: u64,
    /// A fingerprint of the current reference: refusals count per reference.
    reference: u32,
    state: RowState,
    /// `declined` records and `refused` `retry_later` records with the current reference.
    refusals: u8,
    /// `sending` records with the current reference: the requests sent under it.
    sends: u8,
    /// The latest `sending` record had no time, and no later record dated it yet.
    undated: bool,
}

/// What the journal says about one row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowView {
    /// The state of its last record.
    pub(crate) state: RowState,
    /// Where that record starts (for [`Index::record_at`]).
    pub(crate) offset: u64,
    time: u64,
    undated: bool,
    refusals: u8,
    sends: u8,
}

impl RowView {
    /// How many attempts with the row's current reference the provider refused (`declined`
    /// records, and `retry_later` records marked `refused`): a failed entry the lookup shows
    /// for the reference proves the latest attempt failed only when there are more of them
    /// than this (`Reconciler::judge_after`).
    pub(crate) fn refusals(&self) -> usize {
        usize::from(self.refusals)
    }

    /// How many requests the journal records under the row's current reference (its
    /// `sending` records): 0 when it was never sent (a row refused before any request, or
    /// journaled by a check of the provider's ledger).
    pub(crate) fn sends(&self) -> u32 {
        u32::from(self.sends)
    }

    /// For a `sending` / `unknown` row: when its latest attempt was made. An attempt the
    /// journal cannot date counts as made now.
    pub(crate) fn attempted_at(&self) -> SystemTime {
        if self.undated || self.time == 0 {
            SystemTime::now()
        } else {
            from_millis(self.time)
        }
    }

    /// For a `retry_later` row: when it may be sent again (the epoch when the record did not
    /// say: at once).
    pub(crate) fn not_before(&self) -> SystemTime {
        from_millis(self.time)
    }
}

/// What a journal said, by row key.
#[derive(Debug)]
pub(crate) struct Index {
    rows: HashTable<Entry>,
    hashing: Hashing,
    /// The journal, for reading a record back at its offset; `None` for no journal.
    file: Option<File>,
}

impl Index {
    /// An index of nothing (no journal yet).
    fn empty() -> Index {
        Index {
            rows: HashTable::default(),
            hashing: Hashing::new(),
            file: None,
        }
    }

    /// Reads every complete record of `file` from its start; torn or foreign lines are skipped
    /// (see the module docs for why that is safe). The file is kept for [`Index::record_at`].
    fn load(mut file: File) -> std::io::Result<Index> {
        let mut index = Index::empty();
        file.seek(SeekFrom::Start(0))?;
        let len = file.metadata()?.len();
        // A journal line is 100–300 bytes and a row has two or more: start near the final size
        // rather than doubling through it.
        index.rows.reserve(usize::try_from(len / 400).unwrap_or(0));
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        for_each_line(&mut reader, |offset, line| {
            if let Ok(record) = serde_json::from_slice::<Line<'_>>(line) {
                index.add(offset, &record);
            }
        })?;
        index.file = Some(file);
        Ok(index)
    }

    /// Reads the journal at `path` without creating, locking or writing it: an empty index
    /// when there is no file (what `--dry-run` and `--report` need).
    pub(crate) fn read_only(path: &Path) -> std::io::Result<Index> {
        match File::open(path) {
            Ok(file) => Index::load(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::empty()),
            Err(e) => Err(e),
        }
    }

    fn add(&mut self, offset: u64, line: &Line<'_>) {
        let reference = self.fingerprint(&line.reference);
        let entry = self
            .rows
            .entry(self.hashing.of(&line.key))
            .or_insert(Entry {
                offset,
                time: 0,
                reference,
                state: line.state,
                refusals: 0,
                sends: 0,
                undated: false,
            });
        if entry.reference != reference {
            entry.reference = reference;
            entry.refusals = 0;
            entry.sends = 0;
        }
        let refused = match line.state {
            RowState::Declined => true,
            RowState::RetryLater => line.refused,
            _ => false,
        };
        if refused {
            entry.refusals = entry.refusals.saturating_add(1);
        }
        match line.state {
            RowState::Sending => {
                entry.sends = entry.sends.saturating_add(1);
                entry.time = line.at.unwrap_or(0);
                entry.undated = line.at.is_none();
            }
            RowState::RetryLater => {
                entry.time = line.not_before.unwrap_or(0);
                entry.undated = false;
            }
            _ => {
                if let Some(at) = line.at.filter(|_| entry.undated) {
                    // An attempt from an older version, first seen dated by this later record:
                    // it was made no later than that, so dating it there errs on the side of
                    // waiting.
                    entry.time = at;
                    entry.undated = false;
                }
            }
        }
        entry.state = line.state;
        entry.offset = offset;
    }

    fn fingerprint(&self, reference: &str) -> u32 {
        fingerprint(self.hashing.of(reference))
    }

    /// The hashing this index uses, for callers that key their own tables the same way.
    pub(crate) fn hashing(&self) -> &Hashing {
        &self.hashing
    }

    /// What the journal says about the row `key`.
    pub(crate) fn get(&self, key: &str) -> Option<RowView> {
        self.get_hashed(self.hashing.of(key))
    }

    fn get_hashed(&self, key: Hash128) -> Option<RowView> {
        self.rows.get(&key).map(|e| RowView {
            state: e.state,
            offset: e.offset,
            time: e.time,
            undated: e.undated,
            refusals: e.refusals,
            sends: e.sends,
        })
    }

    /// How many rows the journal knows.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the journal has no record of any row.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every row whose outcome is unknown (`sending` or `unknown` last).
    pub(crate) fn unresolved(&self) -> impl Iterator<Item = RowView> + '_ {
        self.rows
            .values()
            .filter(|e| matches!(e.state, RowState::Sending | RowState::Unknown))
            .map(|e| RowView {
                state: e.state,
                offset: e.offset,
                time: e.time,
                undated: e.undated,
                refusals: e.refusals,
                sends: e.sends,
            })
    }

    /// The last record of every row whose reference is one of `references` (hashed with
    /// [`Index::hashing`]), with that reference's hash. Reads back only the records whose
    /// reference fingerprint matches.
    pub(crate) fn rows_using(
        &self,
        references: &HashTable<()>,
    ) -> std::io::Result<Vec<(Hash128, Record)>> {
        let wanted: std::collections::HashSet<u32> =
            references.keys().map(|h| fingerprint(*h)).collect();
        let mut found = Vec::new();
        for entry in self.rows.values() {
            if !wanted.contains(&entry.reference) {
                continue;
            }
            let record = self.record_at(entry.offset)?;
            let hash = self.hashing.of(&record.reference);
            if references.contains_key(&hash) {
                found.push((hash, record));
            }
        }
        Ok(found)
    }

    /// The whole record that starts at `offset` (a [`RowView::offset`]).
    pub(crate) fn record_at(&self, offset: u64) -> std::io::Result<Record> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no journal to read"))?;
        let mut line = Vec::with_capacity(512);
        let mut chunk = [0u8; 512];
        loop {
            let at = offset + line.len() as u64;
            let n = read_at(file, &mut chunk, at)?;
            if n == 0 {
                break;
            }
            match chunk[..n].iter().position(|&b| b == b'\n') {
                Some(end) => {
                    line.extend_from_slice(&chunk[..end]);
                    break;
                }
                None => line.extend_from_slice(&chunk[..n]),
            }
            if line.len() > MAX_RECORD {
                return Err(std::io::Error::other("journal record too long"));
            }
        }
        serde_json::from_slice(&line).map_err(std::io::Error::other)
    }

    /// Calls `each` with the last record of every row, in the order of those records in the
    /// file (so by the time each row last changed). Reads the file once more from its start.
    pub(crate) fn for_each_last(&self, mut each: impl FnMut(Record)) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        reader.seek(SeekFrom::Start(0))?;
        for_each_line(&mut reader, |offset, line| {
            let Ok(head) = serde_json::from_slice::<Line<'_>>(line) else {
                return;
            };
            let last = self
                .rows
                .get(&self.hashing.of(&head.key))
                .is_some_and(|e| e.offset == offset);
            if last && let Ok(record) = serde_json::from_slice::<Record>(line) {
                each(record);
            }
        })
    }

    /// Calls `each` with every record of the journal, in file order (a torn or foreign line
    /// is skipped). Reads the file once more from its start.
    pub(crate) fn for_each_record(&self, mut each: impl FnMut(Record)) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        reader.seek(SeekFrom::Start(0))?;
        for_each_line(&mut reader, |_, line| {
            if let Ok(record) = serde_json::from_slice::<Record>(line) {
                each(record);
            }
        })
    }
}

/// A record longer than this is not one of ours.
const MAX_RECORD: usize = 1 << 20;

/// Calls `each(offset, line)` for every complete (newline-terminated) line of `reader`.
fn for_each_line(
    reader: &mut impl BufRead,
    mut each: impl FnMut(u64, &[u8]),
) -> std::io::Result<()> {
    let mut offset = 0u64;
    let mut line = Vec::with_capacity(512);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            each(offset, &line[..line.len() - 1]);
        }
        offset += n as u64;
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

// ---------------------------------------------------------------------------------------
// The journal file
// ---------------------------------------------------------------------------------------

/// Why the journal could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Another process holds the journal's lock: another run is using it.
    Busy,
    /// Any other I/O failure.
    Io(std::io::Error),
}

impl From<std::io::Error> for OpenError {
    fn from(e: std::io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// The journal file, locked and open for appending, plus what it said when opened.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    index: Index,
}

impl Journal {
    /// Opens (or creates) the journal, takes its exclusive lock, and indexes every row.
    /// [`OpenError::Busy`] when another run holds the lock: nothing is written then.
    pub(crate) fn open(path: &Path) -> Result<Journal, OpenError> {
        let (mut file, created) = match OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)
        {
            Ok(file) => (file, true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => (
                OpenOptions::new().read(true).append(true).open(path)?,
                false,
            ),
            Err(e) => return Err(e.into()),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(OpenError::Busy),
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
        if created {
            // The new file's directory entry must be durable before its first record counts.
            sync_dir(path)?;
        }
        // Read under the lock, so no other run can append while (or after) we read.
        let index = Index::load(file.try_clone()?)?;
        // If the previous run died mid-line, start on a fresh line so the next record parses.
        let len = file.metadata()?.len();
        if len > 0 {
            file.seek(SeekFrom::Start(len - 1))?;
            let mut b = [0u8; 1];
            file.read_exact(&mut b)?;
            if b[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            index,
        })
    }

    /// What the journal said when it was opened.
    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    /// Appends `record`, stamped with the current time if it has none, and syncs it to disk
    /// before returning.
    #[cfg(test)]
    pub(crate) fn append(&mut self, record: &Record) -> std::io::Result<()> {
        // One write call per record: a kill can tear only the record being written.
        self.file.write_all(&record.to_line()?)?;
        self.file.sync_data()
    }

    /// The index, and an [`Appender`] that owns the file (and its lock) from now on.
    ///
    /// The journal thread checks, before every write, that the path still names the file it
    /// writes (not deleted, not replaced by another file): a journal nobody will read again
    /// protects nothing, so the first write after such a change fails, like a failed write,
    /// and so does every one after it.
    pub(crate) fn into_appender(self) -> std::io::Result<(Index, Appender)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let file = self.file;
        let path = self.path;
        let failure = Arc::new(Mutex::new(None));
        let shared = Arc::clone(&failure);
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_loop(file, &path, rx, &shared))?;
        Ok((self.index, Appender { tx, failure }))
    }
}

/// A record's bytes and who waits for them to be on disk (answered with the record's time).
struct Job {
    /// The record as JSON: complete with its newline when `stamp` is false; without its
    /// closing brace when the journal thread is to add the time (`,"at":…}` and newline).
    line: Vec<u8>,
    stamp: bool,
    done: oneshot::Sender<Result<u64, String>>,
}

/// Appends records from any task; cheap to clone. The journal thread ends (and closes the
/// file) when the last clone is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Appender {
    tx: mpsc::UnboundedSender<Job>,
    /// Why the journal stopped taking records, once it has (the first failed write, or the
    /// path no longer naming the file).
    failure: Arc<Mutex<Option<String>>>,
}

impl Appender {
    /// Why the journal stopped taking records, if it has: then nothing may be sent any more.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Appends `record` and returns once it is synced to disk, with its time (unix ms). A
    /// record without a time is stamped by the journal thread as it writes it: as late as
    /// possible before the sync, so a `sending` record dates its request as closely as a
    /// record written before the request can.
    pub(crate) async fn append(&self, record: &Record) -> std::io::Result<u64> {
        let stopped = || std::io::Error::other("the journal writer stopped");
        let (done, synced) = oneshot::channel();
        let stamp = record.at.is_none();
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        if stamp {
            // `{…}` without its brace; every record has a key, so a comma may follow.
            line.pop();
        } else {
            line.push(b'\n');
        }
        self.tx
            .send(Job { line, stamp, done })
            .map_err(|_| stopped())?;
        synced
            .await
            .map_err(|_| stopped())?
            .map_err(std::io::Error::other)
    }
}

/// Records written per sync at most: bounds the latency of the first one in a group.
const MAX_GROUP: usize = 256;

/// The journal thread: writes every record waiting, in one write call, syncs once, then
/// answers their callers. After a failed write or sync nothing more is written (the file may
/// end in a torn line that the next record would run into) and every caller gets the error.
fn write_loop(
    mut file: File,
    path: &Path,
    mut rx: mpsc::UnboundedReceiver<Job>,
    failure: &Mutex<Option<String>>,
) {
    let mut failed: Option<String> = None;
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let now = to_millis(SystemTime::now());
        let stamp = format!(",\"at\":{now}}}\n");
        buf.clear();
        for job in &jobs {
            buf.extend_from_slice(&job.line);
            if job.stamp {
                buf.extend_from_slice(stamp.as_bytes());
            }
        }
        if failed.is_none()
            && let Err(e) = still_there(&file, path)
                .and_then(|()| file.write_all(&buf))
                .and_then(|()| file.sync_data())
        {
            failed = Some(e.to_string());
            *failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = failed.clone();
        }
        for job in jobs.drain(..) {
            let _ = job.done.send(failed.clone().map_or(Ok(now), Err));
        }
    }
}

/// Whether `path` still names `file`: not deleted, not replaced by another file (another inode
/// at the path), so what is written will be read by the next run.
fn still_there(file: &File, path: &Path) -> std::io::Result<()> {
    let gone = |what: &str| {
        std::io::Error::other(format!(
            "the journal was {what} during the run; nothing more is sent. Restore it (or \
             rerun with the new one: rows already refunded are found on the provider's ledger)"
        ))
    };
    let at_path = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone("deleted")),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata()?;
        if (open.dev(), open.ino()) != (at_path.dev(), at_path.ino()) {
            return Err(gone("replaced by another file"));
        }
        if open.nlink() == 0 {
            return Err(gone("deleted"));
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, at_path);
    }
    Ok(())
}

/// Syncs the directory holding `path`, so a newly created file survives a crash.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows has no directory handle to sync; NTFS journals its metadata.
        let _ = path;
        Ok(())
    }
}

/// `t` as unix milliseconds (0 before the epoch, which a clock never reads in practice).
pub(crate) fn to_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// `t` in UTC as RFC 3339 with whole seconds, e.g. `2026-11-30T02:17:01Z`.
pub(crate) fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn record(key: &str, state: RowState) -> Record {
        Record::new(key, format!("ref-{key}"), state)
    }

    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("journal-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// An index of `text`, written to a scratch journal `name`.
    pub(crate) fn index_of(name: &str, text: &str) -> Index {
        let dir = scratch(name);
        let path = dir.join("j.journal");
        std::fs::write(&path, text).unwrap();
        Index::read_only(&path).unwrap()
    }

    /// An index of `records`, as if read from a journal in this order (records without a
    /// time stay undated).
    pub(crate) fn index_of_records(name: &str, records: &[Record]) -> Index {
        let text: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        index_of(name, &text)
    }

    #[test]
    fn the_last_record_of_each_row_wins() {
        let dir = scratch("last");
        let path = dir.join("a.journal");
        {
            let mut j = Journal::open(&path).unwrap();
            j.append(&record("1", RowState::Sending)).unwrap();
            j.append(&record("1", RowState::Refunded)).unwrap();
            j.append(&record("2", RowState::Sending)).unwrap();
        }
        // A torn line, as a kill mid-write leaves.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"key\":\"3\",\"refer")
            .unwrap();
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.index().get("1").unwrap().state, RowState::Refunded);
        assert_eq!(j.index().get("2").unwrap().state, RowState::Sending);
        assert!(j.index().get("3").is_none());
        assert_eq!(j.index().len(), 2);
        j.append(&record("3", RowState::Sending)).unwrap();
        drop(j);
        let reopened = Journal::open(&path).unwrap();
        let three = reopened.index().get("3").unwrap();
        assert_eq!(three.state, RowState::Sending);
        let back = reopened.index().record_at(three.offset).unwrap();
        assert_eq!(back.key, "3");
        assert_eq!(back.reference, "ref-3");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_lock() {
        let dir = scratch("lock");
        let path = dir.join("a.journal");
        let first = Journal::open(&path).unwrap();
        assert!(matches!(Journal::open(&path), Err(OpenError::Busy)));
        drop(first);
        assert!(Journal::open(&path).is_ok(), "the lock goes with the run");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_appender_keeps_the_lock_and_syncs_every_record_before_answering() {
        let dir = scratch("appender");
        let path = dir.join("a.journal");
        let (index, appender) = Journal::open(&path).unwrap().into_appender().unwrap();
        assert!(matches!(Journal::open(&path), Err(OpenError::Busy)));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let appender = appender.clone();
            tasks.spawn(async move {
                appender
                    .append(&record(&i.to_string(), RowState::Sending))
                    .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        // Every answered record is in the file already (the writer is still running).
        assert_eq!(Index::read_only(&path).unwrap().len(), 200);
        drop(appender);
        drop(index);
        // The writer thread ends with the last appender, and the lock with it (and the
        // index, which reads the same open file).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match Journal::open(&path) {
                Ok(_) => break,
                Err(OpenError::Busy) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_journal_deleted_or_replaced_during_the_run_takes_no_more_records() {
        for replaced in [false, true] {
            let dir = scratch(if replaced { "replaced" } else { "deleted" });
            let path = dir.join("a.journal");
            let (_index, appender) = Journal::open(&path).unwrap().into_appender().unwrap();
            appender
                .append(&record("1", RowState::Sending))
                .await
                .unwrap();
            assert!(appender.failure().is_none());
            if replaced {
                std::fs::write(dir.join("b.journal"), "").unwrap();
                std::fs::rename(dir.join("b.journal"), &path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
            let e = appender
                .append(&record("2", RowState::Sending))
                .await
                .unwrap_err();
            let what = if replaced { "replaced" } else { "deleted" };
            assert!(e.to_string().contains(what), "{e}");
            assert!(appender.failure().is_some_and(|f| f.contains(what)));
            // Sticky: nothing is written after the first failure, even a record that could be.
            assert!(
                appender
                    .append(&record("3", RowState::Refunded))
                    .await
                    .is_err()
            );
            if replaced {
                assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn sends_are_counted_per_reference() {
        let records = [
            Record::new("k", "r-1", RowState::Sending),
            Record::new("k", "r-1", RowState::RetryLater),
            Record::new("k", "r-1", RowState::Sending),
            Record::new("k", "r-1", RowState::Unknown),
        ];
        assert_eq!(
            index_of_records("sends", &records)
                .get("k")
                .unwrap()
                .sends(),
            2
        );
        let mut changed = records.to_vec();
        changed.push(Record::new("k", "r-2", RowState::RetryLater));
        let view = index_of_records("sends-changed", &changed)
            .get("k")
            .unwrap();
        assert_eq!(view.sends(), 0, "a new reference starts again");
    }

    #[test]
    fn records_carry_the_time_they_were_written() {
        let dir = scratch("at");
        let path = dir.join("a.journal");
        let before = to_millis(SystemTime::now());
        Journal::open(&path)
            .unwrap()
            .append(&record("1", RowState::Sending))
            .unwrap();
        let after = to_millis(SystemTime::now());
        let text = std::fs::read_to_string(&path).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        let at = line["at"].as_u64().unwrap();
        assert!(
            (before..=after).contains(&at),
            "{before} <= {at} <= {after}"
        );
        let index = Index::read_only(&path).unwrap();
        assert_eq!(index.get("1").unwrap().attempted_at(), from_millis(at));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_undated_attempt_counts_as_now_or_as_the_first_dated_record_after_it() {
        let lines = concat!(
            r#"{"key":"old","reference":"r-1","state":"sending"}"#,
            "\n",
            r#"{"key":"later","reference":"r-2","state":"sending"}"#,
            "\n",
            r#"{"key":"later","reference":"r-2","state":"unknown","at":1000}"#,
            "\n",
            r#"{"key":"later","reference":"r-2","state":"unknown","at":9000}"#,
            "\n",
            r#"{"key":"dated","reference":"r-3","state":"sending","at":5000}"#,
            "\n",
            r#"{"key":"dated","reference":"r-3","state":"unknown","at":7000}"#,
            "\n",
        );
        let index = index_of("undated", lines);
        let now = SystemTime::now();
        assert!(index.get("old").unwrap().attempted_at() >= now);
        assert_eq!(
            index.get("later").unwrap().attempted_at(),
            from_millis(1000)
        );
        assert_eq!(
            index.get("dated").unwrap().attempted_at(),
            from_millis(5000)
        );
        assert!(index.get("absent").is_none());
    }

    #[test]
    fn refusals_are_counted_per_reference() {
        let rec = |state, reference: &str| Record {
            at: Some(1),
            ..Record::new("k", reference, state)
        };
        let refused = |reference: &str| Record {
            refused: true,
            not_before: Some(2),
            ..rec(RowState::RetryLater, reference)
        };
        let index = index_of_records(
            "refusals",
            &[
                rec(RowState::Sending, "bad"),
                rec(RowState::Declined, "bad"),
                rec(RowState::Sending, "r-1"),
                // An older journal's temporary refusal, journaled declined before the resend.
                rec(RowState::Declined, "r-1"),
                rec(RowState::Sending, "r-1"),
                // Not processed (a 429, an unreachable provider): no entry can be left.
                Record {
                    not_before: Some(2),
                    ..rec(RowState::RetryLater, "r-1")
                },
                rec(RowState::Sending, "r-1"),
                refused("r-1"),
                rec(RowState::Sending, "r-1"),
                rec(RowState::Unknown, "r-1"),
            ],
        );
        let row = index.get("k").unwrap();
        assert_eq!(row.refusals(), 2);
        assert_eq!(row.state, RowState::Unknown);
    }

    #[test]
    fn retry_later_keeps_its_not_before_time() {
        let index = index_of_records(
            "retry-later",
            &[
                Record {
                    at: Some(1_000),
                    ..Record::new("k", "r-1", RowState::Sending)
                },
                Record {
                    at: Some(2_000),
                    not_before: Some(32_000),
                    refused: true,
                    ..Record::new("k", "r-1", RowState::RetryLater)
                },
            ],
        );
        let row = index.get("k").unwrap();
        assert_eq!(row.state, RowState::RetryLater);
        assert_eq!(row.not_before(), from_millis(32_000));
        assert_eq!(row.refusals(), 1);
    }

    #[test]
    fn read_only_neither_creates_nor_writes() {
        let dir = scratch("ro");
        let path = dir.join("a.journal");
        assert!(Index::read_only(&path).unwrap().get("x").is_none());
        assert!(!path.exists());
        std::fs::write(
            &path,
            b"{\"key\":\"x\",\"reference\":\"r\",\"state\":\"unknown\"}\n{\"ke",
        )
        .unwrap();
        let index = Index::read_only(&path).unwrap();
        assert_eq!(index.get("x").unwrap().state, RowState::Unknown);
        assert_eq!(
            std::fs::read(&path).unwrap().len(),
            50,
            "the torn line is left as it was"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn for_each_last_visits_every_row_once_at_its_last_record() {
        let index = index_of_records(
            "last-records",
            &[
                Record::new("a", "r-a", RowState::Sending),
                Record::new("b", "r-b", RowState::Sending),
                Record::new("a", "r-a", RowState::Refunded),
                Record::new("b", "r-b", RowState::Unknown),
                Record::new("c", "r-c", RowState::Failed),
            ],
        );
        let mut seen = Vec::new();
        index
            .for_each_last(|r| seen.push((r.key, r.state)))
            .unwrap();
        assert_eq!(
            seen,
            [
                ("a".to_owned(), RowState::Refunded),
                ("b".to_owned(), RowState::Unknown),
                ("c".to_owned(), RowState::Failed)
            ]
        );
    }

    #[test]
    fn keys_are_taken_apart_from_the_right() {
        let key = row_key(
            &row_content("iyzico", &"item:1|2#3@10", &"5.0 TRY", Some("r-1")),
            2,
        );
        assert_eq!(key, "iyzico|item:1|2#3@10|5.0 TRY|r-1#2");
        let parts = parse_key(&key).unwrap();
        assert_eq!(parts.provider, "iyzico");
        assert_eq!(parts.payment, "item:1|2#3@10");
        assert_eq!(parts.amount, "5.0");
        assert_eq!(parts.currency, "TRY");
        assert_eq!(parts.reference, "r-1");
        assert_eq!(parts.content, "iyzico|item:1|2#3@10|5.0 TRY|r-1");
        assert_eq!(parts.occurrence, 2);
        let bare = parse_key("sipay|payment:INV-1|10.00 TRY|#1").unwrap();
        assert_eq!(bare.reference, "");
        assert!(parse_key("not a key").is_none());
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(1_796_005_021)),
            "2026-11-30T02:17:01Z"
        );
    }
}
