//! One error type for every provider, classified by what the caller should do next.

use std::time::Duration;

use crate::request::ValidationError;

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Provider text longer than this is cut, so a hostile or broken response cannot make an
/// error message arbitrarily large.
const MAX_MESSAGE: usize = 512;

/// Why a refund, void or lookup failed: each variant tells the caller what to do.
///
/// | variant | sent? | outcome known? | retryable? | what to do |
/// |---|---|---|---|---|
/// | [`InvalidRequest`](Self::InvalidRequest) | no | yes, nothing happened | no | fix the input |
/// | [`Declined`](Self::Declined) | yes | yes, not refunded | when the provider says so | show the reason; maybe retry later |
/// | [`AuthenticationRejected`](Self::AuthenticationRejected) | yes | yes, not refunded | no | fix the credentials |
/// | [`RateLimited`](Self::RateLimited) | yes | yes, not refunded | yes, after a pause | retry later |
/// | [`Unreachable`](Self::Unreachable) | no | yes, nothing happened | yes | retry |
/// | [`OutcomeUnknown`](Self::OutcomeUnknown) | maybe | **no** | **never blindly** | reconcile: look the refund up by its reference |
/// | [`DuplicateReference`](Self::DuplicateReference) | an earlier attempt was | **no** | **no** | reconcile: the reference reached the provider before |
/// | [`Unsupported`](Self::Unsupported) | no | yes, nothing happened | no | use another operation or provider |
/// | [`Configuration`](Self::Configuration) | no | yes, nothing happened | no | fix the configuration |
///
/// Errors never carry secrets: provider crates build them from response codes and messages,
/// never from credentials or request bodies.
///
/// ```
/// use refund_core::RefundError;
///
/// let e = RefundError::outcome_unknown("sipay", "timed out waiting for the response");
/// assert!(!e.is_retryable());
/// assert!(!e.is_outcome_known());
///
/// let e = RefundError::declined("sipay", "49", "Refund Failed");
/// assert!(e.is_outcome_known());
/// assert_eq!(e.to_string(), "sipay declined the request (49): Refund Failed");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefundError {
    /// The request was invalid and was not sent.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] ValidationError),

    /// The provider processed the request and refused it.
    #[error("{provider} declined the request ({code}): {message}")]
    #[non_exhaustive]
    Declined {
        /// The provider.
        provider: &'static str,
        /// The provider's error code, verbatim (unknown codes are kept as they came).
        code: String,
        /// The provider's message.
        message: String,
        /// Whether the provider says the same request may succeed later.
        retryable: bool,
        /// How long to wait before the same request may succeed, when the provider (or its
        /// client crate, from the provider's documented rules) knows: SiPay refuses a refund of
        /// an invoice refunded less than 30 seconds before.
        retry_after: Option<Duration>,
    },

    /// The provider refused the credentials or signature; nothing was processed.
    #[error("{provider} rejected the authentication ({code}): {message}")]
    #[non_exhaustive]
    AuthenticationRejected {
        /// The provider.
        provider: &'static str,
        /// The provider's code, or the HTTP status.
        code: String,
        /// The provider's message.
        message: String,
    },

    /// The provider refused the request because of its rate; nothing was processed.
    #[error("{provider} is rate limiting requests")]
    #[non_exhaustive]
    RateLimited {
        /// The provider.
        provider: &'static str,
        /// How long the provider asked to wait, when it said.
        retry_after: Option<Duration>,
    },

    /// The provider could not be reached, and the request provably never left
    /// (DNS failure, connection refused, TLS handshake failure).
    #[error("{provider} could not be reached; the request was not sent")]
    #[non_exhaustive]
    Unreachable {
        /// The provider.
        provider: &'static str,
        /// The transport error.
        #[source]
        source: BoxError,
    },

    /// The request may have reached the provider, but no trustworthy answer came back
    /// (timeout, reset, 5xx, unreadable or contradictory response). The refund may or may not
    /// have happened: never resend blindly; look it up by its reference first.
    #[error("outcome of the {provider} request is unknown: {reason}; look it up before retrying")]
    #[non_exhaustive]
    OutcomeUnknown {
        /// The provider.
        provider: &'static str,
        /// What went wrong.
        reason: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The provider refused the request because it has already seen its reference (SiPay's
    /// code 104, `refund_transaction_id` not unique). An earlier attempt with this reference
    /// reached the provider, and nothing says whether it succeeded: this is never a decline.
    /// Look the refund up by its reference; do not resend with a fresh one.
    #[error(
        "{provider} has already seen this reference ({code}): {message}; an earlier attempt reached it, look it up"
    )]
    #[non_exhaustive]
    DuplicateReference {
        /// The provider.
        provider: &'static str,
        /// The provider's code.
        code: String,
        /// The provider's message.
        message: String,
    },

    /// The provider does not offer this operation.
    #[error("{provider} does not support {operation}")]
    #[non_exhaustive]
    Unsupported {
        /// The provider.
        provider: &'static str,
        /// The operation, e.g. `void`.
        operation: &'static str,
    },

    /// The client is misconfigured (bad base URL, missing credential); nothing was sent.
    #[error("{provider} client configuration: {message}")]
    #[non_exhaustive]
    Configuration {
        /// The provider.
        provider: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl RefundError {
    /// A decline that should not be retried as is.
    pub fn declined(
        provider: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        RefundError::Declined {
            provider,
            code: bounded(code.into()),
            message: bounded(message.into()),
            retryable: false,
            retry_after: None,
        }
    }

    /// A decline the provider marks as temporary.
    pub fn declined_retryable(
        provider: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let mut e = Self::declined(provider, code, message);
        if let RefundError::Declined { retryable, .. } = &mut e {
            *retryable = true;
        }
        e
    }

    /// A temporary decline that may succeed after `wait` (the provider's documented spacing,
    /// e.g. SiPay's 30 seconds between refunds of one invoice).
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = refund_core::RefundError::declined_retry_after("sipay", "49", "Refund Failed", Duration::from_secs(30));
    /// assert!(e.is_retryable());
    /// assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    /// ```
    pub fn declined_retry_after(
        provider: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
        wait: Duration,
    ) -> Self {
        let mut e = Self::declined_retryable(provider, code, message);
        if let RefundError::Declined { retry_after, .. } = &mut e {
            *retry_after = Some(wait);
        }
        e
    }

    /// A rate-limit answer (HTTP 429), with the pause the provider asked for (`Retry-After`).
    pub fn rate_limited(provider: &'static str, retry_after: Option<Duration>) -> Self {
        RefundError::RateLimited {
            provider,
            retry_after,
        }
    }

    /// A provider that could not be reached, the request provably not sent.
    pub fn unreachable(provider: &'static str, source: impl Into<BoxError>) -> Self {
        RefundError::Unreachable {
            provider,
            source: source.into(),
        }
    }

    /// Rejected credentials.
    pub fn authentication(
        provider: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        RefundError::AuthenticationRejected {
            provider,
            code: bounded(code.into()),
            message: bounded(message.into()),
        }
    }

    /// A failure after which the request may have been processed.
    pub fn outcome_unknown(provider: &'static str, reason: impl Into<String>) -> Self {
        RefundError::OutcomeUnknown {
            provider,
            reason: bounded(reason.into()),
            source: None,
        }
    }

    /// [`outcome_unknown`](Self::outcome_unknown) with the underlying error.
    pub fn outcome_unknown_from(
        provider: &'static str,
        reason: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        RefundError::OutcomeUnknown {
            provider,
            reason: bounded(reason.into()),
            source: Some(source.into()),
        }
    }

    /// A reference the provider has already seen (see
    /// [`DuplicateReference`](Self::DuplicateReference)).
    pub fn duplicate_reference(
        provider: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        RefundError::DuplicateReference {
            provider,
            code: bounded(code.into()),
            message: bounded(message.into()),
        }
    }

    /// An operation the provider does not offer.
    pub fn unsupported(provider: &'static str, operation: &'static str) -> Self {
        RefundError::Unsupported {
            provider,
            operation,
        }
    }

    /// A configuration problem.
    pub fn configuration(provider: &'static str, message: impl Into<String>) -> Self {
        RefundError::Configuration {
            provider,
            message: message.into(),
        }
    }

    /// Whether sending the same request again is safe and may succeed: the provider was
    /// unreachable, rate limited, or declined with a temporary reason. Never true for
    /// [`OutcomeUnknown`](Self::OutcomeUnknown).
    pub fn is_retryable(&self) -> bool {
        match self {
            RefundError::Unreachable { .. } | RefundError::RateLimited { .. } => true,
            RefundError::Declined { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Whether it is certain what happened to the money. [`OutcomeUnknown`](Self::OutcomeUnknown)
    /// and [`DuplicateReference`](Self::DuplicateReference) answer false: a refund with this
    /// reference may have been applied.
    pub fn is_outcome_known(&self) -> bool {
        !matches!(
            self,
            RefundError::OutcomeUnknown { .. } | RefundError::DuplicateReference { .. }
        )
    }

    /// A short, stable name for the class: `invalid_request`, `declined`,
    /// `authentication_rejected`, `rate_limited`, `unreachable`, `outcome_unknown`,
    /// `duplicate_reference`, `unsupported`, `configuration`. Every provider records it as the `outcome` field of its
    /// tracing spans, so logs from all providers read the same.
    ///
    /// ```
    /// assert_eq!(refund_core::RefundError::outcome_unknown("p", "reset").kind(), "outcome_unknown");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            RefundError::InvalidRequest(_) => "invalid_request",
            RefundError::Declined { .. } => "declined",
            RefundError::AuthenticationRejected { .. } => "authentication_rejected",
            RefundError::RateLimited { .. } => "rate_limited",
            RefundError::Unreachable { .. } => "unreachable",
            RefundError::OutcomeUnknown { .. } => "outcome_unknown",
            RefundError::DuplicateReference { .. } => "duplicate_reference",
            RefundError::Unsupported { .. } => "unsupported",
            RefundError::Configuration { .. } => "configuration",
        }
    }

    /// The provider involved, when the error came from one.
    pub fn provider(&self) -> Option<&'static str> {
        match self {
            RefundError::InvalidRequest(_) => None,
            RefundError::Declined { provider, .. }
            | RefundError::AuthenticationRejected { provider, .. }
            | RefundError::RateLimited { provider, .. }
            | RefundError::Unreachable { provider, .. }
            | RefundError::OutcomeUnknown { provider, .. }
            | RefundError::DuplicateReference { provider, .. }
            | RefundError::Unsupported { provider, .. }
            | RefundError::Configuration { provider, .. } => Some(provider),
        }
    }

    /// How long the provider asked to wait before the same request may succeed: a rate
    /// limit's `Retry-After`, or a temporary decline's documented spacing. `None` when it did
    /// not say (a driver then uses its own backoff).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RefundError::RateLimited { retry_after, .. }
            | RefundError::Declined { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the provider processed the request and refused it (a decline, temporary or
    /// final): such a refusal may leave a failed entry under the request's reference, which a
    /// later lookup must not mistake for the fate of a later attempt.
    pub fn is_refusal(&self) -> bool {
        matches!(self, RefundError::Declined { .. })
    }

    /// A copy of this error for another caller (one token fetch failing for many refunds, one
    /// answer shown twice): the same class, provider, code, message and advice. `RefundError` is
    /// not `Clone` (its sources are boxed errors), so a source is carried as its text.
    ///
    /// ```
    /// let e = refund_core::RefundError::unreachable("sipay", "connection refused");
    /// let copy = e.copied();
    /// assert_eq!(copy.kind(), "unreachable");
    /// assert_eq!(copy.to_string(), e.to_string());
    /// ```
    pub fn copied(&self) -> RefundError {
        let text = |source: &BoxError| -> BoxError { source.to_string().into() };
        match self {
            RefundError::InvalidRequest(v) => RefundError::InvalidRequest(v.clone()),
            RefundError::Declined {
                provider,
                code,
                message,
                retryable,
                retry_after,
            } => RefundError::Declined {
                provider,
                code: code.clone(),
                message: message.clone(),
                retryable: *retryable,
                retry_after: *retry_after,
            },
            RefundError::AuthenticationRejected {
                provider,
                code,
                message,
            } => RefundError::authentication(provider, code.as_str(), message.as_str()),
            RefundError::RateLimited {
                provider,
                retry_after,
            } => RefundError::rate_limited(provider, *retry_after),
            RefundError::Unreachable { provider, source } => {
                RefundError::unreachable(provider, text(source))
            }
            RefundError::OutcomeUnknown {
                provider,
                reason,
                source,
            } => RefundError::OutcomeUnknown {
                provider,
                reason: reason.clone(),
                source: source.as_ref().map(text),
            },
            RefundError::DuplicateReference {
                provider,
                code,
                message,
            } => RefundError::duplicate_reference(provider, code.as_str(), message.as_str()),
            RefundError::Unsupported {
                provider,
                operation,
            } => RefundError::unsupported(provider, operation),
            RefundError::Configuration { provider, message } => {
                RefundError::configuration(provider, message.as_str())
            }
        }
    }

    /// The provider's error code for declines, authentication errors and duplicate references.
    pub fn provider_code(&self) -> Option<&str> {
        match self {
            RefundError::Declined { code, .. }
            | RefundError::AuthenticationRejected { code, .. }
            | RefundError::DuplicateReference { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<crate::MoneyError> for RefundError {
    fn from(e: crate::MoneyError) -> Self {
        RefundError::InvalidRequest(e.into())
    }
}

fn bounded(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MoneyError;

    fn io() -> BoxError {
        Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }

    #[test]
    fn classes_answer_retryable_and_outcome_known() {
        let cases: Vec<(RefundError, bool, bool)> = vec![
            (ValidationError::ZeroAmount.into(), false, true),
            (RefundError::declined("p", "49", "no"), false, true),
            (
                RefundError::declined_retryable("p", "10246", "bank"),
                true,
                true,
            ),
            (RefundError::authentication("p", "30", "bad"), false, true),
            (RefundError::rate_limited("p", None), true, true),
            (RefundError::unreachable("p", io()), true, true),
            (RefundError::outcome_unknown("p", "timeout"), false, false),
            (
                RefundError::outcome_unknown_from("p", "reset", io()),
                false,
                false,
            ),
            (
                RefundError::duplicate_reference("sipay", "104", "not unique"),
                false,
                false,
            ),
            (RefundError::unsupported("p", "void"), false, true),
            (RefundError::configuration("p", "bad url"), false, true),
        ];
        for (e, retryable, known) in cases {
            assert_eq!(e.is_retryable(), retryable, "{e}");
            assert_eq!(e.is_outcome_known(), known, "{e}");
        }
    }

    #[test]
    fn provider_and_code_are_exposed() {
        let e = RefundError::declined("sipay", "49", "Refund Failed");
        assert_eq!(e.provider(), Some("sipay"));
        assert_eq!(e.provider_code(), Some("49"));
        let v: RefundError = MoneyError::Overflow.into();
        assert_eq!(v.provider(), None);
        assert_eq!(v.provider_code(), None);
    }

    #[test]
    fn long_provider_text_is_bounded() {
        let e = RefundError::declined("p", "1", "é".repeat(1000));
        let RefundError::Declined { message, .. } = &e else {
            unreachable!()
        };
        assert!(message.len() <= MAX_MESSAGE + '…'.len_utf8());
    }

    #[test]
    fn outcome_unknown_tells_the_caller_to_look_it_up() {
        let e = RefundError::outcome_unknown("iyzico", "connection reset");
        assert!(e.to_string().contains("look it up before retrying"));
        assert!(std::error::Error::source(&e).is_none());
        let e = RefundError::outcome_unknown_from("iyzico", "reset", io());
        assert!(std::error::Error::source(&e).is_some());
    }
}
