//! The reporting lookup (`GET /v2/reporting/payment/details`) read with the official SDK field
//! names, and never guessing: failed cancels and refunds are visible as failed and never money
//! returned; undocumented statuses, missing lists or prices and a `paymentRefundStatus` that
//! contradicts the entries are undetermined.
//!
//! Entry shapes: iyzipay-java `src/main/java/com/iyzipay/model/RefundDetail.java` (`cancels[]`)
//! and `RefundTxDetail.java` (`itemTransactions[].refunds[]`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_pass_by_value,
    clippy::type_complexity
)]

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use refund_core::{
    Capabilities, MerchantRef, PaymentRef, Reconciler, Reconciliation, RefundProvider, RefundState,
    RefundStatus, Verdict,
};
use refund_iyzico::{Iyzico, IyzicoConfig};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer};

const PAYMENT: &str = "25180158";
const LINE_A: &str = "26120101";
const LINE_B: &str = "26120102";

fn r(s: &str) -> MerchantRef {
    MerchantRef::new(s).unwrap()
}

/// A report of payment 25180158: two lines of 60 and 40 TRY, no refunds, no cancels.
fn report() -> Value {
    json!({
        "status": "success", "locale": "tr", "systemTime": 1756383869332u64,
        "payments": [{
            "paymentId": 25180158, "paymentStatus": 1, "paymentRefundStatus": "NOT_REFUNDED",
            "price": 100, "paidPrice": 100, "currency": "TRY", "paymentConversationId": "order-1",
            "cancels": [],
            "itemTransactions": [
                {"paymentTransactionId": 26120101, "transactionStatus": 1, "price": 60, "paidPrice": 60, "refunds": []},
                {"paymentTransactionId": 26120102, "transactionStatus": 1, "price": 40, "paidPrice": 40, "refunds": []}
            ]
        }]
    })
}

/// A `RefundTxDetail` entry, as iyzipay-java names its fields.
fn refund(id: u64, conversation: &str, price: Value, status: Value) -> Value {
    json!({
        "refundTxId": id, "refundConversationId": conversation, "refundPrice": price,
        "refundStatus": status, "isAfterSettlement": false, "createdDate": "2026-01-28 10:15:02",
        "currencyCode": "TRY", "authCode": "475990", "hostReference": "mock00007iyzihostrfn"
    })
}

/// A `RefundDetail` (cancel) entry, as iyzipay-java names its fields.
fn cancel(id: u64, conversation: &str, price: Value, status: Value) -> Value {
    json!({
        "refundId": id, "cancelConversationId": conversation, "refundPrice": price,
        "refundStatus": status, "isAfterSettlement": false, "createdDate": "2026-01-28 10:15:02",
        "currencyCode": "TRY", "authCode": "475990", "hostReference": "mock00007iyzihostrfn"
    })
}

fn failed(mut entry: Value) -> Value {
    entry["refundStatus"] = json!(0);
    entry["errorGroup"] = json!("BANK_DECLINE");
    entry["errorCode"] = json!("10051");
    entry["errorMessage"] = json!("Kartın limiti yetersiz");
    entry
}

fn payment(body: &mut Value) -> &mut Value {
    &mut body["payments"][0]
}

fn line(body: &mut Value, n: usize) -> &mut Value {
    &mut body["payments"][0]["itemTransactions"][n]
}

/// The state the client reads from `body`, served by a wiremock iyzico that checks IYZWSv2.
async fn served(body: Value, scope: &PaymentRef) -> RefundState {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/reporting/payment/details"))
        .and(query_param("paymentId", PAYMENT))
        .and(Iyzv2::new(API_KEY, SECRET_KEY))
        .respond_with(json(200, body))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).refund_state(scope).await.unwrap()
}

fn whole() -> PaymentRef {
    PaymentRef::payment(PAYMENT)
}

/// The state read from `body` without any transport (the same code path after the answer).
fn read(body: &Value) -> RefundState {
    let iyzico = Iyzico::new(IyzicoConfig::new("api-key", "secret-key")).unwrap();
    iyzico
        .interpret_lookup_answer(&whole(), 200, body.to_string().as_bytes())
        .unwrap()
}

