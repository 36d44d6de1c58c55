//! Whatever SiPay (or anything in between) answers, the client returns a typed result: no
//! panic, and a receipt only for exactly the refund that was asked for.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use refund_core::{Currency, Money, PaymentRef, RefundRequest};
use refund_sipay::{Sipay, SipayConfig, status_code};
use serde_json::{Value, json};

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        proptest::sample::select(vec![
            200u16, 201, 400, 401, 403, 404, 405, 422, 429, 500, 502, 503
        ]),
        100u16..600,
    ]
}

/// Any JSON value a field could hold: nulls, bools, numbers of every shape, strings.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u32..100_000).prop_map(|n| json!(n)),
        "[0-9]{1,6}(\\.[0-9]{1,4})?".prop_map(Value::from),
        "(0|[1-9][0-9]{0,2})(\\.[0-9]{1,3})?".prop_map(|t| serde_json::from_str(&t).unwrap()),
        ".{0,20}".prop_map(Value::from),
        Just(json!("INV-1")),
        Just(json!("10.50")),
        Just(json!(100)),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// Bodies shaped like SiPay's refund answers, with every field drawn at random.
fn near_valid_body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::btree_map(
        proptest::sample::select(vec![
            "status_code",
            "status_description",
            "order_no",
            "invoice_id",
            "ref_no",
            "ref_number",
            "amount",
            "message",
            "data",
        ]),
        scalar(),
        0..9,
    )
    .prop_map(|m| serde_json::to_vec(&m).unwrap())
}

fn client_and_request() -> (Sipay, RefundRequest) {
    let sipay = Sipay::new(SipayConfig::new("app-id", "app-secret", "merchant-key")).unwrap();
    let request = RefundRequest::builder(
        PaymentRef::payment("INV-1"),
        Money::parse("10.50", Currency::Try).unwrap(),
    )
    .build()
    .unwrap();
    (sipay, request)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_never_succeed(status in status(), body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (sipay, request) = client_and_request();
        // Random bytes are almost never a valid success answer for INV-1 and 10.50.
        if let Ok(receipt) = sipay.interpret_refund_answer(&request, status, &body) {
            prop_assert_eq!(receipt.amount, request.amount());
        }
    }

    #[test]
    fn near_valid_answers_give_typed_results_and_only_exact_receipts(status in status(), body in near_valid_body()) {
        let (sipay, request) = client_and_request();
        match sipay.interpret_refund_answer(&request, status, &body) {
            Ok(receipt) => {
                prop_assert!((200..300).contains(&status), "success on HTTP {}", status);
                prop_assert_eq!(receipt.amount, request.amount());
                prop_assert_eq!(receipt.payment.id(), "INV-1");
            }
            Err(e) => {
                // Every error is one of the classes, and says nothing about the secrets.
                let text = format!("{e} {e:?}");
                prop_assert!(!text.contains("app-secret") && !text.contains("merchant-key"));
                if status >= 500 {
                    prop_assert!(!e.is_outcome_known() || e.kind() == "authentication_rejected" || e.kind() == "declined",
                        "HTTP {} gave {}", status, e.kind());
                }
                // Only a code of SiPay's table can be a known decline of a refund, or a 404,
                // 405 or 422 that came without a status_code (refused before processing).
                if e.kind() == "declined" {
                    let code = e.provider_code().unwrap_or_default();
                    let known = code.trim().parse::<i64>().ok().and_then(status_code::lookup);
                    let unprocessed = matches!(status, 404 | 405 | 422)
                        && code == format!("http_{status}");
                    prop_assert!(known.is_some() || unprocessed,
                        "declined with code {:?} outside the table on HTTP {}", code, status);
                }
            }
        }
    }
}

/// Check-status answers: top-level fields and a refund_info list, every value random.
fn near_valid_lookup() -> impl Strategy<Value = Vec<u8>> {
    let entry = proptest::collection::btree_map(
        proptest::sample::select(vec![
            "refund_transaction_id",
            "amount",
            "status",
            "created_at",
        ]),
        scalar(),
        0..5,
    );
    (
        proptest::collection::btree_map(
            proptest::sample::select(vec![
                "status_code",
                "status_description",
                "transaction_status",
                "invoice_id",
                "transaction_amount",
                "total_refunded_amount",
                "currency_code",
            ]),
            scalar(),
            0..8,
        ),
        proptest::option::of(proptest::collection::vec(entry, 0..4)),
    )
        .prop_map(|(mut top, info)| {
            if let Some(info) = info {
                top.insert("refund_info", serde_json::to_value(info).unwrap());
            }
            serde_json::to_vec(&top).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lookup_answers_give_typed_results_for_the_asked_payment(status in status(), body in near_valid_lookup()) {
        let (sipay, _) = client_and_request();
        let payment = PaymentRef::payment("INV-1");
        if let Ok(state) = sipay.interpret_lookup_answer(&payment, status, &body) {
            prop_assert_eq!(&state.payment, &payment);
            // Silence is never zero: a determined state needs a figure in the answer.
            let json: Value = serde_json::from_slice(&body).unwrap();
            let total = !matches!(json.get("total_refunded_amount"), None | Some(Value::Null))
                && json.get("total_refunded_amount") != Some(&json!(""));
            let listed = json.get("refund_info").is_some_and(Value::is_array);
            if state.is_determined() {
                prop_assert!(total || listed, "determined without figures: {:?}", state);
                // Failed records never count towards what was refunded.
                if let Some(paid) = state.paid {
                    prop_assert!(state.refunded <= paid, "{:?}", state);
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_as_lookup_answers_never_panic(status in status(), body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (sipay, _) = client_and_request();
        let _ = sipay.interpret_lookup_answer(&PaymentRef::payment("INV-1"), status, &body);
    }
}
