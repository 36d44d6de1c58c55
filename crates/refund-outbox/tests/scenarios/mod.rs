//! The lifecycle's shared scripted scenarios (`refund_testkit::lifecycle`) through the outbox:
//! the same scripts `Retrying` (tests/lifecycle_drivers.rs) and the file journal run, ending in
//! the same states with the same requests sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use refund_core::{MerchantRef, PaymentRef, ProviderRegistry, RefundProvider};
use refund_outbox::{RefundIntent, Worker, WorkerConfig, enqueue, find};
use refund_testkit::lifecycle::{self, Ended};

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lifecycle_scenario_ends_as_the_lifecycle_says_through_the_outbox() {
    let mut failures = Vec::new();
    for (n, scenario) in lifecycle::scenarios().iter().enumerate() {
        let Some((db, _)) = common::database(&format!("lifecycle_scenario_{n}")).await else {
            return;
        };
        let provider = scenario.provider();
        let registry =
            ProviderRegistry::new().with(Arc::new(provider.clone()) as Arc<dyn RefundProvider>);
        let request = scenario.request().unwrap();
        let intent = RefundIntent::new(
            provider.name(),
            PaymentRef::payment(lifecycle::PAYMENT),
            request.amount(),
            MerchantRef::new(scenario.reference().as_str()).unwrap(),
        )
        .unwrap();
        enqueue(&db, &intent).await.unwrap();
        let worker_db = common::connect(&format!("lifecycle_scenario_{n}")).await;
        let config = WorkerConfig::new(format!("scenario-{n}"))
            .with_policy(lifecycle::policy())
            .with_lease(Duration::from_secs(2))
            .with_idle_poll(Duration::from_millis(20));
        let worker = Worker::new(worker_db, registry, config).await.unwrap();
        // Work it until it is final, or for as long as the longest scenario needs (a lookup
        // that cannot tell never ends by itself).
        let started = Instant::now();
        let state = loop {
            worker.run_once().await.unwrap();
            let row = find(&db, scenario.reference().as_str())
                .await
                .unwrap()
                .unwrap();
            if row.state.is_final() || started.elapsed() > Duration::from_secs(3) {
                break row.state;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if let Err(e) = scenario.check(Ended(state), &provider) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
