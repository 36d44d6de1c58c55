//! A conformance suite for any [`RefundProvider`]: one set of public async scenarios that every
//! provider crate runs against its own simulator or in-memory fake, in the manner of
//! `object_store`'s shared integration tests.
//!
//! A provider crate implements [`Harness`] (how to seed a payment in its fake, arm a fault,
//! read the fake's ledger and request counts, which secrets the client was configured with),
//! then calls [`run`] once. [`run`] executes every [`Scenario`] in order, each on its own
//! freshly seeded payment, and returns a [`Report`] that prints as a table and fails the test
//! through [`Report::assert_passed`] when a scenario failed or a skip has no reason.
//!
//! ```
//! use std::sync::Arc;
//! use refund_core::*;
//! use refund_testkit::conformance::{self, Harness, HarnessError, Scenario};
//!
//! // A provider whose refunds always fail before sending: a stand-in for a real client.
//! #[derive(Debug)]
//! struct Closed;
//!
//! #[async_trait]
//! impl RefundProvider for Closed {
//!     fn name(&self) -> &'static str { "closed" }
//!     fn capabilities(&self) -> Capabilities { Capabilities::new(&[Currency::Try]) }
//!     async fn refund(&self, r: &RefundRequest) -> Result<RefundReceipt, RefundError> {
//!         self.capabilities().check(self.name(), r)?;
//!         Err(RefundError::configuration("closed", "this example never sends"))
//!     }
//! }
//!
//! #[derive(Debug)]
//! struct ClosedHarness;
//!
//! #[async_trait]
//! impl Harness for ClosedHarness {
//!     async fn seed_payment(&self, _amount: Money) -> Result<PaymentRef, HarnessError> {
//!         Ok(PaymentRef::payment("P-1"))
//!     }
//!     async fn refunded_total(&self, _payment: &PaymentRef) -> Result<Money, HarnessError> {
//!         Ok(Money::zero(Currency::Try))
//!     }
//!     fn requests_sent(&self) -> usize { 0 }
//!     fn refund_requests_sent(&self) -> usize { 0 }
//!     fn secrets(&self) -> Vec<String> { vec!["closed-secret-0000".into()] }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // One scenario on its own …
//! let outcome = conformance::invalid_amounts_rejected_locally(&Closed, &ClosedHarness).await;
//! assert!(outcome.is_passed(), "{outcome}");
//! // … or the whole suite: this provider fails most of it, and the report says which.
//! let report = conformance::run(&Closed, &ClosedHarness).await;
//! assert!(!report.is_passed());
//! assert!(report.to_string().contains("full_refund"));
//! # });
//! ```
//!
//! See `docs/writing-a-provider.md` for the walk-through (the worked example
//! `examples/refund-acme` builds its fake on [`SimServer`](crate::sim::SimServer)), and
//! `SipayHarness` / `IyzicoHarness` (features `sipay`, `iyzico`) for harnesses over this
//! crate's simulators.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use refund_core::{Currency, Money, PaymentRef, RefundProvider};

mod capture;
#[cfg(feature = "iyzico")]
mod harness_iyzico;
#[cfg(feature = "sipay")]
mod harness_sipay;
mod report;
mod scenarios;

pub use capture::{CapturedOutput, capture_tracing};
#[cfg(feature = "iyzico")]
pub use harness_iyzico::IyzicoHarness;
#[cfg(feature = "sipay")]
pub use harness_sipay::SipayHarness;
pub use report::{Outcome, Report, ScenarioResult};
pub use scenarios::*;

/// How long one scenario may take before it is failed as hung: a provider without a client
/// timeout would otherwise stall the suite forever.
pub const SCENARIO_TIME_LIMIT: Duration = Duration::from_secs(120);

