//! The `metrics` feature: what a `Metered` provider and the reconciler record, with bounded
//! labels only.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use refund_core::metrics::Metered;
use refund_core::{
    Attempt, Capabilities, Currency, MerchantRef, Money, Operation, PaymentRef, Reconciler,
    RefundError, RefundProvider, RefundReceipt, RefundRequest, RefundState, RefundStatus,
    VoidRequest, async_trait,
};

/// Counts by `name{label=value,…}`; histograms count their samples.
#[derive(Default)]
struct Counts(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

struct Samples(Arc<AtomicU64>);
impl metrics::HistogramFn for Samples {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counts {
    fn slot(&self, key: &Key) -> Arc<AtomicU64> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.0.lock().unwrap().entry(name).or_default().clone()
    }
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }
    fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Samples(self.slot(key))))
    }
}

#[derive(Debug)]
struct Answers;

#[async_trait]
impl RefundProvider for Answers {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(&[Currency::Try]).with_refund_lookup(true)
    }
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        match request.reference().as_str() {
            "limited" => Err(RefundError::rate_limited("scripted", None)),
            "lost" => Err(RefundError::outcome_unknown("scripted", "timeout")),
            _ => Ok(RefundReceipt::new(
                "scripted",
                Operation::Refund,
                request.payment().clone(),
                request.reference().clone(),
                request.amount(),
                RefundStatus::Completed,
            )),
        }
    }
    async fn void(&self, _: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        Err(RefundError::unsupported("scripted", "void"))
    }
    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        Ok(RefundState::new(
            payment.clone(),
            Money::zero(Currency::Try),
        ))
    }
}

fn request(reference: &str) -> RefundRequest {
    RefundRequest::builder(
        PaymentRef::payment("INV-SECRET-ID-42"),
        Money::parse("10.00", Currency::Try).unwrap(),
    )
    .reference(reference)
    .build()
    .unwrap()
}

#[test]
fn calls_lookups_and_rate_limits_are_counted_with_bounded_labels_only() {
    let counts = Counts::default();
    metrics::with_local_recorder(&counts, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let p = Metered::new(Answers);
            for reference in ["ok-1", "ok-2", "limited", "lost"] {
                let _ = p.refund(&request(reference)).await;
            }
            let _ = p
                .void(
                    &VoidRequest::builder(PaymentRef::payment("P"))
                        .build()
                        .unwrap(),
                )
                .await;
            let attempt = Attempt::first(MerchantRef::new("lost").unwrap(), SystemTime::now());
            Reconciler::new(Duration::from_secs(60))
                .look_up(
                    &p,
                    &PaymentRef::payment("INV-SECRET-ID-42"),
                    &attempt,
                    SystemTime::now,
                )
                .await
                .unwrap();
        });
    });
    let c = |n: &str| counts.get(n);
    assert_eq!(
        c("refund_provider_calls_total{operation=refund,outcome=ok,provider=scripted}"),
        2
    );
    assert_eq!(
        c("refund_provider_calls_total{operation=refund,outcome=rate_limited,provider=scripted}"),
        1
    );
    assert_eq!(
        c(
            "refund_provider_calls_total{operation=refund,outcome=outcome_unknown,provider=scripted}"
        ),
        1
    );
    assert_eq!(
        c("refund_provider_calls_total{operation=void,outcome=unsupported,provider=scripted}"),
        1
    );
    assert_eq!(
        c("refund_provider_calls_total{operation=lookup,outcome=ok,provider=scripted}"),
        1
    );
    assert_eq!(c("refund_rate_limited_total{provider=scripted}"), 1);
    assert_eq!(
        c("refund_provider_call_duration_seconds{operation=refund,provider=scripted}"),
        4
    );
    assert_eq!(
        c("refund_lookup_verdicts_total{provider=scripted,verdict=not_yet_known}"),
        1
    );
    for name in counts.names() {
        for forbidden in ["INV-SECRET", "ok-1", "lost", "10.00"] {
            assert!(!name.contains(forbidden), "{name} carries a request value");
        }
    }
}

#[test]
fn lifecycle_decisions_are_counted_by_outcome_and_state() {
    let counts = Counts::default();
    metrics::with_local_recorder(&counts, || {
        let policy = refund_core::AttemptPolicy::default();
        let attempt = Attempt::first(MerchantRef::new("r").unwrap(), SystemTime::now());
        let d = policy.after_send(
            &attempt,
            Err(&RefundError::outcome_unknown("p", "timeout")),
            SystemTime::now(),
        );
        refund_core::metrics::decision(&d);
    });
    assert_eq!(
        counts.get("refund_attempt_decisions_total{outcome=unknown,state=unknown}"),
        1
    );
}
