use std::sync::Arc;
use std::time::Duration;

use refund_core::{Currency, Decimal};
use refund_testkit::sim::SipaySim;

use crate::support::*;

#[tokio::test]
async fn token_is_issued_for_the_demo_credentials_and_counted() {
    let sim = SipaySim::start().await.unwrap();
    let client = client();
    let token = sipay_token(&sim, &client).await;
    assert!(!token.is_empty());
    let (status, text) = post_json(
        &client,
        &format!("{}/ccpayment/api/token", sim.base_url()),
        &[],
        br#"{"app_id":"wrong","app_secret":"wrong"}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(json(&text)["status_code"], 30);
    assert!(json(&text)["data"].is_null());
    assert_eq!(sim.token_requests(), 2);
}

#[tokio::test]
async fn refund_without_or_with_a_wrong_or_expired_bearer_is_401_unauthenticated() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let (status, text) = sipay_refund(&sim, &client, "nope", "INV-1", "10.00", "r1")
        .await
        .unwrap();
    assert_eq!(
        (status, text.as_str()),
        (401, r#"{"message":"Unauthenticated."}"#)
    );

    sim.set_token_ttl(Duration::from_millis(50));
    let token = sipay_token(&sim, &client).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let (status, _) = sipay_refund(&sim, &client, &token, "INV-1", "10.00", "r1")
        .await
        .unwrap();
    assert_eq!(status, 401);

    sim.set_token_ttl(SipaySim::DEFAULT_TOKEN_TTL);
    let token = sipay_token(&sim, &client).await;
    sim.expire_tokens();
    let (status, _) = sipay_refund(&sim, &client, &token, "INV-1", "10.00", "r1")
        .await
        .unwrap();
    assert_eq!(status, 401);
    assert!(sim.payment("INV-1").unwrap().refunds.is_empty());
}

#[tokio::test]
async fn duplicated_authorization_header_is_refused() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;
    let bearer = format!("Bearer {token}");
    let (status, _) = post_json(
        &client,
        &format!("{}/ccpayment/api/refund", sim.base_url()),
        &[("authorization", &bearer), ("authorization", &bearer)],
        &sipay_refund_body("INV-1", "10.00", "r1"),
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn repeated_partial_refunds_reach_the_paid_amount_and_set_the_state() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;

    let (_, text) = sipay_refund(&sim, &client, &token, "INV-1", "25.00", "r1")
        .await
        .unwrap();
    let answer = json(&text);
    assert_eq!(answer["status_code"], 100);
    assert_eq!(
        answer["status_description"],
        "Refund completed successfully"
    );
    assert_eq!(answer["invoice_id"], "INV-1");
    assert_eq!(answer["ref_no"], answer["ref_number"]);
    assert_eq!(sim.payment("INV-1").unwrap().state(), "partially_refund");

    let (_, text) = sipay_refund(&sim, &client, &token, "INV-1", "75.00", "r2")
        .await
        .unwrap();
    assert_eq!(json(&text)["status_code"], 100);
    let payment = sim.payment("INV-1").unwrap();
    assert_eq!(payment.state(), "refund");
    assert_eq!(payment.refunded(), dec("100.00"));
    assert_eq!(
        payment.refunds[1].refund_transaction_id.as_deref(),
        Some("r2")
    );
}

#[tokio::test]
async fn over_refund_is_declined_with_49_and_unknown_invoice_with_31() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("10.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;
    let (_, text) = sipay_refund(&sim, &client, &token, "INV-1", "7.00", "r1")
        .await
        .unwrap();
    assert_eq!(json(&text)["status_code"], 100);
    let (status, text) = sipay_refund(&sim, &client, &token, "INV-1", "3.01", "r2")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(json(&text)["status_code"], 49);
    assert_eq!(json(&text)["status_description"], "Refund Failed");
    let (_, text) = sipay_refund(&sim, &client, &token, "INV-404", "1.00", "r3")
        .await
        .unwrap();
    assert_eq!(json(&text)["status_code"], 31);
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("7.00"));
}

#[tokio::test]
async fn a_resent_refund_transaction_id_is_refused_with_104_and_not_paid_twice() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;
    for expected in [100, 104, 104] {
        let (_, text) = sipay_refund(&sim, &client, &token, "INV-1", "10.00", "same-id")
            .await
            .unwrap();
        assert_eq!(json(&text)["status_code"], expected);
    }
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("10.00"));
}

