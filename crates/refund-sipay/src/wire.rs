//! SiPay's JSON, mirrored exactly: request bodies as they are sent, responses as they come.
//! No mapping here (that is in `client`), and never a float: amounts go through
//! [`refund_core::json`].
//!
//! Responses are read leniently where SiPay's documents and integrations disagree on types:
//! `status_code` is a number in the documents but a string in some integrations' fixtures,
//! and identifiers like `order_no` are sometimes numbers. Unknown fields are ignored.

use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `POST /ccpayment/api/token`.
#[derive(Serialize)]
pub(crate) struct TokenRequest<'a> {
    pub(crate) app_id: &'a str,
    pub(crate) app_secret: &'a str,
}

/// The token response: `{"status_code":100,"status_description":"…","data":{"token":"…",
/// "is_3d":1,"expires_at":"2025-01-14 22:53:53"}}`; on bad credentials `status_code` 30 and
/// `data: null`.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub(crate) status_code: Option<StatusCode>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) status_description: Option<String>,
    #[serde(default)]
    pub(crate) data: Option<TokenData>,
}

/// The token response's `data`. `expires_at` is read but not trusted (its timezone is not
/// stated); `is_3d` is not needed for refunds.
#[derive(Deserialize)]
pub(crate) struct TokenData {
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) token: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    #[allow(dead_code)]
    pub(crate) expires_at: Option<String>,
}

/// `POST /ccpayment/api/refund`: the seed's six fields plus `refund_transaction_id`, which the
/// current English reference page marks mandatory and SiPay's PHP SDK sends (the Turkish seed
/// page predates it), and the refund webhook key when one is configured, under SiPay's
/// spelling or Paybull's (at most one of the two is set; `sdk-models.md` §1.4).
#[derive(Serialize)]
pub(crate) struct RefundBody<'a> {
    pub(crate) invoice_id: &'a str,
    /// Exactly the string the hash_key was computed over ("100.50").
    pub(crate) amount: &'a str,
    pub(crate) app_id: &'a str,
    pub(crate) app_secret: &'a str,
    pub(crate) merchant_key: &'a str,
    pub(crate) hash_key: &'a str,
    pub(crate) refund_transaction_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refund_web_hook_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refund_webhook_key: Option<&'a str>,
}

/// The refund response, top level (no `data` wrapper):
/// `{"status_code":100,"status_description":"Refund completed successfully","order_no":"…",
/// "invoice_id":"…","ref_no":"…","ref_number":"…"}`.
///
/// The documented response carries no amount; `amount` / `refund_amount` are read in case a
/// deployment sends one, and then checked against the request.
#[derive(Deserialize)]
pub(crate) struct RefundResponse {
    #[serde(default)]
    pub(crate) status_code: Option<StatusCode>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) status_description: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) order_no: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) invoice_id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) ref_no: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) ref_number: Option<String>,
    #[serde(
        default,
        alias = "refund_amount",
        deserialize_with = "refund_core::json::option_decimal"
    )]
    pub(crate) amount: Option<Decimal>,
    /// Laravel's message on errors outside SiPay's own codes (`{"message":"Unauthenticated."}`).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) message: Option<String>,
}

/// The fields every SiPay answer carries, whatever the operation.
pub(crate) trait Answer {
    /// SiPay's application code.
    fn status_code(&self) -> Option<&StatusCode>;
    /// SiPay's text for the code.
    fn status_description(&self) -> Option<&str>;
    /// Laravel's message, on errors outside SiPay's own codes.
    fn message(&self) -> Option<&str>;
}

macro_rules! answer {
    ($($ty:ty),*) => {$(
        impl Answer for $ty {
            fn status_code(&self) -> Option<&StatusCode> {
                self.status_code.as_ref()
            }
            fn status_description(&self) -> Option<&str> {
                self.status_description.as_deref()
            }
            fn message(&self) -> Option<&str> {
                self.message.as_deref()
            }
        }
    )*};
}
answer!(RefundResponse, CheckStatusResponse);

