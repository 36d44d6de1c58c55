//! What a third party gets from the public simulator server: a minimal `Simulator` over a
//! `Ledger`, written as an outside crate would, gets every fault, late application, lookup lag,
//! the request log and the admin API without a line of server code.

use std::time::{Duration, Instant};

use refund_core::{Currency, Money};
use refund_testkit::sim::{
    Fault, Ledger, SimContext, SimRequest, SimResponse, SimServer, Simulator,
};
use serde_json::{Value, json};

use crate::support::*;

/// "Toy Pay": `POST /refund {"payment", "amount", "ref"}` and `POST /lookup {"payment"}`.
#[derive(Default)]
struct ToyPay {
    ledger: Ledger,
}

impl Simulator for ToyPay {
    fn handle(&self, req: &SimRequest, ctx: &SimContext) -> SimResponse {
        let body = req.json().unwrap_or_default();
        let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
        if req.path == "/lookup" {
            let Some(p) = self.ledger.lookup(ctx, &field("payment")) else {
                return SimResponse::json(404, &json!({"error": "unknown_payment"}));
            };
            let refs = |list: &[refund_testkit::sim::LedgerRefund]| -> Vec<Value> {
                list.iter().map(|r| json!(r.reference)).collect()
            };
            return SimResponse::json(
                200,
                &json!({"refunded": p.refunded().amount().to_string(), "refunds": refs(&p.refunds), "failed": refs(&p.failed)}),
            );
        }
        let Ok(amount) = Money::parse(&field("amount"), Currency::Try) else {
            return SimResponse::json(400, &json!({"error": "bad amount"}));
        };
        match self
            .ledger
            .refund(ctx, &field("payment"), Some(&field("ref")), amount)
        {
            Ok(_) => SimResponse::json(
                200,
                &json!({"amount": ctx.amount_to_answer(amount).amount().to_string()}),
            ),
            Err(e) => SimResponse::json(422, &json!({"error": e.code()})),
        }
    }

    fn seed(&self, body: &Value) -> Result<Value, String> {
        self.ledger.seed(body)
    }

    fn ledger(&self) -> Value {
        self.ledger.to_json()
    }

    fn reset(&self) {
        self.ledger.reset();
    }
}

fn try_(text: &str) -> Money {
    Money::parse(text, Currency::Try).unwrap()
}

async fn refund(
    server: &SimServer<ToyPay>,
    client: &reqwest::Client,
    payment: &str,
    reference: &str,
) -> Result<(u16, String), reqwest::Error> {
    let body = json!({"payment": payment, "amount": "10.00", "ref": reference}).to_string();
    let url = format!("{}/refund", server.base_url());
    post_json(client, &url, &[], body.as_bytes()).await
}

#[tokio::test]
async fn every_fault_works_on_a_third_party_simulator() {
    let server = SimServer::start(ToyPay::default()).await.unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    for (n, fault) in Fault::ALL.into_iter().enumerate() {
        let payment = server.sim().ledger.add_payment(try_("100.00")).id;
        server.arm(fault, 1);
        let result = refund(&server, &client, &payment, &format!("r{n}")).await;
        let refunded = server.sim().ledger.refunded(&payment).unwrap();
        assert_eq!(
            refunded == try_("10.00"),
            fault.applies_refund(),
            "{fault}: ledger shows {refunded}, client saw {result:?}"
        );
        assert_eq!(result.is_ok(), fault.answers(), "{fault}: {result:?}");
        let failed = server.sim().ledger.payment(&payment).unwrap().failed;
        let refuses = matches!(fault, Fault::Fail | Fault::FailLostResponse);
        assert_eq!(failed.len(), usize::from(refuses), "{fault}");
        match (fault, &result) {
            (Fault::WrongAmount, Ok((200, body))) => assert_eq!(json(body)["amount"], "11.00"),
            (Fault::Http429, Ok((429, _))) | (Fault::TokenExpired, Ok((401, _))) => {}
            (Fault::Malformed, Ok((200, body))) => {
                assert!(serde_json::from_str::<Value>(body).is_err(), "{body}");
            }
            (Fault::Empty, Ok((200, body))) => assert!(body.is_empty()),
            (Fault::Fail, Ok((422, body))) => assert_eq!(json(body)["error"], "refused"),
            (Fault::Http500, Ok((500, _))) | (Fault::Html502, Ok((502, _))) => {}
            (Fault::Http503, Ok((503, _))) | (Fault::Delay(_), Ok((200, _))) => {}
            (_, Err(_)) if !fault.answers() => {}
            (fault, other) => panic!("{fault}: {other:?}"),
        }
        assert!(server.armed().is_empty(), "{fault} was consumed");
    }
    assert_eq!(
        server.count_requests(|r| r.path == "/refund"),
        Fault::ALL.len()
    );
}

