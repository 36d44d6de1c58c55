//! wiremock matchers (feature `wiremock`) that check provider authentication the way the
//! provider does ([`SipayAuth`] with feature `sipay`, [`IyzicoAuth`] with `iyzico`), and a
//! catch-all that makes any unexpected request fail the test.
//!
//! ```no_run
//! # #[cfg(feature = "sipay")]
//! # async fn demo() {
//! use refund_testkit::fixtures::sipay;
//! use refund_testkit::matchers::{SipayAuth, mount_catch_all};
//! use wiremock::matchers::{method, path};
//! use wiremock::{Mock, MockServer};
//!
//! let server = MockServer::start().await;
//! Mock::given(method("POST"))
//!     .and(path("/ccpayment/api/refund"))
//!     .and(SipayAuth::new("the-token", "app-secret", "merchant-key"))
//!     .respond_with(sipay::REFUND_SUCCESS_EN.response())
//!     .expect(1)
//!     .mount(&server)
//!     .await;
//! // Anything else (a wrong hash_key, a missing bearer, another path) gets a 599 and the
//! // server panics when dropped.
//! mount_catch_all(&server).await;
//! # }
//! ```

#[cfg(any(feature = "sipay", feature = "iyzico"))]
use std::fmt;

#[cfg(feature = "iyzico")]
use refund_iyzico::signature::{RequestSigner, parse_authorization, signatures_equal};
#[cfg(feature = "sipay")]
use refund_sipay::hash_key::HashKeySigner;
#[cfg(any(feature = "sipay", feature = "iyzico"))]
use secrecy::{ExposeSecret, SecretString};
#[cfg(any(feature = "sipay", feature = "iyzico"))]
use wiremock::Match;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Matches a SiPay request that carries `Authorization: Bearer <token>` exactly once and
/// whose body's `hash_key` decrypts, with `app_secret`, to exactly the fields it signs, taken
/// from the same body.
///
/// On `/ccpayment/api/checkstatus` the signed fields are `invoice_id|merchant_key`; on every
/// other path (refund) `amount|invoice_id|merchant_key`. The body's `merchant_key` must be
/// the configured one, and `amount` must be a JSON string (the hash covers exactly the text
/// sent, so a number would be ambiguous).
#[cfg(feature = "sipay")]
pub struct SipayAuth {
    token: SecretString,
    signer: HashKeySigner,
    merchant_key: SecretString,
}

#[cfg(feature = "sipay")]
impl SipayAuth {
    /// A matcher for requests made with these credentials and this bearer token.
    pub fn new(token: &str, app_secret: &str, merchant_key: &str) -> Self {
        SipayAuth {
            token: SecretString::from(token.to_owned()),
            signer: HashKeySigner::new(app_secret),
            merchant_key: SecretString::from(merchant_key.to_owned()),
        }
    }

    /// Why `request` does not match, or `None` when it does.
    pub fn mismatch(&self, request: &Request) -> Option<&'static str> {
        let mut auth = request.headers.get_all("authorization").iter();
        let (Some(value), None) = (auth.next(), auth.next()) else {
            return Some("Authorization header missing or repeated");
        };
        let expected = format!("Bearer {}", self.token.expose_secret());
        if value.as_bytes() != expected.as_bytes() {
            return Some("wrong bearer token");
        }
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return Some("body is not JSON");
        };
        let field = |name: &str| body.get(name).and_then(serde_json::Value::as_str);
        let (Some(hash_key), Some(invoice_id), Some(merchant_key)) = (
            field("hash_key"),
            field("invoice_id"),
            field("merchant_key"),
        ) else {
            return Some("hash_key, invoice_id or merchant_key missing or not a string");
        };
        if merchant_key != self.merchant_key.expose_secret() {
            return Some("wrong merchant_key");
        }
        let Ok(decrypted) = self.signer.validate(hash_key) else {
            return Some("hash_key does not decrypt with app_secret");
        };
        let fields: Vec<&str> = if request.url.path().ends_with("/checkstatus") {
            vec![invoice_id, merchant_key]
        } else {
            let Some(amount) = field("amount") else {
                return Some("amount missing or not a JSON string");
            };
            vec![amount, invoice_id, merchant_key]
        };
        if decrypted != fields {
            return Some("hash_key plaintext differs from the body's fields");
        }
        None
    }
}

