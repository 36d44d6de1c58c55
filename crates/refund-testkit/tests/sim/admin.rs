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

/// One raw HTTP/1.1 exchange, written byte for byte as a browser or a script would send it:
/// `head` is everything before the blank line (request line and headers).
async fn raw(addr: std::net::SocketAddr, head: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_admin_api_refuses_a_host_that_is_not_loopback_so_a_rebinding_page_reads_nothing() {
    let sim = SipaySim::start().await.unwrap();
    let port = sim.addr().port();
    for host in [
        "attacker.example".to_owned(),
        format!("attacker.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("10.0.0.7:{port}"),
    ] {
        let head = format!("GET /__sandbox/credentials HTTP/1.1\r\nHost: {host}");
        let (status, body) = raw(sim.addr(), &head, "").await;
        assert_eq!(status, 403, "Host {host}: {body}");
        assert!(!body.contains(SipaySim::APP_SECRET), "Host {host}: {body}");
        assert!(body.contains("loopback"), "{body}");
    }
    // No Host at all (HTTP/1.0) is refused too.
    let (status, _) = raw(sim.addr(), "GET /__sandbox/credentials HTTP/1.0", "").await;
    assert_eq!(status, 403);
    // Loopback names, with and without the port, are served.
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let head = format!("GET /__sandbox/credentials HTTP/1.1\r\nHost: {host}");
        let (status, body) = raw(sim.addr(), &head, "").await;
        assert_eq!(status, 200, "Host {host}: {body}");
        assert!(body.contains(SipaySim::APP_SECRET));
    }
    // The provider API itself is not the admin API: a refund's Host is not checked here.
    let head = "POST /ccpayment/api/token HTTP/1.1\r\nHost: attacker.example\r\nContent-Type: application/json\r\nAccept: application/json";
    let (status, _) = raw(sim.addr(), head, "{}").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_admin_api_refuses_bodies_that_are_not_json_so_a_form_cannot_arm_faults() {
    let sim = IyzicoSim::start().await.unwrap();
    let host = format!("Host: 127.0.0.1:{}", sim.addr().port());
    // What a cross-origin page can send without a preflight: a form or text/plain body, or
    // no body and no type.
    for content_type in [
        "Content-Type: text/plain",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: multipart/form-data; boundary=x",
        "X-Nothing: 1",
    ] {
        let head = format!("POST /__sandbox/faults HTTP/1.1\r\n{host}\r\n{content_type}");
        let (status, body) = raw(sim.addr(), &head, r#"{"fault":"reset","count":5}"#).await;
        assert_eq!(status, 415, "{content_type}: {body}");
        let head = format!("POST /__sandbox/reset HTTP/1.1\r\n{host}\r\n{content_type}");
        let (status, _) = raw(sim.addr(), &head, "").await;
        assert_eq!(status, 415, "{content_type}");
    }
    assert!(sim.armed().is_empty(), "nothing was armed");
    // JSON (with a charset parameter, any case) is served.
    let head = format!(
        "POST /__sandbox/faults HTTP/1.1\r\n{host}\r\nContent-Type: Application/JSON; charset=utf-8"
    );
    let (status, body) = raw(sim.addr(), &head, r#"{"fault":"reset","count":5}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.armed().len(), 1);
}

#[tokio::test]
async fn the_request_log_keeps_a_large_body_cut_with_a_marker() {
    use refund_testkit::sim::{RECORDED_BODY_CAP, TRUNCATED_MARKER};
    let sim = SipaySim::start().await.unwrap();
    let big = "x".repeat(RECORDED_BODY_CAP * 4);
    let (status, _) = post_json(
        &client(),
        &format!("{}/ccpayment/api/token", sim.base_url()),
        &[],
        big.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let logged = sim.requests().pop().unwrap();
    assert!(logged.body.len() < RECORDED_BODY_CAP + 64);
    let tail = String::from_utf8_lossy(&logged.body[RECORDED_BODY_CAP..]).into_owned();
    assert_eq!(tail, format!("{TRUNCATED_MARKER}{} bytes]", big.len()));
}
