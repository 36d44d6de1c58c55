//! The main job, end to end, with no credentials and no network: start the built-in SiPay and
//! iyzico simulators on loopback, seed a payment in each, and through `Arc<dyn RefundProvider>`
//! issue a full refund, a partial refund, a second partial refund and an over-refund that the
//! provider declines.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;

use refund_core::{Currency, Decimal, Money, PaymentRef, RefundProvider, RefundRequest};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::{IyzicoSim, SipaySim};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let try_ = |s: &str| Money::parse(s, Currency::Try);

    // SiPay: payments are invoices.
    let sipay_sim = SipaySim::start().await?;
    let creds = sipay_sim.credentials();
    let sipay: Arc<dyn RefundProvider> = Arc::new(Sipay::new(
        SipayConfig::new(creds.app_id, creds.app_secret, creds.merchant_key)
            .with_base_url(&creds.base_url)?,
    )?);
    sipay_sim.add_payment("INV-2026-0001", Decimal::new(10000, 2), Currency::Try);
    sipay_sim.add_payment("INV-2026-0002", Decimal::new(5000, 2), Currency::Try);
    println!("SiPay simulator at {}", creds.base_url);
    let invoice = |id: &str| PaymentRef::payment(id);
    show(
        &*sipay,
        "full refund of INV-2026-0002",
        invoice("INV-2026-0002"),
        try_("50.00")?,
    )
    .await;
    show(
        &*sipay,
        "partial refund of INV-2026-0001",
        invoice("INV-2026-0001"),
        try_("30.00")?,
    )
    .await;
    show(
        &*sipay,
        "second partial refund",
        invoice("INV-2026-0001"),
        try_("20.50")?,
    )
    .await;
    show(
        &*sipay,
        "over-refund (49.50 left)",
        invoice("INV-2026-0001"),
        try_("60.00")?,
    )
    .await;

    // iyzico: payments have basket lines; refunds go to one line (item) or the whole payment.
    let iyzico_sim = IyzicoSim::start().await?;
    let creds = iyzico_sim.credentials();
    let iyzico: Arc<dyn RefundProvider> = Arc::new(Iyzico::new(
        IyzicoConfig::new(creds.api_key, creds.secret_key).with_base_url(&creds.base_url)?,
    )?);
    let payment =
        iyzico_sim.add_payment(Currency::Try, &[Decimal::new(600, 1), Decimal::new(400, 1)]);
    println!("\niyzico simulator at {}", creds.base_url);
    let line = |i: usize| {
        PaymentRef::item(payment.items[i].payment_transaction_id.clone())
            .in_payment(payment.payment_id.clone())
    };
    show(
        &*iyzico,
        "full refund of the 40.00 line",
        line(1),
        try_("40.00")?,
    )
    .await;
    show(
        &*iyzico,
        "partial refund of the 60.00 line",
        line(0),
        try_("10.50")?,
    )
    .await;
    show(&*iyzico, "second partial refund", line(0), try_("9.50")?).await;
    show(
        &*iyzico,
        "over-refund (40.00 left)",
        line(0),
        try_("45.00")?,
    )
    .await;

    let state = iyzico
        .refund_state(&PaymentRef::payment(payment.payment_id.clone()))
        .await?;
    println!(
        "\niyzico says {} of payment {} is refunded, in {} refunds",
        state.refunded,
        payment.payment_id,
        state.refunds.len()
    );
    Ok(())
}

async fn show(provider: &dyn RefundProvider, what: &str, payment: PaymentRef, amount: Money) {
    let request = match RefundRequest::builder(payment, amount).build() {
        Ok(r) => r,
        Err(e) => return println!("  {what}: invalid: {e}"),
    };
    match provider.refund(&request).await {
        Ok(receipt) => {
            let refs: Vec<String> = receipt
                .provider_references
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!(
                "  {what}: {} refunded ({:?}), reference {}, {}",
                receipt.amount,
                receipt.status,
                receipt.reference,
                refs.join(" ")
            );
        }
        Err(e) => println!(
            "  {what}: {e} [retryable: {}, outcome known: {}]",
            e.is_retryable(),
            e.is_outcome_known()
        ),
    }
}
