//! Capturing everything a future logs through `tracing`, for the secret-leak scenario.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::instrument::WithSubscriber;
use tracing_subscriber::fmt::format::FmtSpan;

/// The text of every event and span (with their fields) recorded while a future ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// The formatted output, without colour codes.
    pub text: String,
}

impl CapturedOutput {
    /// Whether `needle` occurs anywhere in the output.
    pub fn contains(&self, needle: &str) -> bool {
        self.text.contains(needle)
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `future` with a subscriber that records everything at TRACE level — every event, and
/// every span's creation, entry, exit and close with its fields — and returns the future's
/// output with the text.
///
/// The subscriber is the default only while `future` is polled: tasks it spawns onto the
/// runtime log elsewhere, and other tests running at the same time are not captured.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (answer, log) = refund_testkit::conformance::capture_tracing(async {
///     tracing::trace!(reference = "r-1", "sending");
///     42
/// })
/// .await;
/// assert_eq!(answer, 42);
/// assert!(log.contains("r-1"));
/// # });
/// ```
pub async fn capture_tracing<F: Future>(future: F) -> (F::Output, CapturedOutput) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(FmtSpan::FULL)
        .with_writer(move || writer.clone())
        .finish();
    let output = future.with_subscriber(subscriber).await;
    let bytes = std::mem::take(&mut *buffer.0.lock().unwrap_or_else(PoisonError::into_inner));
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (output, CapturedOutput { text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_and_span_fields_are_captured() {
        let ((), log) = capture_tracing(async {
            let span = tracing::info_span!("refund", payment = "INV-9");
            let _g = span.enter();
            tracing::trace!(detail = "deep", "at trace level");
        })
        .await;
        assert!(log.contains("INV-9"), "{}", log.text);
        assert!(log.contains("deep"), "{}", log.text);
        assert!(log.contains("at trace level"), "{}", log.text);
    }
}
