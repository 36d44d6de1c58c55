//! Throughput of the outbox: intents per second through two workers against the in-process
//! SiPay simulator, and the database round trips per refund.
//!
//! ```sh
//! cargo run --release -p refund-outbox --example outbox_bench -- [intents] [concurrency]
//! ```
//!
//! Starts a throwaway PostgreSQL server (`refund_outbox::testing`, the installed binaries),
//! enqueues `intents` (default 5,000) SiPay refunds, runs two workers of `concurrency`
//! (default 8) intents each until every intent is refunded, checks the ledger (exactly one
//! refund per intent), and prints one JSON line. Round trips are the statements the server
//! ran for the workers (`pg_stat_database.xact_commit`: each worker statement is its own
//! transaction), divided by the intents.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::cast_possible_truncation, clippy::float_arithmetic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use refund_core::{Currency, Decimal, MerchantRef, Money, PaymentRef, ProviderRegistry};
use refund_outbox::testing::TestPostgres;
use refund_outbox::{RefundIntent, Worker, WorkerConfig, enqueue};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::SipaySim;

async fn commits(db: &refund_outbox::tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let intents: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let base = std::env::temp_dir().join("refund-outbox-bench");
    let server =
        TestPostgres::start(&base).expect("PostgreSQL binaries (apt-get install postgresql)");
    let mut db = server.create_database("bench").await.unwrap();
    refund_outbox::migrate(&mut db).await.unwrap();

    let sim = SipaySim::start().await.unwrap();
    sim.set_recording(false);
    let sipay = Sipay::new(
        SipayConfig::new(
            SipaySim::APP_ID,
            SipaySim::APP_SECRET,
            SipaySim::MERCHANT_KEY,
        )
        .with_base_url(&sim.base_url())
        .unwrap(),
    )
    .unwrap();
    let registry = ProviderRegistry::new().with(Arc::new(sipay));

    let tx = db.transaction().await.unwrap();
    for n in 0..intents {
        let invoice = format!("bench-{n}");
        sim.add_payment(&invoice, Decimal::new(10_000, 2), Currency::Try);
        let intent = RefundIntent::new(
            "sipay",
            PaymentRef::payment(invoice),
            Money::new(Decimal::new(1_000, 2), Currency::Try).unwrap(),
            MerchantRef::new(format!("bench-r-{n}")).unwrap(),
        )
        .unwrap();
        enqueue(&tx, &intent).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut workers = Vec::new();
    for n in 0..2 {
        let config = WorkerConfig::new(format!("bench-{n}"))
            .with_concurrency(concurrency)
            .with_idle_poll(Duration::from_millis(20));
        let worker = Worker::new(
            server.connect("bench").await.unwrap(),
            registry.clone(),
            config,
        )
        .await
        .unwrap();
        workers.push(worker);
    }
    let before = commits(&db).await;
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in workers {
        let mut stopped = stopped.clone();
        tasks.spawn(async move {
            worker
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
                .unwrap();
        });
    }
    loop {
        let open: i64 = db
            .query_one(
                "SELECT count(*) FROM refund_outbox_intents WHERE state <> 'refunded'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    // The polling above ran statements too: one per 20 ms.
    let polls = (took.as_millis() / 20 + 1) as i64;
    let statements = commits(&db).await - before - polls;
    let ledger = sim.ledger();
    assert_eq!(
        ledger.refunds().count(),
        intents,
        "exactly one refund per intent"
    );
    println!(
        "{{\"intents\":{intents},\"workers\":2,\"concurrency\":{concurrency},\"seconds\":{:.3},\
         \"intents_per_sec\":{:.1},\"round_trips_per_refund\":{:.2}}}",
        took.as_secs_f64(),
        intents as f64 / took.as_secs_f64(),
        statements as f64 / intents as f64
    );
}
