//! The batch journal: an append-only JSON-lines file that makes `refund batch` crash-safe.
//!
//! Every row gets a `sending` record, written and synced to disk *before* its refund request
//! leaves, and a terminal record (`refunded`, `declined`, `unknown`, `failed`) after. A batch
//! killed at any moment — SIGKILL included — and run again with the same journal therefore
//! knows, for every row, one of:
//!
//! - a terminal `refunded` / `declined` record: the outcome is known, the row is skipped (a
//!   temporary refusal is journaled `declined` too before the same request is sent again,
//!   after a new `sending` record; the refusals are counted, because each may have left a
//!   failed entry under the reference that says nothing about the later attempt);
//! - a `sending` record with nothing after it, or `unknown`: the request may have reached the
//!   provider; the row is reconciled through the provider's lookup by its reference before
//!   anything is resent, and only resent (with the same reference) once the attempt is older
//!   than the provider's settle time and the lookup still does not show it;
//! - a `failed` record (nothing reached the provider, or it was rejected before processing):
//!   safe to send again;
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

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Where a row stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RowState {
    /// About to send: the outcome is unknown until a terminal record follows.
    Sending,
    /// Refunded (from a receipt or a reconciling lookup).
    Refunded,
    /// The provider refused it; the outcome is known.
    Declined,
    /// The request may have reached the provider and no answer came back.
    Unknown,
    /// Failed before the provider processed anything; safe to resend.
    Failed,
}

/// One journal line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Identifies the row: its line number and content, so an edited input is not confused
    /// with the journaled one.
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
}

/// What the journal knows about one row.
#[derive(Clone, Debug)]
struct Entry {
    /// The row's last record.
    last: Record,
    /// When the row's latest attempt (`sending` record) was made, when known.
    attempted_at: Option<u64>,
    /// Whether the latest `sending` record had no time, so a later record's time dates it.
    undated_attempt: bool,
    /// How many `declined` records the row has with its current reference: the attempts with
    /// that reference the provider refused, each of which may have left a failed entry in its
    /// lookup that says nothing about a later attempt.
    refusals: usize,
}

/// What a journal said, by row key.
#[derive(Debug, Default)]
pub(crate) struct Index {
    rows: HashMap<String, Entry>,
}

impl Index {
    /// Reads every complete record of `reader`; torn or foreign lines are skipped (see the
    /// module docs for why that is safe).
    fn read(reader: impl BufRead) -> std::io::Result<Index> {
        let mut index = Index::default();
        for line in reader.split(b'\n') {
            let line = line?;
            if let Ok(record) = serde_json::from_slice::<Record>(&line) {
                index.add(record);
            }
        }
        Ok(index)
    }

    /// Reads the journal at `path` without creating, locking or writing it: an empty index
    /// when there is no file (what `--dry-run` needs).
    pub(crate) fn read_only(path: &Path) -> std::io::Result<Index> {
        match File::open(path) {
            Ok(file) => Index::read(BufReader::new(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e),
        }
    }

    /// An index of `records`, as if read from a journal in this order.
    #[cfg(test)]
    pub(crate) fn from_records(records: impl IntoIterator<Item = Record>) -> Index {
        let mut index = Index::default();
        for record in records {
            index.add(record);
        }
        index
    }

    fn add(&mut self, record: Record) {
        let entry = self.rows.entry(record.key.clone());
        let entry = entry.or_insert_with(|| Entry {
            last: record.clone(),
            attempted_at: None,
            undated_attempt: false,
            refusals: 0,
        });
        if record.reference != entry.last.reference {
            entry.refusals = 0;
        }
        if record.state == RowState::Declined {
            entry.refusals += 1;
        }
        if record.state == RowState::Sending {
            entry.attempted_at = record.at;
            entry.undated_attempt = record.at.is_none();
        } else if entry.undated_attempt && record.at.is_some() {
            // An attempt from an older version, first seen dated by this later record: it was
            // made no later than that, so dating it there errs on the side of waiting.
            entry.attempted_at = record.at;
            entry.undated_attempt = false;
        }
        entry.last = record;
    }

    /// The last record written for `key`.
    pub(crate) fn last(&self, key: &str) -> Option<&Record> {
        self.rows.get(key).map(|e| &e.last)
    }

    /// How many attempts of `key` with its current reference the provider refused (`declined`
    /// records: a temporary refusal is journaled so before the same request is sent again). A
    /// failed entry the lookup shows for the reference proves the latest attempt failed only
    /// when there are more of them than this (`Reconciler::judge_after`).
    pub(crate) fn refusals(&self, key: &str) -> usize {
        self.rows.get(key).map_or(0, |e| e.refusals)
    }

    /// When the latest attempt for `key` was made. An attempt the journal cannot date counts
    /// as made now; a row never attempted answers `None`.
    pub(crate) fn attempted_at(&self, key: &str) -> Option<SystemTime> {
        let entry = self.rows.get(key)?;
        match entry.attempted_at {
            Some(ms) => Some(from_millis(ms)),
            None if entry.undated_attempt => Some(SystemTime::now()),
            None => None,
        }
    }
}

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
    index: Index,
}

