//! The conformance suite run against every provider in the workspace — SiPay and iyzico
//! through the test kit's simulators, and the worked third-party example `refund-acme`
//! through its fake — plus proof that the suite catches the bugs it exists for: for each rule,
//! a provider that breaks it on purpose fails the scenario that names it.
//!
//! Run with `cargo test -p refunds --test conformance -- --nocapture` to see each report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use refund_acme::testing::AcmeHarness;
use refund_core::{
    Capabilities, Money, PaymentRef, RefundError, RefundProvider, RefundReceipt, RefundRequest,
    RefundState, RefundStatus, VoidRequest, async_trait,
};
use refund_testkit::conformance::{
    self, Fault, Harness, HarnessError, IyzicoHarness, Outcome, Report, Scenario, SipayHarness,
    Skip,
};

#[allow(clippy::print_stdout, reason = "the table is the test's useful output")]
fn show(report: &Report) {
    println!("{report}");
}

// ---------------------------------------------------------------------------------------
// The providers.

#[tokio::test]
async fn sipay_passes_the_conformance_suite() {
    let harness = SipayHarness::start().await.unwrap();
    let report = conformance::run(&harness.provider(), &harness).await;
    show(&report);
    report.assert_passed();
}

#[tokio::test]
async fn iyzico_passes_the_conformance_suite() {
    let harness = IyzicoHarness::start().await.unwrap();
    let report = conformance::run(&harness.provider(), &harness).await;
    show(&report);
    report.assert_passed();
    assert!(
        report.results.iter().all(|r| r.outcome.is_passed()),
        "iyzico skips nothing:\n{report}"
    );
}

#[tokio::test]
async fn acme_passes_the_conformance_suite_with_nothing_skipped() {
    let harness = AcmeHarness::start().await.unwrap();
    let report = conformance::run(&harness.provider(), &harness).await;
    show(&report);
    report.assert_passed();
    assert_eq!(report.results.len(), Scenario::ALL.len());
    assert!(
        report.results.iter().all(|r| r.outcome.is_passed()),
        "{report}"
    );
}

// ---------------------------------------------------------------------------------------
// The suite catches what it exists for. Each provider below wraps acme and breaks one rule;
// the harness wraps the providers it builds (unreachable, wrong credentials) the same way.

type Wrap = Box<dyn Fn(Arc<dyn RefundProvider>) -> Arc<dyn RefundProvider> + Send + Sync>;

/// Acme's harness, with every provider it hands out broken by `wrap`.
struct Broken {
    inner: AcmeHarness,
    wrap: Wrap,
    skips: Vec<Skip>,
}

impl Broken {
    async fn new(wrap: Wrap) -> (Arc<dyn RefundProvider>, Broken) {
        let inner = AcmeHarness::start().await.unwrap();
        let provider = wrap(Arc::new(inner.provider()));
        let skips = Vec::new();
        (provider, Broken { inner, wrap, skips })
    }

    /// Runs `scenarios` and asserts each fails; returns the report.
    async fn fails(
        provider: &dyn RefundProvider,
        harness: &Broken,
        scenarios: &[Scenario],
    ) -> Report {
        let report = conformance::run_only(provider, harness, scenarios).await;
        show(&report);
        for &scenario in scenarios {
            assert!(
                report.outcome(scenario).is_some_and(Outcome::is_failed),
                "{scenario} should fail:\n{report}"
            );
        }
        report
    }
}

#[async_trait]
impl Harness for Broken {
    async fn seed_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError> {
        self.inner.seed_payment(amount).await
    }
    async fn refunded_total(&self, payment: &PaymentRef) -> Result<Money, HarnessError> {
        self.inner.refunded_total(payment).await
    }
    async fn arm_fault(&self, fault: Fault) -> Result<(), HarnessError> {
        self.inner.arm_fault(fault).await
    }
    async fn set_lookup_lag(&self, lag: Duration) -> Result<(), HarnessError> {
        self.inner.set_lookup_lag(lag).await
    }
    fn requests_sent(&self) -> usize {
        self.inner.requests_sent()
    }
    fn refund_requests_sent(&self) -> usize {
        self.inner.refund_requests_sent()
    }
    fn secrets(&self) -> Vec<String> {
        self.inner.secrets()
    }
    fn unreachable_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        self.inner.unreachable_provider().map(&self.wrap)
    }
    fn wrong_credentials_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        self.inner.wrong_credentials_provider().map(&self.wrap)
    }
    fn skips(&self) -> Vec<Skip> {
        self.skips.clone()
    }
}

