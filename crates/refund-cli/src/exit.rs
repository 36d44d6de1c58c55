//! Exit codes, and what a failed command reports.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use refund_core::RefundError;

/// What a failed command reports: a documented exit code, one line of message, and the facts a
/// script needs (printed as one JSON object with `--output json`, see
/// [`crate::output::failure_json`]).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    /// One line, no hint: the error itself.
    pub(crate) message: String,
    /// Boxed, so that a `Result<_, Failure>` stays small.
    pub(crate) facts: Box<Facts>,
}

/// What a script needs to know about a failure beyond its code and message.
#[derive(Debug)]
pub(crate) struct Facts {
    /// A stable name for the class: a [`RefundError::kind`] name, `usage`, or `error`.
    pub(crate) kind: &'static str,
    /// The provider the command was talking to, when there is one.
    pub(crate) provider: Option<&'static str>,
    /// The provider's own error code (declines, rejected credentials, duplicate references).
    pub(crate) provider_code: Option<String>,
    /// The merchant reference of the refund or cancel, once it was built.
    pub(crate) reference: Option<String>,
    /// Whether sending the same request again is safe and may succeed.
    pub(crate) retryable: bool,
    /// How long the provider asked to wait, when it said.
    pub(crate) retry_after: Option<Duration>,
    /// The `refund … status` command that shows whether the refund was applied; set only when
    /// the outcome is unknown.
    pub(crate) lookup: Option<String>,
}

/// The documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Code {
    /// Invalid input, usage or configuration: nothing was sent (clap uses 2 for usage errors
    /// too).
    Invalid = 2,
    /// The provider declined.
    Declined = 3,
    /// The outcome is unknown: reconcile before retrying.
    Unknown = 4,
    /// Anything else: rejected credentials, an I/O error.
    Other = 5,
    /// Nothing happened; the same command may succeed later (EX_TEMPFAIL from sysexits.h):
    /// rate limited, provider unreachable, a temporary decline.
    TempFail = 75,
}

impl Code {
    /// The code for a provider error.
    pub(crate) fn of(error: &RefundError) -> Code {
        if !error.is_outcome_known() {
            Code::Unknown
        } else if matches!(
            error,
            RefundError::InvalidRequest(_) | RefundError::Configuration { .. }
        ) {
            Code::Invalid
        } else if error.is_retryable() {
            Code::TempFail
        } else if matches!(error, RefundError::Declined { .. }) {
            Code::Declined
        } else {
            Code::Other
        }
    }
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> ExitCode {
        ExitCode::from(code as u8)
    }
}

impl Failure {
    fn plain(code: Code, kind: &'static str, message: impl fmt::Display) -> Failure {
        Failure {
            code,
            message: message.to_string(),
            facts: Box::new(Facts {
                kind,
                provider: None,
                provider_code: None,
                reference: None,
                retryable: false,
                retry_after: None,
                lookup: None,
            }),
        }
    }

    /// Invalid input: nothing was sent.
    pub(crate) fn invalid(message: impl fmt::Display) -> Failure {
        Failure::plain(Code::Invalid, "invalid_request", message)
    }

    /// A command line clap refused.
    pub(crate) fn usage(message: impl fmt::Display) -> Failure {
        Failure::plain(Code::Invalid, "usage", message)
    }

    /// Missing or unreadable configuration (credentials): nothing was sent.
    pub(crate) fn configuration(message: impl fmt::Display) -> Failure {
        Failure::plain(Code::Invalid, "configuration", message)
    }

    /// Any other failure.
    pub(crate) fn other(message: impl fmt::Display) -> Failure {
        Failure::plain(Code::Other, "error", message)
    }

    /// A provider error, classified by [`Code::of`].
    pub(crate) fn provider(error: &RefundError) -> Failure {
        let retry_after = match error {
            RefundError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        };
        Failure {
            code: Code::of(error),
            message: error.to_string(),
            facts: Box::new(Facts {
                kind: error.kind(),
                provider: error.provider(),
                provider_code: error.provider_code().map(str::to_owned),
                reference: None,
                retryable: error.is_retryable(),
                retry_after,
                lookup: None,
            }),
        }
    }

