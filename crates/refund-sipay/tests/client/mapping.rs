//! Responses mapped to receipts and errors (inline copies of the seed responses; the root
//! tests/sipay/ runs every test-kit fixture).

use refund_core::{RefundError, RefundProvider, RefundStatus};
use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

use crate::*;

async fn answer(status: u16, body: Value) -> Result<refund_core::RefundReceipt, RefundError> {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    mount_refund(&server, ResponseTemplate::new(status).set_body_json(body)).await;
    client(&server)
        .refund(&refund("CPIKQUM29TXMQFF-1769581631", "100.50", "r-1"))
        .await
}

#[tokio::test]
async fn status_100_is_a_completed_receipt_with_sipay_references() {
    let receipt = answer(200, success("CPIKQUM29TXMQFF-1769581631"))
        .await
        .unwrap();
    assert_eq!(receipt.status, RefundStatus::Completed);
    assert_eq!(receipt.provider, "sipay");
    assert_eq!(receipt.amount, tl("100.50"));
    let refs = &receipt.provider_references;
    assert_eq!(refs["order_no"], "VP17695816358637973");
    assert_eq!(refs["invoice_id"], "CPIKQUM29TXMQFF-1769581631");
    assert_eq!(refs["ref_no"], "602800085396");
    assert_eq!(refs["ref_number"], "602800085396");
    let raw = receipt.raw.as_ref().and_then(|raw| raw.to_json()).unwrap();
    assert_eq!(raw["status_code"], 100);
}

#[tokio::test]
async fn the_turkish_seed_success_with_an_empty_ref_no_is_completed() {
    let body = json!({
        "status_code": 100,
        "status_description": "Refund completed successfully",
        "order_no": "16118277721618",
        "invoice_id": "CPIKQUM29TXMQFF-1769581631",
        "ref_no": ""
    });
    let receipt = answer(200, body).await.unwrap();
    assert!(!receipt.provider_references.contains_key("ref_no"));
    assert_eq!(receipt.provider_references["order_no"], "16118277721618");
}

#[tokio::test]
async fn status_100_as_a_string_is_read_too() {
    let mut body = success("CPIKQUM29TXMQFF-1769581631");
    body["status_code"] = json!("100");
    assert!(answer(200, body).await.is_ok());
}

#[tokio::test]
async fn status_101_is_a_pending_receipt() {
    let body = json!({"status_code": 101, "status_description": "Refund request created",
        "order_no": "1", "invoice_id": "CPIKQUM29TXMQFF-1769581631"});
    assert_eq!(
        answer(200, body).await.unwrap().status,
        RefundStatus::Pending
    );
}

#[tokio::test]
async fn status_49_is_declined_with_sipays_code_and_description() {
    let body = json!({"status_code": 49, "status_description": "Refund Failed",
        "order_no": "15925741639038", "invoice_id": "66955", "ref_no": ""});
    let e = answer(200, body).await.unwrap_err();
    assert!(matches!(e, RefundError::Declined { .. }), "{e}");
    assert_eq!(e.provider_code(), Some("49"));
    assert!(e.to_string().contains("Refund Failed"));
    assert!(e.is_outcome_known() && !e.is_retryable());
}

#[tokio::test]
async fn declines_sent_with_http_4xx_are_still_read_from_the_body() {
    let body = json!({"status_code": 110, "status_description": "Partial refund not allowed"});
    let e = answer(400, body).await.unwrap_err();
    assert_eq!(e.provider_code(), Some("110"));
    assert!(matches!(e, RefundError::Declined { .. }));
}

#[tokio::test]
async fn hash_and_credential_codes_are_authentication_errors() {
    for code in [30, 68, 90, 91] {
        let e = answer(
            200,
            json!({"status_code": code, "status_description": "Invalid hash"}),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, RefundError::AuthenticationRejected { .. }),
            "{code}: {e}"
        );
        assert!(e.is_outcome_known() && !e.is_retryable());
    }
}

/// Issue 12, failure #2: SiPay's 104 `REFUND_TRANSACTION_ID_NOT_UNIQUE` answers a resend of a
/// refund whose first attempt reached SiPay. It must never be journaled as declined (the
/// customer may have been paid) nor as a success: it is its own kind, outcome not known.
#[tokio::test]
async fn sipay_104_is_a_duplicate_reference_never_a_decline() {
    let e = answer(
        200,
        json!({"status_code": 104, "status_description": "İade işlem ID si benzersiz olmalı"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), "duplicate_reference", "{e}");
    assert!(!matches!(e, RefundError::Declined { .. }), "{e}");
    assert!(
        !e.is_outcome_known(),
        "a 104 says nothing about the money: {e}"
    );
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(e.provider_code(), Some("104"));
    assert!(e.to_string().contains("refund_state"));
    assert!(e.to_string().contains("r-1"));
    // The same with the code as a string and an HTTP 4xx.
    let e = answer(409, json!({"status_code": "104"}))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::DuplicateReference { .. }), "{e}");
}

/// Codes of the official SDK's table keep their meaning on a refund; see also the unit test
/// `every_code_of_the_table_maps_to_its_class_on_a_refund`.
#[tokio::test]
async fn table_codes_that_admit_an_unknown_result_are_outcome_unknown() {
    for code in [99, 112, 3, 117] {
        let e = answer(200, json!({"status_code": code, "status_description": "x"}))
            .await
            .unwrap_err();
        assert!(
            matches!(e, RefundError::OutcomeUnknown { .. }),
            "{code}: {e}"
        );
    }
    for code in [110, 31, 1, 105] {
        let e = answer(200, json!({"status_code": code, "status_description": "x"}))
            .await
            .unwrap_err();
        assert!(matches!(e, RefundError::Declined { .. }), "{code}: {e}");
    }
}

#[tokio::test]
async fn a_success_for_another_invoice_is_outcome_unknown() {
    let e = answer(200, success("SOMEONE-ELSE")).await.unwrap_err();
    assert!(!e.is_outcome_known(), "{e}");
    assert!(e.to_string().contains("SOMEONE-ELSE"));
    let mut no_invoice = success("x");
    no_invoice.as_object_mut().unwrap().remove("invoice_id");
    assert!(
        !answer(200, no_invoice)
            .await
            .unwrap_err()
            .is_outcome_known()
    );
}

#[tokio::test]
async fn a_success_for_another_amount_is_outcome_unknown() {
    let mut body = success("CPIKQUM29TXMQFF-1769581631");
    body["amount"] = json!("10.00");
    let e = answer(200, body).await.unwrap_err();
    assert!(!e.is_outcome_known() && !e.is_retryable(), "{e}");
    // The same amount, written differently, is fine.
    let mut same = success("CPIKQUM29TXMQFF-1769581631");
    same["amount"] = json!(100.5);
    assert!(answer(200, same).await.is_ok());
}

#[tokio::test]
async fn a_success_code_on_an_error_status_is_outcome_unknown() {
    let e = answer(500, success("CPIKQUM29TXMQFF-1769581631"))
        .await
        .unwrap_err();
    assert!(!e.is_outcome_known());
}
