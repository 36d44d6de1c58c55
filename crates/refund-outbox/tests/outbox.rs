//! The refund outbox against a real PostgreSQL server (started by the tests themselves, see
//! `common`) and the SiPay and iyzico simulators, checked against the simulators' ledgers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_possible_truncation
)]

mod common;
mod crash;
mod lifecycle;
mod scenarios;
#[cfg(feature = "sqlx")]
mod with_sqlx;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{SETTLE, Seeded, Sims};
use refund_core::{AttemptPolicy, Currency, Decimal, MerchantRef, Money, PaymentRef};
use refund_outbox::{
    IntentState, OutboxError, RefundIntent, Worker, WorkerConfig, enqueue, migrate, set_rate,
    status,
};
use refund_testkit::sim::Fault;

/// The tests' worker: short times, and backoffs without jitter so their waits can be
/// asserted.
pub(crate) fn config(name: &str) -> WorkerConfig {
    WorkerConfig::new(name)
        .with_policy(AttemptPolicy::default().with_jitter(false))
        .with_lease(Duration::from_secs(1))
        .with_recheck(Duration::from_millis(200))
        .with_retry_backoff(Duration::from_millis(300), Duration::from_secs(2))
        .with_idle_poll(Duration::from_millis(50))
}

/// Runs `worker` until no intent is claimable and every intent is final, or `limit` passes.
pub(crate) async fn drain(
    worker: &Worker,
    db: &refund_outbox::tokio_postgres::Client,
    limit: Duration,
) {
    let started = Instant::now();
    loop {
        let worked = worker.run_once().await.unwrap();
        if worked.is_empty() {
            let open: i64 = db
                .query_one(
                    "SELECT count(*) FROM refund_outbox_intents
                     WHERE state IN ('pending', 'unknown', 'retry_later')",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if open == 0 {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "intents still open after {limit:?}: {}",
                common::states(db).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_even_when_workers_start_together() {
    let Some(server) = common::server() else {
        return;
    };
    let mut a = server.create_database("migrate_once").await.unwrap();
    let mut b = server.connect("migrate_once").await.unwrap();
    let (ra, rb) = tokio::join!(migrate(&mut a), migrate(&mut b));
    let mut applied = [ra.unwrap(), rb.unwrap()];
    applied.sort();
    assert_eq!(applied, [vec![], vec![1]]);
    assert_eq!(migrate(&mut a).await.unwrap(), Vec::<i32>::new());
    let rows: i64 = a
        .query_one("SELECT count(*) FROM refund_outbox_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_commits_and_rolls_back_with_the_application_transaction() {
    let Some((mut db, _)) = common::database("enqueue_tx").await else {
        return;
    };
    let sims = Sims::start().await;
    db.batch_execute("CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL)")
        .await
        .unwrap();
    let rolled_back = Seeded {
        provider: "sipay",
        payment: sims.seed("sipay", 1),
        reference: "order-1-cancel".into(),
    };
    let committed = Seeded {
        provider: "iyzico",
        payment: sims.seed("iyzico", 2),
        reference: "order-2-cancel".into(),
    };

    // The application changes its mind: neither its change nor the refund stays.
    let tx = db.transaction().await.unwrap();
    tx.execute("INSERT INTO orders VALUES (1, 'cancelled')", &[])
        .await
        .unwrap();
    enqueue(&tx, &rolled_back.intent()).await.unwrap();
    tx.rollback().await.unwrap();

    // A transaction not yet committed: a worker does not see its intent.
    let worker = Worker::new(
        common::connect("enqueue_tx").await,
        sims.registry(),
        config("w"),
    )
    .await
    .unwrap();
    let tx = db.transaction().await.unwrap();
    tx.execute("INSERT INTO orders VALUES (2, 'cancelled')", &[])
        .await
        .unwrap();
    let id = enqueue(&tx, &committed.intent()).await.unwrap();
    assert!(worker.run_once().await.unwrap().is_empty());
    tx.commit().await.unwrap();

    let worked = worker.run_once().await.unwrap();
    assert_eq!(worked.len(), 1);
    assert_eq!(worked[0].id, id);
    assert_eq!(worked[0].state, IntentState::Refunded);
    let orders: i64 = db
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orders, 1);
    assert_eq!(common::states(&db).await, "refunded=1");
    assert_eq!(
        sims.applied("iyzico", &committed.payment, &committed.reference),
        1
    );
    assert_eq!(
        sims.applied("sipay", &rolled_back.payment, &rolled_back.reference),
        0
    );
    assert_eq!(
        common::refund_attempts(&db, &committed.reference).await,
        [(Some("refunded".into()), None)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_enqueued_twice_is_refused_and_refunded_once() {
    let Some((mut db, _)) = common::database("duplicate_reference").await else {
        return;
    };
    let sims = Sims::start().await;
    let first = Seeded {
        provider: "sipay",
        payment: sims.seed("sipay", 1),
        reference: "order-7-return".into(),
    };
    let id = enqueue(&db, &first.intent()).await.unwrap();

    // The same reference again, even for another payment and amount, in a transaction that
    // goes on after the refusal and commits.
    let second = RefundIntent::new(
        "sipay",
        sims.seed("sipay", 2),
        Money::new(Decimal::new(500, 2), Currency::Try).unwrap(),
        MerchantRef::new("order-7-return").unwrap(),
    )
    .unwrap();
    let tx = db.transaction().await.unwrap();
    match enqueue(&tx, &second).await {
        Err(OutboxError::AlreadyEnqueued {
            reference,
            existing,
        }) => {
            assert_eq!(reference, "order-7-return");
            assert_eq!(existing, Some(id));
        }
        other => panic!("expected AlreadyEnqueued, got {other:?}"),
    }
    tx.execute("SELECT 1", &[]).await.unwrap();
    tx.commit().await.unwrap();

    let worker = Worker::new(
        common::connect("duplicate_reference").await,
        sims.registry(),
        config("w"),
    )
    .await
    .unwrap();
    drain(&worker, &db, Duration::from_secs(10)).await;
    assert_eq!(common::states(&db).await, "refunded=1");
    assert_eq!(sims.applied("sipay", &first.payment, &first.reference), 1);
    assert_eq!(sims.sipay.ledger().refunds().count(), 1);
}

/// Several workers, each on its own connection, work the same outbox at once (with lost
/// answers and late answers on the way, so lookups run too): the ledgers show exactly one
/// refund per intent, and no intent was sent by two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_never_send_an_intent_twice() {
    let Some((mut db, _)) = common::database("several_workers").await else {
        return;
    };
    let sims = Sims::start().await;
    let seeded = common::seed_and_enqueue(&sims, &mut db, 100, "many").await;
    sims.sipay.arm(Fault::LostResponse, 5);
    sims.iyzico.arm(Fault::Delay(Duration::from_millis(500)), 5);

    let mut workers = Vec::new();
    for n in 0..4 {
        let worker = Worker::new(
            common::connect("several_workers").await,
            sims.registry(),
            config(&format!("w{n}")).with_concurrency(4),
        )
        .await
        .unwrap();
        workers.push(Arc::new(worker));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in &workers {
        let worker = Arc::clone(worker);
        let db = common::connect("several_workers").await;
        tasks.spawn(async move { drain(&worker, &db, Duration::from_secs(30)).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    eprintln!(
        "{} intents through 4 workers in {:?}",
        seeded.len(),
        started.elapsed()
    );

    for s in &seeded {
        assert_eq!(
            sims.applied(s.provider, &s.payment, &s.reference),
            1,
            "{}: {}",
            s.reference,
            common::state_of(&db, &s.reference).await
        );
        assert_eq!(common::state_of(&db, &s.reference).await, "refunded");
    }
    // Each intent was sent by one worker: a second refund attempt exists only after an
    // unknown answer, never beside a successful one.
    let doubly_sent: i64 = db
        .query_one(
            "SELECT count(*) FROM (
                 SELECT intent_id FROM refund_outbox_attempts WHERE kind = 'refund'
                 GROUP BY intent_id
                 HAVING count(*) FILTER (WHERE outcome = 'refunded') > 1
                     OR count(*) > 1 + count(*) FILTER (WHERE outcome = 'unknown')) t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(doubly_sent, 0);
    let leased: i64 = db
        .query_one(
            "SELECT count(*) FROM refund_outbox_intents WHERE lease_owner IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leased, 0);
}

/// A worker dies while its request is out, and the provider applies the refund after the
/// client gave up, visible in lookups only a second later: the next worker waits out the
/// lease, looks the refund up after it was applied but before it shows, finds nothing and
/// resends nothing, and once the settle time has passed finds it and records it. For iyzico,
/// which does not deduplicate references, a resend would pay twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_refund_is_reconciled_and_never_pays_twice() {
    let Some((db, _)) = common::database("killed_mid_refund").await else {
        return;
    };
    let sims = Sims::start().await;
    sims.sipay.set_lookup_lag(Duration::from_secs(1));
    sims.iyzico.set_lookup_lag(Duration::from_secs(1));
    for (n, provider) in ["sipay", "iyzico"].into_iter().enumerate() {
        let s = Seeded {
            provider,
            payment: sims.seed(provider, n),
            reference: format!("killed-{provider}"),
        };
        enqueue(&db, &s.intent()).await.unwrap();
        // Held 600 ms, then applied (the client has given up at 300 ms); shown from 1.6 s.
        let late = Fault::Delay(Duration::from_millis(600));
        match provider {
            "sipay" => sims.sipay.arm(late, 1),
            _ => sims.iyzico.arm(late, 1),
        }

        let dying = Worker::new(
            common::connect("killed_mid_refund").await,
            sims.registry(),
            config("dying").with_lease(Duration::from_millis(500)),
        )
        .await
        .unwrap();
        // Killed 100 ms in: the attempt row is committed, the request is out.
        let sent = Instant::now();
        let killed = tokio::time::timeout(Duration::from_millis(100), dying.run_once()).await;
        assert!(
            killed.is_err(),
            "{provider}: the worker finished before it was killed"
        );
        drop(dying);
        assert_eq!(common::state_of(&db, &s.reference).await, "unknown");
        assert_eq!(
            common::refund_attempts(&db, &s.reference).await,
            [(None, None)]
        );

        let next = Worker::new(
            common::connect("killed_mid_refund").await,
            sims.registry(),
            config("next"),
        )
        .await
        .unwrap();
        // The lease holds the intent for the dead worker a while.
        assert!(next.run_once().await.unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(800).saturating_sub(sent.elapsed())).await;
        // The lease has expired and the refund was applied, but the lookup does not show it.
        assert_eq!(
            sims.applied(provider, &s.payment, &s.reference),
            1,
            "{provider}"
        );
        let worked = next.run_once().await.unwrap();
        assert_eq!(worked.len(), 1, "{provider}");
        assert!(
            worked[0].looked_up && !worked[0].sent,
            "{provider}: {worked:?}"
        );
        assert_eq!(worked[0].state, IntentState::Unknown, "{provider}");
        // Not claimable before its settle time; then the lookup finds it.
        assert!(next.run_once().await.unwrap().is_empty());
        drain(&next, &db, SETTLE * 3).await;
        assert_eq!(common::state_of(&db, &s.reference).await, "refunded");
        assert_eq!(
            sims.applied(provider, &s.payment, &s.reference),
            1,
            "{provider}"
        );
        assert_eq!(common::refund_attempts(&db, &s.reference).await.len(), 1);
    }
}

/// A worker dies while its request is held unprocessed (the provider never applies it): the
/// next worker finds nothing, waits out the settle time, and only then resends, with the
/// same reference. One refund in the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_before_the_provider_applied_resends_after_the_settle_time() {
    let Some((db, _)) = common::database("killed_unapplied").await else {
        return;
    };
    let sims = Sims::start().await;
    let s = Seeded {
        provider: "iyzico",
        payment: sims.seed("iyzico", 1),
        reference: "killed-unapplied".into(),
    };
    enqueue(&db, &s.intent()).await.unwrap();
    sims.iyzico.arm(Fault::Timeout, 1);
    let dying = Worker::new(
        common::connect("killed_unapplied").await,
        sims.registry(),
        config("dying"),
    )
    .await
    .unwrap();
    let sent_at = Instant::now();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), dying.run_once())
            .await
            .is_err()
    );
    drop(dying);
    sims.iyzico.disarm();

    let next = Worker::new(
        common::connect("killed_unapplied").await,
        sims.registry(),
        config("next"),
    )
    .await
    .unwrap();
    drain(&next, &db, SETTLE * 4).await;
    assert!(
        sent_at.elapsed() >= SETTLE,
        "resent before the settle time: {:?}",
        sent_at.elapsed()
    );
    assert_eq!(common::state_of(&db, &s.reference).await, "refunded");
    assert_eq!(sims.applied("iyzico", &s.payment, &s.reference), 1);
    assert_eq!(
        common::refund_attempts(&db, &s.reference).await,
        [(None, None), (Some("refunded".into()), None)]
    );
    let verdicts: Vec<String> = db
        .query(
            "SELECT outcome FROM refund_outbox_attempts WHERE kind = 'lookup' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(verdicts.first().map(String::as_str), Some("not_yet_known"));
    assert_eq!(verdicts.last().map(String::as_str), Some("safe_to_resend"));
}

/// A rate limit answer and a temporary bank refusal leave the intent `retry_later` with a
/// not-before time that every worker honours; then it is sent again with the same
/// reference, and refunded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_later_is_honoured_by_every_worker() {
    let Some((mut db, _)) = common::database("retry_later").await else {
        return;
    };
    let sims = Sims::start().await;
    let seeded = common::seed_and_enqueue(&sims, &mut db, 1, "later").await;
    // SiPay answers 429 with Retry-After: 1; iyzico's bank refuses for now (retryable).
    sims.sipay.arm(Fault::Http429, 1);
    sims.iyzico.arm(Fault::Fail, 1);
    let a = Worker::new(
        common::connect("retry_later").await,
        sims.registry(),
        config("a"),
    )
    .await
    .unwrap();
    let b = Worker::new(
        common::connect("retry_later").await,
        sims.registry(),
        config("b"),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut first = a.run_once().await.unwrap();
    first.extend(b.run_once().await.unwrap());
    assert_eq!(first.len(), 2);
    assert!(
        first.iter().all(|w| w.state == IntentState::RetryLater),
        "{first:?}"
    );
    // Neither worker takes them before their time.
    assert!(a.run_once().await.unwrap().is_empty());
    assert!(b.run_once().await.unwrap().is_empty());
    let not_before: Vec<(String, f64)> = db
        .query(
            "SELECT reference, EXTRACT(EPOCH FROM not_before - updated_at)::float8
             FROM refund_outbox_intents ORDER BY reference",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (reference, wait) in &not_before {
        let least = if reference.contains("sipay") {
            0.95
        } else {
            0.25
        };
        assert!(*wait >= least, "{reference} waits only {wait} s");
    }
    let (da, db_) = (
        common::connect("retry_later").await,
        common::connect("retry_later").await,
    );
    tokio::join!(
        drain(&a, &da, Duration::from_secs(10)),
        drain(&b, &db_, Duration::from_secs(10))
    );
    assert!(started.elapsed() >= Duration::from_millis(950));
    for s in &seeded {
        assert_eq!(common::state_of(&db, &s.reference).await, "refunded");
        assert_eq!(sims.applied(s.provider, &s.payment, &s.reference), 1);
        let attempts = common::refund_attempts(&db, &s.reference).await;
        assert_eq!(attempts.len(), 2, "{}: {attempts:?}", s.reference);
        assert_eq!(attempts[0].0.as_deref(), Some("retry_later"));
    }
    let refusals: i32 = db
        .query_one(
            "SELECT refusals FROM refund_outbox_intents WHERE provider = 'iyzico'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(refusals, 1);
}

/// The rate in the database spaces every worker's requests to a provider: 11 refunds at 20
/// per second through two workers take at least half a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_rate_paces_all_workers_together() {
    let Some((db, _)) = common::database("shared_rate").await else {
        return;
    };
    let sims = Sims::start().await;
    let tx_db = &db;
    for n in 0..11 {
        let s = Seeded {
            provider: "sipay",
            payment: sims.seed("sipay", n),
            reference: format!("paced-{n}"),
        };
        enqueue(tx_db, &s.intent()).await.unwrap();
    }
    set_rate(&db, "sipay", NonZeroU32::new(20)).await.unwrap();
    let a = Worker::new(
        common::connect("shared_rate").await,
        sims.registry(),
        config("a").with_concurrency(8),
    )
    .await
    .unwrap();
    let b = Worker::new(
        common::connect("shared_rate").await,
        sims.registry(),
        config("b").with_concurrency(8),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (da, db_) = (
        common::connect("shared_rate").await,
        common::connect("shared_rate").await,
    );
    tokio::join!(
        drain(&a, &da, Duration::from_secs(10)),
        drain(&b, &db_, Duration::from_secs(10))
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert_eq!(common::states(&db).await, "refunded=11");
    assert_eq!(sims.sipay.ledger().refunds().count(), 11);
}

/// `status` counts intents by state and lists the ones that need a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_states_and_lists_stuck_intents() {
    let Some((db, _)) = common::database("status").await else {
        return;
    };
    let sims = Sims::start().await;
    let tl = |s: &str| Money::parse(s, Currency::Try).unwrap();
    // No worker knows "paytr": it stays pending. SiPay declines an over-refund.
    let orphan = RefundIntent::new(
        "paytr",
        PaymentRef::payment("P-1"),
        tl("5"),
        MerchantRef::new("status-orphan").unwrap(),
    )
    .unwrap();
    enqueue(&db, &orphan).await.unwrap();
    let over = RefundIntent::new(
        "sipay",
        sims.seed("sipay", 1),
        tl("500"),
        MerchantRef::new("status-over").unwrap(),
    )
    .unwrap();
    enqueue(&db, &over).await.unwrap();
    let fine = Seeded {
        provider: "sipay",
        payment: sims.seed("sipay", 2),
        reference: "status-fine".into(),
    };
    enqueue(&db, &fine.intent()).await.unwrap();
    let worker = Worker::new(
        common::connect("status").await,
        sims.registry(),
        config("w"),
    )
    .await
    .unwrap();
    worker.run_once().await.unwrap();

    let now = status(&db, Duration::from_secs(3600), 10).await.unwrap();
    assert_eq!(
        (now.pending, now.refunded, now.declined),
        (1, 1, 1),
        "{now:?}"
    );
    assert_eq!(now.total(), 3);
    assert!(now.stuck.is_empty(), "{now:?}");

    let later = status(&db, Duration::ZERO, 10).await.unwrap();
    assert_eq!(later.stuck.len(), 1, "{later:?}");
    let stuck = &later.stuck[0];
    assert_eq!(stuck.reference, "status-orphan");
    assert_eq!(stuck.provider, "paytr");
    assert_eq!(stuck.payment, "payment:P-1");
    assert_eq!(stuck.amount, "5.00 TRY");
    assert_eq!(stuck.state, IntentState::Pending);
    assert!(stuck.why.contains("worker"), "{}", stuck.why);
    let json = serde_json::to_value(&later).unwrap();
    assert_eq!(json["pending"], 1);
    assert_eq!(json["stuck"][0]["state"], "pending");
}
