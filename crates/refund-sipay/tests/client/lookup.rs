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

fn find(state: &refund_core::RefundState, reference: &str) -> String {
    format!("{:?}", state.find(&MerchantRef::new(reference).unwrap()))
}

/// Issue 12, failure #5: a check-status answer with neither `total_refunded_amount` nor
/// `refund_info` says nothing about refunds. Nothing documents when SiPay leaves them out, so
/// it must never read as "0 refunded" (NotFound would invite a resend).
#[tokio::test]
async fn a_check_status_without_refund_figures_is_undetermined_never_zero() {
    let mut body = refunded_body();
    let object = body.as_object_mut().unwrap();
    object.remove("total_refunded_amount");
    object.remove("refund_info");
    let state = lookup(body.clone()).await.unwrap();
    assert_eq!(
        state.find(&MerchantRef::new("r-1").unwrap()),
        Reconciliation::Undetermined
    );
    assert_eq!(
        state.find(&MerchantRef::new("never-sent").unwrap()),
        Reconciliation::Undetermined
    );
    assert!(!state.is_determined());
    assert!(
        state.undetermined.as_deref().unwrap().contains("neither"),
        "{state:?}"
    );
    assert_eq!(state.remaining(), None);
    // refund_info: null is no better.
    body["refund_info"] = Value::Null;
    assert!(!lookup(body).await.unwrap().is_determined());
}

/// Issue 12, failure #5 (second half): a refund_info entry whose status is not a success is
/// a failed refund: visible as `Failed`, not part of what was refunded.
#[tokio::test]
async fn failed_refund_info_entries_are_failed_records_outside_the_sum() {
    let mut body = refunded_body();
    body["total_refunded_amount"] = json!("25.00");
    body["refund_info"] = json!([
        {"refund_transaction_id": "r-1", "amount": "25.00", "status": "success"},
        {"refund_transaction_id": "r-2", "amount": "10.50", "status": "failed"}
    ]);
    let state = lookup(body.clone()).await.unwrap();
    assert!(state.is_determined(), "{state:?}");
    assert_eq!(state.refunded, tl("25"));
    assert_eq!(state.refunds.len(), 2);
    assert_eq!(state.refunds[1].status, RefundStatus::Failed);
    assert!(matches!(
        state.find(&MerchantRef::new("r-2").unwrap()),
        Reconciliation::Failed(r) if r.amount == tl("10.50")
    ));
    assert!(matches!(
        state.find(&MerchantRef::new("r-1").unwrap()),
        Reconciliation::Applied(_)
    ));
    assert_eq!(find(&state, "r-9"), "NotFound");
    // Without a total, the failed entry stays out of the sum too.
    body.as_object_mut()
        .unwrap()
        .remove("total_refunded_amount");
    let state = lookup(body).await.unwrap();
    assert_eq!(state.refunded, tl("25"));
    assert!(state.is_determined(), "{state:?}");
}

#[tokio::test]
async fn entries_with_a_status_we_cannot_read_are_decided_by_the_total_or_undetermined() {
    let entries = json!([
        {"refund_transaction_id": "r-1", "amount": "25.00", "status": "success"},
        {"refund_transaction_id": "r-2", "amount": "10.50", "status": "iade_sirasinda"}
    ]);
    // The readable entries already make the total: the unclear one is not refunded.
    let mut body = refunded_body();
    body["refund_info"] = entries.clone();
    body["total_refunded_amount"] = json!("25.00");
    let state = lookup(body.clone()).await.unwrap();
    assert!(state.is_determined());
    assert!(matches!(
        state.find(&MerchantRef::new("r-2").unwrap()),
        Reconciliation::Failed(_)
    ));
    // All of them together make it: the unclear one is refunded.
    body["total_refunded_amount"] = json!("35.50");
    let state = lookup(body.clone()).await.unwrap();
    assert!(matches!(
        state.find(&MerchantRef::new("r-2").unwrap()),
        Reconciliation::Applied(_)
    ));
    // Neither: nothing can be said.
    body["total_refunded_amount"] = json!("30.00");
    let state = lookup(body.clone()).await.unwrap();
    assert!(!state.is_determined());
    assert_eq!(find(&state, "r-1"), "Undetermined");
    // No total to check against: nothing can be said either.
    body.as_object_mut()
        .unwrap()
        .remove("total_refunded_amount");
    assert!(!lookup(body.clone()).await.unwrap().is_determined());
    // An entry without any status is unclear the same way.
    body["refund_info"] = json!([{"refund_transaction_id": "r-1", "amount": "25.00"}]);
    assert!(!lookup(body).await.unwrap().is_determined());
}

#[tokio::test]
async fn a_lookup_without_any_refunded_amount_is_undetermined_not_zero() {
    let mut body = refunded_body();
    body.as_object_mut()
        .unwrap()
        .remove("total_refunded_amount");
    body["refund_info"] = json!([{"refund_transaction_id": "r-1", "status": "success"}]);
    let state = lookup(body).await.unwrap();
    assert!(!state.is_determined(), "{state:?}");
    assert_eq!(find(&state, "r-1"), "Undetermined");
    // With complete refund_info and no total, the entries are summed.
    let mut body = refunded_body();
    body.as_object_mut()
        .unwrap()
        .remove("total_refunded_amount");
    let state = lookup(body).await.unwrap();
    assert_eq!(state.refunded, tl("35.50"));
    assert!(state.is_determined());
}

