//! serde structs that mirror iyzico's JSON, and nothing else.
//!
//! Request structs declare their fields in the official node SDK's order (serde serialises in
//! declaration order), so our bodies are byte-for-byte what the SDK sends for the same values
//! (iyzipay-node 2.0.69 `lib/requests/CreateRefundRequest.js`, `CreateRefundV2Request.js`,
//! `CreateCancelRequest.js`; checked against `tests/vectors/node_sdk_vectors.json`).
//!
//! Response structs are lenient where iyzico is inconsistent: the seed document types
//! `paymentid` as an integer while its own example sends `"paymentId":"10844367"` (a string,
//! and camel-cased); `price` is documented as a string but sent as a JSON number (`0.5`);
//! `errorCode` arrives both as `"1000"` and `1000`. Ids and codes therefore accept a string or
//! a number, and every amount goes through [`refund_core::json`] (never through `f64`).

use refund_core::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

/// `POST /payment/refund`: refund (part of) one basket line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundV1Request<'a> {
    /// `tr` or `en`.
    pub locale: &'a str,
    /// The merchant reference of this refund.
    pub conversation_id: &'a str,
    /// The basket line.
    pub payment_transaction_id: &'a str,
    /// The amount, in the SDK's price format (`"10.5"`).
    pub price: String,
    /// The client IP.
    pub ip: String,
    /// ISO currency code.
    pub currency: &'a str,
    /// `other`, `fraud`, `buyer_request` or `double_payment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// Free text; iyzico requires a reason with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

/// `POST /v2/payment/refund`: refund (part of) a whole payment; iyzico picks the line.
/// The SDKs send no reason or description here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundV2Request<'a> {
    /// `tr` or `en`.
    pub locale: &'a str,
    /// The merchant reference of this refund.
    pub conversation_id: &'a str,
    /// The amount, in the SDK's price format.
    pub price: String,
    /// The payment.
    pub payment_id: &'a str,
    /// ISO currency code.
    pub currency: &'a str,
    /// The client IP.
    pub ip: String,
}

/// `POST /payment/cancel`: void a whole payment (same day).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest<'a> {
    /// `tr` or `en`.
    pub locale: &'a str,
    /// The merchant reference of this void.
    pub conversation_id: &'a str,
    /// The payment.
    pub payment_id: &'a str,
    /// The client IP.
    pub ip: String,
    /// `other`, `fraud`, `buyer_request` or `double_payment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// Free text; iyzico requires a reason with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

/// The answer to a refund (v1 or v2) or a cancel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationResponse {
    /// `success` or `failure`.
    #[serde(default, deserialize_with = "opt_text")]
    pub status: Option<String>,
    /// On failure: iyzico's code.
    #[serde(default, deserialize_with = "opt_text")]
    pub error_code: Option<String>,
    /// On failure: the message, in the request's locale.
    #[serde(default, deserialize_with = "opt_text")]
    pub error_message: Option<String>,
    /// On failure: the group, e.g. `REFUND_DECLINE`.
    #[serde(default, deserialize_with = "opt_text")]
    pub error_group: Option<String>,
    /// The request's conversationId, echoed.
    #[serde(default, deserialize_with = "opt_text")]
    pub conversation_id: Option<String>,
    /// The payment.
    #[serde(default, deserialize_with = "opt_text")]
    pub payment_id: Option<String>,
    /// The basket line (v1 refunds only).
    #[serde(default, deserialize_with = "opt_text")]
    pub payment_transaction_id: Option<String>,
    /// The amount refunded or cancelled.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub price: Option<Decimal>,
    /// ISO currency code.
    #[serde(default, deserialize_with = "opt_text")]
    pub currency: Option<String>,
    /// The bank's authorisation code.
    #[serde(default, deserialize_with = "opt_text")]
    pub auth_code: Option<String>,
    /// The bank's reference of the payment.
    #[serde(default, deserialize_with = "opt_text")]
    pub host_reference: Option<String>,
    /// The bank's reference of the refund (newer responses).
    #[serde(default, deserialize_with = "opt_text")]
    pub refund_host_reference: Option<String>,
    /// The bank's reference of the cancel (newer responses).
    #[serde(default, deserialize_with = "opt_text")]
    pub cancel_host_reference: Option<String>,
    /// Whether iyzico says the same request may succeed later.
    #[serde(default)]
    pub retryable: Option<bool>,
    /// hex HMAC-SHA256 of `paymentId:price:currency:conversationId` (newer refund responses).
    #[serde(default, deserialize_with = "opt_text")]
    pub signature: Option<String>,
}

/// The answer of `GET /v2/reporting/payment/details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetailsResponse {
    /// `success` or `failure`.
    #[serde(default, deserialize_with = "opt_text")]
    pub status: Option<String>,
    /// On failure: iyzico's code.
    #[serde(default, deserialize_with = "opt_text")]
    pub error_code: Option<String>,
    /// On failure: the message.
    #[serde(default, deserialize_with = "opt_text")]
    pub error_message: Option<String>,
    /// On failure: the group.
    #[serde(default, deserialize_with = "opt_text")]
    pub error_group: Option<String>,
    /// The request's conversationId, echoed when iyzico does.
    #[serde(default, deserialize_with = "opt_text")]
    pub conversation_id: Option<String>,
    /// The payments found (one for a paymentId).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub payments: Vec<PaymentDetail>,
}

