//! The SiPay client against wiremock: request shape, response mapping, token handling,
//! faults, secrets, lookups, and an opt-in live test. No network: loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod faults;
mod live;
mod lookup;
mod mapping;
mod rules;
mod secrets;
mod shape;
mod token;

use std::time::Duration;

use refund_core::{Currency, Money, PaymentRef, RefundRequest};
use refund_sipay::hash_key::validate_hash_key;
use refund_sipay::{Sipay, SipayConfig, paths};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// SiPay's published sample merchant (documentation values; only ever sent to wiremock here).
pub const APP_ID: &str = "6d4a7e9374a76c15260fcc75e315b0b9";
pub const APP_SECRET: &str = "b46a67571aa1e7ef5641dc3fa6f1712a";
pub const MERCHANT_KEY: &str = "$2y$10$HmRgYosneqcwHj.UH7upGuyCZqpQ1ITgSMj9Vvxn.t6f.Vdf2SQFO";
pub const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.sipay-test-token.signature";

pub fn config(server: &MockServer) -> SipayConfig {
    SipayConfig::new(APP_ID, APP_SECRET, MERCHANT_KEY)
        .with_base_url(&server.uri())
        .unwrap()
        .with_timeout(Duration::from_secs(5))
}

pub fn client(server: &MockServer) -> Sipay {
    Sipay::new(config(server)).unwrap()
}

pub fn token_response(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status_code": 100,
        "status_description": "Successfully Generated token",
        "data": {"token": token, "is_3d": 1, "expires_at": "2025-01-14 22:53:53"}
    }))
}

/// Mounts a token endpoint answering `token`.
pub async fn mount_token(server: &MockServer, token: &str) {
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(token_response(token))
        .named("token")
        .mount(server)
        .await;
}

/// The English seed's success response for `invoice_id`.
pub fn success(invoice_id: &str) -> Value {
    json!({
        "status_code": 100,
        "status_description": "Refund completed successfully",
        "order_no": "VP17695816358637973",
        "invoice_id": invoice_id,
        "ref_no": "602800085396",
        "ref_number": "602800085396"
    })
}

/// Mounts a refund endpoint answering `response` to any refund request.
pub async fn mount_refund(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(paths::REFUND))
        .respond_with(response)
        .named("refund")
        .mount(server)
        .await;
}

pub fn tl(amount: &str) -> Money {
    Money::parse(amount, Currency::Try).unwrap()
}

pub fn refund(invoice_id: &str, amount: &str, reference: &str) -> RefundRequest {
    RefundRequest::builder(PaymentRef::payment(invoice_id), tl(amount))
        .reference(reference)
        .build()
        .unwrap()
}

pub async fn count(server: &MockServer, api_path: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == api_path)
        .count()
}

/// Checks an authorized SiPay call's headers: one `Authorization: Bearer <token>`, one
/// `Accept: application/json`, a JSON content type.
fn header_mismatch(request: &Request, token: &str) -> Option<String> {
    let auth: Vec<_> = request.headers.get_all("authorization").iter().collect();
    if auth.len() != 1 || auth[0].to_str().ok() != Some(&format!("Bearer {token}")) {
        return Some(format!(
            "authorization header: {} values or wrong token",
            auth.len()
        ));
    }
    let accept: Vec<_> = request.headers.get_all("accept").iter().collect();
    if accept.len() != 1 || accept[0].to_str().ok() != Some("application/json") {
        return Some("accept header must be application/json, once".into());
    }
    match request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) if ct.starts_with("application/json") => None,
        _ => Some("content-type must be application/json".into()),
    }
}

/// Matches a refund request exactly as SiPay documents it: bearer token, every body field,
/// nothing else, and a hash_key that decrypts with the app_secret to
/// `amount|invoice_id|merchant_key`.
#[derive(Clone, Debug)]
pub struct RefundShape {
    pub token: String,
    pub invoice_id: String,
    pub amount: String,
    pub reference: String,
    /// The refund webhook key expected as `refund_web_hook_key`; `None`: no such field.
    pub webhook_key: Option<String>,
}

impl RefundShape {
    pub fn new(invoice_id: &str, amount: &str, reference: &str) -> Self {
        RefundShape {
            token: TOKEN.into(),
            invoice_id: invoice_id.into(),
            amount: amount.into(),
            reference: reference.into(),
            webhook_key: None,
        }
    }

