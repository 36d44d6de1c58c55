//! Opt-in test against iyzico's real sandbox. Runs only when IYZICO_API_KEY,
//! IYZICO_SECRET_KEY, IYZICO_IP (the address the refund is sent from, which iyzico requires)
//! and IYZICO_LIVE_PAYMENT_TRANSACTION_ID are set (and, for the lookup,
//! IYZICO_LIVE_PAYMENT_ID); prints "skipped: …" otherwise. Never runs against production.
//!
//!     IYZICO_API_KEY=sandbox-… IYZICO_SECRET_KEY=sandbox-… IYZICO_IP=… \
//!     IYZICO_LIVE_PAYMENT_TRANSACTION_ID=… IYZICO_LIVE_PAYMENT_ID=… \
//!     cargo test -p refund-iyzico --test live_sandbox -- --nocapture
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use refund_core::{Currency, Money, PaymentRef, Reconciliation, RefundProvider, RefundRequest};
use refund_iyzico::{Iyzico, IyzicoConfig};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::test]
async fn live_sandbox_partial_refund_and_lookup() {
    let (Some(_), Some(_), Some(item)) = (
        env("IYZICO_API_KEY"),
        env("IYZICO_SECRET_KEY"),
        env("IYZICO_LIVE_PAYMENT_TRANSACTION_ID"),
    ) else {
        println!(
            "skipped: set IYZICO_API_KEY, IYZICO_SECRET_KEY and IYZICO_LIVE_PAYMENT_TRANSACTION_ID (sandbox) to run"
        );
        return;
    };
    let config = IyzicoConfig::from_env().unwrap();
    if !config.base_url().contains("sandbox") && !config.base_url().contains("127.0.0.1") {
        println!("skipped: IYZICO_BASE_URL is not a sandbox; this test never refunds real money");
        return;
    }
    if config.default_ip().is_none() && !config.base_url().contains("127.0.0.1") {
        println!(
            "skipped: set IYZICO_IP, the address the refund is sent from (iyzico requires it)"
        );
        return;
    }
    let iyzico = Iyzico::new(config).unwrap();
    let payment = env("IYZICO_LIVE_PAYMENT_ID");
    let mut line = PaymentRef::item(item);
    if let Some(p) = &payment {
        line = line.in_payment(p.as_str());
    }
    let amount = env("IYZICO_LIVE_AMOUNT").unwrap_or_else(|| "0.01".into());
    let request =
        RefundRequest::builder(line.clone(), Money::parse(&amount, Currency::Try).unwrap())
            .build()
            .unwrap();
    let refunded = match iyzico.refund(&request).await {
        Ok(receipt) => {
            println!("refunded: {receipt:?}");
            assert_eq!(receipt.amount, request.amount());
            true
        }
        Err(e) => {
            // A decline (already fully refunded, …) is a legitimate sandbox answer; an
            // authentication error or unknown outcome is not.
            println!("sandbox answered: {e}");
            assert!(e.is_outcome_known(), "{e}");
            assert!(
                !matches!(e, refund_core::RefundError::AuthenticationRejected { .. }),
                "{e}"
            );
            false
        }
    };
    if payment.is_some() {
        let state = iyzico.refund_state(&line).await.unwrap();
        println!("state: {state:?}");
        if refunded {
            // The refund just made is on record under its conversationId.
            assert!(matches!(
                state.find(request.reference()),
                Reconciliation::Applied(_)
            ));
        }
    }
}
