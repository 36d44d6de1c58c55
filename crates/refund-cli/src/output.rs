//! Writing to stdout and stderr without panicking on a closed pipe, in text or JSON, and shell
//! quoting for what a shell reads back.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Value, json};

use crate::exit::Failure;

/// How outcomes are printed (`--output`, `REFUND_OUTPUT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people: a success's document on stdout, a failure as `error: …` on stderr.
    #[default]
    Text,
    /// For scripts: every outcome, success or failure, is one JSON object on one line of
    /// stdout.
    Json,
}

/// What a successful command reports.
#[derive(Debug)]
pub(crate) struct Success {
    /// `refunded`, or what was shown (`status`, `hash_key`, …).
    pub(crate) kind: &'static str,
    pub(crate) provider: Option<&'static str>,
    /// One line for people.
    pub(crate) message: String,
    pub(crate) reference: Option<String>,
    /// What text mode prints on stdout.
    pub(crate) text: String,
    /// The field JSON mode adds to the object, and its value.
    pub(crate) data: (&'static str, Value),
}

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

/// Pretty JSON, for people.
pub(crate) fn pretty(value: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(Failure::other)
}

/// Prints a success in `format`: exit 0.
pub(crate) fn success(format: Format, success: &Success) -> Result<ExitCode, Failure> {
    let text = match format {
        Format::Text => success.text.clone(),
        Format::Json => success_json(success).to_string(),
    };
    out_line(&text).map_err(Failure::other)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a failure in `format` (text on stderr, JSON on stdout) and returns its exit code.
pub(crate) fn failure(format: Format, failure: &Failure) -> ExitCode {
    let _ = match format {
        Format::Text => err_line(&failure.text()),
        Format::Json => out_line(&failure_json(failure).to_string()),
    };
    failure.code.into()
}

/// The JSON object of a success: the fields every outcome has, and the success's document.
pub(crate) fn success_json(s: &Success) -> Value {
    let mut value = json!({
        "ok": true,
        "kind": s.kind,
        "provider": s.provider,
        "code": null,
        "message": s.message,
        "reference": s.reference,
        "retryable": false,
        "outcome_known": true,
        "lookup": null,
        "retry_after_seconds": null,
        "exit_code": 0,
    });
    if let Some(object) = value.as_object_mut() {
        object.insert(s.data.0.to_owned(), s.data.1.clone());
    }
    value
}

/// The JSON object of a failure.
pub(crate) fn failure_json(f: &Failure) -> Value {
    let facts = &f.facts;
    json!({
        "ok": false,
        "kind": facts.kind,
        "provider": facts.provider,
        "code": facts.provider_code,
        "message": f.message,
        "reference": facts.reference,
        "retryable": facts.retryable,
        "outcome_known": f.outcome_known(),
        "lookup": facts.lookup,
        "retry_after_seconds": facts.retry_after.map(|d| d.as_secs().max(1)),
        "exit_code": f.code as u8,
    })
}

/// `value` between single quotes, for a POSIX shell to read back exactly: every `'` inside
/// becomes `'\''` (close the quotes, an escaped quote, reopen). Nothing else is special
/// between single quotes: `$`, backslashes, backquotes and newlines stay as they are.
pub(crate) fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `word` as a shell word: as it is when it has nothing a shell would interpret, else quoted.
pub(crate) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b));
    if plain {
        word.to_owned()
    } else {
        shell_quote(word)
    }
}

/// A command line a shell runs exactly as given.
pub(crate) fn command_line<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    words
        .into_iter()
        .map(|w| shell_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh` makes of `NAME=<quoted>`.
    fn through_sh(quoted: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("V={quoted}; printf %s \"$V\""))
            .env_clear()
            .output()
            .unwrap_or_else(|e| panic!("sh: {e}"));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_quoted_value_reads_back_exactly_in_sh() {
        for value in [
            "$2y$10$abcdefghijklmnopqrstuv",
            "it's",
            "'",
            "''a'b''",
            "back\\slash `cmd` $(cmd) \"dq\"",
            "two\nlines",
            "",
            " spaced ",
        ] {
            assert_eq!(through_sh(&shell_quote(value)), value, "{value:?}");
            assert_eq!(through_sh(&shell_word(value)), value, "{value:?}");
        }
    }

    #[test]
    fn plain_words_stay_bare_in_a_command_line() {
        assert_eq!(
            command_line(["refund", "sipay", "status", "--invoice-id", "INV-1"]),
            "refund sipay status --invoice-id INV-1"
        );
        assert_eq!(
            command_line(["--invoice-id", "a b", "it's"]),
            r"--invoice-id 'a b' 'it'\''s'"
        );
    }
}
