//! The SiPay client against the test kit's simulator: partial refunds, over-refunds, token
//! expiry, and reconciling an outcome-unknown refund by its reference, against a simulator
//! that behaves like a slow provider (late application, lookup lag, failed refunds, answers
//! without refund figures, 104 for a reused reference).

use std::time::{Duration, SystemTime};

use refund_core::{
    Currency, Decimal, MerchantRef, Money, PaymentRef, Reconciler, Reconciliation, RefundError,
    RefundProvider, RefundRequest, RefundStatus, Verdict,
};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::{Fault, SipaySim};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client(sim: &SipaySim) -> Sipay {
    let c = sim.credentials();
    Sipay::new(
        SipayConfig::new(c.app_id, c.app_secret, c.merchant_key)
            .with_base_url(&c.base_url)
            .unwrap()
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap()
}

fn tl(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

fn refund(invoice: &str, amount: &str, reference: &str) -> RefundRequest {
    RefundRequest::builder(PaymentRef::payment(invoice), tl(amount))
        .reference(reference)
        .build()
        .unwrap()
}

#[tokio::test]
async fn repeated_partial_refunds_add_up_and_an_over_refund_is_declined() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SIM-1", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    let a = sipay
        .refund(&refund("INV-SIM-1", "25", "p-1"))
        .await
        .unwrap();
    let b = sipay
        .refund(&refund("INV-SIM-1", "30.50", "p-2"))
        .await
        .unwrap();
    assert_eq!(
        (a.status, b.status),
        (RefundStatus::Completed, RefundStatus::Completed)
    );
    let e = sipay
        .refund(&refund("INV-SIM-1", "50", "p-3"))
        .await
        .unwrap_err();
    assert_eq!(e.provider_code(), Some("49"), "{e}");
    assert!(e.is_outcome_known());
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-SIM-1"))
        .await
        .unwrap();
    assert_eq!(state.refunded, tl("55.50"));
    assert!(matches!(
        state.find(&MerchantRef::new("p-2").unwrap()),
        Reconciliation::Applied(_)
    ));
    assert_eq!(sim.token_requests(), 1);
}

#[tokio::test]
async fn a_lost_response_is_outcome_unknown_and_the_lookup_finds_the_refund() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SIM-2", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    // Get a token first, so the fault hits the refund.
    sipay
        .refund_state(&PaymentRef::payment("INV-SIM-2"))
        .await
        .unwrap();
    sim.arm(Fault::LostResponse, 1);
    let e = sipay
        .refund(&refund("INV-SIM-2", "40", "lost-1"))
        .await
        .unwrap_err();
    assert!(!e.is_outcome_known() && !e.is_retryable(), "{e}");
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-SIM-2"))
        .await
        .unwrap();
    assert!(matches!(
        state.find(&MerchantRef::new("lost-1").unwrap()),
        Reconciliation::Applied(r) if r.amount == tl("40")
    ));
    // Resending under the same reference is refused by SiPay (104), never paid twice, and
    // the 104 is a duplicate reference (look it up), never a decline.
    let again = sipay
        .refund(&refund("INV-SIM-2", "40", "lost-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(again, RefundError::DuplicateReference { .. }),
        "{again}"
    );
    assert_eq!(again.provider_code(), Some("104"));
    assert_eq!(sim.payment("INV-SIM-2").unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_refund_goes_through() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SIM-3", Decimal::new(5000, 2), Currency::Try);
    let sipay = client(&sim);
    sipay
        .refund(&refund("INV-SIM-3", "5", "t-1"))
        .await
        .unwrap();
    sim.arm(Fault::TokenExpired, 1);
    sipay
        .refund(&refund("INV-SIM-3", "5", "t-2"))
        .await
        .unwrap();
    assert_eq!(sim.token_requests(), 2);
    assert_eq!(sim.payment("INV-SIM-3").unwrap().refunds.len(), 2);
}

#[tokio::test]
async fn faults_that_did_not_apply_the_refund_are_classified_from_the_clients_side() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SIM-4", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    sipay
        .refund_state(&PaymentRef::payment("INV-SIM-4"))
        .await
        .unwrap();
    for (i, fault) in [
        Fault::Http500,
        Fault::Html502,
        Fault::Http503,
        Fault::Malformed,
        Fault::Empty,
    ]
    .into_iter()
    .enumerate()
    {
        sim.arm(fault, 1);
        let e = sipay
            .refund(&refund("INV-SIM-4", "1", &format!("f-{i}")))
            .await
            .unwrap_err();
        assert!(!e.is_outcome_known(), "{fault:?}: {e}");
    }
    sim.arm(Fault::Http429, 1);
    let e = sipay
        .refund(&refund("INV-SIM-4", "1", "f-429"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::RateLimited { .. }), "{e}");
    assert!(e.is_retryable());
}

/// A client with a short timeout and a settle time of `settle`.
fn client_settling(sim: &SipaySim, timeout: Duration, settle: Duration) -> Sipay {
    let c = sim.credentials();
    Sipay::new(
        SipayConfig::new(c.app_id, c.app_secret, c.merchant_key)
            .with_base_url(&c.base_url)
            .unwrap()
            .with_timeout(timeout)
            .with_settle_time(settle),
    )
    .unwrap()
}

fn find<'a>(state: &'a refund_core::RefundState, reference: &str) -> Reconciliation<'a> {
    state.find(&MerchantRef::new(reference).unwrap())
}