fn assert_undetermined(state: &RefundState, mentions: &str) {
    let why = state
        .undetermined
        .as_deref()
        .unwrap_or_else(|| panic!("determined, wanted undetermined ({mentions}): {state:?}"));
    assert!(
        why.contains(mentions),
        "{why:?} should mention {mentions:?}"
    );
    assert_eq!(state.find(&r("anything")), Reconciliation::Undetermined);
    assert_eq!(state.remaining(), None);
}

// --- failure #4: a failed cancel is not money returned -------------------------------------

#[tokio::test]
async fn a_failed_cancel_is_not_counted_as_refunded_and_stays_visible_as_failed() {
    let mut body = report();
    payment(&mut body)["cancels"] =
        json!([failed(cancel(32000001, "void-1", json!(100), json!(0)))]);
    let state = served(body, &whole()).await;
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert_eq!(state.refunded, tl("0"), "a failed cancel returned nothing");
    assert_eq!(state.remaining(), Some(tl("100")));
    let Reconciliation::Failed(record) = state.find(&r("void-1")) else {
        panic!("the failed cancel must be found as failed: {state:?}");
    };
    assert_eq!(record.status, RefundStatus::Failed);
    assert_eq!(record.amount, tl("100"));
    assert_eq!(record.provider_reference.as_deref(), Some("32000001"));
    // And the reconciliation policy calls it not applied, at once.
    let now = SystemTime::now();
    assert!(matches!(
        Reconciler::new(Duration::from_secs(900)).judge(&state, &r("void-1"), now, now),
        Verdict::NotApplied(_)
    ));
}

#[tokio::test]
async fn a_completed_cancel_is_read_from_refund_id_and_refund_price() {
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("TOTALLY_REFUNDED ");
    payment(&mut body)["cancels"] = json!([cancel(32000002, "void-2", json!("100.00"), json!(1))]);
    let state = served(body, &whole()).await;
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert_eq!(state.refunded, tl("100"));
    let Reconciliation::Applied(record) = state.find(&r("void-2")) else {
        panic!("{state:?}");
    };
    assert_eq!(record.amount, tl("100"), "refundPrice, not the paid price");
    assert_eq!(record.provider_reference.as_deref(), Some("32000002"));
}

#[tokio::test]
async fn a_failed_item_refund_is_failed_and_only_completed_refunds_are_summed() {
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("PARTIALLY_REFUNDED");
    line(&mut body, 0)["refunds"] = json!([
        refund(31000001, "rf-1", json!(20.5), json!(1)),
        failed(refund(31000002, "rf-2", json!("9.50"), json!(0))),
        refund(31000003, "rf-3", json!("10.0"), json!("1")),
    ]);
    let state = served(body, &whole()).await;
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert_eq!(state.refunded, tl("30.50"));
    assert_eq!(state.refunds.len(), 3);
    assert!(matches!(state.find(&r("rf-1")), Reconciliation::Applied(_)));
    assert!(matches!(state.find(&r("rf-2")), Reconciliation::Failed(x) if x.amount == tl("9.50")));
    assert!(matches!(state.find(&r("rf-3")), Reconciliation::Applied(x) if x.amount == tl("10")));
    assert_eq!(state.find(&r("rf-4")), Reconciliation::NotFound);
}

#[tokio::test]
async fn an_item_lookup_sees_its_line_and_the_payment_wide_check() {
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("PARTIALLY_REFUNDED");
    line(&mut body, 0)["refunds"] = json!([refund(31000001, "rf-1", json!(20), json!(1))]);
    line(&mut body, 1)["refunds"] = json!([failed(refund(31000002, "rf-2", json!(5), json!(0)))]);
    let b = served(body.clone(), &PaymentRef::item(LINE_B).in_payment(PAYMENT)).await;
    assert!(b.is_determined(), "{:?}", b.undetermined);
    assert_eq!(b.refunded, tl("0"));
    assert_eq!(b.paid, Some(tl("40")));
    assert!(matches!(b.find(&r("rf-2")), Reconciliation::Failed(_)));
    let a = served(body, &PaymentRef::item(LINE_A).in_payment(PAYMENT)).await;
    assert_eq!(a.refunded, tl("20"));
    assert!(matches!(a.find(&r("rf-1")), Reconciliation::Applied(_)));
}