/// A provider that forwards everything to the one it wraps, except what it breaks: implement
/// [`Breaks`] and serve it as `Broke(…)`.
#[async_trait]
trait Breaks: Send + Sync + std::fmt::Debug {
    fn inner(&self) -> &dyn RefundProvider;
    fn capabilities(&self) -> Capabilities {
        self.inner().capabilities()
    }
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        self.inner().refund(request).await
    }
    async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        self.inner().void(request).await
    }
    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        self.inner().refund_state(payment).await
    }
}

#[derive(Debug)]
struct Broke<T>(T);

#[async_trait]
impl<T: Breaks> RefundProvider for Broke<T> {
    fn name(&self) -> &'static str {
        self.0.inner().name()
    }
    fn capabilities(&self) -> Capabilities {
        Breaks::capabilities(&self.0)
    }
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        Breaks::refund(&self.0, request).await
    }
    async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        Breaks::void(&self.0, request).await
    }
    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        Breaks::refund_state(&self.0, payment).await
    }
}

/// Declares a broken provider: a newtype over the provider it wraps, and its [`Breaks`] impl
/// with the methods given.
macro_rules! broken {
    ($(#[$doc:meta])* $name:ident { $($method:tt)* }) => {
        $(#[$doc])*
        #[derive(Debug)]
        struct $name(Arc<dyn RefundProvider>);

        #[async_trait]
        impl Breaks for $name {
            fn inner(&self) -> &dyn RefundProvider {
                &*self.0
            }
            $($method)*
        }
    };
}

/// Wraps every provider in `Broke($name(…))`.
macro_rules! wrap {
    ($name:ident) => {
        Box::new(|p| Arc::new(Broke($name(p))))
    };
}

/// A receipt for `request`, as a provider that believes it was refunded would issue.
fn receipt_for(request: &RefundRequest) -> RefundReceipt {
    RefundReceipt::new(
        "acme",
        refund_core::Operation::Refund,
        request.payment().clone(),
        request.reference().clone(),
        request.amount(),
        RefundStatus::Completed,
    )
}

broken!(
    /// Rule: a request that may have been applied is never resent. This one "helpfully"
    /// resends a refund whose outcome was unknown.
    ResendsOnUnknown {
        async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
            match self.0.refund(request).await {
                Err(e) if !e.is_outcome_known() => self.0.refund(request).await,
                other => other,
            }
        }
    }
);

#[tokio::test]
async fn the_suite_fails_a_provider_that_resends_after_an_unknown_outcome() {
    let (provider, harness) = Broken::new(wrap!(ResendsOnUnknown)).await;
    let report = Broken::fails(
        &*provider,
        &harness,
        &[
            Scenario::TimeoutIsOutcomeUnknown,
            Scenario::ServerErrorIsOutcomeUnknown,
            Scenario::LostResponseIsReconciled,
            Scenario::LateApplicationIsNotResent,
        ],
    )
    .await;
    let lost = report.outcome(Scenario::LostResponseIsReconciled).unwrap();
    assert!(lost.to_string().contains("2 refund requests"), "{lost}");
}

broken!(
    /// Rule: a receipt only for an answer that says what was asked. This one trusts a success
    /// whatever amount it states.
    IgnoresTheAnsweredAmount {
        async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
            match self.0.refund(request).await {
                Err(e) if e.to_string().contains("is not the refund asked for") => {
                    Ok(receipt_for(request))
                }
                other => other,
            }
        }
    }
);

#[tokio::test]
async fn the_suite_fails_a_provider_that_ignores_the_amount_in_the_answer() {
    let (provider, harness) = Broken::new(wrap!(IgnoresTheAnsweredAmount)).await;
    let scenarios = [Scenario::AmountMismatchIsOutcomeUnknown];
    Broken::fails(&*provider, &harness, &scenarios).await;
}

broken!(
    /// Rule: an unreadable answer is an unknown outcome, never a decline. This one calls any
    /// failure after an HTTP 200 a decline.
    DeclinesUnreadableAnswers {
        async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
            match self.0.refund(request).await {
                Err(e) if e.to_string().contains("HTTP 200") => {
                    Err(RefundError::declined("acme", "unreadable", "no usable answer"))
                }
                other => other,
            }
        }
    }
);