/// A failure the harness can ask its fake provider to produce on the next refund request.
///
/// Provider-neutral on purpose: an HTTP fake built on [`SimServer`](crate::sim::SimServer)
/// (or one of this crate's simulators) maps each onto a simulator fault with
/// [`Fault::to_sim`]; an in-memory fake onto whatever its transport can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The request reaches the provider, whose answer comes later than the client's
    /// timeout. Whether the refund is applied meanwhile is up to the fake; the client must
    /// answer [`RefundError::OutcomeUnknown`](refund_core::RefundError::OutcomeUnknown)
    /// and must not resend. Harnesses should build their provider with a short timeout
    /// (1–2 s) so the suite stays fast.
    Timeout,
    /// The provider applies the refund, then the response is lost (the connection drops
    /// before an answer): the client sees an outcome-unknown failure although the money moved.
    LostResponse,
    /// The provider answers with a server error (HTTP 500 or the transport's equivalent)
    /// after the request reached it.
    ServerError,
    /// The request reaches the provider, the client times out, and the provider applies the
    /// refund *after* the client gave up (as real providers under load do). The harness must
    /// make the fake apply it within a few seconds of the client's timeout.
    AppliedAfterTimeout,
    /// The provider processes the refund as one the bank refused, records it as *failed*
    /// under its reference, and the answer is lost. A lookup must never turn it into a refund.
    FailedResponseLost,
    /// The provider refuses the request with its rate-limit answer (HTTP 429 with
    /// `Retry-After: 1`) without processing it.
    RateLimited,
    /// The provider applies the refund and answers success, but the answer arrives cut in
    /// half: not valid JSON (a proxy dropped its tail).
    MalformedAnswer,
    /// The provider applies the refund and answers success with an empty body.
    EmptyAnswer,
    /// The provider applies the refund as asked, but its success answer states a different
    /// amount (one major unit more).
    AmountMismatch,
}

impl Fault {
    /// The simulator fault ([`sim::Fault`](crate::sim::Fault)) that produces this one on a
    /// [`SimServer`](crate::sim::SimServer), for a client whose timeout is `client_timeout`:
    /// [`AppliedAfterTimeout`](Fault::AppliedAfterTimeout) is a delay of a second past it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use refund_testkit::{conformance::Fault, sim};
    ///
    /// let timeout = Duration::from_secs(1);
    /// assert_eq!(Fault::LostResponse.to_sim(timeout), sim::Fault::LostResponse);
    /// assert_eq!(Fault::AppliedAfterTimeout.to_sim(timeout), sim::Fault::Delay(Duration::from_secs(2)));
    /// ```
    pub fn to_sim(self, client_timeout: Duration) -> crate::sim::Fault {
        use crate::sim::Fault as Sim;
        match self {
            Fault::Timeout => Sim::Timeout,
            Fault::LostResponse => Sim::LostResponse,
            Fault::ServerError => Sim::Http500,
            // Applied a second after the client's timeout, whether or not it still listens.
            Fault::AppliedAfterTimeout => Sim::Delay(client_timeout + Duration::from_secs(1)),
            Fault::FailedResponseLost => Sim::FailLostResponse,
            Fault::RateLimited => Sim::Http429,
            Fault::MalformedAnswer => Sim::Malformed,
            Fault::EmptyAnswer => Sim::Empty,
            Fault::AmountMismatch => Sim::WrongAmount,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Timeout => "a timeout",
            Fault::LostResponse => "a lost response",
            Fault::ServerError => "a server error",
            Fault::AppliedAfterTimeout => "a refund applied after the client's timeout",
            Fault::FailedResponseLost => "a failed refund whose answer was lost",
            Fault::RateLimited => "a rate-limit answer",
            Fault::MalformedAnswer => "a success answer cut in half",
            Fault::EmptyAnswer => "an empty success answer",
            Fault::AmountMismatch => "a success answer stating another amount",
        })
    }
}

/// What a harness answers when it cannot do what a scenario asks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HarnessError {
    /// The harness cannot do this at all (e.g. its fake has no way to produce a fault).
    /// A scenario that needs it fails unless the harness declares it skipped with a reason.
    Unsupported(Cow<'static, str>),
    /// The harness tried and failed (the simulator refused the seed, say).
    Failed(String),
}

