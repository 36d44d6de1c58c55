//! Choosing the provider per payment: a `ProviderRegistry` holds each provider as
//! `Arc<dyn RefundProvider>` under a name, and the application looks the name up from its own
//! order records. Runs against the built-in simulators.
//!
//! ```sh
//! cargo run --example registry
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;

use refund_core::{Currency, Decimal, Money, PaymentRef, ProviderRegistry, RefundRequest};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::{IyzicoSim, SipaySim};

/// What an application knows about an order it wants to refund.
struct Order {
    provider: &'static str,
    payment: PaymentRef,
    refund: &'static str,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let sipay_sim = SipaySim::start().await?;
    let iyzico_sim = IyzicoSim::start().await?;
    let s = sipay_sim.credentials();
    let i = iyzico_sim.credentials();

    // Built once at start-up, shared by every task.
    let registry = ProviderRegistry::new()
        .with(Arc::new(Sipay::new(
            SipayConfig::new(s.app_id, s.app_secret, s.merchant_key).with_base_url(&s.base_url)?,
        )?))
        .with(Arc::new(Iyzico::new(
            IyzicoConfig::new(i.api_key, i.secret_key).with_base_url(&i.base_url)?,
        )?));

    sipay_sim.add_payment("INV-9001", Decimal::new(4990, 2), Currency::Try);
    let paid = iyzico_sim.add_payment(Currency::Try, &[Decimal::new(1250, 1)]);
    let orders = [
        Order {
            provider: "sipay",
            payment: PaymentRef::payment("INV-9001"),
            refund: "49.90",
        },
        Order {
            provider: "iyzico",
            payment: PaymentRef::payment(paid.payment_id.clone()),
            refund: "25.00",
        },
    ];

    for order in orders {
        let Some(provider) = registry.get(order.provider) else {
            println!("no provider named {}", order.provider);
            continue;
        };
        let caps = provider.capabilities();
        let request = RefundRequest::builder(
            order.payment.clone(),
            Money::parse(order.refund, Currency::Try)?,
        )
        .build()?;
        match provider.refund(&request).await {
            Ok(r) => println!(
                "{:>6} {}: refunded {} (partial refunds: {}, void: {:?})",
                order.provider, order.payment, r.amount, caps.partial_refunds, caps.void
            ),
            Err(e) => println!("{:>6} {}: {e}", order.provider, order.payment),
        }
    }
    Ok(())
}