// --- refundStatus values no source documents ------------------------------------------------

#[test]
fn an_undocumented_refund_status_is_undetermined_not_pending() {
    for status in [json!(2), json!("3"), json!(-1), json!("1.0")] {
        let mut body = report();
        payment(&mut body)["paymentRefundStatus"] = json!("PARTIALLY_REFUNDED");
        line(&mut body, 0)["refunds"] =
            json!([refund(31000001, "rf-1", json!(20), status.clone())]);
        let state = read(&body);
        assert_undetermined(&state, "a value no source documents");
        assert!(state.undetermined.unwrap().contains("rf-1"), "{status}");
    }
}

/// Issue 22, failure 2 (fidelity review M2): no source says `refundStatus` 0 means failed.
/// A bare 0 is unclear, so the state is undetermined; with iyzico's error fields on the entry
/// it is failed. Even next to an earlier completed refund that keeps `paymentRefundStatus`
/// consistent, a bare 0 never reads as "not refunded".
#[test]
fn refund_status_zero_is_failed_only_with_error_fields() {
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("PARTIALLY_REFUNDED");
    line(&mut body, 0)["refunds"] = json!([
        refund(31000001, "rf-earlier", json!(10), json!(1)),
        refund(31000002, "rf-ours", json!(20), json!(0)),
    ]);
    let state = read(&body);
    assert_undetermined(&state, "refundStatus 0 without errorCode");
    assert!(
        state
            .refunds
            .iter()
            .all(|r| r.status != RefundStatus::Failed),
        "{:?}",
        state.refunds
    );
    // The same 0 with an errorMessage alone, or an errorCode alone: failed.
    for (field, value) in [
        ("errorMessage", json!("Banka reddetti")),
        ("errorCode", json!(10051)),
    ] {
        let mut entry = refund(31000002, "rf-ours", json!(20), json!(0));
        entry[field] = value;
        line(&mut body, 0)["refunds"] =
            json!([refund(31000001, "rf-earlier", json!(10), json!(1)), entry]);
        let state = read(&body);
        assert!(state.is_determined(), "{field}: {:?}", state.undetermined);
        assert!(
            matches!(state.find(&r("rf-ours")), Reconciliation::Failed(f) if f.amount == tl("20")),
            "{field}"
        );
        assert_eq!(state.refunded, tl("10"));
    }
    // An empty error field is no error.
    let mut entry = refund(31000002, "rf-ours", json!(20), json!("0"));
    entry["errorCode"] = json!(" ");
    line(&mut body, 0)["refunds"] = json!([entry]);
    assert_undetermined(&read(&body), "refundStatus 0 without errorCode");
}

#[test]
fn a_missing_refund_status_is_undetermined_unless_the_entry_carries_an_error() {
    let mut body = report();
    let mut entry = refund(31000001, "rf-1", json!(20), json!(null));
    line(&mut body, 0)["refunds"] = json!([entry.clone()]);
    assert_undetermined(&read(&body), "has no refundStatus");

    // No status, but iyzico's error fields: the refund failed.
    entry["errorCode"] = json!(10051);
    entry["errorMessage"] = json!("Kartın limiti yetersiz");
    line(&mut body, 0)["refunds"] = json!([entry]);
    let state = read(&body);
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert!(matches!(state.find(&r("rf-1")), Reconciliation::Failed(_)));
    assert_eq!(state.refunded, tl("0"));
}

#[test]
fn refund_status_one_with_an_error_is_contradictory_and_undetermined() {
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("PARTIALLY_REFUNDED");
    let mut entry = refund(31000001, "rf-1", json!(20), json!(1));
    entry["errorCode"] = json!("10051");
    line(&mut body, 0)["refunds"] = json!([entry]);
    assert_undetermined(&read(&body), "contradictory");
}

// --- missing lists and prices: undetermined, never zero -------------------------------------

