//! The SiPay client against the test kit's simulator: partial refunds, over-refunds, token
//! expiry, and reconciling an outcome-unknown refund by its reference.

use std::time::Duration;

use refund_core::{
    Currency, Decimal, MerchantRef, Money, PaymentRef, Reconciliation, RefundError, RefundProvider,
    RefundRequest, RefundStatus,
};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::{Fault, SipaySim};

fn client(sim: &SipaySim) -> Sipay {
    let c = sim.credentials();
    Sipay::new(
        SipayConfig::new(c.app_id, c.app_secret, c.merchant_key)
            .with_base_url(&c.base_url)
            .unwrap()
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap()
}

fn tl(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

fn refund(invoice: &str, amount: &str, reference: &str) -> RefundRequest {
    RefundRequest::builder(PaymentRef::payment(invoice), tl(amount))
        .reference(reference)
        .build()
        .unwrap()
}

#[tokio::test]
async fn repeated_partial_refunds_add_up_and_an_over_refund_is_declined() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SIM-1", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    let a = sipay
        .refund(&refund("INV-SIM-1", "25", "p-1"))
        .await
        .unwrap();
    let b = sipay
        .refund(&refund("INV-SIM-1", "30.50", "p-2"))
        .await
        .unwrap();
    assert_eq!(
        (a.status, b.status),
        (RefundStatus::Completed, RefundStatus::Completed)
    );
    let e = sipay
        .refund(&refund("INV-SIM-1", "50", "p-3"))
        .await
        .unwrap_err();
    assert_eq!(e.provider_code(), Some("49"), "{e}");
    assert!(e.is_outcome_known());
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-SIM-1"))
        .await
        .unwrap();
    assert_eq!(state.refunded, tl("55.50"));
    assert!(matches!(
        state.find(&MerchantRef::new("p-2").unwrap()),
        Reconciliation::Applied(_)
    ));
    assert_eq!(sim.token_requests(), 1);
}

#[tokio::test]
async fn a_lost_response_is_outcome_unknown_and_the_lookup_finds_the_refund() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SIM-2", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    // Get a token first, so the fault hits the refund.
    sipay
        .refund_state(&PaymentRef::payment("INV-SIM-2"))
        .await
        .unwrap();
    sim.arm(Fault::LostResponse, 1);
    let e = sipay
        .refund(&refund("INV-SIM-2", "40", "lost-1"))
        .await
        .unwrap_err();
    assert!(!e.is_outcome_known() && !e.is_retryable(), "{e}");
    let state = sipay
        .refund_state(&PaymentRef::payment("INV-SIM-2"))
        .await
        .unwrap();
    assert!(matches!(
        state.find(&MerchantRef::new("lost-1").unwrap()),
        Reconciliation::Applied(r) if r.amount == tl("40")
    ));
    // Resending under the same reference is refused by SiPay (104), never paid twice.
    let again = sipay
        .refund(&refund("INV-SIM-2", "40", "lost-1"))
        .await
        .unwrap_err();
    assert!(matches!(again, RefundError::Declined { .. }), "{again}");
    assert_eq!(again.provider_code(), Some("104"));
    assert_eq!(sim.payment("INV-SIM-2").unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_refund_goes_through() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SIM-3", Decimal::new(5000, 2), Currency::Try);
    let sipay = client(&sim);
    sipay
        .refund(&refund("INV-SIM-3", "5", "t-1"))
        .await
        .unwrap();
    sim.arm(Fault::TokenExpired, 1);
    sipay
        .refund(&refund("INV-SIM-3", "5", "t-2"))
        .await
        .unwrap();
    assert_eq!(sim.token_requests(), 2);
    assert_eq!(sim.payment("INV-SIM-3").unwrap().refunds.len(), 2);
}

#[tokio::test]
async fn faults_that_did_not_apply_the_refund_are_classified_from_the_clients_side() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SIM-4", Decimal::new(10000, 2), Currency::Try);
    let sipay = client(&sim);
    sipay
        .refund_state(&PaymentRef::payment("INV-SIM-4"))
        .await
        .unwrap();
    for (i, fault) in [
        Fault::Http500,
        Fault::Html502,
        Fault::Http503,
        Fault::Malformed,
        Fault::Empty,
    ]
    .into_iter()
    .enumerate()
    {
        sim.arm(fault, 1);
        let e = sipay
            .refund(&refund("INV-SIM-4", "1", &format!("f-{i}")))
            .await
            .unwrap_err();
        assert!(!e.is_outcome_known(), "{fault:?}: {e}");
    }
    sim.arm(Fault::Http429, 1);
    let e = sipay
        .refund(&refund("INV-SIM-4", "1", "f-429"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::RateLimited { .. }), "{e}");
    assert!(e.is_retryable());
}
