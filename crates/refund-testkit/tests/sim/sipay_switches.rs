//! SiPay simulator switches that make it at least as strict as SiPay (issue 22, fidelity
//! review §S): each one on the wire through the hand-written client, and through the admin
//! API.

use std::time::Duration;

use refund_core::Currency;
use refund_testkit::sim::{PendingVisibility, SipaySim};
use serde_json::{Value, json};

use crate::support::*;

async fn started() -> (SipaySim, reqwest::Client, String) {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;
    (sim, client, token)
}

async fn refund(
    sim: &SipaySim,
    client: &reqwest::Client,
    token: &str,
    amount: &str,
    reference: &str,
) -> Value {
    let (status, text) = sipay_refund(sim, client, token, "INV-1", amount, reference)
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    json(&text)
}

async fn behaviour(sim: &SipaySim, body: Value) -> (u16, Value) {
    let (status, text) = post_json(
        &client(),
        &format!("{}/__sandbox/behaviour", sim.base_url()),
        &[],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    (status, json(&text))
}

async fn ledger(sim: &SipaySim) -> Value {
    let reply = client()
        .get(format!("{}/__sandbox/ledger", sim.base_url()))
        .send()
        .await
        .unwrap();
    json(&reply.text().await.unwrap())
}

#[tokio::test]
async fn the_thirty_second_rule_refuses_a_second_refund_of_an_invoice_within_the_period_with_49() {
    let (sim, client, token) = started().await;
    sim.set_refund_spacing(Some(Duration::from_millis(400)));
    assert_eq!(
        refund(&sim, &client, &token, "10.00", "r-1").await["status_code"],
        100
    );
    let soon = refund(&sim, &client, &token, "10.00", "r-2").await;
    assert_eq!(soon["status_code"], 49, "{soon}");
    assert_eq!(
        soon["status_description"], "Refund Failed",
        "SiPay does not say why"
    );
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("10.00"));
    assert!(
        sim.payment("INV-1").unwrap().failed_refunds.is_empty(),
        "no entry"
    );
    // After the period, the same reference goes through: the refusal did not use it up.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        refund(&sim, &client, &token, "10.00", "r-2").await["status_code"],
        100
    );
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("20.00"));
    // Other invoices are not held back.
    sim.add_payment("INV-2", dec("5.00"), Currency::Try);
    let (_, other) = sipay_refund(&sim, &client, &token, "INV-2", "5.00", "r-3")
        .await
        .unwrap();
    assert_eq!(json(&other)["status_code"], 100);
}

#[tokio::test]
async fn the_thirty_second_rule_is_off_by_default_in_the_library_and_set_through_the_admin_api() {
    let (sim, client, token) = started().await;
    assert_eq!(sim.refund_spacing(), None);
    assert_eq!(
        refund(&sim, &client, &token, "10.00", "r-1").await["status_code"],
        100
    );
    assert_eq!(
        refund(&sim, &client, &token, "10.00", "r-2").await["status_code"],
        100
    );
    let (status, _) = behaviour(&sim, json!({"refund_spacing_ms": 30_000})).await;
    assert_eq!(status, 200);
    assert_eq!(sim.refund_spacing(), Some(Duration::from_secs(30)));
    assert_eq!(ledger(&sim).await["refund_spacing_ms"], 30_000);
    assert_eq!(
        refund(&sim, &client, &token, "10.00", "r-3").await["status_code"],
        49
    );
    // The provider's rule, not a test's state: a reset keeps it.
    sim.reset();
    assert_eq!(sim.refund_spacing(), Some(Duration::from_secs(30)));
    let (status, _) = behaviour(&sim, json!({"refund_spacing_ms": "soon"})).await;
    assert_eq!(status, 400);
    let (status, _) = behaviour(&sim, json!({"refund_spacing_ms": 0})).await;
    assert_eq!(status, 200);
    assert_eq!(sim.refund_spacing(), None);
}

