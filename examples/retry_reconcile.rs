//! What to do when the answer to a refund is lost: the simulator applies the refund and then
//! drops the connection. The client reports `OutcomeUnknown` (never retryable); the `Retrying`
//! wrapper looks the refund up by its reference instead of resending it, and returns the
//! receipt marked `reconciled`. The ledger shows the refund exactly once.
//!
//! ```sh
//! cargo run --example retry_reconcile
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::time::Duration;

use refund_core::{
    Currency, Decimal, Money, PaymentRef, RefundProvider, RefundRequest, RetryPolicy, Retrying,
};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::{Fault, SipaySim};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let sim = SipaySim::start().await?;
    let creds = sim.credentials();
    let sipay = Sipay::new(
        SipayConfig::new(creds.app_id, creds.app_secret, creds.merchant_key)
            .with_base_url(&creds.base_url)?
            .with_timeout(Duration::from_secs(2)),
    )?;
    sim.add_payment("INV-LOST-1", Decimal::new(10000, 2), Currency::Try);
    let request = RefundRequest::builder(
        PaymentRef::payment("INV-LOST-1"),
        Money::parse("25.00", Currency::Try)?,
    )
    .reference("order-7-refund-1")
    .build()?;

    // 1. Without the wrapper: the refund is applied, but the client cannot know it.
    sim.arm(Fault::LostResponse, 1);
    match sipay.refund(&request).await {
        Ok(_) => println!("unexpected: the response arrived"),
        Err(e) => println!(
            "plain client: {e}\n  retryable: {}, outcome known: {}",
            e.is_retryable(),
            e.is_outcome_known()
        ),
    }

    // 2. With the wrapper: a second payment, the same fault, and reconciliation by reference.
    sim.add_payment("INV-LOST-2", Decimal::new(10000, 2), Currency::Try);
    let request = RefundRequest::builder(
        PaymentRef::payment("INV-LOST-2"),
        Money::parse("25.00", Currency::Try)?,
    )
    .reference("order-8-refund-1")
    .build()?;
    let policy = RetryPolicy::default().reconcile(true, Duration::from_millis(200));
    let retrying = Retrying::new(sipay, policy);
    sim.arm(Fault::LostResponse, 1);
    let receipt = retrying.refund(&request).await?;
    println!(
        "with Retrying: {} refunded, reconciled: {}, reference {}",
        receipt.amount, receipt.reconciled, receipt.reference
    );
    let refunded = sim
        .payment("INV-LOST-2")
        .map(|p| p.refunds.len())
        .unwrap_or_default();
    println!(
        "the simulator's ledger holds {refunded} refund(s) for INV-LOST-2: sent once, never twice"
    );
    Ok(())
}
