//! The iyzico client against wiremock: signing recomputed from what arrived, the exact bytes
//! the official SDK sends, answer checks, error mapping and faults.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

mod common;

use std::time::Duration;

use common::*;
use refund_core::http::HttpSettings;
use refund_core::{
    Currency, Money, PaymentRef, Reconciliation, RefundError, RefundProvider, RefundReason,
    RefundRequest, VoidRequest,
};
use refund_iyzico::signature::response_signature;
use refund_iyzico::{Iyzico, IyzicoConfig, Locale};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("vectors/node_sdk_vectors.json")).unwrap()
}

fn vector(name: &str) -> serde_json::Value {
    vectors()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
        .clone()
}

/// Sends `call` through a client configured like the vector and returns what arrived.
async fn sent_like_the_sdk(
    name: &str,
    locale: Locale,
    answer: serde_json::Value,
    call: impl AsyncFnOnce(&Iyzico),
) -> (wiremock::Request, serde_json::Value) {
    let v = vector(name);
    let server = MockServer::start().await;
    Mock::given(method(v["method"].as_str().unwrap()))
        .and(path(v["path"].as_str().unwrap()))
        .respond_with(json(200, answer))
        .mount(&server)
        .await;
    let random = v["random_key"].as_str().unwrap().to_owned();
    let config = IyzicoConfig::new(
        v["api_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
    )
    .with_base_url(&server.uri())
    .unwrap()
    .with_locale(locale)
    .with_random_key(move || random.clone());
    let client = Iyzico::new(config).unwrap();
    call(&client).await;
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    (received[0].clone(), v)
}

fn assert_same_bytes(got: &wiremock::Request, v: &serde_json::Value) {
    assert_eq!(
        String::from_utf8(got.body.clone()).unwrap(),
        v["body"].as_str().unwrap(),
        "{}",
        v["name"]
    );
    let header = |n: &str| got.headers.get(n).unwrap().to_str().unwrap().to_owned();
    assert_eq!(
        header("authorization"),
        v["authorization"].as_str().unwrap()
    );
    assert_eq!(header("x-iyzi-rnd"), v["x_iyzi_rnd"].as_str().unwrap());
    assert_eq!(header("content-type"), "application/json");
}

#[tokio::test]
async fn item_refund_sends_the_exact_bytes_and_header_of_the_node_sdk() {
    let (got, v) = sent_like_the_sdk(
        "refund_v1_doc_sample",
        Locale::Tr,
        refund_success("123456789", json!(0.5)),
        async |c| {
            let r = RefundRequest::builder(PaymentRef::item("1"), tl("0.50"))
                .reference("123456789")
                .extra("ip", "85.34.78.112")
                .build()
                .unwrap();
            let _ = c.refund(&r).await;
        },
    )
    .await;
    assert_same_bytes(&got, &v);
}

#[tokio::test]
async fn item_refund_with_reason_and_turkish_description_matches_the_sdk_bytes() {
    let (got, v) = sent_like_the_sdk(
        "refund_v1_with_reason_and_description",
        Locale::En,
        json!({}),
        async |c| {
            let r = RefundRequest::builder(
                PaymentRef::item("11433038"),
                Money::parse("100.10", Currency::Usd).unwrap(),
            )
            .reference("rf-0123456789abcdef01234567")
            .reason(RefundReason::BuyerRequest)
            .description("Müşteri iadesi: \"kırık\" ürün / İĞÜŞÖÇ")
            .extra("ip", "10.0.0.1")
            .build()
            .unwrap();
            let _ = c.refund(&r).await;
        },
    )
    .await;
    assert_same_bytes(&got, &v);
}

#[tokio::test]
async fn fraud_refund_of_whole_euros_matches_the_sdk_bytes() {
    let (got, v) = sent_like_the_sdk(
        "refund_v1_fraud_whole_lira",
        Locale::Tr,
        json!({}),
        async |c| {
            let r = RefundRequest::builder(
                PaymentRef::item("99"),
                Money::parse("1234.00", Currency::Eur).unwrap(),
            )
            .reference("order-42-refund-1")
            .reason(RefundReason::Fraud)
            .description("chargeback")
            .extra("ip", "85.34.78.112")
            .build()
            .unwrap();
            let _ = c.refund(&r).await;
        },
    )
    .await;
    assert_same_bytes(&got, &v);
}

#[tokio::test]
async fn payment_refund_uses_v2_with_the_exact_sdk_bytes() {
    let (got, v) = sent_like_the_sdk("refund_v2_doc_sample", Locale::Tr, json!({}), async |c| {
        let r = RefundRequest::builder(PaymentRef::payment("25180208"), tl("15"))
            .reference("123456789")
            .extra("ip", "85.34.78.112")
            .build()
            .unwrap();
        let _ = c.refund(&r).await;
    })
    .await;
    assert_same_bytes(&got, &v);
    let (got, v) = sent_like_the_sdk("refund_v2_one_kurus", Locale::En, json!({}), async |c| {
        let r = RefundRequest::builder(
            PaymentRef::payment("10844367"),
            Money::parse("0.01", Currency::Gbp).unwrap(),
        )
        .reference("rf-ffffffffffffffffffffffff")
        .extra("ip", "2001:db8::1")
        .build()
        .unwrap();
        let _ = c.refund(&r).await;
    })
    .await;
    assert_same_bytes(&got, &v);
}

#[tokio::test]
async fn cancel_sends_the_exact_sdk_bytes() {
    for (name, reason, description, payment, reference, ip, locale) in [
        (
            "cancel_doc_sample",
            Some(RefundReason::Other),
            Some("customer requested"),
            "25180158",
            "123456789",
            "85.34.78.112",
            Locale::Tr,
        ),
        (
            "cancel_double_payment",
            Some(RefundReason::DoublePayment),
            Some("charged twice"),
            "7",
            "void-1",
            "127.0.0.1",
            Locale::En,
        ),
        (
            "cancel_without_reason",
            None,
            None,
            "8",
            "void-2",
            "127.0.0.1",
            Locale::Tr,
        ),
    ] {
        let (got, v) = sent_like_the_sdk(name, locale, json!({}), async |c| {
            let mut b = VoidRequest::builder(PaymentRef::payment(payment))
                .reference(reference)
                .extra("ip", ip);
            if let Some(r) = reason {
                b = b.reason(r);
            }
            if let Some(d) = description {
                b = b.description(d);
            }
            let _ = c.void(&b.build().unwrap()).await;
        })
        .await;
        assert_same_bytes(&got, &v);
    }
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_by_the_recomputing_matcher() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/payment/refund"))
        .and(Iyzv2::new(API_KEY, "another-secret"))
        .respond_with(json(200, refund_success("r-1", json!(10.5))))
        .mount(&server)
        .await;
    let e = client(&server)
        .refund(&item_refund("10.50", "r-1"))
        .await
        .unwrap_err();
    // wiremock answers 404 to what no mock matched: an unreadable answer, outcome unknown.
    assert!(!e.is_outcome_known(), "{e}");
    let received = server.received_requests().await.unwrap();
    let m = Iyzv2::new(API_KEY, "another-secret");
    assert_eq!(m.mismatch(&received[0]), Some("wrong signature"));
    assert_eq!(Iyzv2::new(API_KEY, SECRET_KEY).mismatch(&received[0]), None);
}

#[tokio::test]
async fn item_refund_success_becomes_a_receipt_with_iyzico_references() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/payment/refund"))
        .and(Iyzv2::new(API_KEY, SECRET_KEY))
        .and(BodyHas(vec![
            ("paymentTransactionId", json!("11433038")),
            ("price", json!("10.5")),
            ("currency", json!("TRY")),
            ("conversationId", json!("order-7-r1")),
            ("ip", json!("85.34.78.112")),
            ("locale", json!("tr")),
        ]))
        .respond_with(json(200, refund_success("order-7-r1", json!(10.5))))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = client(&server)
        .refund(&item_refund("10.50", "order-7-r1"))
        .await
        .unwrap();
    assert_eq!(receipt.amount, tl("10.50"));
    assert_eq!(receipt.reference.as_str(), "order-7-r1");
    assert_eq!(receipt.provider_references["paymentId"], "10844367");
    assert_eq!(
        receipt.provider_references["paymentTransactionId"],
        "11433038"
    );
    assert_eq!(receipt.provider_references["authCode"], "475990");
    assert_eq!(
        receipt.provider_references["hostReference"],
        "mock00007iyzihostrfn"
    );
    assert!(receipt.raw.is_some());
}

