//! Issue 22, failure 3: `refund … status` on a lookup that cannot say what was refunded
//! (`RefundState::undetermined`) never prints a figure as if it were known: exit 4,
//! `outcome_known: false`, a message that says undetermined and why, and no "0.00 refunded".
//! Loopback only: the SiPay simulator without refund figures, a wiremock iyzico report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use refund_core::Currency;
use refund_testkit::sim::SipaySim;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod support;
use support::*;

fn with_output(mut env: Env, format: &str) -> Env {
    env.push(("REFUND_OUTPUT".into(), format.into()));
    env
}

/// What must hold for every undetermined status, in either output format.
fn assert_no_figure(out: &Out) {
    assert_eq!(out.code, 4, "{out:?}");
    let all = out.all();
    assert!(all.contains("undetermined"), "{all}");
    assert!(!all.contains("0.00"), "a figure was printed: {all}");
    assert!(!all.contains("refunded of"), "{all}");
    assert!(!all.contains("\"refunded\""), "{all}");
}

fn one_json_line(out: &Out) -> Value {
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap()
}

#[tokio::test]
async fn sipay_status_without_refund_figures_is_undetermined_exit_4_and_shows_no_figure() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-UD", dec("50.00"), Currency::Try);
    sim.omit_refund_figures(true);
    let args = ["sipay", "status", "--invoice-id", "INV-UD"];

    let out = run(&args, &with_output(sipay_env(&sim), "json")).await;
    assert_no_figure(&out);
    let v = one_json_line(&out);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["outcome_known"], false, "{v}");
    assert_eq!(v["exit_code"], 4, "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains("undetermined"), "{message}");
    // Why: SiPay's answer carried neither figure.
    assert!(message.contains("total_refunded_amount"), "{message}");

    let out = run(&args, &with_output(sipay_env(&sim), "text")).await;
    assert_no_figure(&out);
    assert!(out.stderr.contains("undetermined"), "{out:?}");

    // With the figures back, the same command shows them and exits 0.
    sim.omit_refund_figures(false);
    let out = run(&args, &with_output(sipay_env(&sim), "json")).await;
    assert_eq!(out.code, 0, "{out:?}");
}

#[tokio::test]
async fn iyzico_status_with_an_undocumented_refund_status_is_undetermined_exit_4() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/reporting/payment/details"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success", "locale": "tr", "systemTime": 1756383869332u64,
            "payments": [{
                "paymentId": "25180158", "paymentStatus": 1,
                "paymentRefundStatus": "NOT_REFUNDED",
                "price": 100, "paidPrice": 100, "currency": "TRY", "cancels": [],
                "itemTransactions": [{
                    "paymentTransactionId": "26120101", "price": 100, "paidPrice": 100,
                    "refunds": [{"refundTxId": 31000001, "refundConversationId": "rf-1",
                                 "refundPrice": 20, "currencyCode": "TRY", "refundStatus": 0}]
                }]
            }]
        })))
        .mount(&server)
        .await;
    let env: Env = vec![
        ("IYZICO_BASE_URL".into(), server.uri()),
        ("IYZICO_API_KEY".into(), "sandbox-api-key".into()),
        ("IYZICO_SECRET_KEY".into(), "sandbox-secret-key".into()),
    ];
    let args = ["iyzico", "status", "--payment-id", "25180158"];
    let out = run(&args, &with_output(env.clone(), "json")).await;
    assert_no_figure(&out);
    let v = one_json_line(&out);
    assert_eq!(v["outcome_known"], false, "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains("undetermined"), "{message}");
    assert!(message.contains("refundStatus 0"), "{message}");
    let out = run(&args, &with_output(env, "text")).await;
    assert_no_figure(&out);
}
