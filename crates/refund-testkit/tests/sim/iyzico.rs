use std::sync::Arc;

use refund_core::{Currency, Decimal};
use refund_testkit::sim::IyzicoSim;
use serde_json::json;

use crate::support::*;

fn refund_body(tx: &str, price: &str, conversation: &str) -> serde_json::Value {
    json!({"locale": "tr", "conversationId": conversation, "paymentTransactionId": tx,
        "price": price, "ip": "85.34.78.112", "currency": "TRY"})
}

#[tokio::test]
async fn wrong_signature_is_1000_and_unknown_api_key_1001_with_http_200() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let tx = &payment.items[0].payment_transaction_id;
    let client = client();
    let body = refund_body(tx, "10.0", "c1");
    let (status, text) = iyzico_send(
        &sim,
        &client,
        IyzicoSim::API_KEY,
        "wrong",
        "/payment/refund",
        &body,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let answer = json(&text);
    assert_eq!(answer["status"], "failure");
    assert_eq!(answer["errorCode"], "1000");
    assert_eq!(answer["errorMessage"], "Geçersiz imza");
    assert_eq!(answer["conversationId"], "c1");
    let (_, text) = iyzico_send(
        &sim,
        &client,
        "unknown",
        IyzicoSim::SECRET_KEY,
        "/payment/refund",
        &body,
    )
    .await
    .unwrap();
    assert_eq!(json(&text)["errorCode"], "1001");
    // Missing header.
    let (_, text) = post_json(
        &client,
        &format!("{}/payment/refund", sim.base_url()),
        &[],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(json(&text)["errorCode"], "1009");
    assert!(sim.ledger().payments[0].refunds().next().is_none());
}

#[tokio::test]
async fn signature_covers_path_and_raw_body() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0")]);
    let tx = &payment.items[0].payment_transaction_id;
    let client = client();
    let body = refund_body(tx, "10.0", "c1").to_string();
    // Signed for v2, sent to v1.
    let header = refund_iyzico::signature::authorization_header(
        IyzicoSim::API_KEY,
        IyzicoSim::SECRET_KEY,
        "1",
        "/v2/payment/refund",
        body.as_bytes(),
    );
    let (_, text) = post_json(
        &client,
        &format!("{}/payment/refund", sim.base_url()),
        &[("authorization", &header)],
        body.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(json(&text)["errorCode"], "1000");
    // Signed, then one space added to the body.
    let header = refund_iyzico::signature::authorization_header(
        IyzicoSim::API_KEY,
        IyzicoSim::SECRET_KEY,
        "1",
        "/payment/refund",
        body.as_bytes(),
    );
    let (_, text) = post_json(
        &client,
        &format!("{}/payment/refund", sim.base_url()),
        &[("authorization", &header)],
        format!("{body} ").as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(json(&text)["errorCode"], "1000");
    // x-iyzi-rnd different from the header's random key.
    let (_, text) = post_json(
        &client,
        &format!("{}/payment/refund", sim.base_url()),
        &[("authorization", &header), ("x-iyzi-rnd", "2")],
        body.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(json(&text)["errorCode"], "1000");
    // Exact: accepted (no x-iyzi-rnd is fine, as the Java/PHP SDKs send none).
    let (_, text) = post_json(
        &client,
        &format!("{}/payment/refund", sim.base_url()),
        &[("authorization", &header)],
        body.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(json(&text)["status"], "success", "{text}");
}

#[tokio::test]
async fn item_refund_answer_is_shaped_like_the_seed_with_a_correct_signature() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let tx = payment.items[0].payment_transaction_id.clone();
    let client = client();
    let (_, text) = iyzico_send(
        &sim,
        &client,
        IyzicoSim::API_KEY,
        IyzicoSim::SECRET_KEY,
        "/payment/refund",
        &refund_body(&tx, "10.50", "conv-1"),
    )
    .await
    .unwrap();
    let answer = json(&text);
    for key in [
        "status",
        "locale",
        "systemTime",
        "conversationId",
        "paymentId",
        "paymentTransactionId",
        "price",
        "currency",
        "authCode",
        "hostReference",
        "signature",
    ] {
        assert!(answer.get(key).is_some(), "{key} missing: {text}");
    }
    assert_eq!(answer["status"], "success");
    assert_eq!(answer["conversationId"], "conv-1");
    assert_eq!(answer["paymentId"], payment.payment_id.as_str());
    assert_eq!(answer["paymentTransactionId"], tx.as_str());
    // Price is a JSON number in iyzico's text form.
    assert!(text.contains(r#""price":10.5,"#), "{text}");
    let expected = refund_iyzico::signature::response_signature(
        IyzicoSim::SECRET_KEY,
        &[&payment.payment_id, "10.5", "TRY", "conv-1"],
    );
    assert_eq!(answer["signature"], expected.as_str());
}

#[tokio::test]
async fn whole_number_prices_sign_without_trailing_zeros_and_print_with_one() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0")]);
    let client = client();
    let (_, text) = iyzico_send(
        &sim,
        &client,
        IyzicoSim::API_KEY,
        IyzicoSim::SECRET_KEY,
        "/v2/payment/refund",
        &json!({"locale": "tr", "conversationId": "c", "price": "15.0",
        "paymentId": payment.payment_id, "currency": "TRY", "ip": "1.2.3.4"}),
    )
    .await
    .unwrap();
    assert!(text.contains(r#""price":15.0,"#), "{text}");
    assert!(!text.contains("paymentTransactionId"), "{text}");
    let expected = refund_iyzico::signature::response_signature(
        IyzicoSim::SECRET_KEY,
        &[&payment.payment_id, "15", "TRY", "c"],
    );
    assert_eq!(json(&text)["signature"], expected.as_str());
}

#[tokio::test]
async fn repeated_item_refunds_up_to_paid_price_then_declined() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let tx = payment.items[1].payment_transaction_id.clone();
    let client = client();
    for (price, status) in [
        ("15.0", "success"),
        ("25.0", "success"),
        ("0.01", "failure"),
    ] {
        let answer = iyzico_post(
            &sim,
            &client,
            "/payment/refund",
            &refund_body(&tx, price, price),
        )
        .await;
        assert_eq!(answer["status"], status, "{price}: {answer}");
    }
    let answer = iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &refund_body(&tx, "1", "x"),
    )
    .await;
    assert_eq!(answer["errorCode"], IyzicoSim::ERR_OVER_REFUND);
    let answer = iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &refund_body("999", "1", "x"),
    )
    .await;
    assert_eq!(answer["errorCode"], IyzicoSim::ERR_NOT_FOUND);
    let answer = iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &json!({"paymentTransactionId": tx, "price": "1.0"}),
    )
    .await;
    assert_eq!(answer["errorCode"], "11", "ip is mandatory");
    let ledger = sim.ledger();
    let item = ledger.item(&tx).unwrap();
    assert_eq!(item.refunded(), dec("40.0"));
    assert_eq!(ledger.payments[0].refund_status(), "PARTIALLY_REFUNDED");
}

#[tokio::test]
async fn numeric_prices_and_ids_are_accepted_like_the_java_sdk_sends_them() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0")]);
    let tx: u64 = payment.items[0].payment_transaction_id.parse().unwrap();
    let client = client();
    let body = serde_json::from_str::<serde_json::Value>(&format!(
        r#"{{"paymentTransactionId":{tx},"price":12.34,"ip":"1.2.3.4"}}"#
    ))
    .unwrap();
    let answer = iyzico_post(&sim, &client, "/payment/refund", &body).await;
    assert_eq!(answer["status"], "success", "{answer}");
    assert_eq!(sim.ledger().payments[0].refunded(), dec("12.34"));
}

#[tokio::test]
async fn payment_level_refund_spreads_over_lines_and_respects_the_total() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let client = client();
    let v2 = |price: &str, conv: &str| {
        json!({"locale": "tr", "conversationId": conv, "price": price,
        "paymentId": payment.payment_id, "currency": "TRY", "ip": "1.2.3.4"})
    };
    assert_eq!(
        iyzico_post(&sim, &client, "/v2/payment/refund", &v2("70.0", "a")).await["status"],
        "success"
    );
    let answer = iyzico_post(&sim, &client, "/v2/payment/refund", &v2("30.01", "b")).await;
    assert_eq!(answer["errorCode"], IyzicoSim::ERR_OVER_REFUND);
    assert_eq!(
        iyzico_post(&sim, &client, "/v2/payment/refund", &v2("30.0", "c")).await["status"],
        "success"
    );
    let p = sim.payment(&payment.payment_id).unwrap();
    assert_eq!(p.items[0].refunded(), dec("60.0"));
    assert_eq!(p.items[1].refunded(), dec("40.0"));
    assert_eq!(p.refund_status(), "TOTALLY_REFUNDED");
    let currency = json!({"price": "1.0", "paymentId": payment.payment_id, "currency": "USD", "ip": "1.2.3.4"});
    let other = sim.add_payment(Currency::Try, &[dec("5.0")]);
    let mut currency = currency;
    currency["paymentId"] = json!(other.payment_id);
    assert_eq!(
        iyzico_post(&sim, &client, "/v2/payment/refund", &currency).await["errorCode"],
        IyzicoSim::ERR_CURRENCY
    );
}