#[tokio::test]
async fn refusals_that_use_the_reference_up_answer_104_on_the_resend() {
    let (sim, client, token) = started().await;
    let (status, _) = behaviour(
        &sim,
        json!({"refusals_use_reference": true, "refund_spacing_ms": 60_000}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        refund(&sim, &client, &token, "10.00", "r-1").await["status_code"],
        100
    );
    // The 30-second rule refuses r-2 and spends its reference: the resend is a 104.
    assert_eq!(
        refund(&sim, &client, &token, "10.00", "r-2").await["status_code"],
        49
    );
    sim.set_refund_spacing(None);
    let resent = refund(&sim, &client, &token, "10.00", "r-2").await;
    assert_eq!(resent["status_code"], 104, "{resent}");
    // So does an over-refund's 49.
    assert_eq!(
        refund(&sim, &client, &token, "95.00", "r-3").await["status_code"],
        49
    );
    assert_eq!(
        refund(&sim, &client, &token, "5.00", "r-3").await["status_code"],
        104
    );
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("10.00"));
    // Off (the default), the over-refund's reference stays usable.
    sim.set_refusals_use_reference(false);
    assert_eq!(
        refund(&sim, &client, &token, "95.00", "r-4").await["status_code"],
        49
    );
    assert_eq!(
        refund(&sim, &client, &token, "5.00", "r-4").await["status_code"],
        100
    );
}

