use std::time::{Duration, Instant};

use refund_core::Currency;
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};

use crate::support::*;

/// What the client saw.
#[derive(Debug)]
enum Seen {
    Answer(u16, String),
    Timeout,
    ConnectionError,
}

fn seen(result: Result<(u16, String), reqwest::Error>) -> Seen {
    match result {
        Ok((status, body)) => Seen::Answer(status, body),
        Err(e) if e.is_timeout() => Seen::Timeout,
        Err(_) => Seen::ConnectionError,
    }
}

#[tokio::test]
async fn every_fault_on_a_sipay_refund_leaves_the_ledger_as_documented() {
    let sim = SipaySim::start().await.unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let token = sipay_token(&sim, &client).await;
    for (n, fault) in Fault::ALL.into_iter().enumerate() {
        let invoice = format!("INV-{n}");
        sim.add_payment(&invoice, dec("100.00"), Currency::Try);
        // TokenExpired revokes tokens: fetch a fresh one each round.
        let token = if n == 0 {
            token.clone()
        } else {
            sipay_token(&sim, &client).await
        };
        sim.arm(fault, 1);
        let started = Instant::now();
        let result =
            seen(sipay_refund(&sim, &client, &token, &invoice, "10.00", &format!("r{n}")).await);
        let refunded = sim.payment(&invoice).unwrap().refunded();
        assert_eq!(
            refunded == dec("10.00"),
            fault.applies_refund(),
            "{fault}: ledger shows {refunded}, client saw {result:?}"
        );
        match fault {
            Fault::Delay(d) => {
                assert!(started.elapsed() >= d);
                assert!(
                    matches!(&result, Seen::Answer(200, body) if json(body)["status_code"] == 100),
                    "{result:?}"
                );
            }
            Fault::Timeout => assert!(matches!(result, Seen::Timeout), "{result:?}"),
            Fault::Reset | Fault::LostResponse => {
                assert!(
                    matches!(result, Seen::ConnectionError),
                    "{fault}: {result:?}"
                );
            }
            Fault::Http500 => assert!(matches!(&result, Seen::Answer(500, _)), "{result:?}"),
            Fault::Html502 => {
                assert!(
                    matches!(&result, Seen::Answer(502, body) if body.contains("<html>")),
                    "{result:?}"
                );
            }
            Fault::Http503 => assert!(matches!(&result, Seen::Answer(503, _)), "{result:?}"),
            Fault::Http429 => assert!(matches!(&result, Seen::Answer(429, _)), "{result:?}"),
            Fault::Malformed => {
                let Seen::Answer(200, body) = &result else {
                    panic!("{result:?}")
                };
                assert!(!body.is_empty());
                assert!(
                    serde_json::from_str::<serde_json::Value>(body).is_err(),
                    "{body}"
                );
            }
            Fault::Empty => assert!(
                matches!(&result, Seen::Answer(200, body) if body.is_empty()),
                "{result:?}"
            ),
            Fault::TokenExpired => {
                assert!(
                    matches!(&result, Seen::Answer(401, body) if body == r#"{"message":"Unauthenticated."}"#),
                    "{result:?}"
                );
                // The token is revoked, not just refused once.
                let again =
                    seen(sipay_refund(&sim, &client, &token, &invoice, "10.00", "again").await);
                assert!(matches!(again, Seen::Answer(401, _)), "{again:?}");
            }
            Fault::Fail | Fault::FailLostResponse => {
                if fault == Fault::Fail {
                    assert!(
                        matches!(&result, Seen::Answer(200, body) if json(body)["status_code"] == 49),
                        "{result:?}"
                    );
                } else {
                    assert!(matches!(result, Seen::ConnectionError), "{result:?}");
                }
                // The bank's refusal is on the books as a failed entry under the reference.
                let failed = sim.payment(&invoice).unwrap().failed_refunds;
                assert_eq!(failed.len(), 1, "{fault}");
                assert_eq!(
                    failed[0].refund_transaction_id.as_deref(),
                    Some(format!("r{n}").as_str())
                );
            }
            // SiPay's refund answer states no amount: answered as usual, refund applied.
            Fault::WrongAmount => assert!(
                matches!(&result, Seen::Answer(200, body) if json(body)["status_code"] == 100),
                "{result:?}"
            ),
            other => panic!("untested fault {other}"),
        }
        assert!(sim.armed().is_empty(), "{fault} was consumed");
    }
}

#[tokio::test]
async fn lost_response_applies_the_refund_before_the_connection_drops() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    let token = sipay_token(&sim, &client).await;
    sim.arm(Fault::LostResponse, 1);
    let err = sipay_refund(&sim, &client, &token, "INV-1", "25.00", "r1")
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && !err.is_status(), "{err:?}");
    let payment = sim.payment("INV-1").unwrap();
    assert_eq!(payment.refunded(), dec("25.00"));
    assert_eq!(
        payment.refunds[0].refund_transaction_id.as_deref(),
        Some("r1")
    );
    // A resend with the same id is refused (104): reconcile, never resend blindly.
    let (_, text) = sipay_refund(&sim, &client, &token, "INV-1", "25.00", "r1")
        .await
        .unwrap();
    assert_eq!(json(&text)["status_code"], 104);
    // And check status shows it.
    let (status, _) = sipay_check_status(&sim, &client, &token, "INV-1").await;
    assert_eq!(status["refund_info"][0]["refund_transaction_id"], "r1");
}

