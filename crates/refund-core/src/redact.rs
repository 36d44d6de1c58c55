//! Keeping secrets out of what is stored, printed and logged.
//!
//! Two tools, for two kinds of text:
//!
//! - [`redact_json`], for a provider's answer kept as JSON (a receipt's
//!   [`RawResponse`](crate::RawResponse)): a field is hidden by its **name**. A field is a
//!   secret when its name ends with one of [`SECRET_FIELDS`] (`merchant_key`, `paytr_token`,
//!   `x-api-key`, …) — unless it ends with one of [`REFERENCE_FIELDS`]: a merchant reference
//!   such as `refund_idempotency_key` is what support needs to find a refund again, and stays
//!   readable. Names that end otherwise (`conversationId`, `refund_transaction_id`,
//!   `paymentId`) are never hidden.
//! - [`scrub`], for free text from outside (an error page, a provider's message): a secret is
//!   hidden by its **value**, in every form an echo may take it (as it is, JSON-escaped as
//!   serde or PHP write it, percent-encoded, HTML-escaped).
//!
//! ```
//! let mut answer = serde_json::json!({
//!     "refund_idempotency_key": "order-42-refund-1",
//!     "conversationId": "c-1",
//!     "merchant_key": "$2y$10$abc/def",
//! });
//! refund_core::redact::redact_json(&mut answer);
//! assert_eq!(answer["refund_idempotency_key"], "order-42-refund-1");
//! assert_eq!(answer["conversationId"], "c-1");
//! assert_eq!(answer["merchant_key"], "[REDACTED]");
//!
//! // PHP's json_encode writes `/` as `\/`: the echo is scrubbed all the same.
//! let page = r#"{"merchant_key":"$2y$10$abc\/def"}"#;
//! assert_eq!(
//!     refund_core::redact::scrub(page, &["$2y$10$abc/def"]),
//!     r#"{"merchant_key":"[REDACTED]"}"#
//! );
//! ```

/// Endings of field names whose values are replaced by `[REDACTED]` in kept provider
/// responses.
///
/// Compared case-insensitively, ignoring `_` and `-`, against the *end* of the name, so
/// `app_secret`, `appSecret`, `merchant_key`, `paytr_token` and `x-api-key` all match: a
/// third-party provider's prefixed secret fields are covered without a list of their own.
/// Redacting a harmless field by mistake costs a support engineer one value; the reverse
/// leaks a credential. The only exceptions are [`REFERENCE_FIELDS`].
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

/// Endings of field names that name a merchant *reference*, not a credential, although they
/// end like one of [`SECRET_FIELDS`]: `idempotency_key`, `refund_idempotency_key`,
/// `idempotencyKey`, `Idempotency-Key` stay readable. Compared like [`SECRET_FIELDS`].
///
/// Fields such as `conversationId` and `refund_transaction_id` need no entry: they do not end
/// like a secret in the first place.
pub const REFERENCE_FIELDS: &[&str] = &["idempotencykey"];

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

/// Whether `key` names a secret: it ends with one of [`SECRET_FIELDS`] and not with one of
/// [`REFERENCE_FIELDS`].
fn is_secret_field(key: &str) -> bool {
    ends_with_any(key, SECRET_FIELDS) && !ends_with_any(key, REFERENCE_FIELDS)
}

/// Whether `key`, ignoring ASCII case, `_` and `-`, ends with one of `endings`. Walks the name
/// backwards once per ending, without allocating: it runs for every field of every kept
/// response.
fn ends_with_any(key: &str, endings: &[&str]) -> bool {
    endings.iter().any(|end| {
        let mut folded = key
            .bytes()
            .rev()
            .filter(|b| *b != b'_' && *b != b'-')
            .map(|b| b.to_ascii_lowercase());
        end.bytes().rev().all(|e| folded.next() == Some(e))
    })
}

/// Replaces every occurrence of each non-empty secret in `text` with `[REDACTED]`, in each
/// form an echo may carry it: as it is; JSON-escaped as serde writes it (`\"`, `\\`) and as
/// PHP's `json_encode` does by default (also `/` as `\/` and non-ASCII as `\uXXXX`, which is
/// how a SiPay merchant key such as `$2y$10$…/…` comes back); percent-encoded; and
/// HTML-escaped.
///
/// For text that came from outside and may echo what was sent (an HTML error page that
/// quotes the request, say) before it goes into an error or a log line. Scrub the whole text
/// *before* cutting it short: a secret that crosses the cut would keep its head.
///
/// ```
/// use refund_core::redact::scrub;
///
/// assert_eq!(scrub("echo: secret123&x", &["secret123"]), "echo: [REDACTED]&x");
/// assert_eq!(scrub(r"key: a\/b", &["a/b"]), "key: [REDACTED]");
/// assert_eq!(scrub("key=a%2Fb", &["a/b"]), "key=[REDACTED]");
/// ```
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut forms: Vec<String> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| echoes(s))
        .collect();
    // Longest first, so a form that contains a shorter one is replaced whole.
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    let mut out = text.to_owned();
    for form in &forms {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), REDACTED);
        }
    }
    hide_bearer_tokens(&out)
}

