//! Reconciliation through check status.

use refund_core::{
    MerchantRef, PaymentRef, Reconciliation, RefundError, RefundProvider, RefundStatus,
};
use refund_sipay::paths;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::*;

async fn lookup(body: Value) -> Result<refund_core::RefundState, RefundError> {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    Mock::given(CheckStatusShape {
        invoice_id: "INV-7".into(),
    })
    .respond_with(ResponseTemplate::new(200).set_body_json(body))
    .mount(&server)
    .await;
    Mock::given(method("POST"))
        .and(path(paths::CHECK_STATUS))
        .respond_with(ResponseTemplate::new(599).set_body_string("check status shape mismatch"))
        .with_priority(10)
        .mount(&server)
        .await;
    client(&server)
        .refund_state(&PaymentRef::payment("INV-7"))
        .await
}

fn refunded_body() -> Value {
    json!({
        "status_code": 100,
        "status_description": "Successful",
        "transaction_status": "Partial Refunded",
        "invoice_id": "INV-7",
        "order_id": "VP1",
        "transaction_amount": 100,
        "total_refunded_amount": "35.50",
        "currency_code": "TRY",
        "refund_info": [
            {"refund_transaction_id": "r-1", "amount": "25.00", "status": "completed", "created_at": "2026-01-01 10:00:00"},
            {"refund_transaction_id": "r-2", "amount": 10.5, "status": "pending"}
        ]
    })
}

#[tokio::test]
async fn check_status_reports_totals_and_each_refund_by_reference() {
    let state = lookup(refunded_body()).await.unwrap();
    assert_eq!(state.refunded, tl("35.50"));
    assert_eq!(state.paid, Some(tl("100")));
    assert_eq!(state.remaining(), Some(tl("64.50")));
    assert_eq!(state.refunds.len(), 2);
    assert_eq!(state.refunds[1].status, RefundStatus::Pending);
    assert!(matches!(
        state.find(&MerchantRef::new("r-1").unwrap()),
        Reconciliation::Applied(r) if r.amount == tl("25")
    ));
    assert_eq!(
        state.find(&MerchantRef::new("r-9").unwrap()),
        Reconciliation::NotFound
    );
}

#[tokio::test]
async fn entries_without_a_reference_make_absence_undetermined() {
    let mut body = refunded_body();
    body["refund_info"] =
        json!([{"amount": "25.00"}, {"refund_transaction_id": "r-2", "amount": "10.50"}]);
    let state = lookup(body).await.unwrap();
    assert_eq!(
        state.find(&MerchantRef::new("r-9").unwrap()),
        Reconciliation::Undetermined
    );
}

#[tokio::test]
async fn a_total_without_refund_info_is_undetermined_for_any_reference() {
    let mut body = refunded_body();
    body.as_object_mut().unwrap().remove("refund_info");
    let state = lookup(body).await.unwrap();
    assert_eq!(state.refunded, tl("35.50"));
    assert_eq!(
        state.find(&MerchantRef::new("r-1").unwrap()),
        Reconciliation::Undetermined
    );
}

#[tokio::test]
async fn nothing_refunded_means_not_found() {
    let mut body = refunded_body();
    body["total_refunded_amount"] = json!(0);
    body["refund_info"] = json!([]);
    let state = lookup(body).await.unwrap();
    assert_eq!(
        state.find(&MerchantRef::new("r-1").unwrap()),
        Reconciliation::NotFound
    );
}

#[tokio::test]
async fn an_unknown_invoice_is_declined_with_the_code() {
    let e = lookup(json!({"status_code": 31, "status_description": "Transaction not found"}))
        .await
        .unwrap_err();
    assert_eq!(e.provider_code(), Some("31"));
    assert!(matches!(e, RefundError::Declined { .. }));
}

#[tokio::test]
async fn a_lookup_answer_for_another_invoice_is_refused() {
    let mut body = refunded_body();
    body["invoice_id"] = json!("INV-8");
    assert!(!lookup(body).await.unwrap_err().is_outcome_known());
}

#[tokio::test]
async fn a_lookup_without_any_refunded_amount_is_an_error_not_zero() {
    let mut body = refunded_body();
    body.as_object_mut()
        .unwrap()
        .remove("total_refunded_amount");
    body["refund_info"] = json!([{"refund_transaction_id": "r-1"}]);
    assert!(lookup(body).await.is_err());
    // With complete refund_info and no total, the entries are summed.
    let mut body = refunded_body();
    body.as_object_mut()
        .unwrap()
        .remove("total_refunded_amount");
    assert_eq!(lookup(body).await.unwrap().refunded, tl("35.50"));
}

#[tokio::test]
async fn a_401_on_check_status_is_answered_by_one_refresh() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    Mock::given(method("POST"))
        .and(path(paths::CHECK_STATUS))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthenticated."})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(paths::CHECK_STATUS))
        .respond_with(ResponseTemplate::new(200).set_body_json(refunded_body()))
        .with_priority(2)
        .mount(&server)
        .await;
    let state = client(&server)
        .refund_state(&PaymentRef::payment("INV-7"))
        .await
        .unwrap();
    assert_eq!(state.refunded, tl("35.50"));
    assert_eq!(count(&server, paths::TOKEN).await, 2);
}

#[tokio::test]
async fn an_item_lookup_is_unsupported() {
    let server = MockServer::start().await;
    let e = client(&server)
        .refund_state(&PaymentRef::item("1"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::Unsupported { .. }));
}