#[tokio::test]
async fn prices_as_strings_with_trailing_zeros_are_accepted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, refund_success("r-2", json!("10.50"))))
        .mount(&server)
        .await;
    assert!(
        client(&server)
            .refund(&item_refund("10.5", "r-2"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_missing_ip_uses_the_configured_default() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(BodyHas(vec![("ip", json!("192.0.2.7"))]))
        .respond_with(json(200, refund_success("r-3", json!(1))))
        .expect(1)
        .mount(&server)
        .await;
    let c = Iyzico::new(config(&server).with_default_ip("192.0.2.7".parse().unwrap())).unwrap();
    let r = RefundRequest::builder(PaymentRef::item("11433038"), tl("1"))
        .reference("r-3")
        .build()
        .unwrap();
    c.refund(&r).await.unwrap();
}

fn signed(
    conversation_id: &str,
    price: serde_json::Value,
    price_text: &str,
    secret: &str,
) -> serde_json::Value {
    let mut body = refund_success(conversation_id, price);
    body["signature"] = json!(response_signature(
        secret,
        &["10844367", price_text, "TRY", conversation_id]
    ));
    body
}

#[tokio::test]
async fn a_correct_response_signature_is_accepted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, signed("r-4", json!(15.0), "15", SECRET_KEY)))
        .mount(&server)
        .await;
    assert!(
        client(&server)
            .refund(&item_refund("15", "r-4"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_eight_decimal_signature_form_of_older_sdks_is_accepted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(
            200,
            signed("r-5", json!(0.5), "0.50000000", SECRET_KEY),
        ))
        .mount(&server)
        .await;
    assert!(
        client(&server)
            .refund(&item_refund("0.5", "r-5"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_wrong_response_signature_is_outcome_unknown_not_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(
            200,
            signed("r-6", json!(0.5), "0.5", "not-our-secret"),
        ))
        .mount(&server)
        .await;
    let e = client(&server)
        .refund(&item_refund("0.5", "r-6"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::OutcomeUnknown { .. }), "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("signature"));
}

#[tokio::test]
async fn a_conversation_id_that_is_not_echoed_is_outcome_unknown() {
    for answer in [refund_success("someone-else", json!(0.5)), {
        let mut b = refund_success("x", json!(0.5));
        b.as_object_mut().unwrap().remove("conversationId");
        b
    }] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(json(200, answer))
            .mount(&server)
            .await;
        let e = client(&server)
            .refund(&item_refund("0.5", "mine-1"))
            .await
            .unwrap_err();
        assert!(matches!(e, RefundError::OutcomeUnknown { .. }), "{e}");
        assert!(!e.is_outcome_known() && !e.is_retryable());
    }
}

#[tokio::test]
async fn a_refunded_price_that_differs_from_the_request_is_outcome_unknown() {
    for price in [json!(0.49), json!("5"), serde_json::Value::Null] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(json(200, refund_success("r-7", price.clone())))
            .mount(&server)
            .await;
        let e = client(&server)
            .refund(&item_refund("0.5", "r-7"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, RefundError::OutcomeUnknown { .. }),
            "{price}: {e}"
        );
    }
}

#[tokio::test]
async fn an_answer_for_another_basket_line_or_currency_is_outcome_unknown() {
    let mut other_item = refund_success("r-8", json!(0.5));
    other_item["paymentTransactionId"] = json!("999");
    let mut other_currency = refund_success("r-8", json!(0.5));
    other_currency["currency"] = json!("USD");
    for answer in [other_item, other_currency] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(json(200, answer))
            .mount(&server)
            .await;
        let e = client(&server)
            .refund(&item_refund("0.5", "r-8"))
            .await
            .unwrap_err();
        assert!(!e.is_outcome_known(), "{e}");
    }
}

#[tokio::test]
async fn iyzico_error_codes_map_to_the_right_class() {
    // (HTTP status, errorCode, group, retryable flag) → expected class.
    let cases: Vec<(u16, serde_json::Value, Option<&str>, Option<bool>, &str)> = vec![
        (200, json!("1000"), None, None, "auth"),
        (200, json!(1000), None, None, "auth"),
        (400, json!("1000"), None, None, "auth"),
        (200, json!("1001"), None, None, "auth"),
        (200, json!("1007"), None, None, "auth"),
        (200, json!("1009"), None, None, "auth"),
        (401, json!("1001"), None, None, "auth"),
        (
            200,
            json!("10246"),
            Some("REFUND_DECLINE"),
            Some(true),
            "retryable",
        ),
        (
            200,
            json!("10246"),
            Some("REFUND_DECLINE"),
            None,
            "retryable",
        ),
        (200, json!("11"), None, None, "declined"),
        (400, json!("5"), None, Some(false), "declined"),
        (
            200,
            json!("77777"),
            Some("SOMETHING_NEW"),
            Some(true),
            "retryable",
        ),
        (200, json!("77777"), Some("SOMETHING_NEW"), None, "declined"),
    ];
    for (status, code, group, retryable, want) in cases {
        let server = MockServer::start().await;
        let mut body = failure(code.clone(), "Geçersiz imza", "r-9");
        if let Some(g) = group {
            body["errorGroup"] = json!(g);
        }
        if let Some(r) = retryable {
            body["retryable"] = json!(r);
        }
        Mock::given(method("POST"))
            .respond_with(json(status, body))
            .mount(&server)
            .await;
        let e = client(&server)
            .refund(&item_refund("0.5", "r-9"))
            .await
            .unwrap_err();
        let label = format!("{status} {code}: {e}");
        assert!(e.is_outcome_known(), "{label}");
        assert_eq!(
            e.provider_code(),
            Some(code.to_string().trim_matches('"')),
            "{label}"
        );
        match want {
            "auth" => assert!(
                matches!(e, RefundError::AuthenticationRejected { .. }),
                "{label}"
            ),
            "retryable" => {
                assert!(
                    matches!(
                        e,
                        RefundError::Declined {
                            retryable: true,
                            ..
                        }
                    ),
                    "{label}"
                );
                assert!(e.is_retryable());
            }
            _ => {
                assert!(
                    matches!(
                        e,
                        RefundError::Declined {
                            retryable: false,
                            ..
                        }
                    ),
                    "{label}"
                );
                assert!(!e.is_retryable());
            }
        }
        if let Some(g) = group {
            assert!(e.to_string().contains(g), "{label}");
        }
    }
}

#[tokio::test]
async fn a_failure_for_another_conversation_is_outcome_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, failure(json!("11"), "x", "not-mine")))
        .mount(&server)
        .await;
    let e = client(&server)
        .refund(&item_refund("0.5", "mine-2"))
        .await
        .unwrap_err();
    assert!(!e.is_outcome_known(), "{e}");
}

