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
pub(crate) struct RefundV1Request<'a> {
    /// `tr` or `en`.
    pub(crate) locale: &'a str,
    /// The merchant reference of this refund.
    pub(crate) conversation_id: &'a str,
    /// The basket line.
    pub(crate) payment_transaction_id: &'a str,
    /// The amount, in the SDK's price format (`"10.5"`).
    pub(crate) price: String,
    /// The client IP.
    pub(crate) ip: String,
    /// ISO currency code.
    pub(crate) currency: &'a str,
    /// `other`, `fraud`, `buyer_request` or `double_payment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
    /// Free text; iyzico requires a reason with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<&'a str>,
}

/// `POST /v2/payment/refund`: refund (part of) a whole payment; iyzico picks the line.
/// The SDKs send no reason or description here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefundV2Request<'a> {
    /// `tr` or `en`.
    pub(crate) locale: &'a str,
    /// The merchant reference of this refund.
    pub(crate) conversation_id: &'a str,
    /// The amount, in the SDK's price format.
    pub(crate) price: String,
    /// The payment.
    pub(crate) payment_id: &'a str,
    /// ISO currency code.
    pub(crate) currency: &'a str,
    /// The client IP.
    pub(crate) ip: String,
}

/// `POST /payment/cancel`: void a whole payment (same day).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancelRequest<'a> {
    /// `tr` or `en`.
    pub(crate) locale: &'a str,
    /// The merchant reference of this void.
    pub(crate) conversation_id: &'a str,
    /// The payment.
    pub(crate) payment_id: &'a str,
    /// The client IP.
    pub(crate) ip: String,
    /// `other`, `fraud`, `buyer_request` or `double_payment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
    /// Free text; iyzico requires a reason with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<&'a str>,
}

/// The answer to a refund (v1 or v2) or a cancel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OperationResponse {
    /// `success` or `failure`.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) status: Option<String>,
    /// On failure: iyzico's code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_code: Option<String>,
    /// On failure: the message, in the request's locale.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_message: Option<String>,
    /// On failure: the group, e.g. `REFUND_DECLINE`.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_group: Option<String>,
    /// The request's conversationId, echoed.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) conversation_id: Option<String>,
    /// The payment.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) payment_id: Option<String>,
    /// The basket line (v1 refunds only).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) payment_transaction_id: Option<String>,
    /// The amount refunded or cancelled.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) price: Option<Decimal>,
    /// What the buyer paid, when the answer says (a cancel of a payment with installment
    /// fees pays back `paidPrice`, more than the basket `price`). No SDK's `Cancel` model
    /// maps it; read in case an answer carries it.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) paid_price: Option<Decimal>,
    /// ISO currency code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) currency: Option<String>,
    /// The bank's authorisation code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) auth_code: Option<String>,
    /// The bank's reference of the payment.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) host_reference: Option<String>,
    /// The bank's reference of the refund (newer responses).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) refund_host_reference: Option<String>,
    /// The bank's reference of the cancel (newer responses).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) cancel_host_reference: Option<String>,
    /// Whether iyzico says the same request may succeed later.
    #[serde(default)]
    pub(crate) retryable: Option<bool>,
    /// hex HMAC-SHA256 of `paymentId:price:currency:conversationId` (newer refund responses).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) signature: Option<String>,
}

/// The answer of `GET /v2/reporting/payment/details`: the official SDKs' reporting model
/// (iyzipay-java `src/main/java/com/iyzipay/model/ReportingPaymentDetail.java`, .NET
/// `Iyzipay/Model/V2/Transaction/TransactionDetailResource.cs`).
///
/// Lists are `Option`s: a list that is absent (or `null`) is not an empty list, and the client
/// never reads it as "nothing refunded" (shared/providers/sdk-models.md §0.1, §2.5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReportingPaymentDetail {
    /// `success` or `failure`.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) status: Option<String>,
    /// On failure: iyzico's code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_code: Option<String>,
    /// On failure: the message.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_message: Option<String>,
    /// On failure: the group.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_group: Option<String>,
    /// The request's conversationId, echoed when iyzico does.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) conversation_id: Option<String>,
    /// The payments found (one for a paymentId). Java `List<PaymentDetail>`.
    #[serde(default)]
    pub(crate) payments: Option<Vec<PaymentDetail>>,
}

