//! The retry wrapper retries only what is safe and never resends an outcome-unknown refund.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use refund_core::*;

/// A provider that answers refunds and lookups from scripts and counts calls.
#[derive(Debug, Default)]
struct Scripted {
    refunds: Mutex<VecDeque<Result<(), RefundError>>>,
    lookups: Mutex<VecDeque<Result<RefundState, RefundError>>>,
    refund_calls: AtomicUsize,
    lookup_calls: AtomicUsize,
    lookup: bool,
    settle_time: Option<Duration>,
    references: Mutex<Vec<String>>,
}

impl Scripted {
    fn new(refunds: Vec<Result<(), RefundError>>) -> Self {
        Scripted {
            refunds: Mutex::new(refunds.into()),
            ..Default::default()
        }
    }

    fn with_lookups(mut self, lookups: Vec<Result<RefundState, RefundError>>) -> Self {
        self.lookup = true;
        self.lookups = Mutex::new(lookups.into());
        self
    }

    fn with_settle_time(mut self, settle_time: Duration) -> Self {
        self.settle_time = Some(settle_time);
        self
    }
}

#[async_trait]
impl RefundProvider for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(&[Currency::Try])
            .with_refund_lookup(self.lookup)
            .with_settle_time(
                self.settle_time
                    .unwrap_or(Capabilities::DEFAULT_SETTLE_TIME),
            )
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        self.refund_calls.fetch_add(1, Ordering::SeqCst);
        self.references
            .lock()
            .unwrap()
            .push(request.reference().to_string());
        let next = self
            .refunds
            .lock()
            .unwrap()
            .pop_front()
            .expect("script ran out");
        next.map(|()| {
            RefundReceipt::new(
                self.name(),
                Operation::Refund,
                request.payment().clone(),
                request.reference().clone(),
                request.amount(),
                RefundStatus::Completed,
            )
        })
    }

    async fn void(&self, _: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        self.refund_calls.fetch_add(1, Ordering::SeqCst);
        Err(self
            .refunds
            .lock()
            .unwrap()
            .pop_front()
            .expect("script ran out")
            .unwrap_err())
    }

    async fn refund_state(&self, _: &PaymentRef) -> Result<RefundState, RefundError> {
        self.lookup_calls.fetch_add(1, Ordering::SeqCst);
        // The last scripted answer repeats: a lookup that keeps saying the same thing.
        let mut lookups = self.lookups.lock().unwrap();
        if lookups.len() > 1 {
            return lookups.pop_front().unwrap();
        }
        match lookups.front().expect("lookup script is empty") {
            Ok(state) => Ok(state.clone()),
            Err(_) => Err(RefundError::outcome_unknown("scripted", "timeout")),
        }
    }
}

