//! SiPay's rules that the answer alone does not tell: the refund's id, the 30-second rule,
//! refusals without a body `status_code`, and the PHP SDK's `/ccpayment` base URL.

use std::time::Duration;

use refund_core::{PaymentRef, RefundError, RefundProvider};
use refund_sipay::{Sipay, paths};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::*;

fn refund_failed(invoice_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status_code": 49,
        "status_description": "Refund Failed",
        "invoice_id": invoice_id
    }))
}

/// A refund endpoint that accepts the first refund and answers 49 "Refund Failed" to every
/// later one, as SiPay does within 30 seconds of a refund of the same invoice.
async fn accepts_once_then_49(server: &MockServer, invoice_id: &str) {
    Mock::given(method("POST"))
        .and(path(paths::REFUND))
        .respond_with(ResponseTemplate::new(200).set_body_json(success(invoice_id)))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(paths::REFUND))
        .respond_with(refund_failed(invoice_id))
        .with_priority(3)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_refund_receipt_carries_ref_no_as_its_refund_id() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    mount_refund(
        &server,
        ResponseTemplate::new(200).set_body_json(success("INV-1")),
    )
    .await;
    let receipt = client(&server)
        .refund(&refund("INV-1", "10.00", "r-1"))
        .await
        .unwrap();
    assert_eq!(receipt.refund_id.as_deref(), Some("602800085396"));
    // The provider's other identifiers stay where they were.
    assert_eq!(
        receipt.provider_references["order_no"],
        "VP17695816358637973"
    );
    assert_eq!(receipt.provider_references["ref_no"], "602800085396");
    // A pending (101) answer names the refund the same way.
    let sipay = client(&server);
    let pending = json!({"status_code": 101, "status_description": "refund request created",
        "invoice_id": "INV-2", "ref_no": " 7001 "});
    let request = refund("INV-2", "10.00", "r-2");
    let receipt = sipay
        .interpret_refund_answer(&request, 200, pending.to_string().as_bytes())
        .unwrap();
    assert_eq!(receipt.refund_id.as_deref(), Some("7001"));
    // No ref_no: no refund id, never a guess from another field.
    let bare = json!({"status_code": 100, "invoice_id": "INV-2", "order_no": "VP1"});
    let receipt = sipay
        .interpret_refund_answer(&request, 200, bare.to_string().as_bytes())
        .unwrap();
    assert_eq!(receipt.refund_id, None);
}

/// Issue 21, failure 2: the second partial refund of one invoice within 30 s gets SiPay's 49
/// "Refund Failed". Right after this client's own accepted refund of that invoice, it is a
/// temporary decline that says how long to wait; a clone of the client knows it too.
#[tokio::test]
async fn a_49_soon_after_this_clients_refund_of_the_invoice_waits_out_the_30_seconds() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    accepts_once_then_49(&server, "INV-1").await;
    let sipay = client(&server);
    sipay
        .refund(&refund("INV-1", "10.00", "r-1"))
        .await
        .unwrap();
    let e = sipay
        .clone()
        .refund(&refund("INV-1", "5.00", "r-2"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::Declined { .. }), "{e:?}");
    assert!(e.is_retryable() && e.is_outcome_known(), "{e}");
    assert_eq!(e.provider_code(), Some("49"));
    let wait = e.retry_after().expect("a retry_after");
    assert!(
        wait > Duration::from_secs(29) && wait <= Duration::from_secs(31),
        "{wait:?}"
    );
    assert!(e.to_string().contains("less than 30 s ago"), "{e}");
}

