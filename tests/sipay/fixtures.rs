//! Every SiPay fixture in refund_testkit::fixtures::sipay, mapped to the outcome this crate
//! promises (docs/providers/sipay.md has the table). A new fixture fails
//! `every_sipay_fixture_has_an_expected_outcome` until it is given one here.

use std::time::Duration;

use refund_core::{
    Currency, MerchantRef, Money, PaymentRef, Reconciliation, RefundError, RefundProvider,
    RefundRequest, RefundStatus,
};
use refund_sipay::{Sipay, SipayConfig, paths};
use refund_testkit::fixtures::{Fixture, sipay};
use refund_testkit::matchers::{SipayAuth, mount_catch_all};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

const APP_ID: &str = "6d4a7e9374a76c15260fcc75e315b0b9";
const APP_SECRET: &str = "b46a67571aa1e7ef5641dc3fa6f1712a";
const MERCHANT_KEY: &str = "$2y$10$HmRgYosneqcwHj.UH7upGuyCZqpQ1ITgSMj9Vvxn.t6f.Vdf2SQFO";
const DEFAULT_INVOICE: &str = "CPIKQUM29TXMQFF-1769581631";

/// What a fixture must turn into.
#[derive(Debug)]
enum Expect {
    Completed(&'static [&'static str]),
    Pending,
    Declined(&'static str, bool),
    Authentication(&'static str),
    /// `DuplicateReference` with this code: look it up, never a decline.
    Duplicate(&'static str),
    /// `OutcomeUnknown`: the answer says nothing sure about the money.
    Unknown,
    /// Check status: refunded total, how a lookup of `rf-2026-0001` resolves, and whether
    /// the answer says how much was refunded at all.
    State(&'static str, Lookup, Determined),
}

#[derive(Debug)]
enum Lookup {
    Applied,
    Failed,
    NotFound,
    Undetermined,
}

#[derive(Debug, PartialEq, Eq)]
enum Determined {
    Yes,
    No,
}

fn expected(f: &Fixture) -> Option<Expect> {
    use Expect::*;
    Some(match f.name {
        "refund_success_en" => Completed(&["order_no", "invoice_id", "ref_no", "ref_number"]),
        "refund_success_tr" => Completed(&["order_no", "invoice_id"]),
        "refund_pending" => Pending,
        "refund_failed_tr" => Declined("49", false),
        // The generic description lists every cause, the 30-second wait among them: which
        // one applied is unknown, so not retryable.
        "refund_failed_long_description" => Declined("49", false),
        "refund_duplicate_transaction_id" => Duplicate("104"),
        "refund_partial_not_allowed" => Declined("110", false),
        "refund_transaction_not_found" => Declined("31", false),
        "refund_invalid_invoice_id" => Declined("32", false),
        "refund_validation_error" => Declined("1", false),
        "refund_unknown_status_code" => Unknown,
        "refund_unknown_error" => Unknown,
        "refund_partially_successful" => Unknown,
        "refund_invalid_credentials" => Authentication("30"),
        "refund_hash_mismatch" => Authentication("68"),
        "refund_invalid_hash" => Authentication("90"),
        "refund_hash_merchant_key_mismatch" => Authentication("91"),
        "token_success" => Completed(&["order_no"]),
        "token_invalid_credentials" => Authentication("30"),
        "token_validation_error" => Authentication("1"),
        "unauthenticated" => Authentication("HTTP 401"),
        "check_status_completed" => State("0.00", Lookup::NotFound, Determined::Yes),
        "check_status_partially_refunded" => State("35.50", Lookup::Applied, Determined::Yes),
        "check_status_refunded" => State("100.00", Lookup::Applied, Determined::Yes),
        // The status-less entry is deduced refunded (25 + 10.50 make the total), but the
        // entries carry no references, so absence cannot be proven.
        "check_status_refund_info_untagged" => {
            State("35.50", Lookup::Undetermined, Determined::Yes)
        }
        "check_status_no_refund_figures" => State("0.00", Lookup::Undetermined, Determined::No),
        "check_status_refund_info_failed_entry" => State("10.50", Lookup::Failed, Determined::Yes),
        "check_status_total_only" => State("35.50", Lookup::Undetermined, Determined::Yes),
        "check_status_refund_contradicted" => State("35.50", Lookup::Undetermined, Determined::No),
        "check_status_not_found" => Declined("31", false),
        _ => return None,
    })
}

fn token_of(f: &Fixture) -> String {
    f.json()["data"]["token"].as_str().unwrap().to_owned()
}

fn invoice_of(f: &Fixture) -> String {
    f.json()["invoice_id"]
        .as_str()
        .filter(|s| !s.is_empty() && f.operation != "check_status")
        .unwrap_or(DEFAULT_INVOICE)
        .to_owned()
}

/// A server whose token endpoint answers `token` and whose refund/check-status endpoints
/// answer `answer` only to requests the test kit's SipayAuth accepts; anything else gets the
/// catch-all's 599.
async fn server_with(token: &Fixture, answer: Option<(&Fixture, &str)>) -> MockServer {
    let server = MockServer::start().await;
    token.mount(&server, "POST", paths::TOKEN).await;
    if let Some((fixture, route)) = answer {
        Mock::given(method("POST"))
            .and(path(route))
            .and(SipayAuth::new(
                &token_of(&sipay::TOKEN_SUCCESS),
                APP_SECRET,
                MERCHANT_KEY,
            ))
            .respond_with(fixture.response())
            .named(format!("fixture {}", fixture.name))
            .mount(&server)
            .await;
    }
    mount_catch_all(&server).await;
    server
}

fn client(server: &MockServer) -> Sipay {
    Sipay::new(
        SipayConfig::new(APP_ID, APP_SECRET, MERCHANT_KEY)
            .with_base_url(&server.uri())
            .unwrap()
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap()
}

fn request(invoice: &str) -> RefundRequest {
    RefundRequest::builder(
        PaymentRef::payment(invoice),
        Money::parse("10.00", Currency::Try).unwrap(),
    )
    .reference("rf-2026-0003")
    .build()
    .unwrap()
}

fn check_error(name: &str, e: &RefundError, expect: &Expect) {
    match expect {
        Expect::Declined(code, retryable) => {
            assert!(matches!(e, RefundError::Declined { .. }), "{name}: {e}");
            assert_eq!(e.provider_code(), Some(*code), "{name}");
            assert_eq!(e.is_retryable(), *retryable, "{name}");
        }
        Expect::Authentication(code) => {
            assert!(
                matches!(e, RefundError::AuthenticationRejected { .. }),
                "{name}: {e}"
            );
            assert_eq!(e.provider_code(), Some(*code), "{name}");
            assert!(!e.is_retryable(), "{name}");
        }
        Expect::Duplicate(code) => {
            assert!(
                matches!(e, RefundError::DuplicateReference { .. }),
                "{name}: {e}"
            );
            assert_eq!(e.provider_code(), Some(*code), "{name}");
            assert!(!e.is_outcome_known() && !e.is_retryable(), "{name}: {e}");
            return;
        }
        Expect::Unknown => {
            assert!(
                matches!(e, RefundError::OutcomeUnknown { .. }),
                "{name}: {e}"
            );
            assert!(!e.is_retryable(), "{name}: {e}");
            return;
        }
        other => panic!("{name}: expected {other:?}, got error {e}"),
    }
    assert!(e.is_outcome_known(), "{name}: {e}");
}

async fn run(f: &'static Fixture) {
    let expect = expected(f).unwrap_or_else(|| panic!("no expectation for {}", f.name));
    match f.operation {
        "refund" | "token" | "any" => {
            let (token, answer) = match f.operation {
                "refund" => (&sipay::TOKEN_SUCCESS, Some((f, paths::REFUND))),
                "token" => (f, Some((&sipay::REFUND_SUCCESS_EN, paths::REFUND))),
                _ => (&sipay::TOKEN_SUCCESS, Some((f, paths::REFUND))),
            };
            let invoice = match f.operation {
                "refund" => invoice_of(f),
                _ => DEFAULT_INVOICE.to_owned(),
            };
            let server = server_with(token, answer).await;
            let result = client(&server).refund(&request(&invoice)).await;
            match (&expect, result) {
                (Expect::Completed(refs), Ok(receipt)) => {
                    assert_eq!(receipt.status, RefundStatus::Completed, "{}", f.name);
                    let keys: Vec<&str> = receipt
                        .provider_references
                        .keys()
                        .map(String::as_str)
                        .collect();
                    for r in *refs {
                        assert!(keys.contains(r), "{}: {keys:?}", f.name);
                    }
                    assert_eq!(receipt.payment.id(), invoice);
                    assert_eq!(receipt.reference.as_str(), "rf-2026-0003");
                }
                (Expect::Pending, Ok(receipt)) => {
                    assert_eq!(receipt.status, RefundStatus::Pending, "{}", f.name);
                }
                (_, Ok(receipt)) => panic!("{}: expected {expect:?}, got {receipt:?}", f.name),
                (_, Err(e)) => check_error(f.name, &e, &expect),
            }
        }
        "check_status" => {
            let server = server_with(&sipay::TOKEN_SUCCESS, Some((f, paths::CHECK_STATUS))).await;
            let result = client(&server)
                .refund_state(&PaymentRef::payment(DEFAULT_INVOICE))
                .await;
            match (&expect, result) {
                (Expect::State(total, lookup, determined), Ok(state)) => {
                    assert_eq!(state.refunded.amount().to_string(), *total, "{}", f.name);
                    assert_eq!(state.refunded.currency(), Currency::Try);
                    let is_determined = if state.is_determined() {
                        Determined::Yes
                    } else {
                        Determined::No
                    };
                    assert_eq!(&is_determined, determined, "{}: {state:?}", f.name);
                    let found = state.find(&MerchantRef::new("rf-2026-0001").unwrap());
                    let ok = match lookup {
                        Lookup::Applied => matches!(found, Reconciliation::Applied(_)),
                        Lookup::Failed => matches!(found, Reconciliation::Failed(_)),
                        Lookup::NotFound => found == Reconciliation::NotFound,
                        Lookup::Undetermined => found == Reconciliation::Undetermined,
                    };
                    assert!(ok, "{}: {found:?}", f.name);
                }
                (_, Ok(state)) => panic!("{}: expected {expect:?}, got {state:?}", f.name),
                (_, Err(e)) => check_error(f.name, &e, &expect),
            }
        }
        other => panic!("{}: unknown operation {other}", f.name),
    }
}

#[test]
fn every_sipay_fixture_has_an_expected_outcome() {
    for f in sipay::ALL {
        assert!(
            expected(f).is_some(),
            "add an expectation for fixture {}",
            f.name
        );
    }
}

#[tokio::test]
async fn every_sipay_fixture_maps_to_the_right_outcome() {
    for f in sipay::ALL {
        run(f).await;
    }
}

/// Issue 12: every fixture says where its shape comes from. Each `; `-separated part of its
/// source starts with a seed (`seeds/`), an SDK file (`sdk: <repo> <path>`), or `assumed:`.
#[test]
fn every_sipay_fixture_says_where_its_shape_comes_from() {
    for f in sipay::ALL {
        for part in f.source.split("; ") {
            assert!(
                part.starts_with("seeds/")
                    || part.starts_with("sdk: ")
                    || part.starts_with("assumed: "),
                "{}: source part {part:?} names no seed, SDK file or assumption",
                f.name
            );
            if let Some(sdk) = part.strip_prefix("sdk: ") {
                assert!(
                    sdk.contains('/'),
                    "{}: {part:?} names no repository or path",
                    f.name
                );
            }
        }
        if !f.documented {
            // Only the seed's verbatim copies need no assumption or SDK file.
            assert!(
                f.source.contains("sdk: ") || f.source.contains("assumed: "),
                "{}: {}",
                f.name,
                f.source
            );
        }
    }
}

#[tokio::test]
async fn the_documented_responses_are_among_them() {
    let documented: Vec<&str> = sipay::ALL
        .iter()
        .filter(|f| f.documented)
        .map(|f| f.name)
        .collect();
    for name in ["refund_success_en", "refund_success_tr", "refund_failed_tr"] {
        assert!(documented.contains(&name), "{documented:?}");
    }
}

#[tokio::test]
async fn the_documented_success_yields_sipays_references_verbatim() {
    let server = server_with(
        &sipay::TOKEN_SUCCESS,
        Some((&sipay::REFUND_SUCCESS_EN, paths::REFUND)),
    )
    .await;
    let receipt = client(&server)
        .refund(&request(DEFAULT_INVOICE))
        .await
        .unwrap();
    let body = sipay::REFUND_SUCCESS_EN.json();
    for key in ["order_no", "invoice_id", "ref_no", "ref_number"] {
        assert_eq!(
            receipt.provider_references[key],
            body[key].as_str().unwrap()
        );
    }
}