#[tokio::test]
async fn cancel_voids_an_unrefunded_payment_once_and_blocks_later_refunds() {
    let sim = IyzicoSim::start().await.unwrap();
    let a = sim.add_payment(Currency::Try, &[dec("1.1")]);
    let b = sim.add_payment(Currency::Try, &[dec("10.0")]);
    let client = client();
    let cancel = |id: &str| {
        json!({"locale": "tr", "conversationId": "void-1", "paymentId": id,
        "ip": "1.2.3.4", "reason": "other", "description": "customer requested"})
    };
    let answer = iyzico_post(&sim, &client, "/payment/cancel", &cancel(&a.payment_id)).await;
    assert_eq!(answer["status"], "success", "{answer}");
    assert_eq!(answer["conversationId"], "void-1");
    assert!(answer.get("signature").is_none());
    let again = iyzico_post(&sim, &client, "/payment/cancel", &cancel(&a.payment_id)).await;
    assert_eq!(again["errorCode"], IyzicoSim::ERR_CANCELLED);
    let tx = &a.items[0].payment_transaction_id;
    let refund = iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &refund_body(tx, "1.0", "r"),
    )
    .await;
    assert_eq!(refund["errorCode"], IyzicoSim::ERR_CANCELLED);
    // A payment with a refund cannot be cancelled.
    let tx = &b.items[0].payment_transaction_id;
    iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &refund_body(tx, "1.0", "r"),
    )
    .await;
    let answer = iyzico_post(&sim, &client, "/payment/cancel", &cancel(&b.payment_id)).await;
    assert_eq!(answer["errorCode"], IyzicoSim::ERR_CANCEL_AFTER_REFUND);
    assert!(sim.payment(&a.payment_id).unwrap().cancel.is_some());
}