#[tokio::test]
async fn pending_refunds_can_be_left_out_of_the_total_or_hidden_from_check_status() {
    let (sim, client, token) = started().await;
    sim.set_pending_refunds(true);
    assert_eq!(
        refund(&sim, &client, &token, "30.00", "r-p").await["status_code"],
        101
    );
    let (counted, _) = sipay_check_status(&sim, &client, &token, "INV-1").await;
    assert_eq!(counted["total_refunded_amount"], json!(30.0), "{counted}");
    assert_eq!(counted["refund_info"][0]["status"], "pending");

    let (status, _) = behaviour(&sim, json!({"pending_visibility": "listed"})).await;
    assert_eq!(status, 200);
    let (listed, _) = sipay_check_status(&sim, &client, &token, "INV-1").await;
    assert_eq!(listed["total_refunded_amount"], json!(0.0), "{listed}");
    assert_eq!(listed["refund_info"][0]["refund_transaction_id"], "r-p");
    assert_eq!(listed["transaction_status"], "Completed");

    sim.set_pending_visibility(PendingVisibility::Hidden);
    let (hidden, _) = sipay_check_status(&sim, &client, &token, "INV-1").await;
    assert_eq!(hidden["total_refunded_amount"], json!(0.0), "{hidden}");
    assert_eq!(hidden["refund_info"], json!([]));
    assert_eq!(ledger(&sim).await["pending_visibility"], "hidden");
    // The ledger still holds the money back from another refund.
    assert_eq!(sim.payment("INV-1").unwrap().remaining(), dec("70.00"));
    let (status, _) = behaviour(&sim, json!({"pending_visibility": "sometimes"})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn refund_info_can_mix_failed_and_completed_records_that_fall_short_of_the_total() {
    let (sim, client, token) = started().await;
    assert_eq!(
        refund(&sim, &client, &token, "25.00", "r-ok").await["status_code"],
        100
    );
    sim.arm(refund_testkit::sim::Fault::Fail, 1);
    assert_eq!(
        refund(&sim, &client, &token, "10.00", "r-bad").await["status_code"],
        49
    );
    assert_eq!(
        refund(&sim, &client, &token, "5.00", "r-ok2").await["status_code"],
        100
    );
    let (status, _) = behaviour(&sim, json!({"refund_info_short": true})).await;
    assert_eq!(status, 200);
    let (answer, _) = sipay_check_status(&sim, &client, &token, "INV-1").await;
    assert_eq!(answer["total_refunded_amount"], json!(30.0), "{answer}");
    let entries = answer["refund_info"].as_array().unwrap();
    let listed: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["refund_transaction_id"].as_str().unwrap(),
                e["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("r-bad", "failed"), ("r-ok2", "success")]);
    let completed: f64 = entries
        .iter()
        .filter(|e| e["status"] == "success")
        .map(|e| e["amount"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(
        completed < 30.0,
        "the listed completed refunds fall short of the total"
    );
}

#[tokio::test]
async fn completed_refunds_can_carry_a_status_word_outside_the_clients_mapping() {
    let (sim, client, token) = started().await;
    assert_eq!(
        refund(&sim, &client, &token, "100.00", "r-void").await["status_code"],
        100
    );
    let (status, _) = behaviour(&sim, json!({"completed_status_word": "cancelled"})).await;
    assert_eq!(status, 200);
    let (answer, _) = sipay_check_status(&sim, &client, &token, "INV-1").await;
    assert_eq!(answer["refund_info"][0]["status"], "cancelled", "{answer}");
    assert_eq!(answer["total_refunded_amount"], json!(100.0));
    let (status, _) = behaviour(&sim, json!({"completed_status_word": ""})).await;
    assert_eq!(status, 400);
    sim.reset();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let token = sipay_token(&sim, &client).await;
    refund(&sim, &client, &token, "1.00", "r-again").await;
    let (answer, _) = sipay_check_status(&sim, &client, &token, "INV-1").await;
    assert_eq!(
        answer["refund_info"][0]["status"], "success",
        "reset restores it"
    );
}

#[tokio::test]
async fn a_refund_without_refund_transaction_id_is_refused_unless_switched_off() {
    let (sim, client, token) = started().await;
    let hash = refund_sipay::hash_key::generate(
        SipaySim::APP_SECRET,
        &["10.00", "INV-1", SipaySim::MERCHANT_KEY],
    );
    let body = json!({
        "invoice_id": "INV-1", "amount": "10.00", "app_id": SipaySim::APP_ID,
        "app_secret": SipaySim::APP_SECRET, "merchant_key": SipaySim::MERCHANT_KEY,
        "hash_key": hash,
    })
    .to_string();
    let url = format!("{}/ccpayment/api/refund", sim.base_url());
    let auth = format!("Bearer {token}");
    let (_, text) = post_json(&client, &url, &[("authorization", &auth)], body.as_bytes())
        .await
        .unwrap();
    let answer = json(&text);
    assert_eq!(answer["status_code"], 1, "{answer}");
    assert!(
        answer["status_description"]
            .as_str()
            .unwrap()
            .contains("refund transaction id")
    );
    assert!(sim.payment("INV-1").unwrap().refunded().is_zero());
    let (status, _) = behaviour(&sim, json!({"require_refund_transaction_id": false})).await;
    assert_eq!(status, 200);
    let (_, text) = post_json(&client, &url, &[("authorization", &auth)], body.as_bytes())
        .await
        .unwrap();
    assert_eq!(json(&text)["status_code"], 100, "{text}");
}

#[tokio::test]
async fn a_request_without_accept_json_is_refused_unless_switched_off() {
    let (sim, client, token) = started().await;
    let url = format!("{}/ccpayment/api/refund", sim.base_url());
    let send = |accept: Option<&'static str>| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(sipay_refund_body("INV-1", "1.00", &format!("r-{accept:?}")));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        async move { json(&request.send().await.unwrap().text().await.unwrap()) }
    };
    // reqwest sends `Accept: */*` unless told otherwise: not the required header.
    for refused in [None, Some("text/html"), Some("*/*")] {
        let answer = send(refused).await;
        assert_eq!(answer["status_code"], 1, "Accept {refused:?}: {answer}");
    }
    for accepted in ["application/json", "text/html, Application/JSON;q=0.9"] {
        let answer = send(Some(accepted)).await;
        assert_eq!(answer["status_code"], 100, "Accept {accepted}: {answer}");
    }
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("2.00"));
    sim.set_require_accept(false);
    assert_eq!(send(None).await["status_code"], 100);
    assert_eq!(ledger(&sim).await["require_accept"], false);
}

#[tokio::test]
async fn late_application_for_every_request_applies_refunds_the_client_gave_up_on() {
    let (sim, client, token) = started().await;
    let (status, shown) = behaviour(&sim, json!({"response_delay_ms": 300})).await;
    assert_eq!(status, 200);
    assert_eq!(shown["response_delay_ms"], 300);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let gave_up = post_json(
        &impatient,
        &format!("{}/ccpayment/api/refund", sim.base_url()),
        &[("authorization", &format!("Bearer {token}"))],
        &sipay_refund_body("INV-1", "10.00", "r-late"),
    )
    .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    assert!(sim.payment("INV-1").unwrap().refunded().is_zero());
    let started = std::time::Instant::now();
    while sim.payment("INV-1").unwrap().refunded() != dec("10.00") {
        assert!(started.elapsed() < Duration::from_secs(5), "never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The token endpoint is not delayed, and a patient client gets its answer.
    sipay_token(&sim, &client).await;
    assert_eq!(
        refund(&sim, &client, &token, "1.00", "r-patient").await["status_code"],
        100
    );
    sim.reset();
    let (_, shown) = behaviour(&sim, json!({})).await;
    assert_eq!(shown["response_delay_ms"], 0, "reset clears it");
}