#[tokio::test]
async fn the_suite_fails_a_provider_that_reads_an_unreadable_answer_as_a_decline() {
    let (provider, harness) = Broken::new(wrap!(DeclinesUnreadableAnswers)).await;
    let scenarios = [
        Scenario::MalformedAnswerIsOutcomeUnknown,
        Scenario::EmptyAnswerIsOutcomeUnknown,
    ];
    let report = Broken::fails(&*provider, &harness, &scenarios).await;
    let malformed = report.outcome(scenarios[0]).unwrap().to_string();
    assert!(malformed.contains("Declined"), "{malformed}");
}

broken!(
    /// Rule: rejected credentials are reported as such. This one reports them as a decline,
    /// which an operator reads as "the bank said no".
    DeclinesOnRejectedCredentials {
        async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
            match self.0.refund(request).await {
                Err(RefundError::AuthenticationRejected { code, message, .. }) => {
                    Err(RefundError::declined("acme", code, message))
                }
                other => other,
            }
        }
    }
);

#[tokio::test]
async fn the_suite_fails_a_provider_that_reports_rejected_credentials_as_a_decline() {
    let (provider, harness) = Broken::new(wrap!(DeclinesOnRejectedCredentials)).await;
    let scenarios = [Scenario::RejectedAuthenticationIsReported];
    Broken::fails(&*provider, &harness, &scenarios).await;
}

broken!(
    /// Rule: retries belong to the caller, after the pause. This one waits out a rate limit
    /// and resends by itself.
    RetriesWhenRateLimited {
        async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
            match self.0.refund(request).await {
                Err(RefundError::RateLimited { retry_after, .. }) => {
                    tokio::time::sleep(retry_after.unwrap_or_default()).await;
                    self.0.refund(request).await
                }
                other => other,
            }
        }
    }
);

#[tokio::test]
async fn the_suite_fails_a_provider_that_retries_a_rate_limit_itself() {
    let (provider, harness) = Broken::new(wrap!(RetriesWhenRateLimited)).await;
    Broken::fails(&*provider, &harness, &[Scenario::RateLimitIsRetryable]).await;
}

broken!(
    /// Rule: a duplicate reference means "look it up", never "declined". This one declines.
    DeclinesADuplicateReference {
        async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
            match self.0.refund(request).await {
                Err(RefundError::DuplicateReference { code, message, .. }) => {
                    Err(RefundError::declined("acme", code, message))
                }
                other => other,
            }
        }
    }
);

#[tokio::test]
async fn the_suite_fails_a_provider_that_declines_a_duplicate_reference() {
    let (provider, harness) = Broken::new(wrap!(DeclinesADuplicateReference)).await;
    let scenarios = [Scenario::ReusedReferenceIsNotPaidTwice];
    Broken::fails(&*provider, &harness, &scenarios).await;
}

broken!(
    /// Rule: the settle time covers the lookup's lag. This one declares none, so a refund its
    /// lookup does not show yet looks safe to resend.
    DeclaresNoSettleTime {
        fn capabilities(&self) -> Capabilities {
            self.0.capabilities().with_settle_time(Duration::ZERO)
        }
    }
);

#[tokio::test]
async fn the_suite_fails_a_provider_whose_settle_time_ignores_the_lookup_lag() {
    let (provider, harness) = Broken::new(wrap!(DeclaresNoSettleTime)).await;
    let report = Broken::fails(&*provider, &harness, &[Scenario::LaggingLookupIsNotProof]).await;
    let lagging = report.outcome(Scenario::LaggingLookupIsNotProof).unwrap();
    assert!(lagging.to_string().contains("pays twice"), "{lagging}");
}

broken!(
    /// Rule: a failed refund is never counted as refunded. This one's lookup counts every
    /// entry, failed ones too.
    CountsFailedRefunds {
        async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
            let mut state = self.0.refund_state(payment).await?;
            for record in &mut state.refunds {
                if record.status == RefundStatus::Failed {
                    record.status = RefundStatus::Completed;
                    state.refunded = state.refunded.checked_add(&record.amount)?;
                }
            }
            Ok(state)
        }
    }
);

#[tokio::test]
async fn the_suite_fails_a_provider_that_counts_failed_refunds() {
    let (provider, harness) = Broken::new(wrap!(CountsFailedRefunds)).await;
    Broken::fails(&*provider, &harness, &[Scenario::FailedEntryIsNotRefunded]).await;
}

/// Rule: no secret in output. This one logs its key at TRACE level (its `Debug` is careful;
/// its logging is not).
struct LogsItsSecret {
    inner: Arc<dyn RefundProvider>,
    secret: String,
}