impl HarnessError {
    /// The harness cannot do `what`.
    pub fn unsupported(what: impl Into<Cow<'static, str>>) -> Self {
        HarnessError::Unsupported(what.into())
    }

    /// The harness failed doing something it supports.
    pub fn failed(why: impl fmt::Display) -> Self {
        HarnessError::Failed(why.to_string())
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Unsupported(what) => write!(f, "the harness cannot {what}"),
            HarnessError::Failed(why) => write!(f, "the harness failed: {why}"),
        }
    }
}

impl std::error::Error for HarnessError {}

/// `http://127.0.0.1:<port>` for a port nothing listens on (bound, then released), for
/// [`Harness::unreachable_provider`] over HTTP: configure a copy of the provider with it.
///
/// ```
/// let url = refund_testkit::conformance::closed_port_url().expect("a free loopback port");
/// assert!(url.starts_with("http://127.0.0.1:"));
/// assert!(std::net::TcpStream::connect(url.trim_start_matches("http://")).is_err());
/// ```
pub fn closed_port_url() -> Option<String> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).ok()?;
    let port = listener.local_addr().ok()?.port();
    drop(listener);
    Some(format!("http://127.0.0.1:{port}"))
}

/// A scenario the harness declares it cannot run, with the reason (required, non-empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The scenario.
    pub scenario: Scenario,
    /// Why it cannot run against this provider. An empty reason fails the suite.
    pub reason: Cow<'static, str>,
}

impl Skip {
    /// Declares `scenario` skipped because of `reason`.
    pub fn new(scenario: Scenario, reason: impl Into<Cow<'static, str>>) -> Self {
        Skip {
            scenario,
            reason: reason.into(),
        }
    }
}

/// What the suite needs from a provider crate besides the provider itself: control over the
/// fake it runs against, and a view of the fake's books.
///
/// Counts are read before and after each scenario's calls, so the fake must count every
/// request that reaches it; [`run`] runs the scenarios one after another, so do not share
/// one harness between suites running at the same time.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Creates a payment of `amount` in the fake and returns the reference the provider's
    /// `refund` takes to refund it (a payment id; for a provider that only refunds basket
    /// lines, the reference of one line carrying the whole amount). Every call creates a new,
    /// unrelated payment: scenarios never share one.
    async fn seed_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError>;

    /// Creates a payment of `amount` with one basket line carrying all of it and returns the
    /// line's reference ([`PaymentRef::item`]), for providers whose capabilities declare
    /// item refunds. The default answers unsupported.
    async fn seed_item_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError> {
        let _ = amount;
        Err(HarnessError::unsupported("seed item-level payments"))
    }

    /// What the fake's ledger says has been refunded (and voided) of `payment` so far: the
    /// ground truth the suite compares receipts with.
    async fn refunded_total(&self, payment: &PaymentRef) -> Result<Money, HarnessError>;

    /// Makes the fake fail the next refund request with `fault`. The default answers
    /// unsupported, which fails the fault scenarios unless they are declared skipped. A fake
    /// on [`SimServer`](crate::sim::SimServer): `server.arm(fault.to_sim(timeout), 1)`.
    async fn arm_fault(&self, fault: Fault) -> Result<(), HarnessError> {
        Err(HarnessError::unsupported(format!("arm {fault}")))
    }

    /// Makes the fake's lookups lag: a refund applied less than `lag` ago is not shown by
    /// [`RefundProvider::refund_state`] yet. `Duration::ZERO` turns the lag off. The default
    /// answers unsupported, which fails the lag scenario unless it is declared skipped.
    async fn set_lookup_lag(&self, lag: Duration) -> Result<(), HarnessError> {
        let _ = lag;
        Err(HarnessError::unsupported("make lookups lag"))
    }

    /// Every request of any kind that has reached the fake so far (tokens, refunds, lookups).
    fn requests_sent(&self) -> usize;

    /// The money-moving requests (refunds and voids) that have reached the fake so far,
    /// including ones that were then failed by an armed fault.
    fn refund_requests_sent(&self) -> usize;

    /// Every secret the provider was configured with or was issued (API keys, signing keys,
    /// bearer tokens handed out by the fake so far). Called after a scenario's calls, so it
    /// may include tokens issued meanwhile. Each must be at least 8 characters long so that
    /// finding it in output is meaningful.
    fn secrets(&self) -> Vec<String>;

    /// A provider configured like the real one but pointed at a closed port (or the
    /// transport's equivalent), so every call fails before anything is sent. `None` fails the
    /// connect-refused scenario unless it is declared skipped. Over HTTP, configure a copy of
    /// the provider with [`closed_port_url`].
    fn unreachable_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        None
    }

    /// A provider configured like the real one, against the same fake, but with a wrong
    /// secret (at least 8 characters, listed by no [`secrets`](Harness::secrets) call), so
    /// the fake rejects its authentication. `None` fails the rejected-authentication scenario
    /// unless it is declared skipped.
    fn wrong_credentials_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        None
    }

    /// A payment reference the fake has never seen, in the format the provider expects.
    fn unknown_payment(&self) -> PaymentRef {
        PaymentRef::payment("conformance-no-such-payment")
    }

    /// The currency payments are seeded in. It must be one the provider's capabilities list.
    fn currency(&self) -> Currency {
        Currency::Try
    }

    /// Scenarios this provider cannot run, each with the reason.
    fn skips(&self) -> Vec<Skip> {
        Vec::new()
    }
}

