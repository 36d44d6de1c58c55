//! Acme Pay's request signature: the lower-case hex of
//! `HMAC-SHA256(secret_key, method + " " + path + "\n" + body)`, sent in
//! [`SIGNATURE_HEADER`] beside the merchant id in [`MERCHANT_HEADER`].
//!
//! A pure function, checked against a reference vector (here computed independently with
//! Python's `hmac`; a real provider's documentation or SDK supplies one):
//!
//! ```
//! let body = br#"{"payment_id":"pay_000001","amount":"25.00","currency":"TRY","idempotency_key":"order-42-refund-1"}"#;
//! assert_eq!(
//!     refund_acme::signature::sign("acme-demo-secret-key-5f0c2e9b71d4", "POST", "/v1/refunds", body),
//!     "ca9d66e5d3a147f32b26e3650e53cbfb84c8568e955363e1cd9e42bb8dfadc16"
//! );
//! ```

use std::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header that carries the merchant id.
pub const MERCHANT_HEADER: &str = "x-acme-merchant";
/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-acme-signature";

/// The signature of one request (see the [module docs](self)).
pub fn sign(secret_key: &str, method: &str, path: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails; an empty signature would only be
    // refused by Acme.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()) else {
        return String::new();
    };
    for part in [method.as_bytes(), b" ", path.as_bytes(), b"\n", body] {
        mac.update(part);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}
