//! The conformance suite against Acme's fake, printed as a table:
//!
//! ```text
//! cargo run -p refund-acme --example conformance
//! ```
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use refund_acme::testing::AcmeHarness;
use refund_testkit::conformance;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let harness = match AcmeHarness::start().await {
        Ok(harness) => harness,
        Err(e) => {
            println!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let report = conformance::run(&harness.provider(), &harness).await;
    println!("{report}");
    if report.is_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
