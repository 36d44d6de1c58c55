//! Writing to stdout and stderr without panicking on a closed pipe, in text or JSON, and shell
//! quoting for what a shell reads back.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Map, Value};

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
    /// The fields JSON mode adds to the object, and their values.
    pub(crate) data: Vec<(&'static str, Value)>,
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
        Format::Json => success_json(success),
    };
    out_line(&text).map_err(Failure::other)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a failure in `format` (text on stderr, JSON on stdout) and returns its exit code.
pub(crate) fn failure(format: Format, failure: &Failure) -> ExitCode {
    let _ = match format {
        Format::Text => err_line(&failure.text()),
        Format::Json => out_line(&failure_json(failure)),
    };
    failure.code.into()
}

/// The fields every outcome has in JSON mode, in this order, then the outcome's own.
#[derive(Serialize)]
struct Envelope<'a> {
    ok: bool,
    kind: &'a str,
    provider: Option<&'a str>,
    code: Option<&'a str>,
    message: &'a str,
    reference: Option<&'a str>,
    retryable: bool,
    outcome_known: bool,
    lookup: Option<&'a str>,
    retry_after_seconds: Option<u64>,
    exit_code: u8,
    #[serde(flatten)]
    data: Map<String, Value>,
}

fn to_line(envelope: &Envelope<'_>) -> String {
    // Serialising strings, numbers and JSON values cannot fail; still one object if it does.
    serde_json::to_string(envelope).unwrap_or_else(|_| {
        r#"{"ok":false,"kind":"error","message":"the outcome could not be serialised"}"#.to_owned()
    })
}

/// The JSON line of a command that reports counts rather than one refund (`refund batch`'s
/// summary): the fields every outcome has, then `data`'s (an object's fields; anything else is
/// put under `data`). `ok` only when `exit_code` is 0.
pub(crate) fn summary_json(
    kind: &str,
    message: &str,
    exit_code: u8,
    outcome_known: bool,
    data: Value,
) -> String {
    let data = match data {
        Value::Object(map) => map,
        other => Map::from_iter([("data".to_owned(), other)]),
    };
    to_line(&Envelope {
        ok: exit_code == 0,
        kind,
        provider: None,
        code: None,
        message,
        reference: None,
        retryable: exit_code == 4 || exit_code == 75,
        outcome_known,
        lookup: None,
        retry_after_seconds: None,
        exit_code,
        data,
    })
}

/// The JSON line of a success: the fields every outcome has, and the success's own.
pub(crate) fn success_json(s: &Success) -> String {
    to_line(&Envelope {
        ok: true,
        kind: s.kind,
        provider: s.provider,
        code: None,
        message: &s.message,
        reference: s.reference.as_deref(),
        retryable: false,
        outcome_known: true,
        lookup: None,
        retry_after_seconds: None,
        exit_code: 0,
        data: s
            .data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    })
}

/// The JSON line of a failure.
pub(crate) fn failure_json(f: &Failure) -> String {
    let facts = &f.facts;
    to_line(&Envelope {
        ok: false,
        kind: facts.kind,
        provider: facts.provider,
        code: facts.provider_code.as_deref(),
        message: &f.message,
        reference: facts.reference.as_deref(),
        retryable: facts.retryable,
        outcome_known: f.outcome_known(),
        lookup: facts.lookup.as_deref(),
        retry_after_seconds: facts.retry_after.map(|d| d.as_secs().max(1)),
        exit_code: f.code as u8,
        data: Map::new(),
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