#[tokio::test]
async fn a_refund_info_that_is_not_a_list_of_entries_is_undetermined() {
    for odd in [
        json!("Y"),
        json!({"r-1": "25.00"}),
        json!([1, 2]),
        json!([["r-1"]]),
    ] {
        let mut body = refunded_body();
        body["refund_info"] = odd.clone();
        let state = lookup(body).await.unwrap();
        assert!(!state.is_determined(), "{odd}: {state:?}");
        assert_eq!(state.refunded, tl("35.50"));
    }
}

/// `transaction_status` is cross-checked: "refund" means fully refunded, "partially_refund"
/// partly (the seed's "Partial Refunds"); figures that show less are a contradiction.
#[tokio::test]
async fn a_transaction_status_that_contradicts_the_figures_is_undetermined() {
    let cases = [
        // (transaction_status, total, refund_info, determined)
        ("refund", json!("35.50"), None, false),
        ("refund", json!("100.00"), None, true),
        ("refund", json!(0), Some(json!([])), false),
        ("partially_refund", json!("35.50"), None, true),
        ("partially_refund", json!(0), Some(json!([])), false),
        // Partial refunds that add up to the whole: whether that becomes "refund" is not
        // documented, so no contradiction.
        ("partially_refund", json!("100"), None, true),
        ("Completed", json!(0), Some(json!([])), true),
        // More refunded than paid contradicts itself whatever the status says.
        ("Completed", json!("100.01"), None, false),
    ];
    for (status, total, info, determined) in cases {
        let mut body = refunded_body();
        body["transaction_status"] = json!(status);
        body["total_refunded_amount"] = total.clone();
        match info {
            Some(info) => body["refund_info"] = info,
            None => {
                body.as_object_mut().unwrap().remove("refund_info");
            }
        }
        let state = lookup(body).await.unwrap();
        assert_eq!(
            state.is_determined(),
            determined,
            "{status} {total}: {state:?}"
        );
    }
    // A full refund may be reported against product_price rather than transaction_amount.
    let mut body = refunded_body();
    body["transaction_status"] = json!("refund");
    body["product_price"] = json!("95.00");
    body["total_refunded_amount"] = json!("95.00");
    body.as_object_mut().unwrap().remove("refund_info");
    assert!(lookup(body).await.unwrap().is_determined());
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

/// Fidelity review M1, its concrete answer: SiPay says 25.00 went back and the only entry that
/// can explain it is ours, under the word "cancelled" (a same-day refund runs as a void). The
/// word is unclear, the total decides it: applied, never "not refunded".
#[tokio::test]
async fn a_cancelled_entry_that_explains_the_total_is_applied_never_failed() {
    let body = json!({
        "status_code": 100,
        "invoice_id": "INV-7",
        "total_refunded_amount": "25.00",
        "transaction_status": "partially_refund",
        "refund_info": [{"refund_transaction_id": "R", "amount": "25.00", "status": "cancelled"}]
    });
    let state = lookup(body).await.unwrap();
    assert!(state.is_determined(), "{state:?}");
    assert!(find(&state, "R").starts_with("Applied"), "{state:?}");
    assert_eq!(state.refunds[0].status, RefundStatus::Completed);
}

/// M1: a failed entry next to applied ones that fall short of the total (or exceed it) proves
/// nothing: the state is undetermined, and a cancel word no total explains is never listed as
/// failed.
#[tokio::test]
async fn applied_entries_that_do_not_add_up_to_the_total_make_the_lookup_undetermined() {
    let mut body = refunded_body();
    body["total_refunded_amount"] = json!("35.00");
    body["refund_info"] = json!([
        {"refund_transaction_id": "r-1", "amount": "10.00", "status": "completed"},
        {"refund_transaction_id": "R", "amount": "25.00", "status": "failed"}
    ]);
    let state = lookup(body.clone()).await.unwrap();
    let why = state.undetermined.clone().expect("undetermined");
    assert!(why.contains("less than"), "{why}");
    assert_eq!(find(&state, "R"), "Undetermined");
    // More listed than the total: undetermined too.
    body["total_refunded_amount"] = json!("5.00");
    let state = lookup(body.clone()).await.unwrap();
    assert!(state.undetermined.as_deref().unwrap().contains("more than"));
    assert_eq!(find(&state, "r-1"), "Undetermined");
    // A cancel word that neither reading of the total explains: undetermined, and not a
    // failed record.
    body["total_refunded_amount"] = json!("30.00");
    body["refund_info"] = json!([
        {"refund_transaction_id": "r-1", "amount": "10.00", "status": "completed"},
        {"refund_transaction_id": "R", "amount": "25.00", "status": "canceled"}
    ]);
    let state = lookup(body).await.unwrap();
    assert!(!state.is_determined());
    assert!(
        state
            .refunds
            .iter()
            .all(|r| r.status != RefundStatus::Failed),
        "{:?}",
        state.refunds
    );
    assert_eq!(find(&state, "R"), "Undetermined");
}
