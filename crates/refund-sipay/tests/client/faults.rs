//! Transport and response faults, each mapped to the right class.

use std::time::Duration;

use refund_core::{RefundError, RefundProvider};
use refund_sipay::{Sipay, SipayConfig, paths};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::*;

/// The refund's error when the refund endpoint answers `response` (the token works).
async fn refund_fault(response: ResponseTemplate) -> RefundError {
    refund_fault_with(response, config).await
}

async fn refund_fault_with(
    response: ResponseTemplate,
    make: impl Fn(&MockServer) -> SipayConfig,
) -> RefundError {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    mount_refund(&server, response).await;
    let e = Sipay::new(make(&server))
        .unwrap()
        .refund(&refund("INV-1", "10", "r-1"))
        .await
        .unwrap_err();
    assert_eq!(
        count(&server, paths::REFUND).await,
        1,
        "sent once, never resent: {e}"
    );
    e
}

fn assert_unknown(e: &RefundError) {
    assert!(matches!(e, RefundError::OutcomeUnknown { .. }), "{e}");
    assert!(!e.is_outcome_known(), "{e}");
    assert!(!e.is_retryable(), "{e}");
}

/// A loopback port nothing listens on: bind, note the port, drop the listener.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

#[tokio::test]
async fn connection_refused_is_unreachable_and_retryable() {
    let config = SipayConfig::new(APP_ID, APP_SECRET, MERCHANT_KEY)
        .with_base_url(&format!("http://127.0.0.1:{}", closed_port()))
        .unwrap();
    let sipay = Sipay::new(config).unwrap();
    let e = sipay
        .refund(&refund("INV-1", "10", "r-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::Unreachable { .. }), "{e}");
    assert!(e.is_retryable() && e.is_outcome_known());
    let e = sipay
        .refund_state(&refund_core::PaymentRef::payment("INV-1"))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
}

#[tokio::test]
async fn a_refund_timeout_is_outcome_unknown() {
    let e = refund_fault_with(
        ResponseTemplate::new(200)
            .set_body_json(success("INV-1"))
            .set_delay(Duration::from_secs(3)),
        |s| config(s).with_timeout(Duration::from_millis(300)),
    )
    .await;
    assert_unknown(&e);
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[tokio::test]
async fn a_token_timeout_means_the_refund_was_not_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(token_response(TOKEN).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let sipay = Sipay::new(config(&server).with_timeout(Duration::from_millis(300))).unwrap();
    let e = sipay
        .refund(&refund("INV-1", "10", "r-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::Unreachable { .. }), "{e}");
    assert!(e.is_retryable());
    assert_eq!(count(&server, paths::REFUND).await, 0);
}

#[tokio::test]
async fn http_500_without_a_body_is_outcome_unknown() {
    assert_unknown(&refund_fault(ResponseTemplate::new(500)).await);
}

#[tokio::test]
async fn a_502_html_page_is_outcome_unknown_and_says_so() {
    let e = refund_fault(ResponseTemplate::new(502).set_body_raw(
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        "text/html",
    ))
    .await;
    assert_unknown(&e);
    let text = e.to_string();
    assert!(
        text.contains("502") && text.contains("Bad Gateway"),
        "{text}"
    );
}

#[tokio::test]
async fn malformed_json_is_outcome_unknown() {
    let e = refund_fault(
        ResponseTemplate::new(200)
            .set_body_raw(r#"{"status_code": 100, "order_no": "#, "application/json"),
    )
    .await;
    assert_unknown(&e);
}

#[tokio::test]
async fn an_empty_200_body_is_outcome_unknown() {
    let e = refund_fault(ResponseTemplate::new(200)).await;
    assert_unknown(&e);
    assert!(e.to_string().contains("empty"), "{e}");
}

#[tokio::test]
async fn unexpected_types_are_outcome_unknown() {
    for body in [
        json!({"status_code": true}),
        json!({"status_code": [100]}),
        json!({"status_code": 100, "invoice_id": {"nested": 1}}),
        json!({"status_code": 100, "invoice_id": "INV-1", "amount": "ten"}),
        json!([1, 2, 3]),
        json!("Refund completed successfully"),
        json!({"status_description": "no code at all"}),
    ] {
        let e = refund_fault(ResponseTemplate::new(200).set_body_json(body.clone())).await;
        assert_unknown(&e);
    }
}

/// Issue 12, failure #6: a `status_code` outside SiPay's table (the official PHP SDK's 67
/// codes) on a refund says nothing about the money: outcome-unknown, never a known decline.
#[tokio::test]
async fn an_unknown_status_code_on_a_refund_is_outcome_unknown_never_a_decline() {
    for body in [
        json!({"status_code": 777, "status_description": "Brand new failure"}),
        json!({"status_code": "E-17", "status_description": "Brand new failure"}),
        json!({"status_code": 2, "status_description": "Brand new failure"}),
    ] {
        let e = refund_fault(ResponseTemplate::new(200).set_body_json(body.clone())).await;
        assert_unknown(&e);
        // The raw code and text are kept for the operator.
        let text = e.to_string();
        assert!(text.contains("Brand new failure"), "{text}");
        let raw = match &body["status_code"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert!(text.contains(&raw), "{text}");
    }
}

#[tokio::test]
async fn an_unknown_status_code_on_a_5xx_is_outcome_unknown() {
    let e = refund_fault(
        ResponseTemplate::new(503)
            .set_body_json(json!({"status_code": 777, "status_description": "maintenance"})),
    )
    .await;
    assert_unknown(&e);
}

#[tokio::test]
async fn a_huge_body_is_outcome_unknown_and_not_buffered_whole() {
    let huge = format!(r#"{{"status_code":100,"pad":"{}"}}"#, "x".repeat(2 << 20));
    let e = refund_fault(ResponseTemplate::new(200).set_body_raw(huge, "application/json")).await;
    assert_unknown(&e);
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[tokio::test]
async fn http_429_is_rate_limited_with_retry_after() {
    let e = refund_fault(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "7")
            .set_body_json(json!({"message": "Too Many Attempts."})),
    )
    .await;
    assert!(
        matches!(e, RefundError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{e}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_403_html_page_is_an_authentication_error() {
    let e = refund_fault(
        ResponseTemplate::new(403).set_body_raw("<html>Forbidden</html>", "text/html"),
    )
    .await;
    assert!(
        matches!(e, RefundError::AuthenticationRejected { .. }),
        "{e}"
    );
}