    /// Whether it is certain what happened to the money.
    pub(crate) fn outcome_known(&self) -> bool {
        self.code != Code::Unknown
    }

    /// Names the provider the command was talking to, unless the error already does.
    #[must_use]
    pub(crate) fn in_provider(mut self, provider: &'static str) -> Failure {
        self.facts.provider.get_or_insert(provider);
        self
    }

    /// Records the merchant reference of the refund or cancel.
    #[must_use]
    pub(crate) fn with_reference(mut self, reference: impl fmt::Display) -> Failure {
        self.facts.reference = Some(reference.to_string());
        self
    }

    /// Records the command that looks the refund up, kept only when the outcome is unknown.
    #[must_use]
    pub(crate) fn with_lookup(mut self, lookup: impl FnOnce() -> String) -> Failure {
        if !self.outcome_known() {
            self.facts.lookup = Some(lookup());
        }
        self
    }

    /// What text mode prints on stderr: `error: …`, then what to do when that is not obvious
    /// (look the refund up; try again later).
    pub(crate) fn text(&self) -> String {
        let mut text = format!("error: {}", self.message);
        match self.code {
            Code::Unknown => {
                text.push_str("\nDo not resend.");
                match (&self.facts.reference, &self.facts.lookup) {
                    (Some(r), Some(l)) => {
                        text.push_str(&format!(" Check whether reference {r} was applied: {l}"));
                    }
                    (None, Some(l)) => text.push_str(&format!(" Look it up: {l}")),
                    _ => {}
                }
            }
            Code::TempFail => {
                text.push_str("\nNothing was refunded: try again later");
                if let Some(wait) = self.facts.retry_after {
                    text.push_str(&format!(
                        " (the provider asked to wait {} s)",
                        wait.as_secs().max(1)
                    ));
                }
                text.push('.');
            }
            _ => {}
        }
        text
    }
}

impl From<RefundError> for Failure {
    fn from(e: RefundError) -> Failure {
        Failure::provider(&e)
    }
}

impl From<refund_core::ValidationError> for Failure {
    fn from(e: refund_core::ValidationError) -> Failure {
        Failure::invalid(e)
    }
}

impl From<refund_core::MoneyError> for Failure {
    fn from(e: refund_core::MoneyError) -> Failure {
        Failure::invalid(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_happened_try_later_is_75_and_the_existing_classes_keep_their_codes() {
        let unreachable = RefundError::unreachable("p", "refused");
        let rate_limited = RefundError::rate_limited("p", None);
        for (e, code) in [
            (unreachable, Code::TempFail),
            (rate_limited, Code::TempFail),
            (
                RefundError::declined_retryable("p", "1", "later"),
                Code::TempFail,
            ),
            (RefundError::declined("p", "49", "no"), Code::Declined),
            (RefundError::outcome_unknown("p", "reset"), Code::Unknown),
            (
                RefundError::duplicate_reference("p", "104", "seen"),
                Code::Unknown,
            ),
            (RefundError::authentication("p", "1000", "bad"), Code::Other),
            (RefundError::configuration("p", "missing"), Code::Invalid),
            (RefundError::unsupported("p", "void"), Code::Other),
        ] {
            assert_eq!(Code::of(&e), code, "{e}");
        }
    }

    #[test]
    fn the_lookup_is_kept_only_when_the_outcome_is_unknown() {
        let known = Failure::provider(&RefundError::declined("p", "49", "no"))
            .with_lookup(|| "refund p status".into());
        assert_eq!(known.facts.lookup, None);
        let unknown = Failure::provider(&RefundError::outcome_unknown("p", "reset"))
            .with_reference("r-1")
            .with_lookup(|| "refund p status".into());
        assert_eq!(unknown.facts.lookup.as_deref(), Some("refund p status"));
        assert!(
            unknown
                .text()
                .ends_with("reference r-1 was applied: refund p status")
        );
    }
}