#[tokio::test]
async fn missing_lists_are_undetermined_never_read_as_nothing_refunded() {
    let cases: [(&str, fn(&mut Value)); 5] = [
        ("no itemTransactions", |b| {
            payment(b)
                .as_object_mut()
                .unwrap()
                .remove("itemTransactions");
        }),
        ("no itemTransactions", |b| {
            payment(b)["itemTransactions"] = Value::Null
        }),
        ("no cancels", |b| {
            payment(b).as_object_mut().unwrap().remove("cancels");
        }),
        ("no cancels", |b| payment(b)["cancels"] = Value::Null),
        ("no refunds list", |b| {
            line(b, 1).as_object_mut().unwrap().remove("refunds");
        }),
    ];
    for (mentions, edit) in cases {
        let mut body = report();
        edit(&mut body);
        let state = served(body, &whole()).await;
        assert_undetermined(&state, mentions);
    }
}

#[test]
fn a_missing_refund_price_is_undetermined_for_refunds_failures_and_cancels() {
    for (list, entry) in [
        ("refund", refund(31000001, "rf-1", Value::Null, json!(1))),
        (
            "refund",
            failed(refund(31000001, "rf-1", json!(""), json!(0))),
        ),
        ("cancel", cancel(32000001, "void-1", Value::Null, json!(1))),
    ] {
        let mut body = report();
        if list == "refund" {
            line(&mut body, 0)["refunds"] = json!([entry]);
        } else {
            payment(&mut body)["cancels"] = json!([entry]);
        }
        assert_undetermined(&read(&body), "has no refundPrice");
    }
}

#[test]
fn the_invented_cancel_names_of_old_are_not_read_as_a_cancel() {
    // What our simulator and fixture used to send: cancelTxId, price, cancelStatus. Without the
    // SDK's refundPrice and refundStatus nothing can be said.
    let mut body = report();
    payment(&mut body)["cancels"] = json!([
        {"cancelTxId": 32000001, "cancelConversationId": "void-1", "price": 100, "currencyCode": "TRY", "cancelStatus": 1}
    ]);
    let state = read(&body);
    assert_undetermined(&state, "void-1");
}

#[test]
fn an_entry_in_another_currency_is_undetermined() {
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("PARTIALLY_REFUNDED");
    let mut entry = refund(31000001, "rf-1", json!(20), json!(1));
    entry["currencyCode"] = json!("EUR");
    line(&mut body, 0)["refunds"] = json!([entry]);
    assert_undetermined(&read(&body), "is in EUR");
}

// --- paymentRefundStatus against the entries ------------------------------------------------

#[test]
fn payment_refund_status_that_contradicts_the_entries_is_undetermined() {
    let ok = |id, price: u32| refund(id, "rf-ok", json!(price), json!(1));
    let cases = [
        // Refunded 20 of 100, yet "not refunded".
        ("NOT_REFUNDED", vec![ok(1, 20)], vec![], "contradicts"),
        // Nothing completed (the only refund failed), yet "partially refunded".
        (
            "PARTIALLY_REFUNDED",
            vec![failed(refund(1, "rf-1", json!(20), json!(0)))],
            vec![],
            "contradicts",
        ),
        // 60 + 40 = all of the 100 paid, yet "partially".
        (
            "PARTIALLY_REFUNDED",
            vec![ok(1, 60)],
            vec![ok(2, 40)],
            "contradicts",
        ),
        // 20 of 100, yet "totally refunded" (with the docs' trailing space).
        ("TOTALLY_REFUNDED ", vec![ok(1, 20)], vec![], "contradicts"),
        // A value the docs do not list.
        ("REFUND_PENDING", vec![], vec![], "not a documented value"),
    ];
    for (status, a, b, mentions) in cases {
        let mut body = report();
        payment(&mut body)["paymentRefundStatus"] = json!(status);
        line(&mut body, 0)["refunds"] = json!(a);
        line(&mut body, 1)["refunds"] = json!(b);
        assert_undetermined(&read(&body), mentions);
    }
}

#[test]
fn a_missing_payment_refund_status_or_paid_price_leaves_the_check_undone() {
    let mut body = report();
    payment(&mut body)
        .as_object_mut()
        .unwrap()
        .remove("paymentRefundStatus");
    assert_undetermined(&read(&body), "no paymentRefundStatus");

    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("PARTIALLY_REFUNDED");
    payment(&mut body)
        .as_object_mut()
        .unwrap()
        .remove("paidPrice");
    payment(&mut body).as_object_mut().unwrap().remove("price");
    line(&mut body, 0)["refunds"] = json!([refund(1, "rf-1", json!(20), json!(1))]);
    assert_undetermined(&read(&body), "no paid price");
}

