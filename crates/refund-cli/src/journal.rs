//! The batch journal: an append-only JSON-lines file that makes `refund batch` crash-safe.
//!
//! Every row gets a `sending` record, written and synced to disk *before* its refund request
//! leaves, and a terminal record (`refunded`, `declined`, `unknown`, `failed`) after. A batch
//! killed at any moment — SIGKILL included — and run again with the same journal therefore
//! knows, for every row, one of:
//!
//! - a terminal `refunded` / `declined` record: the outcome is known, the row is skipped;
//! - a `sending` record with nothing after it, or `unknown`: the request may have reached the
//!   provider; the row is reconciled through the provider's lookup by its reference before
//!   anything is resent;
//! - a `failed` record (nothing reached the provider, or it was rejected before processing):
//!   safe to send again;
//! - nothing: never sent.
//!
//! A torn last line (the process died mid-write) is ignored: its row is then judged by the
//! records before it, which is always the more cautious answer.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

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
}

/// The journal file, open for appending, plus what it said when opened.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    last: HashMap<String, Record>,
}

impl Journal {
    /// Opens (or creates) the journal and reads the last record of every row.
    pub(crate) fn open(path: &Path) -> std::io::Result<Journal> {
        let mut last = HashMap::new();
        if path.exists() {
            let reader = BufReader::new(File::open(path)?);
            for line in reader.lines() {
                let line = line?;
                // A torn or foreign line is skipped; see the module docs for why that is safe.
                if let Ok(record) = serde_json::from_str::<Record>(&line) {
                    last.insert(record.key.clone(), record);
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        // If the previous run died mid-line, start on a fresh line so the next record parses.
        if std::fs::metadata(path)?.len() > 0 && !ends_with_newline(path)? {
            file.write_all(b"\n")?;
        }
        Ok(Journal { file, last })
    }

    /// The last record written for `key` before this run.
    pub(crate) fn last(&self, key: &str) -> Option<&Record> {
        self.last.get(key)
    }

    /// Appends `record` and syncs it to disk before returning.
    pub(crate) fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write call per record: a kill can tear only the record being written.
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::End(-1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(b[0] == b'\n')
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
        }
    }

    #[test]
    fn the_last_record_of_each_row_wins() {
        let dir = std::env::temp_dir().join(format!("journal-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.journal");
        let _ = std::fs::remove_file(&path);
        {
            let mut j = Journal::open(&path).unwrap();
            j.append(&record("1", RowState::Sending)).unwrap();
            j.append(&record("1", RowState::Refunded)).unwrap();
            j.append(&record("2", RowState::Sending)).unwrap();
        }
        // A torn line, as a kill mid-write leaves.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"key\":\"3\",\"refer")
            .unwrap();
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.last("1").unwrap().state, RowState::Refunded);
        assert_eq!(j.last("2").unwrap().state, RowState::Sending);
        assert!(j.last("3").is_none());
        j.append(&record("3", RowState::Sending)).unwrap();
        let reopened = Journal::open(&path).unwrap();
        assert_eq!(reopened.last("3").unwrap().state, RowState::Sending);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