/// Issue 12, failure #2 against the simulator: the refund times out on the client, SiPay
/// applies it after the client gave up, and an immediate rerun resends with the same
/// reference. The 104 must be reported as a duplicate reference (look it up), never as a
/// decline, and the customer is paid once.
#[tokio::test]
async fn a_rerun_after_a_late_refund_gets_a_duplicate_reference_not_a_decline() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-LATE", Decimal::new(10000, 2), Currency::Try);
    let sipay = client_settling(&sim, Duration::from_millis(300), Duration::from_secs(60));
    sipay
        .refund_state(&PaymentRef::payment("INV-LATE"))
        .await
        .unwrap();
    sim.arm(Fault::Delay(Duration::from_millis(800)), 1);
    let first = sipay
        .refund(&refund("INV-LATE", "15", "late-1"))
        .await
        .unwrap_err();
    assert!(!first.is_outcome_known(), "{first}");
    // The provider finishes the work the client gave up on.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sim.payment("INV-LATE").unwrap().refunds.len(), 1);
    let rerun = sipay
        .refund(&refund("INV-LATE", "15", "late-1"))
        .await
        .unwrap_err();
    assert_eq!(rerun.kind(), "duplicate_reference", "{rerun}");
    assert!(!rerun.is_outcome_known());
    assert_eq!(sim.payment("INV-LATE").unwrap().refunds.len(), 1);
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-LATE"))
        .await
        .unwrap();
    assert!(matches!(find(&state, "late-1"), Reconciliation::Applied(_)));
}

/// Issue 12, failure #5 against the simulator: a check-status answer without
/// `total_refunded_amount` and `refund_info` is undetermined, never "0 refunded".
#[tokio::test]
async fn a_lookup_without_refund_figures_is_undetermined_never_zero() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SILENT", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    sim.arm(Fault::LostResponse, 1);
    let e = sipay
        .refund(&refund("INV-SILENT", "20", "silent-1"))
        .await
        .unwrap_err();
    assert!(!e.is_outcome_known(), "{e}");
    sim.omit_refund_figures(true);
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-SILENT"))
        .await
        .unwrap();
    assert!(!state.is_determined(), "{state:?}");
    assert_eq!(find(&state, "silent-1"), Reconciliation::Undetermined);
    assert_eq!(find(&state, "never-sent"), Reconciliation::Undetermined);
    let verdict = Reconciler::for_provider(&sipay).judge(
        &state,
        &MerchantRef::new("silent-1").unwrap(),
        SystemTime::now() - Duration::from_secs(3600),
        SystemTime::now(),
    );
    assert_eq!(verdict.kind(), "undetermined", "{verdict:?}");
    // With the figures back, the refund is found.
    sim.omit_refund_figures(false);
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-SILENT"))
        .await
        .unwrap();
    assert!(matches!(
        find(&state, "silent-1"),
        Reconciliation::Applied(_)
    ));
}

