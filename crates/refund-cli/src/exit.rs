//! Exit codes and the one-line error a failed command prints.

use std::fmt;
use std::process::ExitCode;

use refund_core::RefundError;

/// What a failed command reports: a documented exit code and one line for stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    pub(crate) message: String,
}

/// The documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Code {
    /// Invalid input or usage (clap uses 2 for usage errors too).
    Invalid = 2,
    /// The provider declined.
    Declined = 3,
    /// The outcome is unknown: reconcile before retrying.
    Unknown = 4,
    /// Anything else: authentication, unreachable, configuration.
    Other = 5,
}

impl Code {
    /// The code for a provider error.
    pub(crate) fn of(error: &RefundError) -> Code {
        match error {
            RefundError::InvalidRequest(_) => Code::Invalid,
            RefundError::Declined { .. } => Code::Declined,
            e if !e.is_outcome_known() => Code::Unknown,
            _ => Code::Other,
        }
    }
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> ExitCode {
        ExitCode::from(code as u8)
    }
}

impl Failure {
    /// Invalid input.
    pub(crate) fn invalid(message: impl fmt::Display) -> Failure {
        Failure {
            code: Code::Invalid,
            message: message.to_string(),
        }
    }

    /// Any other failure.
    pub(crate) fn other(message: impl fmt::Display) -> Failure {
        Failure {
            code: Code::Other,
            message: message.to_string(),
        }
    }

    /// A provider error, with `reconcile_hint` appended when the outcome is unknown.
    pub(crate) fn provider(error: &RefundError, reconcile_hint: &str) -> Failure {
        let code = Code::of(error);
        let message = if code == Code::Unknown {
            format!("{error}\n{reconcile_hint}")
        } else {
            error.to_string()
        };
        Failure { code, message }
    }
}

impl From<RefundError> for Failure {
    fn from(e: RefundError) -> Failure {
        Failure::provider(&e, "")
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
