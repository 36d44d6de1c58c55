//! The `metrics` feature: a worker run against the simulators (with lost answers, so it looks
//! refunds up too) records every decision it stores and the latency of every provider call,
//! and `record_status` sets gauges that agree with `status()`; no label carries a value from a
//! request. A small recorder of its own, installed for this test binary only.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stderr, clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use refund_core::AttemptPolicy;
use refund_outbox::metrics::{
    ATTEMPT_DURATION, CLAIMED_INTENTS, EXPIRED_LEASES, INTENTS, STATES, STUCK_INTENTS,
    record_status,
};
use refund_outbox::{Worker, WorkerConfig, status};
use refund_testkit::sim::Fault;

/// Counters and histogram sample counts as integers, gauges as `f64` bits, by
/// `name{label=value,…}` (labels sorted).
#[derive(Default)]
struct Seen(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

struct Samples(Arc<AtomicU64>);
impl metrics::HistogramFn for Samples {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Seen {
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
    fn gauge(&self, name: &str) -> Option<f64> {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map(|c| f64::from_bits(c.load(Ordering::SeqCst)))
    }
    /// The sum over every series of `name` whose labels include all of `having`.
    fn sum(&self, name: &str, having: &[&str]) -> u64 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| {
                k.starts_with(&format!("{name}{{")) && having.iter().all(|h| k.contains(h))
            })
            .map(|(_, v)| v.load(Ordering::SeqCst))
            .sum()
    }
    fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }
}

impl Recorder for Seen {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.slot(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Samples(self.slot(key))))
    }
}

static SEEN: OnceLock<&'static Seen> = OnceLock::new();

fn seen() -> &'static Seen {
    SEEN.get_or_init(|| {
        let seen: &'static Seen = Box::leak(Box::default());
        metrics::set_global_recorder(seen).unwrap();
        seen
    })
}

fn config(name: &str) -> WorkerConfig {
    WorkerConfig::new(name)
        .with_policy(AttemptPolicy::default().with_jitter(false))
        .with_lease(Duration::from_secs(1))
        .with_recheck(Duration::from_millis(200))
        .with_retry_backoff(Duration::from_millis(300), Duration::from_secs(2))
        .with_idle_poll(Duration::from_millis(50))
}

async fn count(db: &refund_outbox::tokio_postgres::Client, sql: &str) -> u64 {
    let n: i64 = db.query_one(sql, &[]).await.unwrap().get(0);
    u64::try_from(n).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_run_records_every_stored_decision_and_the_gauges_agree_with_status() {
    let seen = seen();
    refund_outbox::metrics::describe();
    let Some((mut db, _)) = common::database("outbox_metrics").await else {
        return;
    };
    let sims = common::Sims::start().await;
    let seeded = common::seed_and_enqueue(&sims, &mut db, 4, "metrics").await;
    // Two answers lost: those attempts end unknown and are looked up before anything else.
    sims.sipay.arm(Fault::LostResponse, 2);

    // Before any work: everything pending, nothing else.
    let before = status(&db, Duration::from_secs(3600), 100).await.unwrap();
    record_status(&before);
    assert_eq!(
        seen.gauge(&format!("{INTENTS}{{state=pending}}")),
        Some(seeded.len() as f64)
    );
    assert_eq!(
        seen.gauge(&format!("{INTENTS}{{state=refunded}}")),
        Some(0.0)
    );

    let worker = Worker::new(
        common::connect("outbox_metrics").await,
        sims.registry(),
        config("metrics-1"),
    )
    .await
    .unwrap();
    let started = Instant::now();
    loop {
        let worked = worker.run_once().await.unwrap();
        let open = count(
            &db,
            "SELECT count(*) FROM refund_outbox_intents
             WHERE state IN ('pending', 'unknown', 'retry_later')",
        )
        .await;
        if worked.is_empty() && open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            common::states(&db).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in &seeded {
        assert_eq!(
            sims.applied(s.provider, &s.payment, &s.reference),
            1,
            "{s:?}"
        );
    }

    // Every stored attempt (a send or a lookup, with its outcome) is one decision recorded,
    // and one latency sample of its kind.
    let sends = count(
        &db,
        "SELECT count(*) FROM refund_outbox_attempts WHERE kind = 'refund' AND outcome IS NOT NULL",
    )
    .await;
    let lookups = count(
        &db,
        "SELECT count(*) FROM refund_outbox_attempts WHERE kind = 'lookup' AND outcome IS NOT NULL",
    )
    .await;
    assert!(lookups >= 2, "the lost answers were looked up: {lookups}");
    assert_eq!(
        seen.sum(refund_core::metrics::ATTEMPT_DECISIONS, &[]),
        sends + lookups,
        "{:#?}",
        seen.names()
    );
    assert_eq!(
        seen.get(&format!("{ATTEMPT_DURATION}{{kind=refund}}")),
        sends
    );
    assert_eq!(
        seen.get(&format!("{ATTEMPT_DURATION}{{kind=lookup}}")),
        lookups
    );
    // Each intent was decided refunded once, by a send's answer or by a lookup.
    assert_eq!(
        seen.sum(refund_core::metrics::ATTEMPT_DECISIONS, &["state=refunded"]),
        seeded.len() as u64
    );
    assert!(
        seen.sum(refund_core::metrics::ATTEMPT_DECISIONS, &["state=unknown"]) >= 2,
        "{:#?}",
        seen.names()
    );

    // The gauges, from status(), agree with it.
    let after = status(&db, Duration::from_secs(3600), 100).await.unwrap();
    record_status(&after);
    for state in STATES {
        assert_eq!(
            seen.gauge(&format!("{INTENTS}{{state={}}}", state.as_str())),
            Some(after.count(state) as f64),
            "{state}"
        );
    }
    assert_eq!(
        seen.gauge(&format!("{INTENTS}{{state=refunded}}")),
        Some(seeded.len() as f64)
    );
    assert_eq!(
        seen.gauge(&format!("{INTENTS}{{state=pending}}")),
        Some(0.0),
        "a state that emptied reads 0"
    );
    assert_eq!(
        seen.gauge(&format!("{STUCK_INTENTS}{{}}")),
        Some(after.stuck.len() as f64)
    );
    assert_eq!(
        seen.gauge(&format!("{CLAIMED_INTENTS}{{}}")),
        Some(after.claimed as f64)
    );
    assert_eq!(
        seen.gauge(&format!("{EXPIRED_LEASES}{{}}")),
        Some(after.expired_leases as f64)
    );

    // Bounded labels: no reference, payment, amount or worker name anywhere.
    for name in seen.names() {
        for s in &seeded {
            assert!(!name.contains(&s.reference), "{name}");
            assert!(!name.contains(s.payment.id()), "{name}");
        }
        assert!(
            !name.contains("10.00") && !name.contains("metrics-1"),
            "{name}"
        );
    }
}