/// One payment in a reporting answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetail {
    /// The payment.
    #[serde(default, deserialize_with = "opt_text")]
    pub payment_id: Option<String>,
    /// `NOT_REFUNDED`, `PARTIALLY_REFUNDED` or `TOTALLY_REFUNDED` (sometimes with a trailing space).
    #[serde(default, deserialize_with = "opt_text")]
    pub payment_refund_status: Option<String>,
    /// Basket amount.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub price: Option<Decimal>,
    /// Amount charged.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub paid_price: Option<Decimal>,
    /// ISO currency code.
    #[serde(default, deserialize_with = "opt_text")]
    pub currency: Option<String>,
    /// The basket lines.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub item_transactions: Vec<ItemTransaction>,
    /// Cancels (voids) of the payment.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub cancels: Vec<CancelEntry>,
}

/// One basket line in a reporting answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemTransaction {
    /// The line's id.
    #[serde(default, deserialize_with = "opt_text")]
    pub payment_transaction_id: Option<String>,
    /// Line amount.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub price: Option<Decimal>,
    /// Amount charged for the line.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub paid_price: Option<Decimal>,
    /// Refunds of this line.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub refunds: Vec<RefundEntry>,
}

/// One refund of a basket line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundEntry {
    /// iyzico's id of the refund.
    #[serde(default, deserialize_with = "opt_text")]
    pub refund_tx_id: Option<String>,
    /// The conversationId the refund was sent with: our merchant reference.
    #[serde(default, deserialize_with = "opt_text")]
    pub refund_conversation_id: Option<String>,
    /// The amount refunded.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub refund_price: Option<Decimal>,
    /// ISO currency code.
    #[serde(default, deserialize_with = "opt_text")]
    pub currency_code: Option<String>,
    /// `1` success, `0` failure (as `paymentStatus`); other values are treated as pending.
    #[serde(default, deserialize_with = "opt_text")]
    pub refund_status: Option<String>,
}

/// One cancel of a payment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelEntry {
    /// iyzico's id of the cancel.
    #[serde(default, deserialize_with = "opt_text")]
    pub cancel_tx_id: Option<String>,
    /// The conversationId the cancel was sent with.
    #[serde(default, deserialize_with = "opt_text")]
    pub cancel_conversation_id: Option<String>,
    /// The amount cancelled.
    #[serde(
        default,
        alias = "cancelPrice",
        deserialize_with = "refund_core::json::option_decimal"
    )]
    pub price: Option<Decimal>,
    /// ISO currency code.
    #[serde(default, deserialize_with = "opt_text")]
    pub currency_code: Option<String>,
    /// `1` success, `0` failure.
    #[serde(default, deserialize_with = "opt_text")]
    pub cancel_status: Option<String>,
}

/// A string or a number as text; `null` and absence are `None`. Booleans, arrays and objects
/// are errors (the body is then unreadable, never silently accepted).
fn opt_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error as _;
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(D::Error::custom("expected a string or a number")),
    }
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_example_parses_with_a_numeric_price_and_string_ids() {
        let r: OperationResponse = serde_json::from_str(
            r#"{"status":"success","locale":"tr","systemTime":1527959985667,"conversationId":"123456789",
            "paymentId":"10844367","paymentTransactionId":"11433038","price":0.5,"currency":"TRY",
            "authCode":"475990","hostReference":"mock00007iyzihostrfn"}"#,
        )
        .unwrap();
        assert_eq!(r.status.as_deref(), Some("success"));
        assert_eq!(r.payment_id.as_deref(), Some("10844367"));
        assert_eq!(r.price, Some(Decimal::new(5, 1)));
    }

    #[test]
    fn ids_codes_and_prices_accept_numbers_and_strings() {
        let r: OperationResponse = serde_json::from_str(
            r#"{"status":"failure","errorCode":1000,"paymentId":10844367,"price":"0.50","conversationId":123}"#,
        )
        .unwrap();
        assert_eq!(r.error_code.as_deref(), Some("1000"));
        assert_eq!(r.payment_id.as_deref(), Some("10844367"));
        assert_eq!(r.conversation_id.as_deref(), Some("123"));
        assert_eq!(r.price, Some(Decimal::new(50, 2)));
    }

    #[test]
    fn wrong_types_are_errors() {
        for bad in [
            r#"{"status":true}"#,
            r#"{"price":"abc"}"#,
            r#"{"price":[1]}"#,
            r#"{"paymentId":{}}"#,
            r#"{"retryable":"yes"}"#,
        ] {
            assert!(
                serde_json::from_str::<OperationResponse>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn request_fields_serialise_in_the_node_sdk_order() {
        let body = serde_json::to_string(&RefundV1Request {
            locale: "tr",
            conversation_id: "123456789",
            payment_transaction_id: "1",
            price: "0.5".into(),
            ip: "85.34.78.112".into(),
            currency: "TRY",
            reason: None,
            description: None,
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"locale":"tr","conversationId":"123456789","paymentTransactionId":"1","price":"0.5","ip":"85.34.78.112","currency":"TRY"}"#
        );
    }

    #[test]
    fn null_lists_are_empty() {
        let r: PaymentDetailsResponse = serde_json::from_str(
            r#"{"status":"success","payments":[{"itemTransactions":null,"cancels":null}]}"#,
        )
        .unwrap();
        assert!(r.payments[0].item_transactions.is_empty());
    }
}
