//! Every iyzico fixture of the test kit, served for the operation it answers, mapped to the
//! outcome the client must report. A new fixture without an expectation here fails the test.

use refund_core::{
    MerchantRef, PaymentRef, Reconciliation, RefundError, RefundProvider, RefundRequest,
    RefundStatus, VoidRequest,
};
use refund_testkit::fixtures::{Fixture, iyzico as fx};
use wiremock::MockServer;

use crate::{SECRET_KEY, client};

#[derive(Debug)]
enum Want {
    Receipt(&'static str),
    Auth,
    DeclinedRetryable,
    Declined,
    /// A determined state: what was refunded, a reference found applied, and the references
    /// found only as failed.
    State {
        refunded: &'static str,
        finds: &'static str,
        failed: &'static [&'static str],
    },
    /// A state that cannot say what was refunded, and a word of why.
    Undetermined(&'static str),
}

fn want(f: &Fixture) -> Want {
    match f.name {
        "refund_success" | "refund_success_signed" | "refund_success_string_price" => {
            Want::Receipt("0.50 TRY")
        }
        "refund_v2_success" => Want::Receipt("15.00 TRY"),
        "cancel_success" => Want::Receipt("1.10 TRY"),
        "failure_invalid_signature"
        | "failure_invalid_signature_numeric_code"
        | "failure_api_key_not_found"
        | "failure_signature_missing"
        | "failure_authorization_missing" => Want::Auth,
        "failure_refund_declined" => Want::DeclinedRetryable,
        "failure_invalid_request" | "payment_details_not_found" => Want::Declined,
        "payment_details_partially_refunded" => Want::State {
            refunded: "30.50 TRY",
            finds: "rf-2026-0002",
            failed: &[],
        },
        "payment_details_cancelled" => Want::State {
            refunded: "1.10 TRY",
            finds: "void-2026-0001",
            failed: &[],
        },
        // Failure #4: a failed cancel (and a failed refund) is no money returned.
        "payment_details_failed_entries" => Want::State {
            refunded: "25.00 TRY",
            finds: "rf-2026-0102",
            failed: &["void-2026-0101", "rf-2026-0101"],
        },
        "payment_details_contradictory_status" => Want::Undetermined("TOTALLY_REFUNDED"),
        "payment_details_unknown_refund_status" => Want::Undetermined("refundStatus 2"),
        other => panic!("fixture {other} has no expected outcome in tests/iyzico/fixtures.rs"),
    }
}

/// Runs the operation the fixture answers, with the ids and conversationId the fixture echoes.
async fn run(f: &Fixture, secret: &str) -> Result<Outcome, RefundError> {
    let server = MockServer::start().await;
    let c = client(&server, secret);
    let reference = "123456789";
    match f.operation {
        "refund_v2" => {
            f.mount(&server, "POST", "/v2/payment/refund").await;
            let r =
                RefundRequest::builder(PaymentRef::payment("25180208"), "15 TRY".parse().unwrap())
                    .reference(reference)
                    .build()
                    .unwrap();
            c.refund(&r)
                .await
                .map(|r| Outcome::Receipt(r.amount.to_string()))
        }
        "cancel" => {
            f.mount(&server, "POST", "/payment/cancel").await;
            let v = VoidRequest::builder(PaymentRef::payment("25180158"))
                .reference(reference)
                .build()
                .unwrap();
            c.void(&v)
                .await
                .map(|r| Outcome::Receipt(r.amount.to_string()))
        }
        "payment_details" => {
            f.mount(&server, "GET", "/v2/reporting/payment/details")
                .await;
            // paymentId comes as a string or (as in the docs' example) a number.
            let id = match &f.json()["payments"][0]["paymentId"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => "25180208".to_owned(),
            };
            c.refund_state(&PaymentRef::payment(id))
                .await
                .map(Outcome::State)
        }
        // "refund" and "any" (authentication failures answer every operation).
        _ => {
            f.mount(&server, "POST", "/payment/refund").await;
            let r = RefundRequest::builder(
                PaymentRef::item("11433038").in_payment("10844367"),
                "0.5 TRY".parse().unwrap(),
            )
            .reference(reference)
            .build()
            .unwrap();
            c.refund(&r)
                .await
                .map(|r| Outcome::Receipt(r.amount.to_string()))
        }
    }
}

enum Outcome {
    Receipt(String),
    State(refund_core::RefundState),
}

#[tokio::test]
async fn every_iyzico_fixture_maps_to_the_right_outcome() {
    assert!(!fx::ALL.is_empty());
    for f in fx::ALL {
        let label = format!("{} (HTTP {})", f.name, f.status);
        let result = run(f, SECRET_KEY).await;
        match (want(f), result) {
            (Want::Receipt(amount), Ok(Outcome::Receipt(got))) => {
                assert_eq!(got, amount, "{label}")
            }
            (
                Want::State {
                    refunded,
                    finds,
                    failed,
                },
                Ok(Outcome::State(s)),
            ) => {
                assert!(s.is_determined(), "{label}: {:?}", s.undetermined);
                assert_eq!(s.refunded.to_string(), refunded, "{label}");
                assert!(
                    matches!(
                        s.find(&MerchantRef::new(finds).unwrap()),
                        Reconciliation::Applied(_)
                    ),
                    "{label}"
                );
                for reference in failed {
                    assert!(
                        matches!(
                            s.find(&MerchantRef::new(*reference).unwrap()),
                            Reconciliation::Failed(r) if r.status == RefundStatus::Failed
                        ),
                        "{label}: {reference} must be on record as failed"
                    );
                }
                assert_eq!(
                    s.find(&MerchantRef::new("never-sent").unwrap()),
                    Reconciliation::NotFound,
                    "{label}"
                );
            }
            (Want::Undetermined(mentions), Ok(Outcome::State(s))) => {
                let why = s
                    .undetermined
                    .as_deref()
                    .unwrap_or_else(|| panic!("{label}: wanted undetermined, got {s:?}"));
                assert!(why.contains(mentions), "{label}: {why}");
                assert_eq!(
                    s.find(&MerchantRef::new("never-sent").unwrap()),
                    Reconciliation::Undetermined,
                    "{label}"
                );
            }
            (Want::Auth, Err(e)) => {
                assert!(
                    matches!(e, RefundError::AuthenticationRejected { .. }),
                    "{label}: {e}"
                );
                assert!(e.is_outcome_known() && !e.is_retryable(), "{label}");
            }
            (Want::DeclinedRetryable, Err(e)) => {
                assert!(
                    matches!(
                        e,
                        RefundError::Declined {
                            retryable: true,
                            ..
                        }
                    ),
                    "{label}: {e}"
                );
                assert!(e.is_outcome_known(), "{label}");
                assert!(
                    e.to_string().contains("REFUND_DECLINE"),
                    "{label}: errorGroup kept"
                );
            }
            (Want::Declined, Err(e)) => {
                assert!(
                    matches!(
                        e,
                        RefundError::Declined {
                            retryable: false,
                            ..
                        }
                    ),
                    "{label}: {e}"
                );
                assert!(e.is_outcome_known(), "{label}");
            }
            (w, Ok(_)) => panic!("{label}: wanted {w:?}, got a success"),
            (w, Err(e)) => panic!("{label}: wanted {w:?}, got {e}"),
        }
    }
}

#[tokio::test]
async fn the_documented_seed_response_is_a_receipt_with_its_references() {
    let f = fx::REFUND_SUCCESS;
    assert!(f.documented, "the seed's Örnek response");
    let server = MockServer::start().await;
    f.mount(&server, "POST", "/payment/refund").await;
    let r = RefundRequest::builder(PaymentRef::item("11433038"), "0.50 TRY".parse().unwrap())
        .reference("123456789")
        .build()
        .unwrap();
    let receipt = client(&server, SECRET_KEY).refund(&r).await.unwrap();
    assert_eq!(receipt.provider_references["paymentId"], "10844367");
    assert_eq!(receipt.provider_references["authCode"], "475990");
    assert_eq!(
        receipt.provider_references["hostReference"],
        "mock00007iyzihostrfn"
    );
}

#[tokio::test]
async fn signed_fixtures_fail_verification_under_another_secret() {
    for f in [fx::REFUND_SUCCESS_SIGNED, fx::REFUND_V2_SUCCESS] {
        let e = run(&f, "a-different-secret")
            .await
            .err()
            .expect("must not succeed");
        assert!(
            matches!(e, RefundError::OutcomeUnknown { .. }),
            "{}: {e}",
            f.name
        );
    }
}

#[tokio::test]
async fn an_answer_echoing_another_conversation_is_never_a_success() {
    for f in [fx::REFUND_SUCCESS, fx::REFUND_SUCCESS_STRING_PRICE] {
        let server = MockServer::start().await;
        f.mount(&server, "POST", "/payment/refund").await;
        let r = RefundRequest::builder(PaymentRef::item("11433038"), "0.50 TRY".parse().unwrap())
            .reference("a-different-refund")
            .build()
            .unwrap();
        let e = client(&server, SECRET_KEY).refund(&r).await.unwrap_err();
        assert!(!e.is_outcome_known(), "{}: {e}", f.name);
    }
}

#[test]
fn every_iyzico_fixture_names_a_seed_an_sdk_model_or_an_assumption() {
    for f in fx::ALL {
        let s = f.source;
        let seed = s.contains("seeds/iyzico-refund-tr.md");
        let sdk_model = s.contains("sdk: ")
            && [".java", ".js", ".cs", ".php", ".json"]
                .iter()
                .any(|ext| s.contains(ext));
        let assumed = s.contains("assumed: ");
        assert!(
            seed || sdk_model || assumed,
            "{}: its source names no seed, SDK model path or assumption: {s}",
            f.name
        );
    }
}

#[tokio::test]
async fn a_failed_cancel_in_the_report_is_never_money_returned() {
    let f = fx::PAYMENT_DETAILS_FAILED_ENTRIES;
    let server = MockServer::start().await;
    f.mount(&server, "GET", "/v2/reporting/payment/details")
        .await;
    let state = client(&server, SECRET_KEY)
        .refund_state(&PaymentRef::payment("25180301"))
        .await
        .unwrap();
    // The cancel of the whole 100.00 failed: only the 25.00 refund returned money.
    assert_eq!(state.refunded.to_string(), "25.00 TRY");
    assert_eq!(state.remaining().unwrap().to_string(), "75.00 TRY");
    let cancel = state
        .refunds
        .iter()
        .find(|r| r.reference.as_deref() == Some("void-2026-0101"))
        .expect("the failed cancel stays visible");
    assert_eq!(cancel.status, RefundStatus::Failed);
    assert_eq!(cancel.amount.to_string(), "100.00 TRY");
    assert_eq!(cancel.provider_reference.as_deref(), Some("32000101"));
}