async fn fault(response: ResponseTemplate, settings: Option<HttpSettings>) -> RefundError {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(response)
        .mount(&server)
        .await;
    let mut config = config(&server);
    if let Some(s) = settings {
        config = config.with_http_settings(s);
    }
    Iyzico::new(config)
        .unwrap()
        .refund(&item_refund("0.5", "r-f"))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn faults_are_outcome_unknown_and_never_retryable() {
    let cases: Vec<(&str, ResponseTemplate)> = vec![
        ("500 json", json(500, failure(json!("11"), "x", "r-f"))),
        ("500 success", json(500, refund_success("r-f", json!(0.5)))),
        (
            "502 html",
            ResponseTemplate::new(502)
                .set_body_raw("<html><body>Bad Gateway</body></html>", "text/html"),
        ),
        ("503 empty", ResponseTemplate::new(503)),
        (
            "200 malformed",
            ResponseTemplate::new(200).set_body_raw("{\"status\":\"succ", "application/json"),
        ),
        ("200 empty", ResponseTemplate::new(200)),
        (
            "200 wrong types",
            json(
                200,
                json!({"status": "success", "conversationId": "r-f", "price": true}),
            ),
        ),
        ("200 array", json(200, json!([1, 2]))),
        (
            "200 unknown status",
            json(200, json!({"status": "pending", "conversationId": "r-f"})),
        ),
        (
            "200 no status",
            json(200, json!({"conversationId": "r-f", "price": 0.5})),
        ),
        (
            "404 html",
            ResponseTemplate::new(404).set_body_raw("<h1>Not Found</h1>", "text/html"),
        ),
        ("400 success", json(400, refund_success("r-f", json!(0.5)))),
    ];
    for (label, response) in cases {
        let e = fault(response, None).await;
        assert!(
            matches!(e, RefundError::OutcomeUnknown { .. }),
            "{label}: {e}"
        );
        assert!(!e.is_retryable(), "{label}");
    }
}

#[tokio::test]
async fn a_timeout_is_outcome_unknown() {
    let e = fault(
        json(200, refund_success("r-f", json!(0.5))).set_delay(Duration::from_secs(3)),
        Some(HttpSettings::default().with_timeout(Duration::from_millis(300))),
    )
    .await;
    assert!(matches!(e, RefundError::OutcomeUnknown { .. }), "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_huge_body_is_refused_unread_and_outcome_unknown() {
    let big = format!(
        "{{\"status\":\"success\",\"pad\":\"{}\"}}",
        "x".repeat(64 * 1024)
    );
    let e = fault(
        ResponseTemplate::new(200).set_body_raw(big, "application/json"),
        Some(HttpSettings::default().with_max_response_bytes(16 * 1024)),
    )
    .await;
    assert!(matches!(e, RefundError::OutcomeUnknown { .. }), "{e}");
}

#[tokio::test]
async fn rate_limiting_and_http_auth_errors_are_classified() {
    let e = fault(
        ResponseTemplate::new(429).insert_header("retry-after", "7"),
        None,
    )
    .await;
    assert!(
        matches!(e, RefundError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{e}"
    );
    assert!(e.is_retryable());
    let e = fault(
        ResponseTemplate::new(401).set_body_raw("<html>401</html>", "text/html"),
        None,
    )
    .await;
    assert!(
        matches!(e, RefundError::AuthenticationRejected { .. }),
        "{e}"
    );
}

#[tokio::test]
async fn connection_refused_is_unreachable_and_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = Iyzico::new(
        IyzicoConfig::new(API_KEY, SECRET_KEY)
            .with_base_url(&format!("http://{addr}"))
            .unwrap(),
    )
    .unwrap();
    let e = c.refund(&item_refund("0.5", "r-c")).await.unwrap_err();
    assert!(matches!(e, RefundError::Unreachable { .. }), "{e}");
    assert!(e.is_retryable() && e.is_outcome_known());
}

#[tokio::test]
async fn secrets_never_appear_in_debug_display_or_errors() {
    let server = MockServer::start().await;
    // A broken gateway that echoes the request headers and credentials back.
    let echo = format!("<html>proxy error for apiKey {API_KEY} secret {SECRET_KEY}</html>");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_raw(echo, "text/html"))
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.refund(&item_refund("0.5", "r-s")).await.unwrap_err();
    for text in [
        format!("{c:?}"),
        format!("{:?}", c.config()),
        e.to_string(),
        format!("{e:?}"),
    ] {
        assert!(!text.contains(API_KEY), "{text}");
        assert!(!text.contains(SECRET_KEY), "{text}");
    }
}

#[tokio::test]
async fn invalid_requests_are_refused_before_anything_is_sent() {
    let server = MockServer::start().await;
    let c = client(&server);
    let bad_ip = RefundRequest::builder(PaymentRef::item("1"), tl("1"))
        .extra("ip", "not-an-ip")
        .build()
        .unwrap();
    assert!(matches!(
        c.refund(&bad_ip).await,
        Err(RefundError::InvalidRequest(_))
    ));
    let yen = RefundRequest::builder(
        PaymentRef::item("1"),
        Money::parse("100", Currency::Jpy).unwrap(),
    )
    .build()
    .unwrap();
    assert!(matches!(
        c.refund(&yen).await,
        Err(RefundError::InvalidRequest(_))
    ));
    let void_item = VoidRequest::builder(PaymentRef::item("1")).build().unwrap();
    assert!(matches!(
        c.void(&void_item).await,
        Err(RefundError::InvalidRequest(_))
    ));
    let lookup = c.refund_state(&PaymentRef::item("1")).await.unwrap_err();
    assert!(matches!(lookup, RefundError::InvalidRequest(_)), "{lookup}");
    assert!(lookup.to_string().contains("in_payment"));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn void_success_is_a_receipt_for_the_cancelled_amount() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/payment/cancel"))
        .and(Iyzv2::new(API_KEY, SECRET_KEY))
        .and(BodyHas(vec![
            ("paymentId", json!("25180158")),
            ("conversationId", json!("void-9")),
        ]))
        .respond_with(json(
            200,
            json!({
                "status": "success", "locale": "tr", "systemTime": 1527959985667u64,
                "conversationId": "void-9", "paymentId": "25180158", "price": 1.1,
                "currency": "TRY", "authCode": "475990", "hostReference": "mock00007iyzihostrfn"
            }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let v = VoidRequest::builder(PaymentRef::payment("25180158"))
        .reference("void-9")
        .build()
        .unwrap();
    let receipt = client(&server).void(&v).await.unwrap();
    assert_eq!(receipt.amount, tl("1.10"));
    assert_eq!(receipt.operation, refund_core::Operation::Void);
}

fn details(payment_id: &str) -> serde_json::Value {
    json!({
        "status": "success", "locale": "tr", "systemTime": 1527959985667u64,
        "payments": [{
            "paymentId": payment_id, "paymentStatus": 1, "paymentRefundStatus": "PARTIALLY_REFUNDED",
            "price": 100.0, "paidPrice": 100.0, "currency": "TRY",
            "itemTransactions": [
                {"paymentTransactionId": "26120001", "transactionStatus": 1, "price": 60.0, "paidPrice": 60.0,
                 "refunds": [
                    {"refundTxId": 31000001, "refundConversationId": "rf-2026-0001", "refundPrice": 20.5, "currencyCode": "TRY", "refundStatus": 1},
                    {"refundTxId": 31000002, "refundConversationId": "rf-2026-0002", "refundPrice": "10.0", "currencyCode": "TRY", "refundStatus": 1},
                    {"refundTxId": 31000003, "refundConversationId": "rf-2026-0003", "refundPrice": 5, "currencyCode": "TRY", "refundStatus": 0, "errorCode": "10246", "errorMessage": "Banka iadeyi reddetti"}
                 ]},
                {"paymentTransactionId": "26120002", "transactionStatus": 1, "price": 40.0, "paidPrice": 40.0, "refunds": []}
            ],
            "cancels": []
        }]
    })
}

#[tokio::test]
async fn refund_state_reads_the_reporting_api_and_finds_refunds_by_conversation_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/reporting/payment/details"))
        .and(query_param("paymentId", "25180208"))
        .and(query_param("locale", "tr"))
        .and(Iyzv2::new(API_KEY, SECRET_KEY))
        .respond_with(json(200, details("25180208")))
        .expect(2)
        .mount(&server)
        .await;
    let c = client(&server);
    let state = c
        .refund_state(&PaymentRef::payment("25180208"))
        .await
        .unwrap();
    assert_eq!(state.refunded, tl("30.50"));
    assert_eq!(state.paid, Some(tl("100")));
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert_eq!(state.refunds.len(), 3, "the failed refund stays visible");
    let found = state.find(&refund_core::MerchantRef::new("rf-2026-0002").unwrap());
    assert!(matches!(found, Reconciliation::Applied(r) if r.amount == tl("10")));
    assert!(matches!(
        state.find(&refund_core::MerchantRef::new("rf-2026-0003").unwrap()),
        Reconciliation::Failed(r) if r.amount == tl("5")
    ));
    assert_eq!(
        state.find(&refund_core::MerchantRef::new("rf-2026-0004").unwrap()),
        Reconciliation::NotFound
    );
    let line = c
        .refund_state(&PaymentRef::item("26120002").in_payment("25180208"))
        .await
        .unwrap();
    assert_eq!(line.refunded, tl("0"));
    assert_eq!(line.paid, Some(tl("40")));
    // The GET carries the body `{}`, signed, as the node SDK sends it.
    let received = server.received_requests().await.unwrap();
    assert_eq!(received[0].body, b"{}");
}

#[tokio::test]
async fn refund_state_lists_cancels_as_refunds_of_the_whole_payment() {
    let server = MockServer::start().await;
    let mut body = details("25180158");
    body["payments"][0]["itemTransactions"] = json!([]);
    body["payments"][0]["paidPrice"] = json!(1.1);
    body["payments"][0]["price"] = json!(1.1);
    body["payments"][0]["paymentRefundStatus"] = json!("NOT_REFUNDED");
    // iyzipay-java model/RefundDetail.java: refundId, cancelConversationId, refundPrice, ….
    body["payments"][0]["cancels"] = json!([
        {"refundId": 32000001, "cancelConversationId": "void-2026-0001", "refundPrice": 1.1, "currencyCode": "TRY", "refundStatus": 1}
    ]);
    Mock::given(method("GET"))
        .respond_with(json(200, body))
        .mount(&server)
        .await;
    let state = client(&server)
        .refund_state(&PaymentRef::payment("25180158"))
        .await
        .unwrap();
    assert_eq!(state.refunded, tl("1.10"));
    assert!(state.is_determined(), "{:?}", state.undetermined);
    assert!(matches!(
        state.find(&refund_core::MerchantRef::new("void-2026-0001").unwrap()),
        Reconciliation::Applied(r) if r.provider_reference.as_deref() == Some("32000001")
    ));
}

#[tokio::test]
async fn refund_state_failures_and_missing_payments_are_declines() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(
            200,
            json!({"status": "failure", "errorCode": "5", "errorMessage": "Ödeme bulunamadı"}),
        ))
        .mount(&server)
        .await;
    let e = client(&server)
        .refund_state(&PaymentRef::payment("1"))
        .await
        .unwrap_err();
    assert!(matches!(e, RefundError::Declined { .. }), "{e}");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(200, details("other-payment")))
        .mount(&server)
        .await;
    let e = client(&server)
        .refund_state(&PaymentRef::payment("1"))
        .await
        .unwrap_err();
    assert_eq!(e.provider_code(), Some("payment_not_found"));
}
