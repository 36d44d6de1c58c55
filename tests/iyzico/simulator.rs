//! The iyzico client against the test kit's simulator: the reporting answer in the official
//! SDK's shape, refunds and cancels the bank refused (listed as failed, never money returned),
//! and a reporting lookup that lags behind the refunds.

use std::time::{Duration, SystemTime};

use refund_core::{
    Currency, Decimal, MerchantRef, Money, PaymentRef, Reconciler, Reconciliation, RefundError,
    RefundProvider, RefundRequest, RefundStatus, Verdict, VoidRequest,
};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_testkit::sim::{Fault, IyzicoPayment, IyzicoSim};

fn client(sim: &IyzicoSim, timeout: Duration) -> Iyzico {
    let c = sim.credentials();
    Iyzico::new(
        IyzicoConfig::new(c.api_key, c.secret_key)
            .with_base_url(&c.base_url)
            .unwrap()
            .with_timeout(timeout)
            .with_settle_time(Duration::from_secs(2)),
    )
    .unwrap()
}

fn tl(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

fn r(s: &str) -> MerchantRef {
    MerchantRef::new(s).unwrap()
}

fn seed(sim: &IyzicoSim) -> IyzicoPayment {
    sim.add_payment(Currency::Try, &[Decimal::from(60), Decimal::from(40)])
}

fn item_refund(p: &IyzicoPayment, n: usize, amount: &str, reference: &str) -> RefundRequest {
    RefundRequest::builder(
        PaymentRef::item(p.items[n].payment_transaction_id.clone()).in_payment(&p.payment_id),
        tl(amount),
    )
    .reference(reference)
    .build()
    .unwrap()
}

fn void(p: &IyzicoPayment, reference: &str) -> VoidRequest {
    VoidRequest::builder(PaymentRef::payment(&p.payment_id))
        .reference(reference)
        .build()
        .unwrap()
}

/// The reporting answer as the simulator sends it, read without our client: one plain
/// HTTP/1.1 GET over a loopback socket, signed as the node SDK signs it.
async fn raw_report(sim: &IyzicoSim, payment_id: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = "/v2/reporting/payment/details";
    let header = refund_iyzico::signature::authorization_header(
        IyzicoSim::API_KEY,
        IyzicoSim::SECRET_KEY,
        "42",
        path,
        b"{}",
    );
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!(
        "GET {path}?locale=tr&conversationId=look-1&paymentId={payment_id} HTTP/1.1\r\n\
         host: {}\r\nauthorization: {header}\r\ncontent-type: application/json\r\n\
         content-length: 2\r\nconnection: close\r\n\r\n{{}}",
        sim.addr()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8(reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}

fn keys(v: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn the_reporting_answer_uses_the_sdk_models_field_names() {
    let sim = IyzicoSim::start().await.unwrap();
    let iyzico = client(&sim, Duration::from_secs(5));
    let refunded = seed(&sim);
    iyzico
        .refund(&item_refund(&refunded, 0, "10.50", "rf-1"))
        .await
        .unwrap();
    sim.arm(Fault::Fail, 1);
    iyzico
        .refund(&item_refund(&refunded, 0, "5", "rf-2"))
        .await
        .unwrap_err();
    let cancelled = seed(&sim);
    iyzico.void(&void(&cancelled, "void-1")).await.unwrap();

    let report = raw_report(&sim, &refunded.payment_id).await;
    assert_eq!(report["conversationId"], "look-1", "echoed as the docs say");
    let p = &report["payments"][0];
    assert_eq!(p["paymentRefundStatus"], "PARTIALLY_REFUNDED");
    assert_eq!(
        p["paymentConversationId"],
        refunded.conversation_id.as_str()
    );
    let refunds = p["itemTransactions"][0]["refunds"].as_array().unwrap();
    // iyzipay-java model/RefundTxDetail.java.
    assert_eq!(
        keys(&refunds[0]),
        [
            "authCode",
            "createdDate",
            "currencyCode",
            "hostReference",
            "isAfterSettlement",
            "refundConversationId",
            "refundPrice",
            "refundStatus",
            "refundTxId"
        ]
    );
    assert_eq!(refunds[0]["refundConversationId"], "rf-1");
    assert_eq!(refunds[0]["refundPrice"].to_string(), "10.5");
    assert_eq!(refunds[0]["refundStatus"], 1);
    assert_eq!(
        keys(&refunds[1]),
        [
            "createdDate",
            "currencyCode",
            "errorCode",
            "errorGroup",
            "errorMessage",
            "isAfterSettlement",
            "refundConversationId",
            "refundPrice",
            "refundStatus",
            "refundTxId"
        ]
    );
    assert_eq!(refunds[1]["refundConversationId"], "rf-2");
    assert_eq!(refunds[1]["refundStatus"], 0);
    assert_eq!(refunds[1]["errorCode"], "10246");

    let report = raw_report(&sim, &cancelled.payment_id).await;
    let cancels = report["payments"][0]["cancels"].as_array().unwrap();
    // iyzipay-java model/RefundDetail.java: no cancelTxId, price or cancelStatus.
    assert_eq!(
        keys(&cancels[0]),
        [
            "authCode",
            "cancelConversationId",
            "createdDate",
            "currencyCode",
            "hostReference",
            "isAfterSettlement",
            "refundId",
            "refundPrice",
            "refundStatus"
        ]
    );
    assert_eq!(cancels[0]["cancelConversationId"], "void-1");
    assert_eq!(cancels[0]["refundPrice"].to_string(), "100.0");
    assert_eq!(cancels[0]["refundStatus"], 1);
}

#[tokio::test]
async fn a_cancel_the_bank_refused_is_a_known_decline_and_looked_up_as_failed() {
    let sim = IyzicoSim::start().await.unwrap();
    let iyzico = client(&sim, Duration::from_secs(5));
    let p = seed(&sim);
    sim.arm(Fault::Fail, 1);
    let e = iyzico.void(&void(&p, "void-1")).await.unwrap_err();
    // `status: failure` stays a known failure.
    assert!(
        matches!(
            e,
            RefundError::Declined {
                retryable: true,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.provider_code(), Some("10246"));
    assert!(e.is_outcome_known());
    let ledger = sim.payment(&p.payment_id).unwrap();
    assert!(ledger.cancel.is_none(), "no money moved");
    assert_eq!(ledger.failed_cancels.len(), 1);

    let state = iyzico
        .refund_state(&PaymentRef::payment(&p.payment_id))
        .await
        .unwrap();
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert_eq!(
        state.refunded,
        tl("0"),
        "a failed cancel is not money returned"
    );
    let Reconciliation::Failed(record) = state.find(&r("void-1")) else {
        panic!("{state:?}");
    };
    assert_eq!(record.amount, tl("100"));
    assert_eq!(record.status, RefundStatus::Failed);

    // The payment can still be cancelled, and then the cancel is money returned.
    iyzico.void(&void(&p, "void-2")).await.unwrap();
    let state = iyzico
        .refund_state(&PaymentRef::payment(&p.payment_id))
        .await
        .unwrap();
    assert_eq!(state.refunded, tl("100"));
    assert!(matches!(
        state.find(&r("void-2")),
        Reconciliation::Applied(_)
    ));
    assert!(matches!(
        state.find(&r("void-1")),
        Reconciliation::Failed(_)
    ));
}

#[tokio::test]
async fn a_refused_refund_whose_answer_was_lost_reconciles_as_not_applied() {
    let sim = IyzicoSim::start().await.unwrap();
    let iyzico = client(&sim, Duration::from_secs(5));
    let p = seed(&sim);
    let request = item_refund(&p, 1, "15", "rf-lost");
    sim.arm(Fault::FailLostResponse, 1);
    let attempted_at = SystemTime::now();
    let e = iyzico.refund(&request).await.unwrap_err();
    assert!(!e.is_outcome_known(), "{e}");
    assert_eq!(
        sim.payment(&p.payment_id).unwrap().refunded(),
        Decimal::ZERO
    );

    let verdict = Reconciler::for_provider(&iyzico)
        .look_up(
            &iyzico,
            request.payment(),
            &refund_core::Attempt::first(request.reference().clone(), attempted_at),
            SystemTime::now,
        )
        .await
        .unwrap()
        .verdict;
    let Verdict::NotApplied(record) = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(record.amount, tl("15"));
    assert_eq!(record.reference.as_deref(), Some("rf-lost"));
}

#[tokio::test]
async fn a_refused_payment_level_refund_is_one_failed_entry_and_no_money() {
    let sim = IyzicoSim::start().await.unwrap();
    let iyzico = client(&sim, Duration::from_secs(5));
    let p = seed(&sim);
    let request = RefundRequest::builder(PaymentRef::payment(&p.payment_id), tl("70"))
        .reference("v2-refused")
        .build()
        .unwrap();
    sim.arm(Fault::Fail, 1);
    iyzico.refund(&request).await.unwrap_err();
    let state = iyzico.refund_state(request.payment()).await.unwrap();
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert_eq!(state.refunded, tl("0"));
    let failed: Vec<_> = state
        .refunds
        .iter()
        .filter(|x| x.reference.as_deref() == Some("v2-refused"))
        .map(|x| (x.status, x.amount))
        .collect();
    assert_eq!(failed, [(RefundStatus::Failed, tl("70"))]);
}

#[tokio::test]
async fn the_lookup_lag_hides_a_fresh_refund_until_it_has_passed() {
    let sim = IyzicoSim::start().await.unwrap();
    let iyzico = client(&sim, Duration::from_secs(5));
    let p = seed(&sim);
    let lag = Duration::from_millis(400);
    sim.set_lookup_lag(lag);
    assert_eq!(sim.lookup_lag(), lag);
    let request = item_refund(&p, 0, "20", "rf-lagging");
    let attempted_at = SystemTime::now();
    iyzico.refund(&request).await.unwrap();
    assert_eq!(
        sim.payment(&p.payment_id).unwrap().refunded(),
        Decimal::from(20)
    );

    // Applied, but not shown yet: nothing on record, and the report agrees with itself.
    let state = iyzico.refund_state(request.payment()).await.unwrap();
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert_eq!(state.refunded, tl("0"));
    assert_eq!(state.find(request.reference()), Reconciliation::NotFound);
    let reconciler = Reconciler::for_provider(&iyzico);
    assert!(matches!(
        reconciler.judge(&state, request.reference(), attempted_at, SystemTime::now()),
        Verdict::NotYetKnown { .. }
    ));

    tokio::time::sleep(lag + Duration::from_millis(100)).await;
    let verdict = reconciler
        .look_up(
            &iyzico,
            request.payment(),
            &refund_core::Attempt::first(request.reference().clone(), attempted_at),
            SystemTime::now,
        )
        .await
        .unwrap()
        .verdict;
    assert!(
        matches!(verdict, Verdict::Applied(ref x) if x.amount == tl("20")),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn a_refund_applied_after_the_client_gave_up_is_never_safe_to_resend_before_it_shows() {
    let sim = IyzicoSim::start().await.unwrap();
    // The client gives up after 150 ms; the provider applies the refund at 300 ms and the
    // report shows it 300 ms after that.
    let iyzico = client(&sim, Duration::from_millis(150));
    let p = seed(&sim);
    sim.set_lookup_lag(Duration::from_millis(300));
    sim.arm(Fault::Delay(Duration::from_millis(300)), 1);
    let request = item_refund(&p, 0, "12.34", "rf-late");
    let attempted_at = SystemTime::now();
    let e = iyzico.refund(&request).await.unwrap_err();
    assert!(!e.is_outcome_known(), "{e}");

    let reconciler = Reconciler::for_provider(&iyzico);
    assert_eq!(reconciler.settle_time(), Duration::from_secs(2));
    let mut verdicts = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let verdict = reconciler
            .look_up(
                &iyzico,
                request.payment(),
                &refund_core::Attempt::first(request.reference().clone(), attempted_at),
                SystemTime::now,
            )
            .await
            .unwrap()
            .verdict;
        assert!(
            !matches!(verdict, Verdict::SafeToResend),
            "a resend now would pay twice: {verdicts:?}"
        );
        let applied = matches!(verdict, Verdict::Applied(_));
        verdicts.push(verdict.kind());
        if applied {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{verdicts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(verdicts[0], "not_yet_known", "{verdicts:?}");
    assert_eq!(
        sim.payment(&p.payment_id).unwrap().refunded(),
        Decimal::new(1234, 2),
        "paid exactly once"
    );
}
