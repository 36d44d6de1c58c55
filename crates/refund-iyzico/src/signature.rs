//! IYZWSv2 request signing and response-signature checks, as the official iyzico SDKs do them.
//!
//! A request is signed with `hex(HMAC-SHA256(secretKey, randomKey + uriPath + body))`, where
//! `uriPath` is the path only (no host, no query) and `body` the exact bytes sent. The
//! `Authorization` header is `IYZWSv2 ` followed by the base64 of
//! `apiKey:<apiKey>&randomKey:<randomKey>&signature:<hex>`; the random key also travels in
//! `x-iyzi-rnd`. Source: iyzipay-node 2.0.69 `lib/utils.js` (`generateHashV2`,
//! `generateAuthorizationHeaderV2`); iyzipay-python `get_http_header_v2` agrees.
//!
//! ```
//! use refund_iyzico::signature::{authorization_header, parse_authorization, signature_hex};
//!
//! let body = br#"{"locale":"tr","conversationId":"1","paymentTransactionId":"11","price":"0.5","ip":"1.2.3.4"}"#;
//! let header = authorization_header("key", "sec", "123456", "/payment/refund", body);
//! assert!(header.starts_with("IYZWSv2 "));
//! let parsed = parse_authorization(&header).unwrap();
//! assert_eq!(parsed.api_key, "key");
//! assert_eq!(parsed.signature, signature_hex("sec", "123456", "/payment/refund", body));
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The scheme name that starts the `Authorization` header.
pub const SCHEME: &str = "IYZWSv2";

/// The header that carries the random key (node and Python SDKs send it).
pub const RANDOM_HEADER: &str = "x-iyzi-rnd";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The hex signature of one request: `hex(HMAC-SHA256(secret_key, random_key + uri_path + body))`.
///
/// `uri_path` is the path only, e.g. `/payment/refund`; `body` the exact bytes sent.
pub fn signature_hex(secret_key: &str, random_key: &str, uri_path: &str, body: &[u8]) -> String {
    RequestSigner::new(secret_key).signature_hex(random_key, uri_path, body)
}

/// The whole `Authorization` header value: `IYZWSv2 <base64>`.
pub fn authorization_header(
    api_key: &str,
    secret_key: &str,
    random_key: &str,
    uri_path: &str,
    body: &[u8],
) -> String {
    RequestSigner::new(secret_key).authorization_header(api_key, random_key, uri_path, body)
}

/// The hex HMAC-SHA256 of `fields` joined by `:` under `secret_key`: how iyzico signs the
/// responses it returns (refund responses sign `paymentId:price:currency:conversationId`).
/// Source: iyzipay-node `utils.calculateHmacSHA256Signature`.
pub fn response_signature(secret_key: &str, fields: &[&str]) -> String {
    RequestSigner::new(secret_key).fields_signature(fields)
}

/// An `Authorization` header taken apart (for simulators and test matchers).
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The API key, verbatim.
    pub api_key: String,
    /// The random key the request was signed with.
    pub random_key: String,
    /// The hex signature.
    pub signature: String,
}

impl fmt::Debug for ParsedAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The API key identifies the merchant; keep it out of logs like the secret.
        f.debug_struct("ParsedAuthorization")
            .field("api_key", &"[REDACTED]")
            .field("random_key", &self.random_key)
            .field("signature", &self.signature)
            .finish()
    }
}

/// Parses `IYZWSv2 <base64 of apiKey:…&randomKey:…&signature:…>`; `None` for anything else.
///
/// The three parts must appear in the SDKs' order and none may be empty.
pub fn parse_authorization(header: &str) -> Option<ParsedAuthorization> {
    let encoded = header
        .trim()
        .strip_prefix(SCHEME)?
        .strip_prefix(' ')?
        .trim();
    let decoded = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let rest = text.strip_prefix("apiKey:")?;
    let (api_key, rest) = rest.split_once("&randomKey:")?;
    let (random_key, signature) = rest.split_once("&signature:")?;
    if api_key.is_empty() || random_key.is_empty() || signature.is_empty() {
        return None;
    }
    Some(ParsedAuthorization {
        api_key: api_key.to_owned(),
        random_key: random_key.to_owned(),
        signature: signature.to_owned(),
    })
}

/// Compares two signatures in time independent of where they differ.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A signer holding the HMAC key state of one secret key, computed once: each signature
/// then costs only the hashing of the message (the per-client fast path).
#[derive(Clone)]
pub struct RequestSigner {
    keyed: HmacSha256,
}

impl fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestSigner([REDACTED])")
    }
}

impl RequestSigner {
    /// Precomputes the HMAC state for `secret_key`.
    pub fn new(secret_key: &str) -> Self {
        // HMAC accepts keys of any length (long keys are hashed first), so this cannot fail.
        let keyed = match HmacSha256::new_from_slice(secret_key.as_bytes()) {
            Ok(m) => m,
            Err(_) => unreachable_hmac(),
        };
        RequestSigner { keyed }
    }

    /// See [`signature_hex`].
    pub fn signature_hex(&self, random_key: &str, uri_path: &str, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(random_key.as_bytes());
        mac.update(uri_path.as_bytes());
        mac.update(body);
        hex(&mac.finalize().into_bytes())
    }