/// One payment in a reporting answer: iyzipay-java
/// `src/main/java/com/iyzipay/model/PaymentDetail.java` (no `@SerializedName`, so the JSON
/// names are the field names), .NET `Iyzipay/Model/V2/Transaction/TransactionDetailItem.cs`.
/// Only the fields a refund lookup reads are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentDetail {
    /// The payment (Java `Long`; the docs' example sends a JSON number).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) payment_id: Option<String>,
    /// `FAILURE(0), SUCCESS(1), INIT_THREEDS(2), …` (docs, Java `Integer`).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) payment_status: Option<String>,
    /// `NOT_REFUNDED`, `PARTIALLY_REFUNDED` or `TOTALLY_REFUNDED`. The docs print the last as
    /// `TOTALLY_REFUNDED("TOTALLY_REFUNDED ")`, with a trailing space: compare trimmed.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) payment_refund_status: Option<String>,
    /// Basket amount (Java `BigDecimal`; number or string here, never `f64`).
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) price: Option<Decimal>,
    /// Amount charged, installment fee included.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) paid_price: Option<Decimal>,
    /// ISO currency code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) currency: Option<String>,
    /// The payment's own conversationId.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) payment_conversation_id: Option<String>,
    /// The basket lines. Java `List<PaymentTxDetail>`.
    #[serde(default)]
    pub(crate) item_transactions: Option<Vec<PaymentTxDetail>>,
    /// Cancels (voids) of the payment. Java `List<RefundDetail>`, .NET
    /// `List<TransactionDetailCancelItem>`.
    #[serde(default)]
    pub(crate) cancels: Option<Vec<RefundDetail>>,
}

/// One basket line in a reporting answer: iyzipay-java
/// `src/main/java/com/iyzipay/model/PaymentTxDetail.java`, .NET
/// `Iyzipay/Model/V2/Transaction/PaymentTxDetailItem.cs` (lookup fields only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentTxDetail {
    /// The line's id (Java `Long`, .NET `String`).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) payment_transaction_id: Option<String>,
    /// Java `Integer`; no source gives its values' meanings (sdk-models.md §2.5), unused.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) transaction_status: Option<String>,
    /// Line amount.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) price: Option<Decimal>,
    /// Amount charged for the line.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) paid_price: Option<Decimal>,
    /// Refunds of this line. Java `List<RefundTxDetail>`, .NET `List<RefundDetailItem>`.
    #[serde(default)]
    pub(crate) refunds: Option<Vec<RefundTxDetail>>,
}

/// One refund of a basket line: iyzipay-java
/// `src/main/java/com/iyzipay/model/RefundTxDetail.java`, .NET
/// `Iyzipay/Model/V2/Transaction/RefundDetailItem.cs`. It differs from [`RefundDetail`] only in
/// its first two fields (`refundTxId`, `refundConversationId`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefundTxDetail {
    /// iyzico's id of the refund (Java `Long`).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) refund_tx_id: Option<String>,
    /// The conversationId the refund was sent with: our merchant reference.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) refund_conversation_id: Option<String>,
    /// The amount (Java `BigDecimal`, .NET `String`): number or string, never `f64`.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) refund_price: Option<Decimal>,
    /// Java `Integer`, .NET `int`. **No source documents its values** (sdk-models.md §0.1,
    /// §3); the client reads 1 as done and 0 as failed, by analogy with `paymentStatus`
    /// (`FAILURE(0), SUCCESS(1)`), and any other value as unknown.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) refund_status: Option<String>,
    /// Whether it came after settlement (Java `Boolean`).
    #[serde(default, deserialize_with = "opt_bool")]
    pub(crate) is_after_settlement: Option<bool>,
    /// When (Java `Date`, .NET `String`).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) created_date: Option<String>,
    /// ISO currency code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) currency_code: Option<String>,
    /// The bank's authorisation code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) auth_code: Option<String>,
    /// The bank's reference.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) host_reference: Option<String>,
    /// When it failed: the group.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_group: Option<String>,
    /// When it failed: iyzico's code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_code: Option<String>,
    /// When it failed: the message.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_message: Option<String>,
}