#[cfg(feature = "sipay")]
impl Match for SipayAuth {
    fn matches(&self, request: &Request) -> bool {
        self.mismatch(request).is_none()
    }
}

#[cfg(feature = "sipay")]
impl fmt::Debug for SipayAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SipayAuth([REDACTED])")
    }
}

/// Matches an iyzico request whose `Authorization: IYZWSv2 …` header (exactly one) names
/// `api_key` and carries the signature iyzico would compute:
/// `hex(HMAC-SHA256(secret_key, randomKey + path + raw body))`, with the random key from the
/// header (and, when `x-iyzi-rnd` is sent, equal to it) and the path without the query.
#[cfg(feature = "iyzico")]
pub struct IyzicoAuth {
    api_key: SecretString,
    signer: RequestSigner,
}

#[cfg(feature = "iyzico")]
impl IyzicoAuth {
    /// A matcher for requests signed with this key pair.
    pub fn new(api_key: &str, secret_key: &str) -> Self {
        IyzicoAuth {
            api_key: SecretString::from(api_key.to_owned()),
            signer: RequestSigner::new(secret_key),
        }
    }

    /// Why `request` does not match, or `None` when it does.
    pub fn mismatch(&self, request: &Request) -> Option<&'static str> {
        let mut auth = request.headers.get_all("authorization").iter();
        let (Some(value), None) = (auth.next(), auth.next()) else {
            return Some("Authorization header missing or repeated");
        };
        let Some(parsed) = value.to_str().ok().and_then(parse_authorization) else {
            return Some("Authorization is not IYZWSv2");
        };
        if parsed.api_key != self.api_key.expose_secret() {
            return Some("wrong apiKey");
        }
        if let Some(rnd) = request.headers.get("x-iyzi-rnd")
            && rnd.as_bytes() != parsed.random_key.as_bytes()
        {
            return Some("x-iyzi-rnd differs from the header's randomKey");
        }
        let expected =
            self.signer
                .signature_hex(&parsed.random_key, request.url.path(), &request.body);
        if !signatures_equal(&expected, &parsed.signature) {
            return Some("signature does not match");
        }
        None
    }
}

#[cfg(feature = "iyzico")]
impl Match for IyzicoAuth {
    fn matches(&self, request: &Request) -> bool {
        self.mismatch(request).is_none()
    }
}

#[cfg(feature = "iyzico")]
impl fmt::Debug for IyzicoAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IyzicoAuth([REDACTED])")
    }
}

/// The HTTP status the catch-all answers with: not a real status, so no client mistakes it
/// for a provider answer.
pub const CATCH_ALL_STATUS: u16 = 599;

/// Mounts a catch-all on `server`: every request no other mock matched gets HTTP 599 and a
/// plain-text body naming the request (`unexpected request: POST /path`), and the test fails.
///
/// It is mounted with the lowest priority (`u8::MAX`, wiremock's default is 5), so it only
/// answers what nothing else matched, and with `.expect(0)`: wiremock checks expectations
/// when the `MockServer` is dropped (or on `server.verify().await`) and panics, listing the
/// unexpected requests, if the catch-all answered any. The client under test sees the 599
/// first, so a test usually fails at its own assertion already; the panic catches the cases
/// where the client swallowed the answer.
pub async fn mount_catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(Unexpected)
        .with_priority(u8::MAX)
        .expect(0)
        .named("catch-all: a request no mock expected")
        .mount(server)
        .await;
}

struct Unexpected;

impl Respond for Unexpected {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query = request
            .url
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let body = format!(
            "unexpected request: {} {}{} ({} body bytes); no mock matched it and the test will fail",
            request.method,
            request.url.path(),
            query,
            request.body.len()
        );
        ResponseTemplate::new(CATCH_ALL_STATUS).set_body_raw(body.into_bytes(), "text/plain")
    }
}