    /// See [`authorization_header`].
    pub fn authorization_header(
        &self,
        api_key: &str,
        random_key: &str,
        uri_path: &str,
        body: &[u8],
    ) -> String {
        let signature = self.signature_hex(random_key, uri_path, body);
        let mut plain =
            String::with_capacity(40 + api_key.len() + random_key.len() + signature.len());
        plain.push_str("apiKey:");
        plain.push_str(api_key);
        plain.push_str("&randomKey:");
        plain.push_str(random_key);
        plain.push_str("&signature:");
        plain.push_str(&signature);
        let mut header = String::with_capacity(SCHEME.len() + 1 + plain.len().div_ceil(3) * 4);
        header.push_str(SCHEME);
        header.push(' ');
        STANDARD.encode_string(plain.as_bytes(), &mut header);
        header
    }

    /// See [`response_signature`].
    pub fn fields_signature(&self, fields: &[&str]) -> String {
        let mut mac = self.keyed.clone();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                mac.update(b":");
            }
            mac.update(field.as_bytes());
        }
        hex(&mac.finalize().into_bytes())
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only fails for MACs with fixed key sizes; HMAC has none.
    unreachable!("HMAC-SHA256 accepts keys of any length")
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from shared/providers/iyzico.md, produced by the official node SDK.
    const NODE_VECTORS: &[(&str, &str, &str)] = &[
        (
            "/payment/refund",
            r#"{"locale":"tr","conversationId":"123456789","paymentTransactionId":"1","price":"0.5","ip":"85.34.78.112","currency":"TRY"}"#,
            "2494510a083d40ac673ab95390c11357f047883a48dbff0bad6b27fde7f8ee63",
        ),
        (
            "/v2/payment/refund",
            r#"{"locale":"tr","conversationId":"123456789","price":"15.0","paymentId":"25180208","currency":"TRY","ip":"85.34.78.112"}"#,
            "24946584f470c5f2780b49499a1544d6dacdb7ca92292b3f15d3ce727790e322",
        ),
        (
            "/payment/cancel",
            r#"{"locale":"tr","conversationId":"123456789","paymentId":"25180158","ip":"85.34.78.112","reason":"other","description":"customer requested"}"#,
            "a4f572071530657210bdad9ff99147b107dd6c130852abea87d3130e450df5d4",
        ),
    ];

    #[test]
    fn signatures_match_the_node_sdk_for_refund_v2_refund_and_cancel() {
        for (path, body, want) in NODE_VECTORS {
            assert_eq!(
                signature_hex("secretKey", "123456789", path, body.as_bytes()),
                *want,
                "{path}"
            );
        }
    }

    #[test]
    fn the_full_header_matches_the_documented_vector() {
        let body = br#"{"locale":"tr","conversationId":"1","paymentTransactionId":"11","price":"0.5","ip":"1.2.3.4"}"#;
        assert_eq!(
            authorization_header("key", "sec", "123456", "/payment/refund", body),
            "IYZWSv2 YXBpS2V5OmtleSZyYW5kb21LZXk6MTIzNDU2JnNpZ25hdHVyZTplYjY1NmRmZGFmMjBiYzkwNzJhNTdkOTdmZjZiM2Q3Y2M2YjUxOTM0NDhkNzhhN2EwYThmYmE3YjIyZjIwMjFl"
        );
    }

    #[test]
    fn response_signature_matches_the_dotnet_primitive_check() {
        let data = [
            "22416032",
            "TRY",
            "basketId",
            "conversationId",
            "10.5",
            "10.5",
        ];
        assert_eq!(
            response_signature("sandbox-qaIiLIxhjMgx3LSKIVvp6j17NunHOFtD", &data),
            "836c3a6c8db86c81043f2ca74edb13518b54a813f454f8dd762f0dd658610173"
        );
    }

    #[test]
    fn headers_parse_back_into_their_parts() {
        let h = authorization_header("sandbox-abc", "s", "r1", "/payment/refund", b"{}");
        let p = parse_authorization(&h).unwrap();
        assert_eq!(p.api_key, "sandbox-abc");
        assert_eq!(p.random_key, "r1");
        assert_eq!(
            p.signature,
            signature_hex("s", "r1", "/payment/refund", b"{}")
        );
        assert!(!format!("{p:?}").contains("sandbox-abc"));
    }

    #[test]
    fn malformed_headers_do_not_parse() {
        for bad in [
            "",
            "IYZWSv2",
            "IYZWSv2 ",
            "IYZWS YXBpS2V5Oms=",
            "Bearer abc",
            "IYZWSv2 !!!not base64!!!",
            // base64 of "apiKey:k&randomKey:r" (no signature)
            "IYZWSv2 YXBpS2V5OmsmcmFuZG9tS2V5OnI=",
        ] {
            assert!(parse_authorization(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn signature_comparison_is_exact() {
        assert!(signatures_equal("ab", "ab"));
        assert!(!signatures_equal("ab", "ac"));
        assert!(!signatures_equal("ab", "abc"));
    }

    #[test]
    fn a_reused_signer_gives_the_same_answers_as_the_free_functions() {
        let s = RequestSigner::new("secretKey");
        for (path, body, want) in NODE_VECTORS {
            assert_eq!(s.signature_hex("123456789", path, body.as_bytes()), *want);
        }
        assert!(!format!("{s:?}").contains("secretKey"));
    }
}