#[tokio::test]
async fn hash_key_problems_get_sipays_codes() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;
    let url = format!("{}/ccpayment/api/refund", sim.base_url());
    let bearer = format!("Bearer {token}");
    let send = |hash: String, amount: &'static str| {
        let body = serde_json::json!({
            "invoice_id": "INV-1", "amount": amount, "app_id": SipaySim::APP_ID,
            "app_secret": SipaySim::APP_SECRET, "merchant_key": SipaySim::MERCHANT_KEY,
            "hash_key": hash, "refund_transaction_id": "r",
        });
        let client = client.clone();
        let url = url.clone();
        let bearer = bearer.clone();
        async move {
            let (_, text) = post_json(
                &client,
                &url,
                &[("authorization", &bearer)],
                body.to_string().as_bytes(),
            )
            .await
            .unwrap();
            json(&text)["status_code"].as_u64().unwrap()
        }
    };
    let generate = refund_sipay::hash_key::generate;
    // Signed over another amount: 68.
    let other_amount = generate(
        SipaySim::APP_SECRET,
        &["99.00", "INV-1", SipaySim::MERCHANT_KEY],
    );
    assert_eq!(send(other_amount, "10.00").await, 68);
    // "10.0" sent, "10.00" signed: the hash covers the exact text.
    let other_text = generate(
        SipaySim::APP_SECRET,
        &["10.00", "INV-1", SipaySim::MERCHANT_KEY],
    );
    assert_eq!(send(other_text, "10.0").await, 68);
    // Another merchant key inside the hash: 91.
    let other_key = generate(
        SipaySim::APP_SECRET,
        &["10.00", "INV-1", "another-merchant"],
    );
    assert_eq!(send(other_key, "10.00").await, 91);
    // Another app secret: cannot be decrypted, 90.
    let other_secret = generate(
        "not-the-secret",
        &["10.00", "INV-1", SipaySim::MERCHANT_KEY],
    );
    assert_eq!(send(other_secret, "10.00").await, 90);
    // The documented bash sample's line-wrapped base64 (a newline in the hash): 90.
    let good = generate(
        SipaySim::APP_SECRET,
        &["10.00", "INV-1", SipaySim::MERCHANT_KEY],
    );
    let (head, tail) = good.split_at(good.len() - 10);
    assert_eq!(send(format!("{head}\n{tail}"), "10.00").await, 90);
    assert!(sim.payment("INV-1").unwrap().refunds.is_empty());
    // And the good one passes.
    assert_eq!(send(good, "10.00").await, 100);
}

#[tokio::test]
async fn wrong_app_secret_in_body_is_invalid_credentials_30() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;
    let hash = refund_sipay::hash_key::generate(
        SipaySim::APP_SECRET,
        &["10.00", "INV-1", SipaySim::MERCHANT_KEY],
    );
    let body = serde_json::json!({"invoice_id": "INV-1", "amount": "10.00", "app_id": SipaySim::APP_ID,
        "app_secret": "wrong", "merchant_key": SipaySim::MERCHANT_KEY, "hash_key": hash});
    let (_, text) = post_json(
        &client,
        &format!("{}/ccpayment/api/refund", sim.base_url()),
        &[("authorization", &format!("Bearer {token}"))],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(json(&text)["status_code"], 30);
}

#[tokio::test]
async fn check_status_reports_total_refunded_and_refund_info_with_ids() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;
    sipay_refund(&sim, &client, &token, "INV-1", "25.00", "r1")
        .await
        .unwrap();
    sipay_refund(&sim, &client, &token, "INV-1", "10.50", "r2")
        .await
        .unwrap();
    let (status, raw) = sipay_check_status(&sim, &client, &token, "INV-1").await;
    assert_eq!(status["status_code"], 100);
    assert_eq!(status["transaction_status"], "partially_refund");
    assert_eq!(status["currency_code"], "TRY");
    // Amounts are JSON numbers written from the Decimal's text, never through a float.
    assert!(raw.contains(r#""total_refunded_amount":35.50"#), "{raw}");
    assert!(raw.contains(r#""transaction_amount":100.00"#), "{raw}");
    let info = status["refund_info"].as_array().unwrap();
    assert_eq!(info.len(), 2);
    assert_eq!(info[0]["refund_transaction_id"], "r1");
    assert_eq!(info[0]["amount"], "25.00");
    assert_eq!(info[1]["amount"], "10.50");
    let (unknown, _) = sipay_check_status(&sim, &client, &token, "INV-404").await;
    assert_eq!(unknown["status_code"], 31);
}

#[tokio::test]
async fn a_hundred_concurrent_refunds_never_exceed_the_paid_amount() {
    let sim = Arc::new(SipaySim::start().await.unwrap());
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = Arc::new(sipay_token(&sim, &client).await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..100 {
        let (sim, client, token) = (Arc::clone(&sim), client.clone(), Arc::clone(&token));
        tasks.spawn(async move {
            let (_, text) = sipay_refund(&sim, &client, &token, "INV-1", "3.00", &format!("r{n}"))
                .await
                .unwrap();
            json(&text)["status_code"].as_u64().unwrap()
        });
    }
    let mut codes = Vec::new();
    while let Some(code) = tasks.join_next().await {
        codes.push(code.unwrap());
    }
    let ok = codes.iter().filter(|c| **c == 100).count();
    let declined = codes.iter().filter(|c| **c == 49).count();
    assert_eq!((ok, declined), (33, 67), "{codes:?}");
    let payment = sim.payment("INV-1").unwrap();
    assert_eq!(payment.refunded(), dec("99.00"));
    assert!(payment.refunded() <= payment.amount);
    assert_eq!(payment.remaining(), Decimal::ONE);
}

#[tokio::test]
async fn requests_are_recorded_with_method_path_headers_and_body() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;
    sipay_refund(&sim, &client, &token, "INV-1", "1.00", "r1")
        .await
        .unwrap();
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].method, hyper::Method::POST);
    assert_eq!(requests[1].path, "/ccpayment/api/refund");
    assert_eq!(
        requests[1].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(requests[1].json().unwrap()["refund_transaction_id"], "r1");
    let debug = format!("{:?}", requests[1]);
    assert!(
        !debug.contains(&token) && !debug.contains(SipaySim::APP_SECRET),
        "{debug}"
    );
}

#[test]
fn credentials_debug_redacts_secrets() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sim = SipaySim::start().await.unwrap();
        let debug = format!("{:?}", sim.credentials());
        assert!(!debug.contains(SipaySim::APP_SECRET));
        assert!(!debug.contains(SipaySim::MERCHANT_KEY));
        assert!(debug.contains(&sim.base_url()));
    });
}
