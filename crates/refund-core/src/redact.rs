//! Keeping secrets out of what is stored, printed and logged.

/// Endings of field names whose values are replaced by `[REDACTED]` in kept provider
/// responses.
///
/// Compared case-insensitively, ignoring `_` and `-`, against the *end* of the name, so
/// `app_secret`, `appSecret`, `merchant_key`, `paytr_token` and `x-api-key` all match: a
/// third-party provider's prefixed secret fields are covered without a list of their own.
/// Redacting a harmless field by mistake costs a support engineer one value; the reverse
/// leaks a credential.
pub const SECRET_FIELDS: &[&str] = &[
    "secret",
    "key",
    "token",
    "authorization",
    "password",
    "signature",
    "cardnumber",
    "cvc",
    "cvv",
];

/// The text that replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Replaces, at any depth, the value of every field named in [`SECRET_FIELDS`].
///
/// ```
/// let mut v = serde_json::json!({"data": {"token": "eyJ...", "is_3d": 1}, "merchant_key": "$2y$10$x"});
/// refund_core::redact::redact_json(&mut v);
/// assert_eq!(v["data"]["token"], "[REDACTED]");
/// assert_eq!(v["data"]["is_3d"], 1);
/// assert_eq!(v["merchant_key"], "[REDACTED]");
/// ```
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_field(key) {
                    *v = serde_json::Value::String(REDACTED.to_owned());
                } else {
                    redact_json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// Whether `key`, ignoring ASCII case, `_` and `-`, ends with one of [`SECRET_FIELDS`].
/// Walks the name backwards once per ending, without allocating: it runs for every field of
/// every kept response.
fn is_secret_field(key: &str) -> bool {
    SECRET_FIELDS.iter().any(|end| {
        let mut folded = key
            .bytes()
            .rev()
            .filter(|b| *b != b'_' && *b != b'-')
            .map(|b| b.to_ascii_lowercase());
        end.bytes().rev().all(|e| folded.next() == Some(e))
    })
}

/// Replaces every occurrence of each non-empty secret in `text` with `[REDACTED]`.
///
/// For text that came from outside and may echo what was sent (an HTML error page that
/// quotes the request, say) before it goes into an error or a log line.
///
/// ```
/// let clean = refund_core::redact::scrub("echo: secret123&x", &["secret123"]);
/// assert_eq!(clean, "echo: [REDACTED]&x");
/// ```
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s) {
            out = out.replace(s, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_redacted_at_any_depth() {
        let mut v = serde_json::json!({
            "appSecret": "a", "App-Secret": "b", "list": [{"hash_key": "c"}], "price": "1.0"
        });
        redact_json(&mut v);
        assert_eq!(v["appSecret"], REDACTED);
        assert_eq!(v["App-Secret"], REDACTED);
        assert_eq!(v["list"][0]["hash_key"], REDACTED);
        assert_eq!(v["price"], "1.0");
    }

    #[test]
    fn prefixed_secret_fields_are_redacted_and_ordinary_fields_kept() {
        let mut v = serde_json::json!({
            "paytr_token": "a", "merchantKey": "b", "x-api-key": "c", "refund_web_hook_key": "d",
            "paymentId": "1", "hostReference": "h", "status_code": 100, "invoice_id": "I"
        });
        redact_json(&mut v);
        for k in [
            "paytr_token",
            "merchantKey",
            "x-api-key",
            "refund_web_hook_key",
        ] {
            assert_eq!(v[k], REDACTED, "{k}");
        }
        assert_eq!(v["paymentId"], "1");
        assert_eq!(v["hostReference"], "h");
        assert_eq!(v["status_code"], 100);
        assert_eq!(v["invoice_id"], "I");
    }

    #[test]
    fn endings_ignore_case_separators_and_need_the_whole_ending() {
        for secret in [
            "key",
            "KEY",
            "api_key",
            "x-Api-Key",
            "k_e-y",
            "hash__key",
            "TOKEN",
        ] {
            assert!(is_secret_field(secret), "{secret}");
        }
        for plain in [
            "",
            "ke",
            "ey",
            "keys",
            "monkey_id",
            "tokens",
            "price",
            "é-key-é",
        ] {
            assert!(!is_secret_field(plain), "{plain}");
        }
        // Non-ASCII before the ending does not matter; the ending itself is ASCII.
        assert!(is_secret_field("güvenlik_key"));
    }

    #[test]
    fn scrub_ignores_empty_secrets() {
        assert_eq!(scrub("abc", &["", "b"]), "a[REDACTED]c");
    }
}