/// `POST /ccpayment/api/checkstatus`; the hash_key is over `invoice_id|merchant_key`.
///
/// The official PHP SDK (`CheckTransactionStatusRequest`) sends `merchant_key`, `invoice_id`,
/// `include_pending_status` (a JSON boolean) and `hash_key`, and **no** `show_refund_info`;
/// the unofficial node SDK adds `show_refund_info: 'Y'` (and `app_lang`). We send the flag,
/// which only node knows, and cope when `refund_info` is missing (sdk-models.md §0.3, §1.3).
#[derive(Serialize)]
pub(crate) struct CheckStatusBody<'a> {
    pub(crate) merchant_key: &'a str,
    pub(crate) invoice_id: &'a str,
    pub(crate) include_pending_status: bool,
    pub(crate) hash_key: &'a str,
    pub(crate) show_refund_info: &'a str,
}

/// The check-status response, top level, as SiPay's PHP SDK (`TransactionStatusMapper`) and
/// the node SDK (`PaymentStatusResponse`) read it (`../shared/providers/sdk-models.md` §1.3).
///
/// `refund_info` is kept raw: only the unofficial node SDK mentions it, typed `any[]` with no
/// entry shape, and no source says when it is present. Its entries are read one by one into
/// [`RefundInfo`] by the client, which treats a list or entry it cannot read as "cannot tell".
#[derive(Deserialize)]
pub(crate) struct CheckStatusResponse {
    #[serde(default)]
    pub(crate) status_code: Option<StatusCode>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) status_description: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) message: Option<String>,
    /// Cross-checked against the figures. No source enumerates its values; the seed's "Partial
    /// Refunds" (`seeds/sipay-refund-en.md`, also SiPay's refund page) says a full refund sets
    /// it to `refund` and a part to `partially_refund`.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) transaction_status: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) invoice_id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    #[allow(dead_code)]
    pub(crate) order_id: Option<String>,
    /// What was paid (PHP SDK, node: a number; secgin: a string).
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) transaction_amount: Option<Decimal>,
    /// The product price (all SDKs: a string); read for the `transaction_status` cross-check,
    /// since no source says whether a full refund returns `transaction_amount` (which may
    /// include commission) or `product_price`.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) product_price: Option<Decimal>,
    /// The refunded total (PHP SDK maps it; node types it a number, secgin a string, keune a
    /// float): numbers and numeric strings are both read, never through a float.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) total_refunded_amount: Option<Decimal>,
    /// No SDK maps a currency; read when present (assumed name), TRY otherwise.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) currency_code: Option<String>,
    /// `refund_info`, raw: absent and `null` are `None`.
    #[serde(default)]
    pub(crate) refund_info: Option<Box<RawValue>>,
}

/// One entry of `refund_info`. **The whole shape is assumed**: no source documents the entry
/// fields, their types or the `status` values (`sdk-models.md` §3). We assume the request's
/// names (`refund_transaction_id`, `amount`; `refund_amount` also read), a `status` text and a
/// `created_at`, accept entries without any of them, and amounts as numbers or strings.
#[derive(Deserialize)]
pub(crate) struct RefundInfo {
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) refund_transaction_id: Option<String>,
    #[serde(
        default,
        alias = "refund_amount",
        deserialize_with = "refund_core::json::option_decimal"
    )]
    pub(crate) amount: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    #[allow(dead_code)]
    pub(crate) created_at: Option<String>,
}

/// SiPay's application `status_code`: a JSON number (documents) or a string of digits (some
/// integrations). Kept as text so an unknown or odd code is reported verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StatusCode {
    raw: String,
}

impl StatusCode {
    /// The code as a number, when it is one.
    pub(crate) fn number(&self) -> Option<i64> {
        self.raw.trim().parse().ok()
    }

    /// The code as it came.
    pub(crate) fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match opt_text(d)? {
            Some(raw) if !raw.trim().is_empty() => Ok(StatusCode { raw }),
            _ => Err(de::Error::custom("status_code is empty")),
        }
    }
}

