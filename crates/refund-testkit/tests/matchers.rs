//! The wiremock matchers accept exactly what the providers accept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use refund_testkit::fixtures::{iyzico, sipay};
use refund_testkit::matchers::{CATCH_ALL_STATUS, IyzicoAuth, SipayAuth, mount_catch_all};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

const TOKEN: &str = "tok-123";
const SECRET: &str = "my_secret_key_456";
const MERCHANT: &str = "$2y$10$merchant";

async fn sipay_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(SipayAuth::new(TOKEN, SECRET, MERCHANT))
        .respond_with(sipay::REFUND_SUCCESS_EN.response())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            sipay::REFUND_INVALID_HASH
                .response()
                .set_body_string("rejected"),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

fn refund_body(amount: &str, invoice: &str, hash_key: &str) -> serde_json::Value {
    serde_json::json!({
        "invoice_id": invoice, "amount": amount, "merchant_key": MERCHANT,
        "hash_key": hash_key, "refund_transaction_id": "rf-1"
    })
}

async fn post(
    server: &MockServer,
    route: &str,
    auth: &[&str],
    body: &serde_json::Value,
) -> (u16, String) {
    let mut request = reqwest::Client::new().post(format!("{}{route}", server.uri()));
    for a in auth {
        request = request.header("authorization", *a);
    }
    let reply = request
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

#[tokio::test]
async fn sipay_auth_accepts_a_correct_bearer_and_hash_key() {
    let server = sipay_server().await;
    let hash = refund_sipay::hash_key::generate(SECRET, &["25.00", "INV-1", MERCHANT]);
    let (status, body) = post(
        &server,
        "/ccpayment/api/refund",
        &["Bearer tok-123"],
        &refund_body("25.00", "INV-1", &hash),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, sipay::REFUND_SUCCESS_EN.body)
    );
}

#[tokio::test]
async fn sipay_auth_checks_check_status_hash_over_invoice_and_merchant_key() {
    let server = sipay_server().await;
    let hash = refund_sipay::hash_key::generate(SECRET, &["INV-1", MERCHANT]);
    let body = serde_json::json!({"invoice_id": "INV-1", "merchant_key": MERCHANT,
        "hash_key": hash, "include_pending_status": true});
    let (status, _) = post(
        &server,
        "/ccpayment/api/checkstatus",
        &["Bearer tok-123"],
        &body,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sipay_auth_rejects_tampered_amount_wrong_secret_token_and_duplicate_header() {
    let server = sipay_server().await;
    let good = refund_sipay::hash_key::generate(SECRET, &["25.00", "INV-1", MERCHANT]);
    let wrong_secret = refund_sipay::hash_key::generate("other", &["25.00", "INV-1", MERCHANT]);
    let cases = [
        (vec!["Bearer tok-123"], refund_body("26.00", "INV-1", &good)),
        (vec!["Bearer tok-123"], refund_body("25.00", "INV-2", &good)),
        (
            vec!["Bearer tok-123"],
            refund_body("25.00", "INV-1", &wrong_secret),
        ),
        (vec!["Bearer nope"], refund_body("25.00", "INV-1", &good)),
        (vec![], refund_body("25.00", "INV-1", &good)),
        (
            vec!["Bearer tok-123", "Bearer tok-123"],
            refund_body("25.00", "INV-1", &good),
        ),
        (
            vec!["Bearer tok-123"],
            serde_json::json!({"amount": 25, "invoice_id": "INV-1"}),
        ),
    ];
    for (auth, body) in cases {
        let (status, text) = post(&server, "/ccpayment/api/refund", &auth, &body).await;
        assert_eq!(
            (status, text.as_str()),
            (200, "rejected"),
            "{auth:?} {body}"
        );
    }
}

#[tokio::test]
async fn iyzico_auth_recomputes_the_iyzwsv2_signature_over_path_and_raw_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/payment/refund"))
        .and(IyzicoAuth::new("apiKey", "secretKey"))
        .respond_with(iyzico::REFUND_SUCCESS.response())
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let body = br#"{"locale":"tr","conversationId":"123456789","paymentTransactionId":"1","price":"0.5","ip":"85.34.78.112","currency":"TRY"}"#;
    let header = refund_iyzico::signature::authorization_header(
        "apiKey",
        "secretKey",
        "123456789",
        "/payment/refund",
        body,
    );
    let reply = reqwest::Client::new()
        .post(format!("{}/payment/refund", server.uri()))
        .header("authorization", header)
        .header("x-iyzi-rnd", "123456789")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
}

#[tokio::test]
async fn iyzico_auth_rejects_wrong_secret_wrong_key_changed_body_and_rnd_mismatch() {
    let server = MockServer::start().await;
    Mock::given(IyzicoAuth::new("apiKey", "secretKey"))
        .respond_with(iyzico::REFUND_SUCCESS.response())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(iyzico::FAILURE_INVALID_SIGNATURE.response())
        .with_priority(10)
        .mount(&server)
        .await;
    let body: &[u8] = br#"{"price":"0.5"}"#;
    let sign = |key: &str, secret: &str, body: &[u8]| {
        refund_iyzico::signature::authorization_header(key, secret, "42", "/payment/refund", body)
    };
    let cases: Vec<(String, &[u8], &str)> = vec![
        (sign("apiKey", "wrong", body), body, "42"),
        (sign("other", "secretKey", body), body, "42"),
        (
            sign("apiKey", "secretKey", body),
            br#"{"price":"5.0"}"#,
            "42",
        ),
        (sign("apiKey", "secretKey", body), body, "43"),
        ("IYZWS apiKey:xyz".to_owned(), body, "42"),
    ];
    for (header, sent, rnd) in cases {
        let reply = reqwest::Client::new()
            .post(format!("{}/payment/refund", server.uri()))
            .header("authorization", &header)
            .header("x-iyzi-rnd", rnd)
            .body(sent.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            reply.text().await.unwrap(),
            iyzico::FAILURE_INVALID_SIGNATURE.body,
            "{header}"
        );
    }
}

#[test]
fn matcher_debug_output_has_no_secrets() {
    let s = format!("{:?}", SipayAuth::new(TOKEN, SECRET, MERCHANT));
    let i = format!("{:?}", IyzicoAuth::new("apiKey", "secretKey"));
    for secret in [TOKEN, SECRET, MERCHANT, "apiKey", "secretKey"] {
        assert!(!s.contains(secret) && !i.contains(secret), "{s} {i}");
    }
}

#[tokio::test]
async fn catch_all_answers_unexpected_requests_with_a_loud_599() {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;
    let reply = reqwest::get(format!("{}/nowhere?x=1", server.uri()))
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), CATCH_ALL_STATUS);
    let text = reply.text().await.unwrap();
    assert!(
        text.contains("unexpected request: GET /nowhere?x=1"),
        "{text}"
    );
    // This test checks the answer only: drop the mocks (and their expectation) before the
    // server is dropped; `catch_all_fails_the_test_when_hit` proves the failure.
    server.reset().await;
}

#[tokio::test]
#[should_panic(expected = "catch-all")]
async fn catch_all_fails_the_test_when_hit() {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;
    let _ = reqwest::get(format!("{}/unexpected", server.uri())).await;
    server.verify().await;
}

#[tokio::test]
async fn catch_all_stays_silent_when_every_request_was_expected() {
    let server = MockServer::start().await;
    sipay::TOKEN_SUCCESS
        .mount(&server, "POST", "/ccpayment/api/token")
        .await;
    mount_catch_all(&server).await;
    let reply = reqwest::Client::new()
        .post(format!("{}/ccpayment/api/token", server.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    server.verify().await;
}
