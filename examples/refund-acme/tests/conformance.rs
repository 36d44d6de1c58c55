//! Acme passes the whole conformance suite against its fake: every scenario runs, none is
//! skipped (the fake is a real server, so late application and lagging lookups run too).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use refund_acme::testing::AcmeHarness;
use refund_testkit::conformance::{self, Scenario};

#[tokio::test(flavor = "current_thread")]
async fn acme_passes_the_whole_conformance_suite() {
    let harness = AcmeHarness::start().await.unwrap();
    let report = conformance::run(&harness.provider(), &harness).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.results.len(), Scenario::ALL.len());
    assert!(
        report.results.iter().all(|r| r.outcome.is_passed()),
        "nothing may be skipped:\n{report}"
    );
}
