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

// The simulators' strictness switches (issue 22 §S) against the real clients: what each
// client makes of the harder provider.

fn sipay_client(sim: &SipaySim) -> Sipay {
    Sipay::new(
        SipayConfig::new(
            SipaySim::APP_ID,
            SipaySim::APP_SECRET,
            SipaySim::MERCHANT_KEY,
        )
        .with_base_url(&sim.base_url())
        .unwrap()
        .with_refund_spacing(std::time::Duration::from_secs(2)),
    )
    .unwrap()
}

fn try_(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

fn refund_of(payment: PaymentRef, amount: &str, reference: &str) -> RefundRequest {
    RefundRequest::builder(payment, try_(amount))
        .reference(reference)
        .build()
        .unwrap()
}

#[tokio::test]
async fn sipays_thirty_second_rule_is_read_by_the_client_as_wait_and_the_same_reference_goes_through_after()
 {
    let sim = SipaySim::start().await.unwrap();
    sim.set_refund_spacing(Some(std::time::Duration::from_secs(2)));
    sim.add_payment("INV-30", "100.00".parse().unwrap(), Currency::Try);
    let client = sipay_client(&sim);
    let invoice = PaymentRef::payment("INV-30");
    client
        .refund(&refund_of(invoice.clone(), "10.00", "r-a"))
        .await
        .unwrap();
    let wait = client
        .refund(&refund_of(invoice.clone(), "10.00", "r-b"))
        .await
        .unwrap_err();
    assert_eq!(wait.kind(), "declined", "{wait}");
    assert!(wait.is_retryable(), "{wait}");
    let after = wait.retry_after().unwrap();
    assert!(after >= std::time::Duration::from_secs(1), "{after:?}");
    tokio::time::sleep(after).await;
    client
        .refund(&refund_of(invoice, "10.00", "r-b"))
        .await
        .unwrap();
    assert_eq!(
        sim.payment("INV-30").unwrap().refunded(),
        "20.00".parse().unwrap()
    );
}

#[tokio::test]
async fn a_sipay_refund_listed_under_an_unknown_status_word_is_never_read_as_failed() {
    let sim = SipaySim::start().await.unwrap();
    sim.set_completed_status_word("cancelled");
    sim.add_payment("INV-C", "25.00".parse().unwrap(), Currency::Try);
    let client = sipay_client(&sim);
    let invoice = PaymentRef::payment("INV-C");
    sim.arm(Fault::LostResponse, 1);
    let lost = client
        .refund(&refund_of(invoice.clone(), "25.00", "r-void"))
        .await
        .unwrap_err();
    assert!(!lost.is_outcome_known());
    let state = client.refund_state(&invoice).await.unwrap();
    let found = state.find(&refund_core::MerchantRef::new("r-void").unwrap());
    assert!(
        !matches!(found, refund_core::Reconciliation::Failed(_)),
        "paid money read as failed: {found:?} in {state:?}"
    );
}

#[tokio::test]
async fn a_hidden_sipay_pending_refund_is_not_found_by_the_lookup_and_the_resend_meets_104() {
    let sim = SipaySim::start().await.unwrap();
    sim.set_pending_refunds(true);
    sim.set_pending_visibility(refund_testkit::sim::PendingVisibility::Hidden);
    sim.add_payment("INV-P", "50.00".parse().unwrap(), Currency::Try);
    let client = sipay_client(&sim);
    let invoice = PaymentRef::payment("INV-P");
    sim.arm(Fault::LostResponse, 1);
    client
        .refund(&refund_of(invoice.clone(), "50.00", "r-p"))
        .await
        .unwrap_err();
    let state = client.refund_state(&invoice).await.unwrap();
    assert_eq!(
        state.find(&refund_core::MerchantRef::new("r-p").unwrap()),
        refund_core::Reconciliation::NotFound,
        "the lookup cannot see it: only the settle time and 104 stand in the way"
    );
    let resent = client
        .refund(&refund_of(invoice, "50.00", "r-p"))
        .await
        .unwrap_err();
    assert_eq!(resent.kind(), "duplicate_reference", "{resent}");
    assert_eq!(
        sim.payment("INV-P").unwrap().pending(),
        "50.00".parse().unwrap()
    );
}

#[tokio::test]
async fn iyzico_payments_whose_paid_price_differs_are_looked_up_by_what_was_paid() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment_with_paid_prices(
        Currency::Try,
        &[("100.0".parse().unwrap(), "110.0".parse().unwrap())],
    );
    let client = Iyzico::new(
        IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
            .with_base_url(&sim.base_url())
            .unwrap(),
    )
    .unwrap();
    let whole = PaymentRef::payment(payment.payment_id.clone());
    client
        .refund(&refund_of(whole.clone(), "105.00", "r-paid"))
        .await
        .unwrap();
    let state = client.refund_state(&whole).await.unwrap();
    assert_eq!(state.paid, Some(try_("110.00")), "{state:?}");
    assert_eq!(state.remaining(), Some(try_("5.00")));
}

