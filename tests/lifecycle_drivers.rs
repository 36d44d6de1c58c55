//! The lifecycle's scripted scenarios (`refund_testkit::lifecycle`) through `Retrying`, the
//! in-memory driver. The same scenarios run through the file journal driver
//! (crates/refund-cli, `commands::batch::drive` tests) and the outbox
//! (crates/refund-outbox/tests/lifecycle.rs), and must end in the same states.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use refund_core::{RefundProvider, Retrying};
use refund_testkit::lifecycle::{self, Ended};

#[tokio::test]
async fn every_scenario_ends_as_the_lifecycle_says_through_retrying() {
    let mut failures = Vec::new();
    for scenario in lifecycle::scenarios() {
        let provider = scenario.provider();
        let retrying = Retrying::new(provider.clone(), lifecycle::retry_policy());
        let ended = Ended::of(&retrying.refund(&scenario.request().unwrap()).await);
        if let Err(e) = scenario.check(ended, &provider) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
