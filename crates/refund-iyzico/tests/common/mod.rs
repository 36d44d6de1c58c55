//! Shared helpers for the crate's wiremock tests (no testkit: provider crates may not depend
//! on it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_pass_by_value,
    dead_code,
    unreachable_pub
)]

use refund_core::{Currency, Money, PaymentRef, RefundRequest};
use refund_iyzico::signature::{RANDOM_HEADER, parse_authorization, signature_hex};
use refund_iyzico::{Iyzico, IyzicoConfig};
use wiremock::{Match, MockServer, Request, ResponseTemplate};

pub const API_KEY: &str = "sandbox-test-api-key-0001";
pub const SECRET_KEY: &str = "sandbox-test-secret-key-0002";

/// Recomputes IYZWSv2 from the received request (path + raw body) and accepts only a correct
/// header: right API key, random key equal to `x-iyzi-rnd`, right signature.
#[derive(Clone, Debug)]
pub struct Iyzv2 {
    pub api_key: String,
    pub secret_key: String,
}

impl Iyzv2 {
    pub fn new(api_key: &str, secret_key: &str) -> Self {
        Iyzv2 {
            api_key: api_key.into(),
            secret_key: secret_key.into(),
        }
    }

    pub fn mismatch(&self, request: &Request) -> Option<&'static str> {
        let header = request.headers.get("authorization")?.to_str().ok();
        let Some(header) = header else {
            return Some("authorization is not text");
        };
        let Some(parsed) = parse_authorization(header) else {
            return Some("authorization is not IYZWSv2");
        };
        if parsed.api_key != self.api_key {
            return Some("wrong api key");
        }
        let rnd = request
            .headers
            .get(RANDOM_HEADER)
            .and_then(|v| v.to_str().ok());
        if rnd != Some(parsed.random_key.as_str()) {
            return Some("x-iyzi-rnd differs from the signed random key");
        }
        let want = signature_hex(
            &self.secret_key,
            &parsed.random_key,
            request.url.path(),
            &request.body,
        );
        (want != parsed.signature).then_some("wrong signature")
    }
}

impl Match for Iyzv2 {
    fn matches(&self, request: &Request) -> bool {
        self.mismatch(request).is_none()
    }
}

/// Matches when the JSON body has these top-level fields with these values.
pub struct BodyHas(pub Vec<(&'static str, serde_json::Value)>);

impl Match for BodyHas {
    fn matches(&self, request: &Request) -> bool {
        let Ok(body) = request.body_json::<serde_json::Value>() else {
            return false;
        };
        self.0.iter().all(|(k, v)| body.get(*k) == Some(v))
    }
}

pub fn config(server: &MockServer) -> IyzicoConfig {
    IyzicoConfig::new(API_KEY, SECRET_KEY)
        .with_base_url(&server.uri())
        .unwrap()
        .with_random_key(|| "123456789".into())
}

pub fn client(server: &MockServer) -> Iyzico {
    Iyzico::new(config(server)).unwrap()
}

pub fn tl(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

pub fn item_refund(amount: &str, reference: &str) -> RefundRequest {
    RefundRequest::builder(
        PaymentRef::item("11433038").in_payment("10844367"),
        tl(amount),
    )
    .reference(reference)
    .extra("ip", "85.34.78.112")
    .build()
    .unwrap()
}

pub fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/json")
}

pub fn refund_success(conversation_id: &str, price: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "status": "success", "locale": "tr", "systemTime": 1527959985667u64,
        "conversationId": conversation_id, "paymentId": "10844367",
        "paymentTransactionId": "11433038", "price": price, "currency": "TRY",
        "authCode": "475990", "hostReference": "mock00007iyzihostrfn"
    })
}

pub fn failure(code: serde_json::Value, message: &str, conversation_id: &str) -> serde_json::Value {
    serde_json::json!({
        "status": "failure", "errorCode": code, "errorMessage": message,
        "locale": "tr", "systemTime": 1527959985667u64, "conversationId": conversation_id
    })
}