/// One cancel of a payment: iyzipay-java `src/main/java/com/iyzipay/model/RefundDetail.java`,
/// .NET `Iyzipay/Model/V2/Transaction/TransactionDetailCancelItem.cs`. A cancel entry's amount
/// is `refundPrice` and its id `refundId` (not the cancel answer's `price`, nor a `cancelTxId`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefundDetail {
    /// iyzico's id of the cancel (Java `Long`).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) refund_id: Option<String>,
    /// The conversationId the cancel was sent with: our merchant reference.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) cancel_conversation_id: Option<String>,
    /// The amount (Java `BigDecimal`, .NET `String`): number or string, never `f64`.
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    pub(crate) refund_price: Option<Decimal>,
    /// Java `Integer`, .NET `int`. **No source documents its values** (sdk-models.md §0.1,
    /// §3); the client reads 1 as done and 0 as failed, by analogy with `paymentStatus`
    /// (`FAILURE(0), SUCCESS(1)`), and any other value as unknown.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) refund_status: Option<String>,
    /// Whether it came after settlement (Java `Boolean`).
    #[serde(default, deserialize_with = "opt_bool")]
    pub(crate) is_after_settlement: Option<bool>,
    /// When (Java `Date`, .NET `String`).
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) created_date: Option<String>,
    /// ISO currency code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) currency_code: Option<String>,
    /// The bank's authorisation code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) auth_code: Option<String>,
    /// The bank's reference.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) host_reference: Option<String>,
    /// When it failed: the group.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_group: Option<String>,
    /// When it failed: iyzico's code.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_code: Option<String>,
    /// When it failed: the message.
    #[serde(default, deserialize_with = "opt_text")]
    pub(crate) error_message: Option<String>,
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

/// A boolean, or the text `"true"` / `"false"`; `null` and absence are `None`.
fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    use serde::de::Error as _;
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
        Some(serde_json::Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => {
            Ok(Some(true))
        }
        Some(serde_json::Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => {
            Ok(Some(false))
        }
        Some(_) => Err(D::Error::custom("expected a boolean")),
    }
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
    fn absent_and_null_lists_stay_absent_never_empty() {
        let r: ReportingPaymentDetail = serde_json::from_str(
            r#"{"status":"success","payments":[{"itemTransactions":null},{"cancels":[],"itemTransactions":[{}]}]}"#,
        )
        .unwrap();
        let payments = r.payments.unwrap();
        assert_eq!(payments[0].item_transactions, None);
        assert_eq!(payments[0].cancels, None);
        assert_eq!(payments[1].cancels, Some(vec![]));
        assert_eq!(
            payments[1].item_transactions.as_ref().unwrap()[0].refunds,
            None
        );
        let r: ReportingPaymentDetail = serde_json::from_str(r#"{"status":"success"}"#).unwrap();
        assert_eq!(r.payments, None);
    }

    #[test]
    fn cancels_and_refunds_read_the_java_sdk_field_names() {
        // iyzipay-java model/RefundDetail.java and model/RefundTxDetail.java, field for field.
        let r: ReportingPaymentDetail = serde_json::from_str(
            r#"{"status":"success","payments":[{"paymentId":25180158,"paymentRefundStatus":"TOTALLY_REFUNDED ",
            "cancels":[{"refundId":32000001,"cancelConversationId":"void-1","refundPrice":"1.10","refundStatus":0,
              "isAfterSettlement":false,"createdDate":"2026-01-28 10:15:02","currencyCode":"TRY","authCode":"1",
              "hostReference":"h","errorGroup":"BANK","errorCode":"10051","errorMessage":"Yetersiz bakiye"}],
            "itemTransactions":[{"paymentTransactionId":26120101,"refunds":[{"refundTxId":31000001,
              "refundConversationId":"rf-1","refundPrice":0.5,"refundStatus":"1","isAfterSettlement":"true"}]}]}]}"#,
        )
        .unwrap();
        let p = &r.payments.unwrap()[0];
        assert_eq!(p.payment_id.as_deref(), Some("25180158"));
        assert_eq!(
            p.payment_refund_status.as_deref(),
            Some("TOTALLY_REFUNDED ")
        );
        let c = &p.cancels.as_ref().unwrap()[0];
        assert_eq!(c.refund_id.as_deref(), Some("32000001"));
        assert_eq!(c.cancel_conversation_id.as_deref(), Some("void-1"));
        assert_eq!(c.refund_price, Some(Decimal::new(110, 2)));
        assert_eq!(c.refund_status.as_deref(), Some("0"));
        assert_eq!(c.is_after_settlement, Some(false));
        assert_eq!(c.error_code.as_deref(), Some("10051"));
        assert_eq!(c.error_group.as_deref(), Some("BANK"));
        let item = &p.item_transactions.as_ref().unwrap()[0];
        let refund = &item.refunds.as_ref().unwrap()[0];
        assert_eq!(refund.refund_tx_id.as_deref(), Some("31000001"));
        assert_eq!(refund.refund_conversation_id.as_deref(), Some("rf-1"));
        assert_eq!(refund.refund_price, Some(Decimal::new(5, 1)));
        assert_eq!(refund.refund_status.as_deref(), Some("1"));
        assert_eq!(refund.is_after_settlement, Some(true));
    }
}