#[tokio::test]
async fn an_iyzico_refund_status_nobody_documents_is_never_read_as_failed() {
    let sim = IyzicoSim::start().await.unwrap();
    sim.set_refund_status_values(2, 0);
    let payment = sim.add_payment(Currency::Try, &["60.0".parse().unwrap()]);
    let client = Iyzico::new(
        IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
            .with_base_url(&sim.base_url())
            .unwrap(),
    )
    .unwrap();
    let whole = PaymentRef::payment(payment.payment_id.clone());
    sim.arm(Fault::LostResponse, 1);
    client
        .refund(&refund_of(whole.clone(), "60.00", "r-two"))
        .await
        .unwrap_err();
    let state = client.refund_state(&whole).await.unwrap();
    let found = state.find(&refund_core::MerchantRef::new("r-two").unwrap());
    assert!(
        !matches!(found, refund_core::Reconciliation::Failed(_)),
        "paid money read as failed: {found:?} in {state:?}"
    );
}

#[tokio::test]
async fn an_iyzico_cancel_after_the_payment_day_is_a_known_decline_and_moves_nothing() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &["40.0".parse().unwrap()]);
    assert!(sim.set_paid_at(&payment.payment_id, 1_700_000_000));
    let client = Iyzico::new(
        IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
            .with_base_url(&sim.base_url())
            .unwrap(),
    )
    .unwrap();
    let void = refund_core::VoidRequest::builder(PaymentRef::payment(payment.payment_id.clone()))
        .reference("v-late")
        .build()
        .unwrap();
    let refused = client.void(&void).await.unwrap_err();
    assert_eq!(refused.kind(), "declined", "{refused}");
    assert!(refused.is_outcome_known());
    assert_eq!(
        refused.provider_code(),
        Some(IyzicoSim::ERR_CANCEL_NOT_SAME_DAY)
    );
    assert!(sim.payment(&payment.payment_id).unwrap().cancel.is_none());
}

#[tokio::test]
async fn a_sipay_failed_entry_beside_refunds_that_fall_short_of_the_total_proves_nothing() {
    let sim = SipaySim::start().await.unwrap();
    sim.set_refund_info_short(true);
    sim.add_payment("INV-S", "100.00".parse().unwrap(), Currency::Try);
    let client = sipay_client(&sim);
    let invoice = PaymentRef::payment("INV-S");
    client
        .refund(&refund_of(invoice.clone(), "25.00", "r-ok"))
        .await
        .unwrap();
    sim.arm(Fault::FailLostResponse, 1);
    client
        .refund(&refund_of(invoice.clone(), "10.00", "r-bad"))
        .await
        .unwrap_err();
    let state = client.refund_state(&invoice).await.unwrap();
    assert_eq!(
        state.find(&refund_core::MerchantRef::new("r-bad").unwrap()),
        refund_core::Reconciliation::Undetermined,
        "25.00 refunded and not listed: the failed entry cannot prove r-bad absent ({state:?})"
    );
}
