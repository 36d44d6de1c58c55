//! What goes on the wire.

use refund_core::{
    Currency, Money, PaymentRef, RefundError, RefundProvider, RefundRequest, RefundStatus,
};
use refund_sipay::{Sipay, paths};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::*;

/// Mounts a refund mock that only answers requests of exactly `shape`, and a loud fallback.
async fn mount_shaped(server: &MockServer, shape: RefundShape) {
    let invoice = shape.invoice_id.clone();
    Mock::given(shape)
        .respond_with(ResponseTemplate::new(200).set_body_json(success(&invoice)))
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(paths::REFUND))
        .respond_with(ResponseTemplate::new(599).set_body_string("request shape mismatch"))
        .with_priority(10)
        .mount(server)
        .await;
}

async fn explain(server: &MockServer, shape: &RefundShape) -> String {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.url.path() == paths::REFUND)
        .filter_map(|r| shape.mismatch(r))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn a_full_refund_sends_every_documented_field_and_a_hash_key_over_amount_invoice_merchant_key()
 {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    let shape = RefundShape::new("CPIKQUM29TXMQFF-1769581631", "100.50", "order-42-refund-1");
    mount_shaped(&server, shape.clone()).await;

    let result = client(&server)
        .refund(&refund(
            "CPIKQUM29TXMQFF-1769581631",
            "100.5",
            "order-42-refund-1",
        ))
        .await;
    let why = explain(&server, &shape).await;
    let receipt = result.unwrap_or_else(|e| panic!("{e}: {why}"));
    assert_eq!(receipt.status, RefundStatus::Completed);
    assert_eq!(why, "");
    assert_eq!(count(&server, paths::REFUND).await, 1);
}

#[tokio::test]
async fn a_configured_refund_webhook_key_goes_with_every_refund_as_refund_web_hook_key() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    let sipay = Sipay::new(config(&server).with_refund_webhook_key("refunds-hook")).unwrap();
    for (amount, reference) in [("10.00", "r-1"), ("5.50", "r-2")] {
        let shape = RefundShape::new("INV-1", amount, reference).with_webhook_key("refunds-hook");
        Mock::given(shape)
            .respond_with(ResponseTemplate::new(200).set_body_json(success("INV-1")))
            .expect(1)
            .mount(&server)
            .await;
        sipay
            .refund(&refund("INV-1", amount, reference))
            .await
            .unwrap();
    }
    server.verify().await;
    let requests = server.received_requests().await.unwrap();
    for r in requests.iter().filter(|r| r.url.path() == paths::REFUND) {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(
            body.get("refund_webhook_key").is_none(),
            "Paybull's spelling sent to SiPay"
        );
    }
}

#[tokio::test]
async fn partial_and_repeated_partial_refunds_send_each_amount_with_two_decimals() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    for (amount, wire, reference) in [
        ("25", "25.00", "r-1"),
        ("0.5", "0.50", "r-2"),
        ("30.05", "30.05", "r-3"),
    ] {
        let shape = RefundShape::new("INV-2026-0001", wire, reference);
        Mock::given(shape)
            .respond_with(ResponseTemplate::new(200).set_body_json(success("INV-2026-0001")))
            .expect(1)
            .mount(&server)
            .await;
        let receipt = client(&server)
            .refund(&refund("INV-2026-0001", amount, reference))
            .await
            .unwrap();
        assert_eq!(receipt.amount.amount().to_string(), wire);
        assert_eq!(receipt.reference.as_str(), reference);
    }
    server.verify().await;
}

#[tokio::test]
async fn the_token_request_carries_app_id_and_app_secret_and_no_authorization() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    mount_refund(
        &server,
        ResponseTemplate::new(200).set_body_json(success("INV-1")),
    )
    .await;
    client(&server)
        .refund(&refund("INV-1", "1", "r-1"))
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    let token = requests
        .iter()
        .find(|r| r.url.path() == paths::TOKEN)
        .unwrap();
    assert!(token.headers.get("authorization").is_none());
    assert_eq!(
        token.headers.get("accept").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&token.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"app_id": APP_ID, "app_secret": APP_SECRET})
    );
}

#[tokio::test]
async fn the_amount_hashed_is_byte_for_byte_the_amount_sent() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    mount_refund(
        &server,
        ResponseTemplate::new(200).set_body_json(success("INV-9")),
    )
    .await;
    let sipay = client(&server);
    for amount in ["0.01", "7", "1999.9", "123456789.01"] {
        sipay.refund(&refund("INV-9", amount, "r-x")).await.unwrap();
    }
    for r in server.received_requests().await.unwrap() {
        if r.url.path() != paths::REFUND {
            continue;
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let fields = refund_sipay::hash_key::validate_hash_key(
            body["hash_key"].as_str().unwrap(),
            APP_SECRET,
        )
        .unwrap();
        assert_eq!(fields[0], body["amount"].as_str().unwrap());
        assert!(body["amount"].is_string());
    }
}

#[tokio::test]
async fn requests_that_cannot_be_sent_are_rejected_before_any_network_call() {
    let server = MockServer::start().await;
    let sipay = client(&server);
    // Item-level refunds: unsupported.
    let item = RefundRequest::builder(PaymentRef::item("11433038"), tl("1"))
        .build()
        .unwrap();
    assert!(matches!(
        sipay.refund(&item).await,
        Err(RefundError::Unsupported { .. })
    ));
    // Another currency: invalid (the refund body has no currency field).
    let usd = RefundRequest::builder(
        PaymentRef::payment("INV-1"),
        Money::parse("1", Currency::Usd).unwrap(),
    )
    .build()
    .unwrap();
    assert!(matches!(
        sipay.refund(&usd).await,
        Err(RefundError::InvalidRequest(_))
    ));
    // A '|' in the invoice id would change the hash plaintext's fields.
    let pipe = refund("INV|1", "1", "r-1");
    let e = sipay.refund(&pipe).await.unwrap_err();
    assert!(matches!(e, RefundError::InvalidRequest(_)), "{e}");
    assert!(e.is_outcome_known() && !e.is_retryable());
    let lookup = sipay.refund_state(&PaymentRef::payment("A|B")).await;
    assert!(matches!(lookup, Err(RefundError::InvalidRequest(_))));
    // Void is a refund on SiPay.
    let void = refund_core::VoidRequest::builder(PaymentRef::payment("INV-1"))
        .build()
        .unwrap();
    assert!(matches!(
        sipay.void(&void).await,
        Err(RefundError::Unsupported { .. })
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/gateway{}", paths::TOKEN)))
        .respond_with(token_response(TOKEN))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/gateway{}", paths::REFUND)))
        .respond_with(ResponseTemplate::new(200).set_body_json(success("INV-1")))
        .mount(&server)
        .await;
    let sipay = refund_sipay::Sipay::new(
        refund_sipay::SipayConfig::new(APP_ID, APP_SECRET, MERCHANT_KEY)
            .with_base_url(&format!("{}/gateway/", server.uri()))
            .unwrap(),
    )
    .unwrap();
    sipay.refund(&refund("INV-1", "1", "r")).await.unwrap();
}
