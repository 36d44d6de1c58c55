//! Writing to stdout and stderr without panicking on a closed pipe.

use std::io::Write;

/// Prints `text` and a newline on stdout, then flushes.
pub(crate) fn out_line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// Prints `text` and a newline on stderr.
pub(crate) fn err_line(text: &str) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    writeln!(err, "{text}")
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn out_json(value: &impl serde::Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    out_line(&text)
}