/// A string, number or null as text; booleans, arrays and objects are errors. Integers are
/// kept digit for digit (serde_json reads them as i64/u64); a non-integer number is not an
/// identifier and is refused rather than passed through a float.
pub(crate) fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, an integer or null")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_read_as_numbers_or_strings() {
        let a: RefundResponse = serde_json::from_str(r#"{"status_code":100}"#).unwrap();
        let b: RefundResponse = serde_json::from_str(r#"{"status_code":"100"}"#).unwrap();
        assert_eq!(a.status_code.unwrap().number(), Some(100));
        assert_eq!(b.status_code.unwrap().number(), Some(100));
        let odd: RefundResponse = serde_json::from_str(r#"{"status_code":"E-17"}"#).unwrap();
        let odd = odd.status_code.unwrap();
        assert_eq!(odd.number(), None);
        assert_eq!(odd.as_str(), "E-17");
        let none: RefundResponse = serde_json::from_str(r#"{"status_code":null}"#).unwrap();
        assert!(none.status_code.is_none());
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        for bad in [
            r#"{"status_code":true}"#,
            r#"{"status_code":[100]}"#,
            r#"{"status_code":{"x":1}}"#,
            r#"{"status_code":1.5}"#,
            r#"{"status_code":100,"order_no":{"a":1}}"#,
            r#"{"status_code":100,"amount":"ten"}"#,
            r#""text""#,
            r#"42"#,
        ] {
            assert!(
                serde_json::from_str::<RefundResponse>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn identifiers_may_be_numbers() {
        let r: RefundResponse = serde_json::from_str(
            r#"{"status_code":100,"order_no":16118277721618,"invoice_id":193441611827736,"ref_no":""}"#,
        )
        .unwrap();
        assert_eq!(r.order_no.as_deref(), Some("16118277721618"));
        assert_eq!(r.invoice_id.as_deref(), Some("193441611827736"));
        assert_eq!(r.ref_no.as_deref(), Some(""));
    }

    #[test]
    fn refund_info_entries_accept_missing_references_and_either_amount_type() {
        let r: CheckStatusResponse = serde_json::from_str(
            r#"{"status_code":100,"total_refunded_amount":"35.50","refund_info":[
                {"refund_transaction_id":"r-1","amount":"25.00","status":"completed"},
                {"amount":10.5}
            ]}"#,
        )
        .unwrap();
        let raw = r.refund_info.unwrap();
        let entries: Vec<Box<RawValue>> = serde_json::from_str(raw.get()).unwrap();
        let second: RefundInfo = serde_json::from_str(entries[1].get()).unwrap();
        assert_eq!(second.amount.unwrap().to_string(), "10.5");
        assert!(second.refund_transaction_id.is_none());
        let none: CheckStatusResponse =
            serde_json::from_str(r#"{"status_code":100,"refund_info":null}"#).unwrap();
        assert!(none.refund_info.is_none());
        let absent: CheckStatusResponse = serde_json::from_str(r#"{"status_code":100}"#).unwrap();
        assert!(absent.refund_info.is_none());
        // Whatever refund_info holds, the answer itself still parses.
        let odd: CheckStatusResponse =
            serde_json::from_str(r#"{"status_code":100,"refund_info":"yes"}"#).unwrap();
        assert_eq!(odd.refund_info.unwrap().get(), r#""yes""#);
    }

    #[test]
    fn the_refund_body_has_exactly_the_documented_fields() {
        let body = RefundBody {
            invoice_id: "I",
            amount: "1.00",
            app_id: "a",
            app_secret: "s",
            merchant_key: "k",
            hash_key: "h",
            refund_transaction_id: "r",
            refund_web_hook_key: None,
            refund_webhook_key: None,
        };
        let v = serde_json::to_value(&body).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "amount",
                "app_id",
                "app_secret",
                "hash_key",
                "invoice_id",
                "merchant_key",
                "refund_transaction_id"
            ]
        );
        // A webhook key goes last, under the one spelling that is set (SiPay's PHP SDK order).
        let hooked = RefundBody {
            refund_webhook_key: Some("refunds"),
            ..body
        };
        let text = serde_json::to_string(&hooked).unwrap();
        assert!(text.ends_with(r#""refund_transaction_id":"r","refund_webhook_key":"refunds"}"#));
        assert!(!text.contains("refund_web_hook_key"));
        let check = CheckStatusBody {
            merchant_key: "k",
            invoice_id: "I",
            include_pending_status: true,
            hash_key: "h",
            show_refund_info: "Y",
        };
        let v = serde_json::to_value(&check).unwrap();
        assert_eq!(v["include_pending_status"], true);
        assert_eq!(v["show_refund_info"], "Y");
    }
}
