//! Smoke test: the real provider clients against the simulators (the full matrix is the
//! conformance suite's job).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};

#[tokio::test]
async fn sipay_client_refunds_and_reports_a_lost_response_as_outcome_unknown() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", "100.00".parse().unwrap(), Currency::Try);
    let config = SipayConfig::new(
        SipaySim::APP_ID,
        SipaySim::APP_SECRET,
        SipaySim::MERCHANT_KEY,
    )
    .with_base_url(&sim.base_url())
    .unwrap();
    let client = Sipay::new(config).unwrap();
    let request = |amount: &str, reference: &str| {
        RefundRequest::builder(
            PaymentRef::payment("INV-1"),
            Money::parse(amount, Currency::Try).unwrap(),
        )
        .reference(reference)
        .build()
        .unwrap()
    };
    client.refund(&request("25.00", "rf-1")).await.unwrap();
    assert_eq!(
        sim.payment("INV-1").unwrap().refunded(),
        "25.00".parse().unwrap()
    );

    sim.arm(Fault::LostResponse, 1);
    let err = client.refund(&request("10.00", "rf-2")).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert_eq!(
        sim.payment("INV-1").unwrap().refunded(),
        "35.00".parse().unwrap()
    );

    // A 49 right after this client's own refund of the invoice may be SiPay's 30-second rule,
    // so the client reads it as "wait"; a client that refunded nothing lately reads the
    // over-refund's 49 as the final decline it is.
    let soon = client.refund(&request("70.00", "rf-3")).await.unwrap_err();
    assert_eq!(soon.kind(), "declined", "{soon:?}");
    assert_eq!(sim.token_requests(), 1);
    let fresh = Sipay::new(
        SipayConfig::new(
            SipaySim::APP_ID,
            SipaySim::APP_SECRET,
            SipaySim::MERCHANT_KEY,
        )
        .with_base_url(&sim.base_url())
        .unwrap(),
    )
    .unwrap();
    let over = fresh.refund(&request("70.00", "rf-4")).await.unwrap_err();
    assert!(!over.is_retryable(), "{over:?}");
    assert_eq!(
        sim.payment("INV-1").unwrap().refunded(),
        "35.00".parse().unwrap()
    );
}

#[tokio::test]
async fn iyzico_client_refunds_an_item_against_the_simulator() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &["60.0".parse().unwrap()]);
    let config = IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
        .with_base_url(&sim.base_url())
        .unwrap();
    let client = Iyzico::new(config).unwrap();
    let request = RefundRequest::builder(
        PaymentRef::item(payment.items[0].payment_transaction_id.clone())
            .in_payment(payment.payment_id.clone()),
        Money::parse("10.50", Currency::Try).unwrap(),
    )
    .build()
    .unwrap();
    client.refund(&request).await.unwrap();
    assert_eq!(
        sim.payment(&payment.payment_id).unwrap().refunded(),
        "10.50".parse().unwrap()
    );
}