/// The lookup lag: a refund applied a moment ago is not in check status yet (neither in the
/// total nor in refund_info). Until the attempt is older than the settle time, the
/// reconciler says "not yet known", never "safe to resend"; once the lag has passed, the
/// refund is found.
#[tokio::test]
async fn the_lookup_lag_hides_a_refund_and_the_settle_time_keeps_it_from_being_resent() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-LAG", Decimal::new(10000, 2), Currency::Try);
    let sipay = client_settling(&sim, Duration::from_secs(2), Duration::from_secs(30));
    sipay
        .refund_state(&PaymentRef::payment("INV-LAG"))
        .await
        .unwrap();
    sim.set_lookup_lag(Duration::from_millis(600));
    assert_eq!(sim.lookup_lag(), Duration::from_millis(600));
    sim.arm(Fault::LostResponse, 1);
    let attempted_at = SystemTime::now();
    let e = sipay
        .refund(&refund("INV-LAG", "30", "lag-1"))
        .await
        .unwrap_err();
    assert!(!e.is_outcome_known(), "{e}");
    assert_eq!(sim.payment("INV-LAG").unwrap().refunds.len(), 1, "applied");
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-LAG"))
        .await
        .unwrap();
    assert!(state.is_determined(), "{state:?}");
    assert_eq!(state.refunded, tl("0"), "hidden from the total too");
    assert_eq!(find(&state, "lag-1"), Reconciliation::NotFound);
    let reconciler = Reconciler::for_provider(&sipay);
    assert_eq!(reconciler.settle_time(), Duration::from_secs(30));
    let verdict = reconciler.judge(
        &state,
        &MerchantRef::new("lag-1").unwrap(),
        attempted_at,
        SystemTime::now(),
    );
    assert!(
        matches!(verdict, Verdict::NotYetKnown { .. }),
        "absence inside the settle time proves nothing: {verdict:?}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-LAG"))
        .await
        .unwrap();
    assert_eq!(state.refunded, tl("30"));
    assert!(matches!(find(&state, "lag-1"), Reconciliation::Applied(_)));
}

/// A refund the bank refused: answered 49 (a known decline), listed by check status as a
/// failed entry with its reference (not refunded), and its reference is used up: a resend
/// with it is refused with 104 (assumed of SiPay).
#[tokio::test]
async fn a_failed_refund_is_listed_as_failed_and_its_reference_is_refused_again() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-FAIL", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    sipay
        .refund(&refund("INV-FAIL", "10", "ok-1"))
        .await
        .unwrap();
    sim.arm(Fault::Fail, 1);
    let e = sipay
        .refund(&refund("INV-FAIL", "25", "bank-no"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::Declined { .. }), "{e}");
    assert_eq!(e.provider_code(), Some("49"));
    let payment = sim.payment("INV-FAIL").unwrap();
    assert_eq!(payment.refunds.len(), 1);
    assert_eq!(payment.failed_refunds.len(), 1);
    assert_eq!(
        payment.failed_refunds[0].refund_transaction_id.as_deref(),
        Some("bank-no")
    );
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-FAIL"))
        .await
        .unwrap();
    assert!(state.is_determined(), "{state:?}");
    assert_eq!(state.refunded, tl("10"));
    assert_eq!(state.refunds.len(), 2);
    assert!(matches!(
        find(&state, "bank-no"),
        Reconciliation::Failed(r) if r.amount == tl("25") && r.status == RefundStatus::Failed
    ));
    assert_eq!(find(&state, "never-sent"), Reconciliation::NotFound);
    let again = sipay
        .refund(&refund("INV-FAIL", "25", "bank-no"))
        .await
        .unwrap_err();
    assert_eq!(again.kind(), "duplicate_reference", "{again}");
    assert_eq!(
        sim.payment("INV-FAIL").unwrap().refunded(),
        Decimal::new(1000, 2)
    );
}