#[tokio::test]
async fn reporting_lookup_lists_refunds_per_item_and_cancels() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let client = client();
    let tx = payment.items[0].payment_transaction_id.clone();
    iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &refund_body(&tx, "20.5", "rf-1"),
    )
    .await;
    iyzico_post(
        &sim,
        &client,
        "/payment/refund",
        &refund_body(&tx, "10", "rf-2"),
    )
    .await;
    let details = iyzico_details(&sim, &client, &payment.payment_id).await;
    assert_eq!(details["status"], "success");
    let p = &details["payments"][0];
    assert_eq!(p["paymentId"], payment.payment_id.as_str());
    assert_eq!(p["paymentRefundStatus"], "PARTIALLY_REFUNDED");
    let refunds = p["itemTransactions"][0]["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds[0]["refundConversationId"], "rf-1");
    assert!(refunds[0]["refundTxId"].is_string());
    assert_eq!(refunds[1]["refundConversationId"], "rf-2");
    assert!(
        p["itemTransactions"][1]["refunds"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(p["cancels"].as_array().unwrap().is_empty());
    let unknown = iyzico_details(&sim, &client, "1").await;
    assert_eq!(unknown["errorCode"], IyzicoSim::ERR_NOT_FOUND);
}

#[tokio::test]
async fn a_hundred_concurrent_item_refunds_never_exceed_the_paid_price() {
    let sim = Arc::new(IyzicoSim::start().await.unwrap());
    let payment = sim.add_payment(Currency::Try, &[dec("50.0")]);
    let tx = Arc::new(payment.items[0].payment_transaction_id.clone());
    let client = client();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..100 {
        let (sim, client, tx) = (Arc::clone(&sim), client.clone(), Arc::clone(&tx));
        tasks.spawn(async move {
            let answer = iyzico_post(
                &sim,
                &client,
                "/payment/refund",
                &refund_body(&tx, "0.7", &format!("c{n}")),
            )
            .await;
            answer["status"] == "success"
        });
    }
    let mut ok = 0;
    while let Some(success) = tasks.join_next().await {
        ok += usize::from(success.unwrap());
    }
    assert_eq!(ok, 71);
    let refunded = sim.ledger().payments[0].refunded();
    assert_eq!(refunded, dec("49.7"));
    assert!(refunded <= dec("50.0"));
    assert!(sim.ledger().payments[0].remaining() > Decimal::ZERO);
}

#[tokio::test]
async fn reporting_lookup_finds_a_payment_by_its_conversation_id_percent_decoded() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment_with_conversation_id(Currency::Try, &[dec("5.0")], "order 1/ä");
    let client = client();
    let path = "/v2/reporting/payment/details";
    // Like the node SDK: the body is `{}`, signed with the path only.
    let header = refund_iyzico::signature::authorization_header(
        IyzicoSim::API_KEY,
        IyzicoSim::SECRET_KEY,
        "7",
        path,
        b"{}",
    );
    let reply = client
        .get(format!(
            "{}{path}?paymentConversationId=order%201%2F%C3%A4",
            sim.base_url()
        ))
        .header("authorization", header)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let answer = json(&reply.text().await.unwrap());
    assert_eq!(
        answer["payments"][0]["paymentId"],
        payment.payment_id.as_str(),
        "{answer}"
    );
    assert_eq!(answer["payments"][0]["conversationId"], "order 1/ä");
}
