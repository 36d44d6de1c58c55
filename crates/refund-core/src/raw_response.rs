//! A provider's answer as it arrived, shown only with its secrets redacted.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::redact::redact_json;

/// The body of a provider's answer, kept for support tickets.
///
/// The bytes are kept as they arrived and are only ever shown redacted: through
/// [`to_json`](Self::to_json), `Debug`, `Serialize` and `PartialEq`, all of which parse the
/// body and replace secret-looking fields (see [`redact_json`]). Keeping the bytes rather than
/// a parsed value makes a receipt cheap to build on the hot path: a body is parsed again only
/// when somebody looks at it.
///
/// ```
/// use refund_core::RawResponse;
///
/// let raw = RawResponse::new(r#"{"status_code":100,"token":"eyJhbGciOi"}"#);
/// let json = raw.to_json().unwrap();
/// assert_eq!(json["status_code"], 100);
/// assert_eq!(json["token"], "[REDACTED]");
/// assert!(!format!("{raw:?}").contains("eyJhbGciOi"));
/// ```
#[derive(Clone)]
pub struct RawResponse {
    body: Bytes,
}

impl RawResponse {
    /// Keeps a response body (no copy for [`Bytes`]).
    pub fn new(body: impl Into<Bytes>) -> Self {
        RawResponse { body: body.into() }
    }

    /// The body as JSON with secret-looking fields redacted; `None` when it is not JSON.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        let mut value = serde_json::from_slice(&self.body).ok()?;
        redact_json(&mut value);
        Some(value)
    }
}

impl From<Bytes> for RawResponse {
    fn from(body: Bytes) -> Self {
        RawResponse { body }
    }
}

impl From<serde_json::Value> for RawResponse {
    fn from(value: serde_json::Value) -> Self {
        RawResponse::new(value.to_string())
    }
}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_json() {
            Some(json) => write!(f, "RawResponse({json})"),
            None => write!(f, "RawResponse(<{} bytes, not JSON>)", self.body.len()),
        }
    }
}

/// Two responses are equal when their redacted JSON is (a receipt read back from a journal,
/// which holds the redacted form, equals the one it was written from).
impl PartialEq for RawResponse {
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body || self.to_json() == other.to_json()
    }
}

/// Serialises the redacted JSON (`null` for a body that is not JSON).
impl Serialize for RawResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(RawResponse::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"status":"success","data":{"merchant_key":"$2y$10$abc"},"price":1.5}"#;

    #[test]
    fn every_view_is_redacted() {
        let raw = RawResponse::new(BODY);
        let json = raw.to_json().unwrap();
        assert_eq!(json["data"]["merchant_key"], "[REDACTED]");
        assert_eq!(json["price"], 1.5);
        let shown = [
            format!("{raw:?}"),
            format!("{raw:#?}"),
            serde_json::to_string(&raw).unwrap(),
        ];
        for text in shown {
            assert!(!text.contains("$2y$10$abc"), "{text}");
            assert!(text.contains("[REDACTED]"), "{text}");
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_never_shown() {
        let raw = RawResponse::new("<html>secret</html>");
        assert!(raw.to_json().is_none());
        assert_eq!(format!("{raw:?}"), "RawResponse(<19 bytes, not JSON>)");
        assert_eq!(serde_json::to_string(&raw).unwrap(), "null");
    }

    #[test]
    fn a_round_trip_through_serde_keeps_the_redacted_form() {
        let raw = RawResponse::new(BODY);
        let text = serde_json::to_string(&raw).unwrap();
        let back: RawResponse = serde_json::from_str(&text).unwrap();
        assert_eq!(back, raw);
        assert!(!text.contains("$2y$10$abc"));
    }
}