/// A failed refund whose answer is lost: the lookup finds it failed, so the reconciler says
/// "not applied" at once, never "refunded".
#[tokio::test]
async fn a_failed_refund_with_a_lost_answer_reconciles_as_not_applied() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-FLR", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    sipay
        .refund_state(&PaymentRef::payment("INV-FLR"))
        .await
        .unwrap();
    sim.arm(Fault::FailLostResponse, 1);
    let attempted_at = SystemTime::now();
    let e = sipay
        .refund(&refund("INV-FLR", "25", "flr-1"))
        .await
        .unwrap_err();
    assert!(!e.is_outcome_known(), "{e}");
    let verdict = Reconciler::for_provider(&sipay)
        .look_up(
            &sipay,
            &PaymentRef::payment("INV-FLR"),
            &refund_core::Attempt::first(MerchantRef::new("flr-1").unwrap(), attempted_at),
            SystemTime::now,
        )
        .await
        .unwrap()
        .verdict;
    assert!(matches!(verdict, Verdict::NotApplied(_)), "{verdict:?}");
    assert_eq!(sim.payment("INV-FLR").unwrap().refunded(), Decimal::ZERO);
}

/// The settle time is SiPay's default unless configured, and SiPay declares that it
/// deduplicates references.
#[test]
fn sipay_declares_reference_dedup_and_a_configurable_settle_time() {
    let default = Sipay::new(SipayConfig::new("a", "b", "c")).unwrap();
    let caps = default.capabilities();
    assert!(caps.deduplicates_references);
    assert_eq!(
        caps.settle_time,
        refund_core::Capabilities::DEFAULT_SETTLE_TIME
    );
    assert_eq!(caps.settle_time, Duration::from_secs(15 * 60));
    let custom =
        Sipay::new(SipayConfig::new("a", "b", "c").with_settle_time(Duration::from_secs(90)))
            .unwrap();
    assert_eq!(custom.capabilities().settle_time, Duration::from_secs(90));
    assert_eq!(custom.config().settle_time(), Duration::from_secs(90));
}

/// One HTTP/1.1 request to the simulator's admin API, by hand (no HTTP client among the
/// dev-dependencies): the status code and the body.
async fn admin(sim: &SipaySim, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let json = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b).unwrap_or(serde_json::Value::Null))
        .unwrap();
    (status, json)
}

#[tokio::test]
async fn the_admin_api_sets_omitted_figures_and_the_lookup_lag() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-ADM", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    let (status, _) = admin(
        &sim,
        "POST",
        "/__sandbox/behaviour",
        r#"{"omit_refund_figures": true, "lookup_lag_ms": 250}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sim.lookup_lag(), Duration::from_millis(250));
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-ADM"))
        .await
        .unwrap();
    assert!(!state.is_determined());
    let (status, ledger) = admin(&sim, "GET", "/__sandbox/ledger", "").await;
    assert_eq!(status, 200);
    assert_eq!(ledger["omit_refund_figures"], true);
    let (status, body) = admin(
        &sim,
        "POST",
        "/__sandbox/behaviour",
        r#"{"omit_refund_figures": "yes"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // reset turns both off.
    let (status, _) = admin(&sim, "POST", "/__sandbox/reset", "").await;
    assert_eq!(status, 200);
    assert_eq!(sim.lookup_lag(), Duration::ZERO);
    sim.add_payment("INV-ADM", Decimal::new(10000, 2), Currency::Try);
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-ADM"))
        .await
        .unwrap();
    assert!(state.is_determined());
}
