//! The conformance suite run against every provider in the workspace — SiPay and iyzico
//! through the test kit's simulators, and the third-party-style "acme" example — plus proof
//! that the suite itself catches the bugs it exists for.
//!
//! Run with `cargo test --test conformance -- --nocapture` to see each report's table.

use std::sync::Arc;

use refund_core::{
    Capabilities, Money, PaymentRef, RefundError, RefundProvider, RefundReceipt, RefundRequest,
    RefundState, VoidRequest, async_trait,
};
use refund_testkit::conformance::{
    self, Fault, Harness, HarnessError, IyzicoHarness, Outcome, Report, Scenario, SipayHarness,
    Skip,
};

#[path = "../examples/third_party_provider/acme.rs"]
mod acme;

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
}

#[tokio::test]
async fn acme_passes_the_conformance_suite() {
    let harness = acme::AcmeHarness::new();
    let report = conformance::run(&harness.provider(), &harness).await;
    show(&report);
    report.assert_passed();
    assert_eq!(report.results.len(), Scenario::ALL.len());
}

// ---------------------------------------------------------------------------------------
// The suite catches what it exists for. Each test breaks acme on purpose.

/// A provider that "helpfully" resends a refund whose outcome was unknown.
#[derive(Debug)]
struct ResendsOnUnknown(acme::Acme);

#[async_trait]
impl RefundProvider for ResendsOnUnknown {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        match self.0.refund(request).await {
            Err(e) if !e.is_outcome_known() => self.0.refund(request).await,
            other => other,
        }
    }
    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        self.0.refund_state(payment).await
    }
}

#[tokio::test]
async fn the_suite_fails_a_provider_that_resends_after_an_unknown_outcome() {
    let harness = acme::AcmeHarness::new();
    let provider = ResendsOnUnknown(harness.provider());
    let scenarios = [
        Scenario::TimeoutIsOutcomeUnknown,
        Scenario::ServerErrorIsOutcomeUnknown,
        Scenario::LostResponseIsReconciled,
    ];
    let report = conformance::run_only(&provider, &harness, &scenarios).await;
    show(&report);
    for scenario in scenarios {
        assert!(
            report.outcome(scenario).is_some_and(Outcome::is_failed),
            "{scenario} should fail:\n{report}"
        );
    }
    let lost = report
        .outcome(Scenario::LostResponseIsReconciled)
        .unwrap()
        .to_string();
    assert!(lost.contains("2 refund requests"), "{lost}");
}

/// A provider that logs its key at TRACE level (its `Debug` is careful; its logging is not).
struct LogsItsSecret {
    inner: acme::Acme,
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
    let harness = acme::AcmeHarness::new();
    let provider = LogsItsSecret {
        inner: harness.provider(),
        secret: harness.secrets()[1].clone(),
    };
    let outcome = conformance::secrets_never_leak(&provider, &harness).await;
    let text = outcome.to_string();
    assert!(text.contains("tracing output"), "{text}");
    // The failure message masks every secret, so the report does not leak it further.
    for secret in harness.secrets() {
        assert!(!text.contains(&secret), "{text}");
    }
}

/// A provider whose void is silently a no-op success although it declares none.
#[derive(Debug)]
struct VoidsWithoutSaying(acme::Acme);

#[async_trait]
impl RefundProvider for VoidsWithoutSaying {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        self.0.refund(request).await
    }
    async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        let amount = Money::parse("1", refund_core::Currency::Try)?;
        Ok(RefundReceipt::new(
            "acme",
            refund_core::Operation::Void,
            request.payment().clone(),
            request.reference().clone(),
            amount,
            refund_core::RefundStatus::Completed,
        ))
    }
    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        self.0.refund_state(payment).await
    }
}

#[tokio::test]
async fn the_suite_fails_a_provider_whose_behaviour_contradicts_its_capabilities() {
    let harness = acme::AcmeHarness::new();
    let provider = VoidsWithoutSaying(harness.provider());
    let outcome = conformance::capabilities_match_behaviour(&provider, &harness).await;
    assert!(outcome.is_failed(), "{outcome}");
    assert!(outcome.to_string().contains("void"), "{outcome}");
}

/// Acme's harness with declared skips.
struct Skipping {
    inner: acme::AcmeHarness,
    skips: Vec<Skip>,
}

#[async_trait]
impl Harness for Skipping {
    async fn seed_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError> {
        self.inner.seed_payment(amount).await
    }
    async fn refunded_total(&self, payment: &PaymentRef) -> Result<Money, HarnessError> {
        self.inner.refunded_total(payment).await
    }
    async fn arm_fault(&self, fault: Fault) -> Result<(), HarnessError> {
        self.inner.arm_fault(fault).await
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
        self.inner.unreachable_provider()
    }
    fn skips(&self) -> Vec<Skip> {
        self.skips.clone()
    }
}

#[tokio::test]
async fn a_skip_with_a_reason_is_reported_and_one_without_fails_the_suite() {
    let explained = Skipping {
        inner: acme::AcmeHarness::new(),
        skips: vec![Skip::new(
            Scenario::TimeoutIsOutcomeUnknown,
            "the fake cannot hold a response",
        )],
    };
    let provider = explained.inner.provider();
    let report = conformance::run_only(
        &provider,
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

    let unexplained = Skipping {
        inner: acme::AcmeHarness::new(),
        skips: vec![Skip::new(Scenario::TimeoutIsOutcomeUnknown, "")],
    };
    let report = conformance::run_only(
        &provider,
        &unexplained,
        &[Scenario::TimeoutIsOutcomeUnknown],
    )
    .await;
    assert!(!report.is_passed(), "{report}");
    assert!(report.to_string().contains("without a reason"), "{report}");
}

/// A harness that cannot arm faults and does not say so.
struct NoFaults(acme::AcmeHarness);

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
async fn a_harness_that_cannot_arm_a_fault_must_declare_the_skip() {
    let harness = NoFaults(acme::AcmeHarness::new());
    let provider = harness.0.provider();
    let outcome = conformance::timeout_is_outcome_unknown(&provider, &harness).await;
    assert!(outcome.is_failed(), "{outcome}");
    assert!(outcome.to_string().contains("declare"), "{outcome}");
    let outcome = conformance::connect_refused_is_retryable(&provider, &harness).await;
    assert!(outcome.is_failed(), "{outcome}");
}