/// A scenario of the suite. [`Scenario::ALL`] lists them in the order [`run`] runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scenario {
    /// [`full_refund`].
    FullRefund,
    /// [`partial_refund`].
    PartialRefund,
    /// [`repeated_partial_refunds`].
    RepeatedPartialRefunds,
    /// [`over_refund_declined`].
    OverRefundDeclined,
    /// [`unknown_payment_declined`].
    UnknownPaymentDeclined,
    /// [`invalid_amounts_rejected_locally`].
    InvalidAmountsRejectedLocally,
    /// [`currency_scale_enforced`].
    CurrencyScaleEnforced,
    /// [`capabilities_match_behaviour`].
    CapabilitiesMatchBehaviour,
    /// [`amount_mismatch_is_outcome_unknown`].
    AmountMismatchIsOutcomeUnknown,
    /// [`rejected_authentication_is_reported`].
    RejectedAuthenticationIsReported,
    /// [`rate_limit_is_retryable`].
    RateLimitIsRetryable,
    /// [`timeout_is_outcome_unknown`].
    TimeoutIsOutcomeUnknown,
    /// [`server_error_is_outcome_unknown`].
    ServerErrorIsOutcomeUnknown,
    /// [`malformed_answer_is_outcome_unknown`].
    MalformedAnswerIsOutcomeUnknown,
    /// [`empty_answer_is_outcome_unknown`].
    EmptyAnswerIsOutcomeUnknown,
    /// [`connect_refused_is_retryable`].
    ConnectRefusedIsRetryable,
    /// [`lost_response_is_reconciled`].
    LostResponseIsReconciled,
    /// [`late_application_is_not_resent`].
    LateApplicationIsNotResent,
    /// [`lagging_lookup_is_not_proof`].
    LaggingLookupIsNotProof,
    /// [`failed_entry_is_not_refunded`].
    FailedEntryIsNotRefunded,
    /// [`reused_reference_is_not_paid_twice`].
    ReusedReferenceIsNotPaidTwice,
    /// [`secrets_never_leak`].
    SecretsNeverLeak,
    /// [`concurrent_refunds_never_exceed_paid`].
    ConcurrentRefundsNeverExceedPaid,
}