impl std::fmt::Debug for LogsItsSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsItsSecret")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RefundProvider for LogsItsSecret {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        tracing::trace!(key = %self.secret, "signing");
        self.inner.refund(request).await
    }
    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        self.inner.refund_state(payment).await
    }
}

#[tokio::test]
async fn the_suite_fails_a_provider_that_logs_a_secret_at_trace_level() {
    let harness = AcmeHarness::start().await.unwrap();
    let provider = LogsItsSecret {
        inner: Arc::new(harness.provider()),
        secret: harness.secrets()[0].clone(),
    };
    let outcome = conformance::secrets_never_leak(&provider, &harness).await;
    let text = outcome.to_string();
    assert!(text.contains("tracing output"), "{text}");
    // The failure message masks every secret, so the report does not leak it further.
    for secret in harness.secrets() {
        assert!(!text.contains(&secret), "{text}");
    }
}

broken!(
    /// Rule: capabilities tell the truth. This one's void silently "succeeds" although it
    /// declares none.
    VoidsWithoutSaying {
        async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
            let amount = Money::parse("1", refund_core::Currency::Try)?;
            Ok(RefundReceipt::new(
                "acme",
                refund_core::Operation::Void,
                request.payment().clone(),
                request.reference().clone(),
                amount,
                RefundStatus::Completed,
            ))
        }
    }
);

#[tokio::test]
async fn the_suite_fails_a_provider_whose_behaviour_contradicts_its_capabilities() {
    let harness = AcmeHarness::start().await.unwrap();
    let provider = Broke(VoidsWithoutSaying(Arc::new(harness.provider())));
    let outcome = conformance::capabilities_match_behaviour(&provider, &harness).await;
    assert!(outcome.is_failed(), "{outcome}");
    assert!(outcome.to_string().contains("void"), "{outcome}");
}

// ---------------------------------------------------------------------------------------
// Skips and harnesses that cannot do what a scenario needs.

#[tokio::test]
async fn a_skip_with_a_reason_is_reported_and_one_without_fails_the_suite() {
    let (provider, mut explained) = Broken::new(Box::new(|p| p)).await;
    explained.skips = vec![Skip::new(
        Scenario::TimeoutIsOutcomeUnknown,
        "the fake cannot hold a response",
    )];
    let report = conformance::run_only(
        &*provider,
        &explained,
        &[Scenario::FullRefund, Scenario::TimeoutIsOutcomeUnknown],
    )
    .await;
    assert!(report.is_passed(), "{report}");
    assert!(
        report
            .to_string()
            .contains("the fake cannot hold a response")
    );

    explained.skips = vec![Skip::new(Scenario::TimeoutIsOutcomeUnknown, "")];
    let report =
        conformance::run_only(&*provider, &explained, &[Scenario::TimeoutIsOutcomeUnknown]).await;
    assert!(!report.is_passed(), "{report}");
    assert!(report.to_string().contains("without a reason"), "{report}");
}

/// A harness that can neither arm faults, lag lookups nor build odd providers, and does not
/// say so.
struct NoFaults(AcmeHarness);

#[async_trait]
impl Harness for NoFaults {
    async fn seed_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError> {
        self.0.seed_payment(amount).await
    }
    async fn refunded_total(&self, payment: &PaymentRef) -> Result<Money, HarnessError> {
        self.0.refunded_total(payment).await
    }
    fn requests_sent(&self) -> usize {
        self.0.requests_sent()
    }
    fn refund_requests_sent(&self) -> usize {
        self.0.refund_requests_sent()
    }
    fn secrets(&self) -> Vec<String> {
        self.0.secrets()
    }
}

#[tokio::test]
async fn a_harness_that_cannot_do_what_a_scenario_needs_must_declare_the_skip() {
    let harness = NoFaults(AcmeHarness::start().await.unwrap());
    let provider = harness.0.provider();
    let report = conformance::run_only(
        &provider,
        &harness,
        &[
            Scenario::TimeoutIsOutcomeUnknown,
            Scenario::RateLimitIsRetryable,
            Scenario::ConnectRefusedIsRetryable,
            Scenario::RejectedAuthenticationIsReported,
            Scenario::LaggingLookupIsNotProof,
        ],
    )
    .await;
    show(&report);
    for result in &report.results {
        assert!(result.outcome.is_failed(), "{report}");
        assert!(result.outcome.to_string().contains("declare"), "{report}");
    }
}