#[test]
fn consistent_payment_refund_statuses_are_determined() {
    // TOTALLY_REFUNDED with the docs' trailing space, refunds adding up to paidPrice.
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("TOTALLY_REFUNDED ");
    line(&mut body, 0)["refunds"] = json!([refund(1, "rf-1", json!("60.00"), json!(1))]);
    line(&mut body, 1)["refunds"] = json!([
        refund(2, "rf-2", json!(39.99), json!(1)),
        refund(3, "rf-3", json!(0.01), json!(1)),
        failed(refund(4, "rf-4", json!(5), json!(0))),
    ]);
    let state = read(&body);
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert_eq!(state.refunded, tl("100"));
    assert_eq!(state.remaining(), Some(tl("0")));

    // NOT_REFUNDED with a completed cancel (assumed: a cancel is not a refund).
    let mut body = report();
    payment(&mut body)["cancels"] = json!([cancel(9, "void-1", json!(100), json!(1))]);
    let state = read(&body);
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert_eq!(state.refunded, tl("100"));
}

#[test]
fn refunds_and_cancels_adding_up_to_more_than_was_paid_are_undetermined() {
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("TOTALLY_REFUNDED");
    line(&mut body, 0)["refunds"] = json!([refund(1, "rf-1", json!(60), json!(1))]);
    payment(&mut body)["cancels"] = json!([cancel(9, "void-1", json!(100), json!(1))]);
    assert_undetermined(&read(&body), "more than the");
}

// --- capabilities ---------------------------------------------------------------------------

#[test]
fn iyzico_declares_no_reference_dedup_and_a_configurable_settle_time() {
    let default = Iyzico::new(IyzicoConfig::new("k", "s")).unwrap();
    let caps = default.capabilities();
    assert!(
        !caps.deduplicates_references,
        "iyzico documents no idempotency"
    );
    assert_eq!(caps.settle_time, Capabilities::DEFAULT_SETTLE_TIME);
    assert_eq!(caps.settle_time, Duration::from_secs(15 * 60));
    assert_eq!(
        refund_iyzico::CAPABILITIES.settle_time,
        Capabilities::DEFAULT_SETTLE_TIME
    );

    let hour = Duration::from_secs(3600);
    let slow = Iyzico::new(IyzicoConfig::new("k", "s").with_settle_time(hour)).unwrap();
    assert_eq!(slow.capabilities().settle_time, hour);
    assert_eq!(slow.config().settle_time(), hour);
    assert_eq!(Reconciler::for_provider(&slow).settle_time(), hour);
    assert!(format!("{:?}", slow.config()).contains("settle_time"));
}

#[test]
fn totals_that_overflow_are_undetermined_never_a_panic() {
    // Each fits a TRY amount (at most ~7.9e26 with two decimals); two of them do not.
    let huge = json!("700000000000000000000000000");
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("PARTIALLY_REFUNDED");
    line(&mut body, 0)["refunds"] = json!([refund(1, "rf-1", huge.clone(), json!(1))]);
    payment(&mut body)["cancels"] = json!([cancel(9, "void-1", huge.clone(), json!(1))]);
    assert_undetermined(&read(&body), "overflows");

    let mut body = report();
    line(&mut body, 0)["refunds"] = json!([
        refund(1, "rf-1", huge.clone(), json!(1)),
        refund(2, "rf-2", huge, json!(1))
    ]);
    assert_undetermined(&read(&body), "overflows");
}

#[test]
fn the_reason_names_the_first_problems_and_counts_the_rest() {
    let mut body = report();
    payment(&mut body)["paymentRefundStatus"] = json!("PARTIALLY_REFUNDED");
    let entries: Vec<Value> = (0..1000)
        .map(|n| refund(n, &format!("rf-{n}"), json!(0.01), json!(7)))
        .collect();
    line(&mut body, 0)["refunds"] = json!(entries);
    let state = read(&body);
    let why = state.undetermined.unwrap();
    assert!(why.contains("rf-0") && why.contains("rf-4"), "{why}");
    assert!(!why.contains("rf-5 "), "{why}");
    assert!(why.ends_with("and 996 more"), "{why}");
    assert!(why.len() < 1000, "{}", why.len());
}
