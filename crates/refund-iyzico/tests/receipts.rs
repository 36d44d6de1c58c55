//! What a receipt says and what a request needs (issues 21 and 22): the refund's id, the
//! cancel's amount and signature, and the mandatory `ip`. Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use refund_core::{Operation, PaymentRef, RefundError, RefundProvider, RefundRequest, VoidRequest};
use refund_iyzico::{Iyzico, IyzicoConfig};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

#[test]
fn a_refund_receipt_carries_refund_host_reference_as_its_refund_id() {
    let iyzico = Iyzico::new(IyzicoConfig::new(API_KEY, SECRET_KEY)).unwrap();
    let request = item_refund("10.50", "r-1");
    let mut newer = refund_success("r-1", json!(10.5));
    newer["refundHostReference"] = json!("host-refund-77");
    let receipt = iyzico
        .interpret_refund_answer(&request, 200, newer.to_string().as_bytes())
        .unwrap();
    assert_eq!(receipt.refund_id.as_deref(), Some("host-refund-77"));
    // The other identifiers stay where they were.
    assert_eq!(
        receipt.provider_references["hostReference"],
        "mock00007iyzihostrfn"
    );
    assert_eq!(
        receipt.provider_references["refundHostReference"],
        "host-refund-77"
    );
    // Older answers (the seed's) carry only hostReference.
    let older = refund_success("r-1", json!(10.5));
    let receipt = iyzico
        .interpret_refund_answer(&request, 200, older.to_string().as_bytes())
        .unwrap();
    assert_eq!(receipt.refund_id.as_deref(), Some("mock00007iyzihostrfn"));
    // Neither: no refund id, never another field's value.
    let mut bare = older;
    bare.as_object_mut().unwrap().remove("hostReference");
    let receipt = iyzico
        .interpret_refund_answer(&request, 200, bare.to_string().as_bytes())
        .unwrap();
    assert_eq!(receipt.refund_id, None);
}

fn cancel_answer(extra: &serde_json::Value) -> serde_json::Value {
    let mut body = json!({
        "status": "success", "locale": "tr", "systemTime": 1527959985667u64,
        "conversationId": "void-9", "paymentId": "25180158", "price": 1.1,
        "currency": "TRY", "authCode": "475990", "hostReference": "mock00007iyzihostrfn"
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn cancel(answer: serde_json::Value) -> Result<refund_core::RefundReceipt, RefundError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/payment/cancel"))
        .and(Iyzv2::new(API_KEY, SECRET_KEY))
        .respond_with(json(200, answer))
        .expect(1)
        .mount(&server)
        .await;
    let v = VoidRequest::builder(PaymentRef::payment("25180158"))
        .reference("void-9")
        .build()
        .unwrap();
    client(&server).void(&v).await
}

/// Fidelity review P3: iyzico's cancel has no documented signature (Java's `Cancel` has none),
/// so a signature on a cancel answer is not checked with the refund's field list: a cancel that
/// went through is never made "unknown" by it.
#[tokio::test]
async fn a_cancel_is_not_checked_against_the_refund_signature_list() {
    let receipt = cancel(cancel_answer(&json!({"signature": "00ff"})))
        .await
        .unwrap();
    assert_eq!(receipt.operation, Operation::Void);
    assert_eq!(receipt.amount, tl("1.10"));
}

/// A cancel pays back what the buyer paid: `paidPrice` when the answer carries one that
/// differs from the basket `price` (installment fees), else `price`. Its id is
/// `cancelHostReference`, else `hostReference`.
#[tokio::test]
async fn a_cancel_receipt_is_for_the_paid_price_and_names_the_cancel_host_reference() {
    let receipt = cancel(cancel_answer(
        &json!({"paidPrice": "1.25", "cancelHostReference": "host-cancel-5"}),
    ))
    .await
    .unwrap();
    assert_eq!(receipt.amount, tl("1.25"));
    assert_eq!(receipt.refund_id.as_deref(), Some("host-cancel-5"));
    let receipt = cancel(cancel_answer(&json!({"paidPrice": 1.1})))
        .await
        .unwrap();
    assert_eq!(receipt.amount, tl("1.10"));
    assert_eq!(receipt.refund_id.as_deref(), Some("mock00007iyzihostrfn"));
}

/// Fidelity review P4: iyzico makes `ip` mandatory (the address the request is sent from), so a
/// refund to a real host without one configured is refused before sending, never sent as
/// 127.0.0.1. The host name resolves to a closed loopback port, so even a regression sends
/// nothing off this machine.
#[tokio::test]
async fn a_refund_to_a_real_host_without_an_ip_is_a_configuration_error_before_sending() {
    let offline = refund_core::http::reqwest::Client::builder()
        .resolve("sandbox-api.iyzipay.com", "127.0.0.1:9".parse().unwrap())
        .build()
        .unwrap();
    let iyzico =
        Iyzico::new(IyzicoConfig::new(API_KEY, SECRET_KEY).with_http_client(offline.clone()))
            .unwrap();
    let request = RefundRequest::builder(PaymentRef::item("11433038"), tl("1"))
        .reference("r-ip")
        .build()
        .unwrap();
    let e = iyzico.refund(&request).await.unwrap_err();
    assert!(matches!(e, RefundError::Configuration { .. }), "{e:?}");
    assert!(e.to_string().contains("IYZICO_IP"), "{e}");
    let v = VoidRequest::builder(PaymentRef::payment("25180158"))
        .reference("void-ip")
        .build()
        .unwrap();
    assert!(matches!(
        iyzico.void(&v).await,
        Err(RefundError::Configuration { .. })
    ));
    // A simulator on loopback keeps working without one.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(common::BodyHas(vec![("ip", json!("127.0.0.1"))]))
        .respond_with(json(200, refund_success("r-ip", json!(1))))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).refund(&request).await.unwrap();
}