/// Replaces the token after every `Bearer ` (any case) with `[REDACTED]`: a server may echo a
/// bearer token the client was never given (so it is not among the known secrets), and a
/// token is a credential whoever issued it.
fn hide_bearer_tokens(text: &str) -> String {
    const MARK: &str = "bearer ";
    let lower = text.to_ascii_lowercase();
    if !lower.contains(MARK) {
        return text.to_owned();
    }
    let token_char = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = lower[rest..].find(MARK) {
        let start = rest + found + MARK.len();
        let len: usize = text[start..]
            .chars()
            .take_while(|c| token_char(*c))
            .map(char::len_utf8)
            .sum();
        out.push_str(&text[rest..start]);
        if len > 0 && !text[start..start + len].starts_with(REDACTED) {
            out.push_str(REDACTED);
        } else {
            out.push_str(&text[start..start + len]);
        }
        rest = start + len;
    }
    out.push_str(&text[rest..]);
    out
}

/// The forms in which a provider may echo `secret`.
fn echoes(secret: &str) -> [String; 5] {
    let mut serde_json = String::with_capacity(secret.len());
    let mut php_json = String::with_capacity(secret.len());
    let mut html = String::with_capacity(secret.len());
    for c in secret.chars() {
        match c {
            '"' | '\\' => {
                serde_json.extend(['\\', c]);
                php_json.extend(['\\', c]);
            }
            '/' => {
                serde_json.push(c);
                php_json.push_str("\\/");
            }
            c if u32::from(c) < 0x20 || !c.is_ascii() => {
                if c.is_ascii() {
                    serde_json.push_str(&format!("\\u{:04x}", u32::from(c)));
                } else {
                    serde_json.push(c);
                }
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    php_json.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => {
                serde_json.push(c);
                php_json.push(c);
            }
        }
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#039;"),
            c => html.push(c),
        }
    }
    let mut percent = String::with_capacity(secret.len());
    for b in secret.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            percent.push(char::from(b));
        } else {
            percent.push_str(&format!("%{b:02X}"));
        }
    }
    [secret.to_owned(), serde_json, php_json, percent, html]
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
    fn a_bearer_token_nobody_gave_the_client_is_hidden_too() {
        assert_eq!(
            scrub(
                "<p>Authorization: Bearer eyJ0.a-b_c.d~e/f=</p> bearer x",
                &[]
            ),
            "<p>Authorization: Bearer [REDACTED]</p> bearer [REDACTED]"
        );
        assert_eq!(scrub("Bearer ", &[]), "Bearer ");
        assert_eq!(scrub("no token here", &[]), "no token here");
        assert_eq!(scrub("Bearer ünï", &[]), "Bearer ünï");
    }

    #[test]
    fn scrub_ignores_empty_secrets() {
        assert_eq!(scrub("abc", &["", "b"]), "a[REDACTED]c");
    }

    #[test]
    fn reference_fields_stay_readable_and_credentials_do_not() {
        let mut v = serde_json::json!({
            "idempotency_key": "r1", "refund_idempotency_key": "r2", "idempotencyKey": "r3",
            "Idempotency-Key": "r4", "conversationId": "c", "refund_transaction_id": "t",
            "paymentConversationId": "p", "merchant_key": "m", "api_key": "a",
            "idempotency_secret": "s", "idempotency_key_signature": "g",
        });
        redact_json(&mut v);
        for (k, kept) in [
            ("idempotency_key", "r1"),
            ("refund_idempotency_key", "r2"),
            ("idempotencyKey", "r3"),
            ("Idempotency-Key", "r4"),
            ("conversationId", "c"),
            ("refund_transaction_id", "t"),
            ("paymentConversationId", "p"),
        ] {
            assert_eq!(v[k], kept, "{k}");
        }
        for k in [
            "merchant_key",
            "api_key",
            "idempotency_secret",
            "idempotency_key_signature",
        ] {
            assert_eq!(v[k], REDACTED, "{k}");
        }
    }

    #[test]
    fn a_json_escaped_echo_is_scrubbed_as_php_and_serde_write_it() {
        let key = "$2y$10$SIM/merchant\\key\"q";
        // PHP's json_encode: `/` as `\/`, `\` as `\\`, `"` as `\"`.
        let php = r#"{"merchant_key":"$2y$10$SIM\/merchant\\key\"q"}"#;
        assert_eq!(scrub(php, &[key]), r#"{"merchant_key":"[REDACTED]"}"#);
        // serde_json leaves `/` alone.
        let serde = serde_json::json!({ "merchant_key": key }).to_string();
        assert_eq!(scrub(&serde, &[key]), r#"{"merchant_key":"[REDACTED]"}"#);
        // Non-ASCII as PHP's \uXXXX (UTF-16, lower-case hex), an emoji as a surrogate pair.
        let unicode = "gizli-anahtar-ş-🔑";
        let echoed = r"gizli-anahtar-\u015f-\ud83d\udd11";
        assert_eq!(scrub(echoed, &[unicode]), REDACTED);
    }

    #[test]
    fn percent_encoded_and_html_escaped_echoes_are_scrubbed() {
        let key = "a/b&c<d> e";
        assert_eq!(scrub("k=a%2Fb%26c%3Cd%3E%20e;", &[key]), "k=[REDACTED];");
        assert_eq!(
            scrub("<p>a/b&amp;c&lt;d&gt; e</p>", &[key]),
            "<p>[REDACTED]</p>"
        );
    }
}