#[tokio::test]
async fn a_delayed_refund_is_applied_after_the_client_gave_up() {
    let server = SimServer::start(ToyPay::default()).await.unwrap();
    let payment = server.sim().ledger.add_payment(try_("100.00")).id;
    server.arm(Fault::Delay(Duration::from_millis(600)), 1);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let result = refund(&server, &impatient, &payment, "late").await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    assert!(server.sim().ledger.refunded(&payment).unwrap().is_zero());
    let started = Instant::now();
    while server.sim().ledger.refunded(&payment) != Some(try_("10.00")) {
        assert!(started.elapsed() < Duration::from_secs(5), "never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_admin_api_and_lookup_lag_come_for_free() {
    let server = SimServer::start(ToyPay::default()).await.unwrap();
    let base = server.base_url();
    let client = client();
    let admin = |path: &str, body: Value| {
        let request = client
            .post(format!("{base}/__sandbox/{path}"))
            .header("content-type", "application/json");
        request.body(body.to_string()).send()
    };
    let seeded = admin("payments", json!({"id": "P-1", "amount": "50.00"}))
        .await
        .unwrap();
    assert_eq!(seeded.status().as_u16(), 201);
    let lag = admin("behaviour", json!({"lookup_lag_ms": 60_000}))
        .await
        .unwrap();
    assert_eq!(json(&lag.text().await.unwrap())["lookup_lag_ms"], 60_000);
    let (status, _) = refund(&server, &client, "P-1", "r1").await.unwrap();
    assert_eq!(status, 200);
    // The lookup does not show it yet; the ledger does.
    let url = format!("{base}/lookup");
    let (_, seen) = post_json(&client, &url, &[], br#"{"payment":"P-1"}"#)
        .await
        .unwrap();
    assert_eq!(json(&seen)["refunded"], "0.00");
    let ledger = client
        .get(format!("{base}/__sandbox/ledger"))
        .send()
        .await
        .unwrap();
    let ledger = json(&ledger.text().await.unwrap());
    assert_eq!(ledger["payments"][0]["refunded"], "10.00");
    assert_eq!(ledger["payments"][0]["refunds"][0]["reference"], "r1");
    // Faults through the admin API, the request log, and a reset.
    let armed = admin("faults", json!({"fault": "wrong_amount"}))
        .await
        .unwrap();
    assert_eq!(armed.status().as_u16(), 200);
    assert_eq!(server.armed(), vec![(Fault::WrongAmount, 1)]);
    let requests = client
        .get(format!("{base}/__sandbox/requests"))
        .send()
        .await
        .unwrap();
    let requests = json(&requests.text().await.unwrap());
    assert_eq!(requests["requests"][0]["path"], "/refund");
    admin("reset", json!({})).await.unwrap();
    assert!(server.sim().ledger.payments().is_empty());
    assert!(server.requests().is_empty() && server.armed().is_empty());
    assert_eq!(server.lookup_lag(), Duration::ZERO);
}
