//! What a provider returns when a refund or void went through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::raw_response::RawResponse;
use crate::reference::{MerchantRef, PaymentRef};

/// Whether the money is on its way back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundStatus {
    /// The provider completed the refund.
    Completed,
    /// The provider accepted the refund and will complete it later (SiPay's code 101).
    Pending,
    /// The provider lists the refund as failed: no money moved. Lookups report it so a
    /// failed attempt stays visible; it never counts towards what was refunded.
    Failed,
}

impl RefundStatus {
    /// Whether the money moved or is on its way: [`Completed`](Self::Completed) or
    /// [`Pending`](Self::Pending).
    pub const fn is_applied(self) -> bool {
        matches!(self, RefundStatus::Completed | RefundStatus::Pending)
    }
}

/// Which operation a receipt is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// A full or partial refund.
    Refund,
    /// A void (cancel) of a whole payment.
    Void,
}

/// Proof that a provider accepted a refund or void, with everything support needs.
///
/// Provider crates build it with [`RefundReceipt::new`] and the `with_*` methods; the raw
/// provider response is kept for support tickets and only ever shown with secret-looking
/// fields redacted ([`RawResponse`]).
///
/// ```
/// use refund_core::{Currency, MerchantRef, Money, Operation, PaymentRef, RefundReceipt, RefundStatus};
///
/// let receipt = RefundReceipt::new(
///     "sipay",
///     Operation::Refund,
///     PaymentRef::payment("INV-1"),
///     MerchantRef::new("r-1")?,
///     Money::parse("10.50", Currency::Try)?,
///     RefundStatus::Completed,
/// )
/// .with_provider_reference("order_no", "VP17695816358637973")
/// .with_raw(serde_json::json!({"status_code": 100, "token": "eyJ..."}));
///
/// assert_eq!(receipt.provider_references["order_no"], "VP17695816358637973");
/// let raw = receipt.raw.as_ref().and_then(|raw| raw.to_json()).unwrap();
/// assert_eq!(raw["token"], "[REDACTED]");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefundReceipt {
    /// The provider's name, as [`RefundProvider::name`](crate::RefundProvider::name).
    pub provider: String,
    /// Refund or void.
    pub operation: Operation,
    /// Completed or pending.
    pub status: RefundStatus,
    /// The payment refunded.
    pub payment: PaymentRef,
    /// The merchant's reference for this refund.
    pub reference: MerchantRef,
    /// The amount the provider says it refunded (checked against the request by the provider
    /// crate: a mismatch is an error, never a receipt).
    pub amount: Money,
    /// The provider's own identifiers for the refund (order numbers, auth codes, host
    /// references), by the provider's field names.
    pub provider_references: BTreeMap<String, String>,
    /// The provider's id of this refund, the one support quotes and a lookup lists (SiPay's
    /// `ref_no`, iyzico's `refundHostReference`): set by the provider crate that knows which
    /// of its fields it is ([`with_refund_id`](Self::with_refund_id)), never guessed by name
    /// from [`provider_references`](Self::provider_references).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// True when the receipt was recovered by looking the refund up after an outcome-unknown
    /// failure, rather than from the refund response itself.
    #[serde(default)]
    pub reconciled: bool,
    /// The provider's response body, shown only with secret-looking fields redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawResponse>,
}

impl RefundReceipt {
    /// A receipt with no provider references and no raw response.
    pub fn new(
        provider: impl Into<String>,
        operation: Operation,
        payment: PaymentRef,
        reference: MerchantRef,
        amount: Money,
        status: RefundStatus,
    ) -> Self {
        RefundReceipt {
            provider: provider.into(),
            operation,
            status,
            payment,
            reference,
            amount,
            provider_references: BTreeMap::new(),
            refund_id: None,
            reconciled: false,
            raw: None,
        }
    }

    /// Adds one of the provider's identifiers; empty values are skipped.
    #[must_use]
    pub fn with_provider_reference(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.provider_references.insert(name.into(), value);
        }
        self
    }

    /// Sets the provider's id of the refund ([`refund_id`](Self::refund_id)); an empty value is
    /// skipped.
    ///
    /// ```
    /// # use refund_core::*;
    /// let receipt = RefundReceipt::new("sipay", Operation::Refund, PaymentRef::payment("INV-1"),
    ///     MerchantRef::new("r-1")?, Money::parse("10", Currency::Try)?, RefundStatus::Completed)
    ///     .with_refund_id("VP1769");
    /// assert_eq!(receipt.refund_id.as_deref(), Some("VP1769"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_refund_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !id.is_empty() {
            self.refund_id = Some(id);
        }
        self
    }

    /// Keeps the provider's response: its body as received ([`bytes::Bytes`], no copy) or a
    /// parsed [`serde_json::Value`]. It is shown only redacted (see [`RawResponse`]).
    #[must_use]
    pub fn with_raw(mut self, raw: impl Into<RawResponse>) -> Self {
        self.raw = Some(raw.into());
        self
    }

    /// Marks the receipt as recovered by reconciliation.
    #[must_use]
    pub fn reconciled(mut self) -> Self {
        self.reconciled = true;
        self
    }
}