impl Scenario {
    /// Every scenario, in the order [`run`] runs them.
    pub const ALL: &'static [Scenario] = &[
        Scenario::FullRefund,
        Scenario::PartialRefund,
        Scenario::RepeatedPartialRefunds,
        Scenario::OverRefundDeclined,
        Scenario::UnknownPaymentDeclined,
        Scenario::InvalidAmountsRejectedLocally,
        Scenario::CurrencyScaleEnforced,
        Scenario::CapabilitiesMatchBehaviour,
        Scenario::AmountMismatchIsOutcomeUnknown,
        Scenario::RejectedAuthenticationIsReported,
        Scenario::RateLimitIsRetryable,
        Scenario::TimeoutIsOutcomeUnknown,
        Scenario::ServerErrorIsOutcomeUnknown,
        Scenario::MalformedAnswerIsOutcomeUnknown,
        Scenario::EmptyAnswerIsOutcomeUnknown,
        Scenario::ConnectRefusedIsRetryable,
        Scenario::LostResponseIsReconciled,
        Scenario::LateApplicationIsNotResent,
        Scenario::LaggingLookupIsNotProof,
        Scenario::FailedEntryIsNotRefunded,
        Scenario::ReusedReferenceIsNotPaidTwice,
        Scenario::SecretsNeverLeak,
        Scenario::ConcurrentRefundsNeverExceedPaid,
    ];

    /// The scenario's name: the name of its function.
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::FullRefund => "full_refund",
            Scenario::PartialRefund => "partial_refund",
            Scenario::RepeatedPartialRefunds => "repeated_partial_refunds",
            Scenario::OverRefundDeclined => "over_refund_declined",
            Scenario::UnknownPaymentDeclined => "unknown_payment_declined",
            Scenario::InvalidAmountsRejectedLocally => "invalid_amounts_rejected_locally",
            Scenario::CurrencyScaleEnforced => "currency_scale_enforced",
            Scenario::CapabilitiesMatchBehaviour => "capabilities_match_behaviour",
            Scenario::AmountMismatchIsOutcomeUnknown => "amount_mismatch_is_outcome_unknown",
            Scenario::RejectedAuthenticationIsReported => "rejected_authentication_is_reported",
            Scenario::RateLimitIsRetryable => "rate_limit_is_retryable",
            Scenario::TimeoutIsOutcomeUnknown => "timeout_is_outcome_unknown",
            Scenario::ServerErrorIsOutcomeUnknown => "server_error_is_outcome_unknown",
            Scenario::MalformedAnswerIsOutcomeUnknown => "malformed_answer_is_outcome_unknown",
            Scenario::EmptyAnswerIsOutcomeUnknown => "empty_answer_is_outcome_unknown",
            Scenario::ConnectRefusedIsRetryable => "connect_refused_is_retryable",
            Scenario::LostResponseIsReconciled => "lost_response_is_reconciled",
            Scenario::LateApplicationIsNotResent => "late_application_is_not_resent",
            Scenario::LaggingLookupIsNotProof => "lagging_lookup_is_not_proof",
            Scenario::FailedEntryIsNotRefunded => "failed_entry_is_not_refunded",
            Scenario::ReusedReferenceIsNotPaidTwice => "reused_reference_is_not_paid_twice",
            Scenario::SecretsNeverLeak => "secrets_never_leak",
            Scenario::ConcurrentRefundsNeverExceedPaid => "concurrent_refunds_never_exceed_paid",
        }
    }

    /// Runs this one scenario.
    pub async fn run(self, provider: &dyn RefundProvider, harness: &dyn Harness) -> Outcome {
        match self {
            Scenario::FullRefund => full_refund(provider, harness).await,
            Scenario::PartialRefund => partial_refund(provider, harness).await,
            Scenario::RepeatedPartialRefunds => repeated_partial_refunds(provider, harness).await,
            Scenario::OverRefundDeclined => over_refund_declined(provider, harness).await,
            Scenario::UnknownPaymentDeclined => unknown_payment_declined(provider, harness).await,
            Scenario::InvalidAmountsRejectedLocally => {
                invalid_amounts_rejected_locally(provider, harness).await
            }
            Scenario::CurrencyScaleEnforced => currency_scale_enforced(provider, harness).await,
            Scenario::CapabilitiesMatchBehaviour => {
                capabilities_match_behaviour(provider, harness).await
            }
            Scenario::AmountMismatchIsOutcomeUnknown => {
                amount_mismatch_is_outcome_unknown(provider, harness).await
            }
            Scenario::RejectedAuthenticationIsReported => {
                rejected_authentication_is_reported(provider, harness).await
            }
            Scenario::RateLimitIsRetryable => {
                Box::pin(rate_limit_is_retryable(provider, harness)).await
            }
            Scenario::MalformedAnswerIsOutcomeUnknown => {
                malformed_answer_is_outcome_unknown(provider, harness).await
            }
            Scenario::EmptyAnswerIsOutcomeUnknown => {
                empty_answer_is_outcome_unknown(provider, harness).await
            }
            Scenario::TimeoutIsOutcomeUnknown => {
                timeout_is_outcome_unknown(provider, harness).await
            }
            Scenario::ServerErrorIsOutcomeUnknown => {
                server_error_is_outcome_unknown(provider, harness).await
            }
            Scenario::ConnectRefusedIsRetryable => {
                connect_refused_is_retryable(provider, harness).await
            }
            Scenario::LostResponseIsReconciled => {
                Box::pin(lost_response_is_reconciled(provider, harness)).await
            }
            Scenario::LateApplicationIsNotResent => {
                Box::pin(late_application_is_not_resent(provider, harness)).await
            }
            Scenario::LaggingLookupIsNotProof => {
                Box::pin(lagging_lookup_is_not_proof(provider, harness)).await
            }
            Scenario::FailedEntryIsNotRefunded => {
                Box::pin(failed_entry_is_not_refunded(provider, harness)).await
            }
            Scenario::ReusedReferenceIsNotPaidTwice => {
                Box::pin(reused_reference_is_not_paid_twice(provider, harness)).await
            }
            Scenario::SecretsNeverLeak => Box::pin(secrets_never_leak(provider, harness)).await,
            Scenario::ConcurrentRefundsNeverExceedPaid => {
                concurrent_refunds_never_exceed_paid(provider, harness).await
            }
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs every scenario in [`Scenario::ALL`] against `provider`, in order, and reports each by
/// name. A scenario the harness declares skipped is reported skipped with its reason (an
/// empty reason is a failure); a scenario that takes longer than [`SCENARIO_TIME_LIMIT`] is
/// failed as hung.
pub async fn run(provider: &dyn RefundProvider, harness: &dyn Harness) -> Report {
    run_only(provider, harness, Scenario::ALL).await
}

/// [`run`], restricted to `scenarios`.
pub async fn run_only(
    provider: &dyn RefundProvider,
    harness: &dyn Harness,
    scenarios: &[Scenario],
) -> Report {
    let skips = harness.skips();
    let mut results = Vec::with_capacity(scenarios.len());
    for &scenario in scenarios {
        let started = Instant::now();
        let outcome = match skips.iter().find(|s| s.scenario == scenario) {
            Some(skip) if skip.reason.trim().is_empty() => Outcome::Failed(
                "declared skipped without a reason: say why the provider cannot run it".into(),
            ),
            Some(skip) => Outcome::Skipped(skip.reason.to_string()),
            None => {
                match tokio::time::timeout(SCENARIO_TIME_LIMIT, scenario.run(provider, harness))
                    .await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Failed(format!(
                        "did not finish within {} s: does the client have a timeout?",
                        SCENARIO_TIME_LIMIT.as_secs()
                    )),
                }
            }
        };
        results.push(ScenarioResult {
            scenario,
            outcome,
            elapsed: started.elapsed(),
        });
    }
    Report::new(provider.name(), results)
}