fn tl(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

fn request() -> RefundRequest {
    RefundRequest::builder(PaymentRef::payment("INV-1"), tl("10"))
        .reference("ref-1")
        .build()
        .unwrap()
}

fn unreachable_() -> RefundError {
    RefundError::unreachable("scripted", "connection refused")
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(3)
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
        .reconcile(true, Duration::from_millis(500))
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_until_success() {
    let p = Retrying::new(
        Scripted::new(vec![Err(unreachable_()), Err(unreachable_()), Ok(())]),
        policy(),
    );
    let receipt = p.refund(&request()).await.unwrap();
    assert!(!receipt.reconciled);
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_max_attempts() {
    let p = Retrying::new(
        Scripted::new(vec![
            Err(unreachable_()),
            Err(unreachable_()),
            Err(unreachable_()),
        ]),
        policy(),
    );
    let e = p.refund(&request()).await.unwrap_err();
    assert!(matches!(e, RefundError::Unreachable { .. }));
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_are_returned_at_once() {
    for e in [
        RefundError::declined("scripted", "49", "Refund Failed"),
        RefundError::authentication("scripted", "30", "Invalid Credentials"),
        RefundError::configuration("scripted", "bad"),
    ] {
        let p = Retrying::new(Scripted::new(vec![Err(e)]), policy());
        assert!(p.refund(&request()).await.is_err());
        assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn temporary_declines_are_retried() {
    let p = Retrying::new(
        Scripted::new(vec![
            Err(RefundError::declined_retryable("scripted", "10246", "bank")),
            Ok(()),
        ]),
        policy(),
    );
    assert!(p.refund(&request()).await.is_ok());
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn outcome_unknown_is_never_resent_without_lookup_support() {
    let p = Retrying::new(
        Scripted::new(vec![Err(RefundError::outcome_unknown(
            "scripted", "timeout",
        ))]),
        policy(),
    );
    let e = p.refund(&request()).await.unwrap_err();
    assert!(!e.is_outcome_known());
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 1);
    assert_eq!(p.inner().lookup_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn outcome_unknown_is_reconciled_when_the_refund_is_on_record() {
    let applied = RefundState::new(PaymentRef::payment("INV-1"), tl("10")).with_record(
        RefundRecord::new(tl("10"))
            .with_reference("ref-1")
            .with_provider_reference("rf-9"),
    );
    let p = Retrying::new(
        Scripted::new(vec![Err(RefundError::outcome_unknown(
            "scripted",
            "lost response",
        ))])
        .with_lookups(vec![Ok(applied)]),
        policy(),
    );
    let receipt = p.refund(&request()).await.unwrap();
    assert!(receipt.reconciled);
    assert_eq!(receipt.amount, tl("10"));
    assert_eq!(receipt.provider_references["refund_id"], "rf-9");
    assert_eq!(
        p.inner().refund_calls.load(Ordering::SeqCst),
        1,
        "never resent"
    );
}

#[tokio::test(start_paused = true)]
async fn outcome_unknown_not_on_record_is_still_unknown_and_not_resent() {
    let nothing = RefundState::new(PaymentRef::payment("INV-1"), tl("0"));
    let p = Retrying::new(
        Scripted::new(vec![Err(RefundError::outcome_unknown(
            "scripted", "timeout",
        ))])
        .with_lookups(vec![Ok(nothing)]),
        policy(),
    );
    let e = p.refund(&request()).await.unwrap_err();
    assert!(!e.is_outcome_known());
    assert!(
        e.to_string()
            .contains("no refund with reference ref-1 on record yet"),
        "{e}"
    );
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refund_that_shows_up_late_in_the_lookup_is_reconciled_not_resent() {
    let nothing = RefundState::new(PaymentRef::payment("INV-1"), tl("0"));
    let applied = RefundState::new(PaymentRef::payment("INV-1"), tl("10"))
        .with_record(RefundRecord::new(tl("10")).with_reference("ref-1"));
    let p = Retrying::new(
        Scripted::new(vec![Err(RefundError::outcome_unknown(
            "scripted", "timeout",
        ))])
        .with_lookups(vec![Ok(nothing.clone()), Ok(nothing), Ok(applied)]),
        policy(),
    );
    let receipt = p.refund(&request()).await.unwrap();
    assert!(receipt.reconciled);
    assert_eq!(p.inner().lookup_calls.load(Ordering::SeqCst), 3);
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn nothing_on_record_after_the_settle_time_is_resent_with_the_same_reference() {
    let nothing = RefundState::new(PaymentRef::payment("INV-1"), tl("0"));
    let p = Retrying::new(
        Scripted::new(vec![
            Err(RefundError::outcome_unknown("scripted", "timeout")),
            Ok(()),
        ])
        .with_lookups(vec![Ok(nothing)])
        .with_settle_time(Duration::ZERO),
        policy(),
    );
    let receipt = p.refund(&request()).await.unwrap();
    assert!(!receipt.reconciled);
    assert_eq!(*p.inner().references.lock().unwrap(), ["ref-1", "ref-1"]);
}

#[tokio::test(start_paused = true)]
async fn a_refund_on_record_as_failed_is_a_decline_and_not_resent() {
    let failed = RefundState::new(PaymentRef::payment("INV-1"), tl("0")).with_record(
        RefundRecord::new(tl("10"))
            .with_reference("ref-1")
            .with_status(RefundStatus::Failed),
    );
    let p = Retrying::new(
        Scripted::new(vec![Err(RefundError::outcome_unknown(
            "scripted", "timeout",
        ))])
        .with_lookups(vec![Ok(failed)])
        .with_settle_time(Duration::ZERO),
        policy(),
    );
    let e = p.refund(&request()).await.unwrap_err();
    assert!(matches!(e, RefundError::Declined { .. }), "{e}");
    assert!(e.is_outcome_known());
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn an_undetermined_lookup_is_never_read_as_nothing_refunded() {
    let silent = RefundState::new(PaymentRef::payment("INV-1"), tl("0"))
        .with_undetermined("no refund figures in the answer");
    let p = Retrying::new(
        Scripted::new(vec![Err(RefundError::outcome_unknown(
            "scripted", "timeout",
        ))])
        .with_lookups(vec![Ok(silent)])
        .with_settle_time(Duration::ZERO),
        policy(),
    );
    let e = p.refund(&request()).await.unwrap_err();
    assert!(!e.is_outcome_known());
    assert!(e.to_string().contains("no refund figures"), "{e}");
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_reference_is_reconciled_never_declined() {
    let applied = RefundState::new(PaymentRef::payment("INV-1"), tl("10"))
        .with_record(RefundRecord::new(tl("10")).with_reference("ref-1"));
    let p = Retrying::new(
        Scripted::new(vec![Err(RefundError::duplicate_reference(
            "scripted",
            "104",
            "not unique",
        ))])
        .with_lookups(vec![Ok(applied)]),
        policy(),
    );
    let receipt = p.refund(&request()).await.unwrap();
    assert!(receipt.reconciled);
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_lookup_keeps_the_outcome_unknown() {
    let p = Retrying::new(
        Scripted::new(vec![Err(RefundError::outcome_unknown(
            "scripted", "timeout",
        ))])
        .with_lookups(vec![
            Err(RefundError::outcome_unknown("scripted", "timeout")),
            Err(RefundError::outcome_unknown("scripted", "timeout")),
            Err(RefundError::outcome_unknown("scripted", "timeout")),
        ]),
        policy(),
    );
    let e = p.refund(&request()).await.unwrap_err();
    assert!(!e.is_outcome_known());
    assert!(e.to_string().contains("the lookup failed"), "{e}");
    assert!(
        p.inner().lookup_calls.load(Ordering::SeqCst) >= 3,
        "lookups are retried"
    );
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn reconciliation_can_be_turned_off() {
    let p = Retrying::new(
        Scripted::new(vec![Err(RefundError::outcome_unknown(
            "scripted", "timeout",
        ))])
        .with_lookups(vec![]),
        policy().reconcile(false, Duration::ZERO),
    );
    assert!(p.refund(&request()).await.is_err());
    assert_eq!(p.inner().lookup_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_longer_than_the_cap_are_not_waited_out() {
    let limited = |secs| RefundError::rate_limited("scripted", Some(Duration::from_secs(secs)));
    let p = Retrying::new(Scripted::new(vec![Err(limited(60))]), policy());
    assert!(matches!(
        p.refund(&request()).await,
        Err(RefundError::RateLimited { .. })
    ));
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 1);

    let p = Retrying::new(Scripted::new(vec![Err(limited(1)), Ok(())]), policy());
    let start = tokio::time::Instant::now();
    assert!(p.refund(&request()).await.is_ok());
    assert!(start.elapsed() >= Duration::from_secs(1), "waited as asked");
}

#[tokio::test(start_paused = true)]
async fn voids_retry_only_retryable_errors() {
    let void = VoidRequest::builder(PaymentRef::payment("P"))
        .build()
        .unwrap();
    let p = Retrying::new(
        Scripted::new(vec![
            Err(unreachable_()),
            Err(RefundError::outcome_unknown("scripted", "reset")),
        ]),
        policy(),
    );
    let e = p.void(&void).await.unwrap_err();
    assert!(!e.is_outcome_known());
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 2);
}

#[test]
fn jittered_delays_stay_within_half_and_all_of_the_backoff() {
    let policy = policy();
    for retry in 1..6 {
        let full = policy.delay_for(retry, false);
        for _ in 0..50 {
            let d = policy.delay_for(retry, true);
            assert!(d >= full / 2 && d <= full, "{d:?} vs {full:?}");
        }
    }
}

#[test]
fn the_wrapper_is_itself_a_shareable_provider() {
    use std::sync::Arc;
    let inner: Arc<dyn RefundProvider> = Arc::new(Scripted::new(vec![]));
    let wrapped: Arc<dyn RefundProvider> = Arc::new(Retrying::new(inner, RetryPolicy::default()));
    let registry = ProviderRegistry::new().with(wrapped);
    assert_eq!(registry.names().collect::<Vec<_>>(), ["scripted"]);
    assert_eq!(registry.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_record_left_by_an_earlier_declined_attempt_is_not_the_latest_attempts_fate() {
    // Found by the randomized money-safety test: a temporary decline leaves a failed record
    // with the reference, the retry's answer is lost and it is applied later. The failed
    // record must not make the applied retry read as "not applied".
    let failed_first = |refunded: &str| {
        RefundState::new(PaymentRef::payment("INV-1"), tl(refunded)).with_record(
            RefundRecord::new(tl("10"))
                .with_reference("ref-1")
                .with_status(RefundStatus::Failed),
        )
    };
    let applied_later =
        failed_first("10").with_record(RefundRecord::new(tl("10")).with_reference("ref-1"));
    let p = Retrying::new(
        Scripted::new(vec![
            Err(RefundError::declined_retryable("scripted", "10246", "bank")),
            Err(RefundError::outcome_unknown("scripted", "lost response")),
        ])
        .with_lookups(vec![Ok(failed_first("0")), Ok(applied_later)]),
        policy(),
    );
    let receipt = p.refund(&request()).await.unwrap();
    assert!(receipt.reconciled);
    assert_eq!(p.inner().refund_calls.load(Ordering::SeqCst), 2);
}