#[tokio::test]
async fn faults_skip_the_token_endpoint_and_expire_after_their_count() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = client();
    sim.arm(Fault::Http500, 2);
    let token = sipay_token(&sim, &client).await;
    for expected in [500, 500, 200] {
        let (status, _) = sipay_refund(
            &sim,
            &client,
            &token,
            "INV-1",
            "1.00",
            &format!("r{expected}-{}", sim.requests().len()),
        )
        .await
        .unwrap();
        assert_eq!(status, expected);
    }
}

#[tokio::test]
async fn http429_carries_retry_after() {
    let sim = IyzicoSim::start().await.unwrap();
    sim.arm(Fault::Http429, 1);
    let reply = client()
        .get(format!(
            "{}/v2/reporting/payment/details?paymentId=1",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 429);
    assert_eq!(reply.headers()["retry-after"], "1");
}

#[tokio::test]
async fn every_fault_on_an_iyzico_refund_leaves_the_ledger_as_documented() {
    let sim = IyzicoSim::start().await.unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    for fault in Fault::ALL {
        let payment = sim.add_payment(Currency::Try, &[dec("10.0")]);
        let tx = &payment.items[0].payment_transaction_id;
        sim.arm(fault, 1);
        let body = serde_json::json!({"conversationId": "c", "paymentTransactionId": tx, "price": "2.5", "ip": "1.2.3.4"});
        let result = seen(
            iyzico_send(
                &sim,
                &client,
                IyzicoSim::API_KEY,
                IyzicoSim::SECRET_KEY,
                "/payment/refund",
                &body,
            )
            .await,
        );
        let refunded = sim.payment(&payment.payment_id).unwrap().refunded();
        assert_eq!(
            refunded == dec("2.5"),
            fault.applies_refund(),
            "{fault}: {result:?}"
        );
        assert_eq!(
            matches!(result, Seen::Answer(..)),
            fault.answers(),
            "{fault}: {result:?}"
        );
        if fault == Fault::TokenExpired {
            assert!(
                matches!(&result, Seen::Answer(200, b) if json(b)["errorCode"] == "1000"),
                "{result:?}"
            );
        }
        if fault == Fault::WrongAmount {
            // Applied as asked (2.5), answered as 3.5, with a signature over what it states.
            let Seen::Answer(200, body) = &result else {
                panic!("{result:?}")
            };
            let answer = json(body);
            assert_eq!(answer["status"], "success", "{body}");
            assert_eq!(answer["price"].to_string(), "3.5", "{body}");
            let signature = refund_iyzico::signature::RequestSigner::new(IyzicoSim::SECRET_KEY)
                .fields_signature(&[&payment.payment_id, "3.5", "TRY", "c"]);
            assert_eq!(answer["signature"], signature.as_str(), "{body}");
        }
        if matches!(fault, Fault::Fail | Fault::FailLostResponse) {
            let failed = sim.payment(&payment.payment_id).unwrap().items[0]
                .failed_refunds
                .clone();
            assert_eq!(failed.len(), 1, "{fault}: a failed entry is on the books");
            assert_eq!(failed[0].conversation_id.as_deref(), Some("c"));
        }
    }
}

#[tokio::test]
async fn stopping_the_simulator_closes_held_connections() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token = sipay_token(&sim, &client).await;
    sim.arm(Fault::Timeout, 1);
    let url = sim.base_url();
    let pending = tokio::spawn(async move {
        let body = sipay_refund_body("INV-1", "1.00", "r1");
        client
            .post(format!("{url}/ccpayment/api/refund"))
            .header("authorization", format!("Bearer {token}"))
            .body(body)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    drop(sim);
    let result = pending.await.unwrap();
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}
