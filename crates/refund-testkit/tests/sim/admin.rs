use std::net::{IpAddr, Ipv4Addr};

use refund_testkit::sim::{IyzicoSim, SipaySim};

use crate::support::*;

async fn admin(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let client = client();
    let url = format!("{base}{path}");
    let request = match method {
        "GET" => client.get(url),
        _ => client
            .post(url)
            .header("content-type", "application/json")
            .body(body.unwrap_or("{}").to_owned()),
    };
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    (status, json(&reply.text().await.unwrap()))
}

#[tokio::test]
async fn sipay_admin_api_seeds_reads_arms_and_resets() {
    let sim = SipaySim::start().await.unwrap();
    let base = sim.base_url();
    let (status, created) = admin(
        &base,
        "POST",
        "/__sandbox/payments",
        Some(r#"{"invoice_id":"INV-1","amount":"100.00","currency":"TRY"}"#),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(created["invoice_id"], "INV-1");
    assert_eq!(created["amount"], "100.00");
    let (_, generated) = admin(
        &base,
        "POST",
        "/__sandbox/payments",
        Some(r#"{"amount":"5"}"#),
    )
    .await;
    assert!(
        generated["invoice_id"]
            .as_str()
            .unwrap()
            .starts_with("SIM-INV-")
    );
    assert_eq!(generated["amount"], "5.00");

    let client = client();
    let token = sipay_token(&sim, &client).await;
    sipay_refund(&sim, &client, &token, "INV-1", "25.00", "r1")
        .await
        .unwrap();
    let (_, ledger) = admin(&base, "GET", "/__sandbox/ledger", None).await;
    let p = &ledger["payments"][0];
    assert_eq!(p["id"], "INV-1");
    assert_eq!(p["amount"], "100.00");
    assert_eq!(p["refunded"], "25.00");
    assert_eq!(p["refunds"][0]["amount"], "25.00");
    assert_eq!(p["refunds"][0]["refund_transaction_id"], "r1");
    assert_eq!(p["state"], "partially_refund");

    let (status, armed) = admin(
        &base,
        "POST",
        "/__sandbox/faults",
        Some(r#"{"fault":"lost_response","count":2}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(armed["armed"][0]["fault"], "lost_response");
    assert_eq!(armed["armed"][0]["remaining"], 2);
    assert_eq!(sim.armed().len(), 1);
    let (status, _) = admin(
        &base,
        "POST",
        "/__sandbox/faults",
        Some(r#"{"fault":"bogus"}"#),
    )
    .await;
    assert_eq!(status, 400);

    let (_, requests) = admin(&base, "GET", "/__sandbox/requests", None).await;
    assert_eq!(requests["requests"][1]["path"], "/ccpayment/api/refund");

    let (status, _) = admin(&base, "POST", "/__sandbox/reset", Some("{}")).await;
    assert_eq!(status, 200);
    let (_, ledger) = admin(&base, "GET", "/__sandbox/ledger", None).await;
    assert!(ledger["payments"].as_array().unwrap().is_empty());
    assert!(sim.armed().is_empty());
    assert!(sim.requests().is_empty());
    assert_eq!(sim.token_requests(), 0);
}

#[tokio::test]
async fn iyzico_admin_api_seeds_items_and_reports_one_entry_per_payment() {
    let sim = IyzicoSim::start().await.unwrap();
    let base = sim.base_url();
    let (status, created) = admin(
        &base,
        "POST",
        "/__sandbox/payments",
        Some(r#"{"currency":"TRY","items":[{"price":"60.0"},{"price":"40.0"}]}"#),
    )
    .await;
    assert_eq!(status, 201);
    let payment_id = created["paymentId"].as_str().unwrap().to_owned();
    let items = created["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["paidPrice"], "60.0");
    let tx = items[1]["paymentTransactionId"]
        .as_str()
        .unwrap()
        .to_owned();

    let client = client();
    let answer = iyzico_post(&sim, &client, "/payment/refund",
        &serde_json::json!({"paymentTransactionId": tx, "price": "15.5", "ip": "1.2.3.4", "conversationId": "rf"})).await;
    assert_eq!(answer["status"], "success");
    let (_, ledger) = admin(&base, "GET", "/__sandbox/ledger", None).await;
    let payments = ledger["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["id"], payment_id.as_str());
    assert_eq!(payments[0]["amount"], "100.00");
    assert_eq!(payments[0]["refunded"], "15.50");
    assert_eq!(payments[0]["refunds"][0]["amount"], "15.50");
    assert_eq!(
        payments[0]["refunds"][0]["paymentTransactionId"],
        tx.as_str()
    );

    let (status, _) = admin(
        &base,
        "POST",
        "/__sandbox/payments",
        Some(r#"{"items":[]}"#),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = admin(
        &base,
        "POST",
        "/__sandbox/payments",
        Some(r#"{"items":[{"price":"1.001"}]}"#),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sandbox_run_starts_both_simulators_with_their_credentials() {
    let sandbox = refund_testkit::sandbox::run(IpAddr::V4(Ipv4Addr::LOCALHOST), None, None)
        .await
        .unwrap();
    assert_ne!(sandbox.sipay.addr().port(), sandbox.iyzico.addr().port());
    assert_eq!(sandbox.sipay_credentials().app_id, SipaySim::APP_ID);
    assert_eq!(sandbox.iyzico_credentials().api_key, IyzicoSim::API_KEY);
    let (status, creds) = admin(
        &sandbox.iyzico.base_url(),
        "GET",
        "/__sandbox/credentials",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(creds["api_key"], IyzicoSim::API_KEY);
}

#[tokio::test]
async fn unspecified_listen_address_shows_a_loopback_base_url() {
    let sandbox = refund_testkit::sandbox::run(IpAddr::V4(Ipv4Addr::UNSPECIFIED), None, None)
        .await
        .unwrap();
    assert!(sandbox.sipay.base_url().starts_with("http://127.0.0.1:"));
    let (status, _) = admin(&sandbox.sipay.base_url(), "GET", "/__sandbox/ledger", None).await;
    assert_eq!(status, 200);
}