impl Journal {
    /// Opens (or creates) the journal, takes its exclusive lock, and reads the last record of
    /// every row. [`OpenError::Busy`] when another run holds the lock: nothing is written then.
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
        file.seek(SeekFrom::Start(0))?;
        let index = Index::read(BufReader::new(&mut file))?;
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
        Ok(Journal { file, index })
    }

    /// What the journal said when it was opened.
    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    /// Appends `record`, stamped with the current time, and syncs it to disk before returning.
    pub(crate) fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let mut line = if record.at.is_some() {
            serde_json::to_vec(record)
        } else {
            let mut stamped = record.clone();
            stamped.at = Some(to_millis(SystemTime::now()));
            serde_json::to_vec(&stamped)
        }
        .map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write call per record: a kill can tear only the record being written.
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
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

fn from_millis(ms: u64) -> SystemTime {
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
mod tests {
    use super::*;

    fn record(key: &str, state: RowState) -> Record {
        Record {
            key: key.into(),
            reference: format!("ref-{key}"),
            state,
            note: None,
            at: None,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("journal-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
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
        assert_eq!(j.index().last("1").unwrap().state, RowState::Refunded);
        assert_eq!(j.index().last("2").unwrap().state, RowState::Sending);
        assert!(j.index().last("3").is_none());
        j.append(&record("3", RowState::Sending)).unwrap();
        drop(j);
        let reopened = Journal::open(&path).unwrap();
        assert_eq!(reopened.index().last("3").unwrap().state, RowState::Sending);
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
        assert_eq!(index.attempted_at("1"), Some(from_millis(at)));
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
            r#"{"key":"done","reference":"r-4","state":"failed","at":5000}"#,
            "\n",
        );
        let index = Index::read(lines.as_bytes()).unwrap();
        let now = SystemTime::now();
        assert!(index.attempted_at("old").unwrap() >= now);
        assert_eq!(index.attempted_at("later"), Some(from_millis(1000)));
        assert_eq!(index.attempted_at("dated"), Some(from_millis(5000)));
        assert_eq!(index.attempted_at("done"), None, "never attempted");
        assert_eq!(index.attempted_at("absent"), None);
    }

    #[test]
    fn refusals_are_counted_per_reference() {
        let rec = |state, reference: &str| Record {
            key: "k".into(),
            reference: reference.into(),
            state,
            note: None,
            at: Some(1),
        };
        let index = Index::from_records([
            rec(RowState::Sending, "bad"),
            rec(RowState::Declined, "bad"),
            rec(RowState::Sending, "r-1"),
            rec(RowState::Declined, "r-1"),
            rec(RowState::Sending, "r-1"),
            // Not processed (a 429, an unreachable provider): no entry can be left.
            rec(RowState::Failed, "r-1"),
            rec(RowState::Sending, "r-1"),
            rec(RowState::Declined, "r-1"),
            rec(RowState::Sending, "r-1"),
            rec(RowState::Unknown, "r-1"),
        ]);
        assert_eq!(index.refusals("k"), 2);
        assert_eq!(index.refusals("absent"), 0);
    }

    #[test]
    fn read_only_neither_creates_nor_writes() {
        let dir = scratch("ro");
        let path = dir.join("a.journal");
        assert!(Index::read_only(&path).unwrap().last("x").is_none());
        assert!(!path.exists());
        std::fs::write(
            &path,
            b"{\"key\":\"x\",\"reference\":\"r\",\"state\":\"unknown\"}\n{\"ke",
        )
        .unwrap();
        let index = Index::read_only(&path).unwrap();
        assert_eq!(index.last("x").unwrap().state, RowState::Unknown);
        assert_eq!(
            std::fs::read(&path).unwrap().len(),
            50,
            "the torn line is left as it was"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
