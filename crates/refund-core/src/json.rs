//! Reading provider JSON: answers that must be objects ([`from_object`]), and amounts without
//! a float in between ([`decimal`], [`option_decimal`]).
//!
//! Providers send amounts both as strings (`"0.5"`) and as JSON numbers (`0.5`); iyzico does
//! both in the same field. serde's number path goes through `f64`, which can change the value,
//! so these helpers take the raw JSON text of the value and parse it as a [`Decimal`] directly.
//! Use them with `#[serde(deserialize_with = "…")]` on wire structs.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, Error as _, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Reads a provider answer that must be a JSON object into `T`, straight from the bytes.
///
/// serde would otherwise read a struct from a JSON *array*, field by field, so anything but an
/// object is refused. The error is a short reason that never quotes the body (a serde message
/// can echo body text, secrets included): `"an empty body"`, `"truncated JSON"`,
/// `"a body that is not JSON"`, `"JSON that is not an object"`,
/// `"JSON of an unexpected shape or types"`.
///
/// ```
/// #[derive(Debug, serde::Deserialize)]
/// struct Answer {
///     status: String,
/// }
/// use refund_core::json::from_object;
/// assert_eq!(from_object::<Answer>(br#"{"status":"success"}"#)?.status, "success");
/// assert_eq!(from_object::<Answer>(br#"["success"]"#).unwrap_err(), "JSON that is not an object");
/// assert_eq!(from_object::<Answer>(b"<html>").unwrap_err(), "a body that is not JSON");
/// assert_eq!(from_object::<Answer>(b"").unwrap_err(), "an empty body");
/// # Ok::<(), &'static str>(())
/// ```
pub fn from_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, &'static str> {
    let starts_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_object {
        // Parsed only to say why: empty, not JSON, or JSON of another kind.
        return Err(match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => "JSON that is not an object",
            Err(e) => problem(&e),
        });
    }
    serde_json::from_slice(body).map_err(|e| problem(&e))
}

/// Why a body did not parse, without quoting it.
fn problem(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof if e.line() == 1 && e.column() == 0 => "an empty body",
        Category::Eof => "truncated JSON",
        Category::Syntax => "a body that is not JSON",
        Category::Data => "JSON of an unexpected shape or types",
        Category::Io => "an unreadable body",
    }
}

/// Deserializes a JSON number or string into an exact [`Decimal`].
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Wire {
///     #[serde(deserialize_with = "refund_core::json::decimal")]
///     price: rust_decimal::Decimal,
/// }
/// let a: Wire = serde_json::from_str(r#"{"price":0.1}"#)?;
/// let b: Wire = serde_json::from_str(r#"{"price":"0.1"}"#)?;
/// assert_eq!(a.price.to_string(), "0.1");
/// assert_eq!(a.price, b.price);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let raw = <Box<RawValue>>::deserialize(deserializer)?;
    parse_raw(raw.get())?.ok_or_else(|| D::Error::custom("expected an amount, found null"))
}

/// Like [`decimal`] for an optional field: `null`, `""` and a missing field (with
/// `#[serde(default)]`) are `None`.
pub fn option_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    let raw = <Option<Box<RawValue>>>::deserialize(deserializer)?;
    match raw {
        None => Ok(None),
        Some(raw) => parse_raw(raw.get()),
    }
}

fn parse_raw<E: serde::de::Error>(raw: &str) -> Result<Option<Decimal>, E> {
    let text: std::borrow::Cow<'_, str> = match raw.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(raw)
            .map_err(E::custom)?
            .into(),
        Some(b'n') if raw == "null" => return Ok(None),
        Some(b'-' | b'0'..=b'9') => raw.into(),
        _ => return Err(E::custom("expected an amount as a JSON number or string")),
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str(text)
    };
    parsed
        .map(Some)
        .map_err(|_| E::custom(format_args!("not a decimal amount: {:.32}", text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct W {
        #[serde(deserialize_with = "decimal")]
        v: Decimal,
    }

    #[derive(Debug, Deserialize)]
    struct O {
        #[serde(default, deserialize_with = "option_decimal")]
        v: Option<Decimal>,
    }

    fn w(json: &str) -> Result<Decimal, serde_json::Error> {
        serde_json::from_str::<W>(json).map(|w| w.v)
    }

    #[test]
    fn numbers_and_strings_parse_exactly() {
        assert_eq!(w(r#"{"v":0.1}"#).unwrap().to_string(), "0.1");
        assert_eq!(w(r#"{"v":"0.10"}"#).unwrap().to_string(), "0.10");
        assert_eq!(w(r#"{"v":10}"#).unwrap().to_string(), "10");
        assert_eq!(w(r#"{"v":1e2}"#).unwrap(), Decimal::from(100));
        // A value f64 cannot hold exactly.
        assert_eq!(
            w(r#"{"v":12345678901234567.89}"#).unwrap().to_string(),
            "12345678901234567.89"
        );
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        for bad in [
            r#"{"v":true}"#,
            r#"{"v":[1]}"#,
            r#"{"v":{}}"#,
            r#"{"v":"abc"}"#,
            r#"{"v":null}"#,
            r#"{"v":""}"#,
            r#"{"v":1e999}"#,
        ] {
            assert!(w(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn optional_amounts_accept_absence() {
        let o = |j| serde_json::from_str::<O>(j).map(|o| o.v);
        assert_eq!(o(r#"{}"#).unwrap(), None);
        assert_eq!(o(r#"{"v":null}"#).unwrap(), None);
        assert_eq!(o(r#"{"v":""}"#).unwrap(), None);
        assert_eq!(o(r#"{"v":"2.5"}"#).unwrap(), Some(Decimal::new(25, 1)));
        assert!(o(r#"{"v":false}"#).is_err());
    }
}
