//! The test kit's IyzicoAuth matcher accepts exactly what our client signs.

use refund_core::{PaymentRef, RefundProvider, RefundRequest, VoidRequest};
use refund_testkit::fixtures::iyzico as fx;
use refund_testkit::matchers::{IyzicoAuth, mount_catch_all};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::{API_KEY, SECRET_KEY, client};

#[tokio::test]
async fn iyzico_auth_accepts_every_operation_our_client_signs() {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;
    for (verb, route, fixture) in [
        ("POST", "/payment/refund", fx::REFUND_SUCCESS),
        ("POST", "/v2/payment/refund", fx::REFUND_V2_SUCCESS),
        ("POST", "/payment/cancel", fx::CANCEL_SUCCESS),
        (
            "GET",
            "/v2/reporting/payment/details",
            fx::PAYMENT_DETAILS_PARTIALLY_REFUNDED,
        ),
    ] {
        Mock::given(method(verb))
            .and(path(route))
            .and(IyzicoAuth::new(API_KEY, SECRET_KEY))
            .respond_with(fixture.response())
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(&server, SECRET_KEY);
    let item = RefundRequest::builder(PaymentRef::item("11433038"), "0.50 TRY".parse().unwrap())
        .reference("123456789")
        .build()
        .unwrap();
    c.refund(&item).await.expect("v1 refund");
    let whole = RefundRequest::builder(PaymentRef::payment("25180208"), "15 TRY".parse().unwrap())
        .reference("123456789")
        .build()
        .unwrap();
    c.refund(&whole).await.expect("v2 refund");
    let void = VoidRequest::builder(PaymentRef::payment("25180158"))
        .reference("123456789")
        .build()
        .unwrap();
    c.void(&void).await.expect("cancel");
    c.refund_state(&PaymentRef::payment("25180208"))
        .await
        .expect("lookup");
}

#[tokio::test]
async fn iyzico_auth_rejects_a_client_with_the_wrong_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/payment/refund"))
        .and(IyzicoAuth::new(API_KEY, SECRET_KEY))
        .respond_with(fx::REFUND_SUCCESS.response())
        .expect(0)
        .mount(&server)
        .await;
    let c = client(&server, "not-the-secret");
    let item = RefundRequest::builder(PaymentRef::item("11433038"), "0.50 TRY".parse().unwrap())
        .reference("123456789")
        .build()
        .unwrap();
    let e = c.refund(&item).await.unwrap_err();
    assert!(
        !e.is_outcome_known(),
        "wiremock's 404 is not an answer: {e}"
    );
    let received = server.received_requests().await.unwrap();
    assert_eq!(
        IyzicoAuth::new(API_KEY, SECRET_KEY).mismatch(&received[0]),
        Some("signature does not match")
    );
}
