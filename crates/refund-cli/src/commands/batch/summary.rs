//! The totals, the exit code, and the closing lines of a run.

use std::time::SystemTime;

use indicatif::ProgressBar;
use serde::Serialize;

use super::BatchError;
use crate::exit::{Code, Failure};
use crate::journal::{self, RowState};
use crate::output::{err_line, out_line};

/// Rows by state.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(super) struct Totals {
    pub(super) rows: u64,
    pub(super) refunded: u64,
    pub(super) declined: u64,
    pub(super) unknown: u64,
    pub(super) retry_later: u64,
    pub(super) failed: u64,
}

impl Totals {
    pub(super) fn count(&mut self, state: RowState) {
        self.rows += 1;
        match state {
            RowState::Refunded => self.refunded += 1,
            RowState::Declined => self.declined += 1,
            RowState::Sending | RowState::Unknown => self.unknown += 1,
            RowState::RetryLater => self.retry_later += 1,
            RowState::Failed => self.failed += 1,
        }
    }
}

/// The last stdout line. The top-level counts are this run's: what it did with the rows it
/// worked on (`skipped`: rows it left as an earlier run left them). `journal` is every valid
/// input row's state after this run, touched or not.
#[derive(Debug, Default, Serialize)]
pub(super) struct Summary {
    pub(super) rows: u64,
    pub(super) refunded: u64,
    pub(super) declined: u64,
    pub(super) unknown: u64,
    pub(super) retry_later: u64,
    pub(super) failed: u64,
    pub(super) skipped: u64,
    pub(super) malformed: u64,
    pub(super) journal: Totals,
}

impl Summary {
    /// Counts a row this run worked on, which ended in `state`.
    pub(super) fn worked(&mut self, state: RowState) {
        match state {
            RowState::Refunded => self.refunded += 1,
            RowState::Declined => self.declined += 1,
            RowState::Sending | RowState::Unknown => self.unknown += 1,
            RowState::RetryLater => self.retry_later += 1,
            RowState::Failed => self.failed += 1,
        }
        self.journal.count(state);
    }

    /// The exit code, from the journal's totals: 0 only when every row is refunded; 4 while
    /// any row is unknown or waits to be sent again; then 5 failed, 3 declined, 2 malformed.
    pub(super) fn code(&self) -> u8 {
        let j = &self.journal;
        if j.unknown > 0 || j.retry_later > 0 {
            Code::Unknown as u8
        } else if j.failed > 0 {
            Code::Other as u8
        } else if j.declined > 0 {
            Code::Declined as u8
        } else if self.malformed > 0 {
            Code::Invalid as u8
        } else {
            0
        }
    }
}

/// The closing lines: totals and what to do next on stderr, the JSON summary on stdout.
pub(super) fn finish(
    summary: &Summary,
    rerun_after: Option<SystemTime>,
    retry_after: Option<SystemTime>,
) -> Result<(), BatchError> {
    let j = &summary.journal;
    let lines = [
        format!(
            "this run, {} rows: {} refunded, {} declined, {} unknown, {} retry later, {} failed, \
             {} skipped, {} malformed",
            summary.rows,
            summary.refunded,
            summary.declined,
            summary.unknown,
            summary.retry_later,
            summary.failed,
            summary.skipped,
            summary.malformed
        ),
        format!(
            "journal, {} rows: {} refunded, {} declined, {} unknown, {} retry later, {} failed",
            j.rows, j.refunded, j.declined, j.unknown, j.retry_later, j.failed
        ),
    ];
    for line in &lines {
        err_line(line).map_err(Failure::other)?;
    }
    let when = |t: Option<SystemTime>| match t {
        Some(t) if t > SystemTime::now() => format!("after {}", journal::utc(t)),
        _ => "now".to_owned(),
    };
    if j.unknown > 0 {
        err_line(&format!(
            "{} rows have an unknown outcome: run the same command again {} to reconcile \
             them (nothing is resent before a lookup, and nothing before the provider's settle \
             time has passed), or check them by reference: refund batch --journal … --report",
            j.unknown,
            when(rerun_after)
        ))
        .map_err(Failure::other)?;
    }
    if j.retry_later > 0 {
        err_line(&format!(
            "{} rows were refused for now or could not reach the provider: run the same command \
             again {} to send them again (with the same references)",
            j.retry_later,
            when(retry_after)
        ))
        .map_err(Failure::other)?;
    }
    let line = match super::format() {
        crate::output::Format::Text => serde_json::to_string(summary).map_err(Failure::other)?,
        // The envelope every command has (ok, kind, exit_code, …), the counts in it.
        crate::output::Format::Json => crate::output::summary_json(
            "batch",
            &lines[0],
            summary.code(),
            j.unknown == 0,
            serde_json::to_value(summary).map_err(Failure::other)?,
        ),
    };
    out_line(&line).map_err(Failure::other)?;
    Ok(())
}

/// Prints one line about a row on stderr: above the progress bar on a terminal, plainly when
/// the bar is hidden (stderr redirected), so a log keeps every row's note.
pub(super) fn say(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        let _ = err_line(line);
    } else {
        bar.println(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_follows_the_journal_totals() {
        let code = |f: &dyn Fn(&mut Summary)| {
            let mut s = Summary::default();
            f(&mut s);
            s.code()
        };
        assert_eq!(code(&|s| s.journal.count(RowState::Refunded)), 0);
        assert_eq!(
            code(&|s| {
                s.journal.count(RowState::Declined);
                s.journal.count(RowState::RetryLater);
            }),
            4
        );
        assert_eq!(
            code(&|s| {
                s.journal.count(RowState::Declined);
                s.journal.count(RowState::Failed);
            }),
            5
        );
        assert_eq!(code(&|s| s.journal.count(RowState::Declined)), 3);
        assert_eq!(
            code(&|s| {
                s.journal.count(RowState::Refunded);
                s.malformed = 1;
            }),
            2
        );
    }
}
