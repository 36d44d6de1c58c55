//! Tiny hand-written clients: they send exactly what the providers' documents describe.

use refund_testkit::sim::{IyzicoSim, SipaySim};
use serde_json::{Value, json};

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
}

pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), reqwest::Error> {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = request.body(body.to_vec()).send().await?;
    let status = reply.status().as_u16();
    Ok((status, reply.text().await?))
}

pub(crate) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub(crate) async fn sipay_token(sim: &SipaySim, client: &reqwest::Client) -> String {
    let body = json!({"app_id": SipaySim::APP_ID, "app_secret": SipaySim::APP_SECRET});
    let (status, text) = post_json(
        client,
        &format!("{}/ccpayment/api/token", sim.base_url()),
        &[],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{text}");
    json(&text)["data"]["token"].as_str().unwrap().to_owned()
}

pub(crate) fn sipay_refund_body(invoice: &str, amount: &str, refund_id: &str) -> Vec<u8> {
    let hash = refund_sipay::hash_key::generate(
        SipaySim::APP_SECRET,
        &[amount, invoice, SipaySim::MERCHANT_KEY],
    );
    json!({
        "invoice_id": invoice, "amount": amount, "app_id": SipaySim::APP_ID,
        "app_secret": SipaySim::APP_SECRET, "merchant_key": SipaySim::MERCHANT_KEY,
        "hash_key": hash, "refund_transaction_id": refund_id,
    })
    .to_string()
    .into_bytes()
}

pub(crate) async fn sipay_refund(
    sim: &SipaySim,
    client: &reqwest::Client,
    token: &str,
    invoice: &str,
    amount: &str,
    refund_id: &str,
) -> Result<(u16, String), reqwest::Error> {
    post_json(
        client,
        &format!("{}/ccpayment/api/refund", sim.base_url()),
        &[("authorization", &format!("Bearer {token}"))],
        &sipay_refund_body(invoice, amount, refund_id),
    )
    .await
}

pub(crate) async fn sipay_check_status(
    sim: &SipaySim,
    client: &reqwest::Client,
    token: &str,
    invoice: &str,
) -> (Value, String) {
    let hash =
        refund_sipay::hash_key::generate(SipaySim::APP_SECRET, &[invoice, SipaySim::MERCHANT_KEY]);
    let body = json!({"merchant_key": SipaySim::MERCHANT_KEY, "invoice_id": invoice,
        "include_pending_status": true, "hash_key": hash, "show_refund_info": "Y"});
    let (status, text) = post_json(
        client,
        &format!("{}/ccpayment/api/checkstatus", sim.base_url()),
        &[("authorization", &format!("Bearer {token}"))],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{text}");
    (json(&text), text)
}

/// Sends a signed iyzico request; `secret` lets tests sign wrongly.
pub(crate) async fn iyzico_send(
    sim: &IyzicoSim,
    client: &reqwest::Client,
    api_key: &str,
    secret: &str,
    path: &str,
    body: &Value,
) -> Result<(u16, String), reqwest::Error> {
    let bytes = body.to_string().into_bytes();
    let rnd = "1700000000123456789";
    let header = refund_iyzico::signature::authorization_header(api_key, secret, rnd, path, &bytes);
    post_json(
        client,
        &format!("{}{path}", sim.base_url()),
        &[("authorization", &header), ("x-iyzi-rnd", rnd)],
        &bytes,
    )
    .await
}

pub(crate) async fn iyzico_post(
    sim: &IyzicoSim,
    client: &reqwest::Client,
    path: &str,
    body: &Value,
) -> Value {
    let (status, text) = iyzico_send(
        sim,
        client,
        IyzicoSim::API_KEY,
        IyzicoSim::SECRET_KEY,
        path,
        body,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{text}");
    json(&text)
}

pub(crate) async fn iyzico_details(
    sim: &IyzicoSim,
    client: &reqwest::Client,
    payment_id: &str,
) -> Value {
    let path = "/v2/reporting/payment/details";
    let rnd = "42";
    let header = refund_iyzico::signature::authorization_header(
        IyzicoSim::API_KEY,
        IyzicoSim::SECRET_KEY,
        rnd,
        path,
        b"",
    );
    let reply = client
        .get(format!("{}{path}?paymentId={payment_id}", sim.base_url()))
        .header("authorization", header)
        .header("x-iyzi-rnd", rnd)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    json(&reply.text().await.unwrap())
}

pub(crate) fn dec(text: &str) -> refund_core::Decimal {
    text.parse().unwrap()
}
