//! Opt-in live test against a real SiPay-platform host. Runs only when SIPAY_APP_ID,
//! SIPAY_APP_SECRET, SIPAY_MERCHANT_KEY and SIPAY_LIVE_INVOICE_ID are set (SIPAY_BASE_URL
//! optional, default the test environment); otherwise it prints "skipped: …" and passes.
//! It looks the invoice up; it refunds only when SIPAY_LIVE_REFUND_AMOUNT is set too.

use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest};
use refund_sipay::{Sipay, SipayConfig};

#[tokio::test]
async fn live_lookup_and_optional_refund_against_a_sipay_host() {
    let vars = [
        "SIPAY_APP_ID",
        "SIPAY_APP_SECRET",
        "SIPAY_MERCHANT_KEY",
        "SIPAY_LIVE_INVOICE_ID",
    ];
    if vars
        .iter()
        .any(|v| std::env::var(v).map_or(true, |s| s.is_empty()))
    {
        println!(
            "skipped: set SIPAY_APP_ID, SIPAY_APP_SECRET, SIPAY_MERCHANT_KEY and SIPAY_LIVE_INVOICE_ID \
             (optionally SIPAY_BASE_URL and SIPAY_LIVE_REFUND_AMOUNT) to run against a live host"
        );
        return;
    }
    let invoice = std::env::var("SIPAY_LIVE_INVOICE_ID").unwrap();
    let sipay = Sipay::new(SipayConfig::from_env().unwrap()).unwrap();
    println!("live: {:?}", sipay.config());
    let state = sipay.refund_state(&PaymentRef::payment(&invoice)).await;
    println!("live: check status for {invoice}: {state:?}");
    let state = state.unwrap();
    if let Ok(amount) = std::env::var("SIPAY_LIVE_REFUND_AMOUNT") {
        let request = RefundRequest::builder(
            PaymentRef::payment(&invoice),
            Money::parse(&amount, Currency::Try).unwrap(),
        )
        .build()
        .unwrap();
        let result = sipay.refund(&request).await;
        println!("live: refund {amount} of {invoice}: {result:?}");
        let receipt = result.unwrap();
        let after = sipay
            .refund_state(&PaymentRef::payment(&invoice))
            .await
            .unwrap();
        assert!(after.refunded >= state.refunded);
        println!(
            "live: {:?}, refunded now {}",
            receipt.status, after.refunded
        );
    }
}
