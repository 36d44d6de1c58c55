//! A third-party provider proving itself with the conformance suite.
//!
//! `acme.rs` is a complete, small provider the way an outside crate would write one: a client
//! implementing `RefundProvider`, an in-memory fake of its API, and the `Harness` the suite
//! drives the fake through. This program runs the whole suite against it and prints the
//! report; `tests/conformance.rs` runs the same suite as a test.
//!
//! ```text
//! cargo run --example third_party_provider
//! ```
//!
//! The walk-through is `docs/writing-a-provider.md`.

mod acme;

use std::process::ExitCode;

use refund_testkit::conformance;

#[tokio::main(flavor = "current_thread")]
#[allow(clippy::print_stdout, reason = "the report is this example's output")]
async fn main() -> ExitCode {
    let harness = acme::AcmeHarness::new();
    let report = conformance::run(&harness.provider(), &harness).await;
    println!("{report}");
    if report.is_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
