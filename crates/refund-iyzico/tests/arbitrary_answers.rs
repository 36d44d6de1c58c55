//! Whatever iyzico (or anything in between) answers, the client returns a typed result: no
//! panic, and a receipt only for exactly the refund that was asked for.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use refund_core::{Currency, Money, PaymentRef, RefundRequest, RefundStatus};
use refund_iyzico::{Iyzico, IyzicoConfig};
use serde_json::{Value, json};

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        proptest::sample::select(vec![200u16, 201, 400, 401, 403, 404, 429, 500, 502, 503]),
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
        Just(json!("success")),
        Just(json!("failure")),
        Just(json!("rf-1")),
        Just(json!("11433038")),
        Just(json!("TRY")),
        Just(json!("10.50")),
        Just(json!(100)),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// Bodies shaped like iyzico's refund answers, with every field drawn at random.
fn near_valid_body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::btree_map(
        proptest::sample::select(vec![
            "status",
            "conversationId",
            "paymentId",
            "paymentTransactionId",
            "price",
            "currency",
            "errorCode",
            "errorMessage",
            "errorGroup",
            "retryable",
            "signature",
        ]),
        scalar(),
        0..9,
    )
    .prop_map(|m| serde_json::to_vec(&m).unwrap())
}

fn client_and_request() -> (Iyzico, RefundRequest) {
    let iyzico = Iyzico::new(IyzicoConfig::new("api-key", "secret-key")).unwrap();
    let request = RefundRequest::builder(
        PaymentRef::item("11433038"),
        Money::parse("10.50", Currency::Try).unwrap(),
    )
    .reference("rf-1")
    .build()
    .unwrap();
    (iyzico, request)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_never_succeed(status in status(), body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (iyzico, request) = client_and_request();
        // Random bytes are almost never a valid success answer for this line and 10.50.
        if let Ok(receipt) = iyzico.interpret_refund_answer(&request, status, &body) {
            prop_assert_eq!(receipt.amount, request.amount());
        }
    }

    #[test]
    fn near_valid_answers_give_typed_results_and_only_exact_receipts(status in status(), body in near_valid_body()) {
        let (iyzico, request) = client_and_request();
        match iyzico.interpret_refund_answer(&request, status, &body) {
            Ok(receipt) => {
                prop_assert!((200..300).contains(&status), "success on HTTP {}", status);
                prop_assert_eq!(receipt.amount, request.amount());
                prop_assert_eq!(receipt.payment.id(), "11433038");
            }
            Err(e) => {
                // Every error is one of the classes, and says nothing about the secrets.
                let text = format!("{e} {e:?}");
                prop_assert!(!text.contains("secret-key") && !text.contains("api-key"));
                if status >= 500 {
                    prop_assert!(!e.is_outcome_known() || e.kind() == "authentication_rejected" || e.kind() == "declined",
                        "HTTP {} gave {}", status, e.kind());
                }
            }
        }
    }
}

/// Payment-details reports: payments with item transactions, refunds and cancels (the field
/// names of iyzipay-java `RefundTxDetail` / `RefundDetail`), every value random.
fn near_valid_lookup() -> impl Strategy<Value = Vec<u8>> {
    let entry_value = || {
        prop_oneof![
            scalar(),
            Just(json!(0)),
            Just(json!(1)),
            Just(json!("rf-1")),
            Just(json!("5.5"))
        ]
    };
    let refund = proptest::collection::btree_map(
        proptest::sample::select(vec![
            "refundConversationId",
            "refundPrice",
            "refundTxId",
            "refundStatus",
            "currencyCode",
            "errorCode",
            "errorMessage",
        ]),
        entry_value(),
        0..7,
    );
    let cancel = proptest::collection::btree_map(
        proptest::sample::select(vec![
            "cancelConversationId",
            "refundPrice",
            "refundId",
            "refundStatus",
            "currencyCode",
            "errorCode",
        ]),
        entry_value(),
        0..6,
    );
    let item = (
        proptest::collection::btree_map(
            proptest::sample::select(vec!["paymentTransactionId", "paidPrice", "price"]),
            scalar(),
            0..3,
        ),
        proptest::collection::vec(refund, 0..3),
    )
        .prop_map(|(mut m, refunds)| {
            m.insert("refunds", serde_json::to_value(refunds).unwrap());
            m
        });
    let payment = (
        proptest::collection::btree_map(
            proptest::sample::select(vec![
                "paymentId",
                "currency",
                "paidPrice",
                "price",
                "paymentRefundStatus",
            ]),
            prop_oneof![
                scalar(),
                Just(json!("25180001")),
                Just(json!("NOT_REFUNDED")),
                Just(json!("PARTIALLY_REFUNDED")),
                Just(json!("TOTALLY_REFUNDED ")),
            ],
            0..5,
        ),
        proptest::collection::vec(item, 0..3),
        proptest::option::of(proptest::collection::vec(cancel, 0..2)),
    )
        .prop_map(|(mut m, items, cancels)| {
            m.insert("itemTransactions", serde_json::to_value(items).unwrap());
            if let Some(cancels) = cancels {
                m.insert("cancels", serde_json::to_value(cancels).unwrap());
            }
            m
        });
    (
        prop_oneof![Just(json!("success")), Just(json!("failure")), scalar()],
        proptest::collection::vec(payment, 0..3),
    )
        .prop_map(|(status, payments)| {
            serde_json::to_vec(&json!({"status": status, "payments": payments})).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lookup_answers_give_typed_results_for_the_asked_payment(status in status(), body in near_valid_lookup()) {
        let (iyzico, _) = client_and_request();
        for payment in [PaymentRef::payment("25180001"), PaymentRef::item("11433038").in_payment("25180001")] {
            if let Ok(state) = iyzico.interpret_lookup_answer(&payment, status, &body) {
                prop_assert_eq!(&state.payment, &payment);
                // Failed records never count; a determined state's total is its completed
                // records, nothing guessed.
                if state.is_determined() {
                    let completed = state
                        .refunds
                        .iter()
                        .filter(|r| r.status == RefundStatus::Completed)
                        .try_fold(Money::zero(state.refunded.currency()), |sum, r| sum.checked_add(&r.amount));
                    prop_assert_eq!(completed.ok(), Some(state.refunded));
                    prop_assert!(state.refunds.iter().all(|r| matches!(r.status, RefundStatus::Completed | RefundStatus::Failed)));
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_as_lookup_answers_never_panic(status in status(), body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (iyzico, _) = client_and_request();
        let _ = iyzico.interpret_lookup_answer(&PaymentRef::payment("25180001"), status, &body);
    }
}
