//! iyzico simulator switches that make it at least as strict as iyzico (issue 22, fidelity
//! review §S): `price` apart from `paidPrice`, other `refundStatus` values, the same-day
//! cancel rule.

use refund_core::Currency;
use refund_testkit::sim::{Fault, IyzicoSim};
use serde_json::{Value, json};

use crate::support::*;

fn cancel_body(payment_id: &str) -> Value {
    json!({"locale": "tr", "conversationId": "c-cancel", "paymentId": payment_id,
        "ip": "85.34.78.112"})
}

fn item_refund_body(tx: &str, price: &str, conversation: &str) -> Value {
    json!({"locale": "tr", "conversationId": conversation, "paymentTransactionId": tx,
        "price": price, "ip": "85.34.78.112", "currency": "TRY"})
}

async fn admin_post(sim: &IyzicoSim, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = post_json(
        &client(),
        &format!("{}{path}", sim.base_url()),
        &[],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    (status, json(&text))
}

#[tokio::test]
async fn a_payment_whose_paid_price_differs_from_its_price_shows_both_and_refunds_up_to_what_was_paid()
 {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment_with_paid_prices(Currency::Try, &[(dec("100.0"), dec("110.0"))]);
    let tx = payment.items[0].payment_transaction_id.clone();
    let client = client();
    let details = iyzico_details(&sim, &client, &payment.payment_id).await;
    let shown = &details["payments"][0];
    assert_eq!(shown["price"], json!(100.0), "{shown}");
    assert_eq!(shown["paidPrice"], json!(110.0));
    assert_eq!(shown["itemTransactions"][0]["price"], json!(100.0));
    assert_eq!(shown["itemTransactions"][0]["paidPrice"], json!(110.0));
    // Refunds are limited by what the buyer paid, not the basket price.
    let answer = iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &item_refund_body(&tx, "105.0", "c1"),
    )
    .await;
    assert_eq!(answer["status"], "success", "{answer}");
    let over = iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &item_refund_body(&tx, "5.01", "c2"),
    )
    .await;
    assert_eq!(over["errorCode"], IyzicoSim::ERR_OVER_REFUND, "{over}");
    // Seeded through the admin API too; the cancel pays back the whole paidPrice.
    let (status, seeded) = admin_post(
        &sim,
        "/__sandbox/payments",
        json!({"items": [{"price": "1", "paidPrice": "50.0"}]}),
    )
    .await;
    assert_eq!(status, 201, "{seeded}");
    assert_eq!(seeded["price"], "1.0");
    assert_eq!(seeded["paidPrice"], "50.0");
    let id = seeded["paymentId"].as_str().unwrap();
    let cancelled = iyzico_post(&sim, &client, "/payment/cancel", &cancel_body(id)).await;
    assert_eq!(cancelled["status"], "success", "{cancelled}");
    assert_eq!(cancelled["price"], json!(50.0));
}

#[tokio::test]
async fn refund_status_values_other_than_0_and_1_are_shown_when_switched() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0")]);
    let tx = payment.items[0].payment_transaction_id.clone();
    let client = client();
    iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &item_refund_body(&tx, "10.0", "ok"),
    )
    .await;
    sim.arm(Fault::Fail, 1);
    iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &item_refund_body(&tx, "5.0", "bad"),
    )
    .await;
    let (status, _) = admin_post(
        &sim,
        "/__sandbox/behaviour",
        json!({"refund_status_completed": 2, "refund_status_failed": 3}),
    )
    .await;
    assert_eq!(status, 200);
    let details = iyzico_details(&sim, &client, &payment.payment_id).await;
    let refunds = &details["payments"][0]["itemTransactions"][0]["refunds"];
    let statuses: Vec<(&str, i64)> = refunds
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["refundConversationId"].as_str().unwrap(),
                r["refundStatus"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [("ok", 2), ("bad", 3)]);
    let (status, _) = admin_post(
        &sim,
        "/__sandbox/behaviour",
        json!({"refund_status_completed": "two"}),
    )
    .await;
    assert_eq!(status, 400);
    // Reset restores 1 and 0.
    sim.reset();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0")]);
    let tx = payment.items[0].payment_transaction_id.clone();
    iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &item_refund_body(&tx, "10.0", "ok"),
    )
    .await;
    let details = iyzico_details(&sim, &client, &payment.payment_id).await;
    assert_eq!(
        details["payments"][0]["itemTransactions"][0]["refunds"][0]["refundStatus"],
        1
    );
    sim.set_refund_status_values(7, -1);
    let details = iyzico_details(&sim, &client, &payment.payment_id).await;
    assert_eq!(
        details["payments"][0]["itemTransactions"][0]["refunds"][0]["refundStatus"],
        7
    );
}

#[tokio::test]
async fn a_payment_from_an_earlier_day_cannot_be_cancelled_and_must_be_refunded() {
    let sim = IyzicoSim::start().await.unwrap();
    let client = client();
    let (status, seeded) = admin_post(
        &sim,
        "/__sandbox/payments",
        json!({"items": [{"price": "40.0"}], "paidDaysAgo": 1}),
    )
    .await;
    assert_eq!(status, 201, "{seeded}");
    let old = seeded["paymentId"].as_str().unwrap().to_owned();
    let refused = iyzico_post(&sim, &client, "/payment/cancel", &cancel_body(&old)).await;
    assert_eq!(refused["status"], "failure", "{refused}");
    assert_eq!(refused["errorCode"], IyzicoSim::ERR_CANCEL_NOT_SAME_DAY);
    assert!(sim.payment(&old).unwrap().cancel.is_none(), "nothing moved");
    // Today's payment cancels.
    let today = sim.add_payment(Currency::Try, &[dec("40.0")]);
    let answer = iyzico_post(
        &sim,
        &client,
        "/payment/cancel",
        &cancel_body(&today.payment_id),
    )
    .await;
    assert_eq!(answer["status"], "success", "{answer}");
    // Dated from Rust, and the rule switched off through the admin API.
    let other = sim.add_payment(Currency::Try, &[dec("40.0")]);
    assert!(sim.set_paid_at(&other.payment_id, 1_700_000_000));
    let refused = iyzico_post(
        &sim,
        &client,
        "/payment/cancel",
        &cancel_body(&other.payment_id),
    )
    .await;
    assert_eq!(refused["errorCode"], IyzicoSim::ERR_CANCEL_NOT_SAME_DAY);
    let (status, _) = admin_post(
        &sim,
        "/__sandbox/behaviour",
        json!({"same_day_cancel": false}),
    )
    .await;
    assert_eq!(status, 200);
    let answer = iyzico_post(
        &sim,
        &client,
        "/payment/cancel",
        &cancel_body(&other.payment_id),
    )
    .await;
    assert_eq!(answer["status"], "success", "{answer}");
    assert!(!sim.set_paid_at("no-such-payment", 0));
}