    /// Expects `key` as `refund_web_hook_key` too.
    pub fn with_webhook_key(mut self, key: &str) -> Self {
        self.webhook_key = Some(key.into());
        self
    }

    pub fn mismatch(&self, request: &Request) -> Option<String> {
        if request.method.as_str() != "POST" || request.url.path() != paths::REFUND {
            return Some("not POST /ccpayment/api/refund".into());
        }
        if let Some(m) = header_mismatch(request, &self.token) {
            return Some(m);
        }
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(_) => return Some("body is not JSON".into()),
        };
        let Some(obj) = body.as_object() else {
            return Some("body is not an object".into());
        };
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = vec![
            "amount",
            "app_id",
            "app_secret",
            "hash_key",
            "invoice_id",
            "merchant_key",
            "refund_transaction_id",
        ];
        if let Some(key) = &self.webhook_key {
            expected.push("refund_web_hook_key");
            if obj["refund_web_hook_key"].as_str() != Some(key) {
                return Some(format!(
                    "refund_web_hook_key is {}",
                    obj["refund_web_hook_key"]
                ));
            }
        }
        if keys != expected {
            return Some(format!("body fields {keys:?}"));
        }
        for (field, want) in [
            ("invoice_id", self.invoice_id.as_str()),
            ("amount", self.amount.as_str()),
            ("app_id", APP_ID),
            ("app_secret", APP_SECRET),
            ("merchant_key", MERCHANT_KEY),
            ("refund_transaction_id", self.reference.as_str()),
        ] {
            if obj[field].as_str() != Some(want) {
                return Some(format!(
                    "{field} is {} (want a string {want:?})",
                    obj[field]
                ));
            }
        }
        let Some(hash_key) = obj["hash_key"].as_str() else {
            return Some("hash_key is not a string".into());
        };
        if hash_key.contains('\n') || hash_key.contains('/') {
            return Some("hash_key has a line break or a raw '/'".into());
        }
        match validate_hash_key(hash_key, APP_SECRET) {
            Ok(fields) if fields == [self.amount.as_str(), &self.invoice_id, MERCHANT_KEY] => None,
            Ok(fields) => Some(format!(
                "hash_key decrypts to {} fields that differ",
                fields.len()
            )),
            Err(e) => Some(format!("hash_key: {e}")),
        }
    }
}

impl Match for RefundShape {
    fn matches(&self, request: &Request) -> bool {
        self.mismatch(request).is_none()
    }
}

/// Matches a check-status request: bearer token, merchant_key, invoice_id,
/// include_pending_status `true` (a JSON boolean), show_refund_info "Y", and a hash_key over
/// `invoice_id|merchant_key`.
#[derive(Clone, Debug)]
pub struct CheckStatusShape {
    pub invoice_id: String,
}

impl CheckStatusShape {
    pub fn mismatch(&self, request: &Request) -> Option<String> {
        if request.url.path() != paths::CHECK_STATUS {
            return Some("not /ccpayment/api/checkstatus".into());
        }
        if let Some(m) = header_mismatch(request, TOKEN) {
            return Some(m);
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return Some("body is not JSON".into());
        };
        let Some(obj) = body.as_object() else {
            return Some("body is not an object".into());
        };
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        if keys
            != [
                "hash_key",
                "include_pending_status",
                "invoice_id",
                "merchant_key",
                "show_refund_info",
            ]
        {
            return Some(format!("body fields {keys:?}"));
        }
        if body["merchant_key"] != MERCHANT_KEY
            || body["invoice_id"] != self.invoice_id.as_str()
            || body["include_pending_status"] != Value::Bool(true)
            || body["show_refund_info"] != "Y"
        {
            return Some("a field has the wrong value or type".into());
        }
        match body["hash_key"]
            .as_str()
            .map(|h| validate_hash_key(h, APP_SECRET))
        {
            Some(Ok(fields)) if fields == [self.invoice_id.as_str(), MERCHANT_KEY] => None,
            _ => Some("hash_key is not over invoice_id|merchant_key".into()),
        }
    }
}

impl Match for CheckStatusShape {
    fn matches(&self, request: &Request) -> bool {
        self.mismatch(request).is_none()
    }
}