#[tokio::test]
async fn a_49_without_an_earlier_refund_of_that_invoice_stays_a_final_decline() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    mount_refund(&server, refund_failed("INV-2")).await;
    let sipay = client(&server);
    let e = sipay
        .refund(&refund("INV-2", "5.00", "r-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::Declined { .. }), "{e:?}");
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(e.retry_after(), None);

    // Another invoice's refund says nothing about this one.
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    accepts_once_then_49(&server, "INV-1").await;
    let sipay = client(&server);
    sipay
        .refund(&refund("INV-1", "10.00", "r-1"))
        .await
        .unwrap();
    Mock::given(method("POST"))
        .and(path(paths::REFUND))
        .and(RefundShape::new("INV-3", "5.00", "r-3"))
        .respond_with(refund_failed("INV-3"))
        .with_priority(1)
        .mount(&server)
        .await;
    let e = sipay
        .refund(&refund("INV-3", "5.00", "r-3"))
        .await
        .unwrap_err();
    assert!(!e.is_retryable(), "{e}");
}

/// The second half of the rule: once the spacing has passed, a 49 is final.
#[tokio::test]
async fn a_49_after_the_wait_is_final() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    accepts_once_then_49(&server, "INV-1").await;
    let sipay =
        Sipay::new(config(&server).with_refund_spacing(Duration::from_millis(300))).unwrap();
    sipay
        .refund(&refund("INV-1", "10.00", "r-1"))
        .await
        .unwrap();
    let soon = sipay
        .refund(&refund("INV-1", "5.00", "r-2"))
        .await
        .unwrap_err();
    assert!(soon.is_retryable(), "{soon}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let late = sipay
        .refund(&refund("INV-1", "5.00", "r-2"))
        .await
        .unwrap_err();
    assert!(matches!(late, RefundError::Declined { .. }), "{late:?}");
    assert!(
        !late.is_retryable() && late.retry_after().is_none(),
        "{late}"
    );
}

/// Issue 22, failure 4: a Laravel validation answer (422 `{"message", "errors"}`, as SiPay's
/// white-label platforms document it), a 404 or a 405 without a body `status_code` was
/// processed by nobody: a known, final refusal with the body's message, never "unknown".
#[tokio::test]
async fn answers_without_a_status_code_on_422_404_405_are_known_refusals() {
    let sipay = Sipay::new(SipayConfig::new(APP_ID, APP_SECRET, MERCHANT_KEY)).unwrap();
    let request = refund("INV-1", "10.00", "r-1");
    let validation = json!({
        "message": "The given data was invalid.",
        "errors": {"amount": ["The amount field is required."]}
    })
    .to_string();
    let cases: [(u16, &str, &str); 4] = [
        (422, validation.as_str(), "The given data was invalid."),
        (404, r#"{"message":"Not Found"}"#, "Not Found"),
        (
            404,
            "<html><body>404 Not Found</body></html>",
            "404 Not Found",
        ),
        (
            405,
            r#"{"message":"The POST method is not supported for this route."}"#,
            "POST",
        ),
    ];
    for (status, body, said) in cases {
        let e = sipay
            .interpret_refund_answer(&request, status, body.as_bytes())
            .unwrap_err();
        assert!(matches!(e, RefundError::Declined { .. }), "{status}: {e:?}");
        assert!(e.is_outcome_known() && !e.is_retryable(), "{status}: {e}");
        assert_eq!(e.provider_code(), Some(format!("http_{status}").as_str()));
        assert!(e.to_string().contains(said), "{e}");
        // A lookup refused the same way is a known refusal too.
        let e = sipay
            .interpret_lookup_answer(&PaymentRef::payment("INV-1"), status, body.as_bytes())
            .unwrap_err();
        assert!(e.is_outcome_known(), "{status}: {e}");
        assert_eq!(e.provider_code(), Some(format!("http_{status}").as_str()));
    }
    let e = sipay
        .interpret_refund_answer(&request, 422, validation.as_bytes())
        .unwrap_err();
    assert!(e.to_string().contains("fields: amount"), "{e}");
    // A body code still decides, whatever the HTTP status.
    let coded = br#"{"status_code":49,"status_description":"Refund Failed","invoice_id":"INV-1"}"#;
    let e = sipay
        .interpret_refund_answer(&request, 422, coded)
        .unwrap_err();
    assert_eq!(e.provider_code(), Some("49"));
    // Other statuses keep their reading: a 500 without a code is unknown.
    let e = sipay
        .interpret_refund_answer(&request, 500, br#"{"message":"Server Error"}"#)
        .unwrap_err();
    assert!(!e.is_outcome_known(), "{e}");
}

/// Issue 22, failure 5: a token URL that answers 404 is a misconfigured base URL, never
/// "unreachable, try again later"; the error names the URL.
#[tokio::test]
async fn a_404_on_the_token_path_is_a_configuration_error_naming_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>Not Found</html>"))
        .mount(&server)
        .await;
    let e = client(&server)
        .refund(&refund("INV-1", "10.00", "r-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::Configuration { .. }), "{e:?}");
    assert!(!e.is_retryable(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("{}{}", server.uri(), paths::TOKEN)),
        "{text}"
    );
    assert_eq!(count(&server, paths::REFUND).await, 0);
}

/// Issue 22, failure 5: the PHP SDK's base form `…/ccpayment` is not doubled.
#[tokio::test]
async fn a_base_url_ending_in_ccpayment_is_not_doubled() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    mount_refund(
        &server,
        ResponseTemplate::new(200).set_body_json(success("INV-1")),
    )
    .await;
    for base in [
        format!("{}/ccpayment", server.uri()),
        format!("{}/ccpayment/", server.uri()),
        format!("{}/ccpayment/api", server.uri()),
    ] {
        let config = SipayConfig::new(APP_ID, APP_SECRET, MERCHANT_KEY)
            .with_base_url(&base)
            .unwrap();
        let receipt = Sipay::new(config)
            .unwrap()
            .refund(&refund("INV-1", "10.00", "r-1"))
            .await
            .unwrap();
        assert_eq!(receipt.refund_id.as_deref(), Some("602800085396"));
    }
    let paths_seen: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert!(
        paths_seen
            .iter()
            .all(|p| p == "/ccpayment/api/refund" || p == "/ccpayment/api/token"),
        "{paths_seen:?}"
    );
    assert_eq!(count(&server, "/ccpayment/api/refund").await, 3);
    // A prefix that is not SiPay's own is kept.
    let config = SipayConfig::new(APP_ID, APP_SECRET, MERCHANT_KEY)
        .with_base_url("https://gw.example/sipay")
        .unwrap();
    assert_eq!(config.base_url(), "https://gw.example/sipay");
}

/// A refund whose answer was lost may have been applied: SiPay then counts the 30 seconds from
/// it, so a 49 on the next refund of the invoice is the wait, not a final decline.
#[tokio::test]
async fn a_49_soon_after_a_refund_of_the_invoice_with_an_unknown_outcome_is_the_wait_too() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    Mock::given(method("POST"))
        .and(path(paths::REFUND))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(paths::REFUND))
        .respond_with(refund_failed("INV-9"))
        .with_priority(3)
        .mount(&server)
        .await;
    let sipay = client(&server);
    let lost = sipay
        .refund(&refund("INV-9", "10.00", "r-1"))
        .await
        .unwrap_err();
    assert!(!lost.is_outcome_known(), "{lost}");
    let e = sipay
        .refund(&refund("INV-9", "5.00", "r-2"))
        .await
        .unwrap_err();
    assert!(e.is_retryable() && e.retry_after().is_some(), "{e}");
}
