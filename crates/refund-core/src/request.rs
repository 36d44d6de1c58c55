//! What a caller asks for: a refund of an amount, or the void of a whole payment.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::money::{Money, MoneyError};
use crate::reference::{MerchantRef, PaymentRef};

/// Why a request was refused before anything was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The amount or currency is invalid.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// A refund of zero.
    #[error("the refund amount must be greater than zero")]
    ZeroAmount,
    /// The provider does not settle in this currency.
    #[error("{provider} does not accept {currency}")]
    UnsupportedCurrency {
        /// The provider.
        provider: &'static str,
        /// The currency asked for.
        currency: Currency,
    },
    /// A field is invalid.
    #[error("{field} {reason}")]
    Field {
        /// The field, e.g. `payment id`.
        field: &'static str,
        /// What is wrong, e.g. `is empty`.
        reason: Cow<'static, str>,
    },
}

impl ValidationError {
    /// A field-level error: `ValidationError::field("ip", "is not an IP address")`.
    pub fn field(field: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        ValidationError::Field {
            field,
            reason: reason.into(),
        }
    }
}

/// Why the merchant is refunding. Providers that take a reason (iyzico) send it; the others
/// ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundReason {
    /// The buyer asked for it.
    BuyerRequest,
    /// The payment was taken twice.
    DoublePayment,
    /// The payment was fraudulent.
    Fraud,
    /// Any other reason; say which in the description.
    Other,
}

/// The parts that refunds and voids share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Common {
    payment: PaymentRef,
    reference: MerchantRef,
    reason: Option<RefundReason>,
    description: Option<String>,
    extras: BTreeMap<String, String>,
}

impl Common {
    fn validate(&self) -> Result<(), ValidationError> {
        self.payment.validate()?;
        if let Some(d) = &self.description
            && d.chars().count() > 255
        {
            return Err(ValidationError::field(
                "description",
                "is longer than 255 characters",
            ));
        }
        Ok(())
    }
}

/// Settings shared by both builders.
#[derive(Clone, Debug)]
struct CommonBuilder {
    payment: PaymentRef,
    reference: Option<String>,
    reason: Option<RefundReason>,
    description: Option<String>,
    extras: BTreeMap<String, String>,
}

impl CommonBuilder {
    fn new(payment: PaymentRef) -> Self {
        CommonBuilder {
            payment,
            reference: None,
            reason: None,
            description: None,
            extras: BTreeMap::new(),
        }
    }

    fn build(self) -> Result<Common, ValidationError> {
        let reference = match self.reference {
            Some(r) => MerchantRef::new(r)?,
            None => MerchantRef::generate(),
        };
        let common = Common {
            payment: self.payment,
            reference,
            reason: self.reason,
            description: self.description,
            extras: self.extras,
        };
        common.validate()?;
        Ok(common)
    }
}

macro_rules! common_accessors {
    () => {
        /// The payment being refunded.
        pub fn payment(&self) -> &PaymentRef {
            &self.common.payment
        }

        /// The merchant's reference for this operation (generated when none was given).
        pub fn reference(&self) -> &MerchantRef {
            &self.common.reference
        }

        /// Why, when given.
        pub fn reason(&self) -> Option<RefundReason> {
            self.common.reason
        }

        /// A free-text description, when given.
        pub fn description(&self) -> Option<&str> {
            self.common.description.as_deref()
        }

        /// A provider-specific extra, by key (see each provider crate for its keys).
        pub fn extra(&self, key: &str) -> Option<&str> {
            self.common.extras.get(key).map(String::as_str)
        }

        /// All provider-specific extras.
        pub fn extras(&self) -> &BTreeMap<String, String> {
            &self.common.extras
        }
    };
}

macro_rules! common_setters {
    () => {
        /// Sets the merchant's reference (see [`MerchantRef`]); validated by `build`.
        pub fn reference(mut self, reference: impl Into<String>) -> Self {
            self.common.reference = Some(reference.into());
            self
        }

        /// Sets the reason.
        pub fn reason(mut self, reason: RefundReason) -> Self {
            self.common.reason = Some(reason);
            self
        }

        /// Sets a description (at most 255 characters).
        pub fn description(mut self, description: impl Into<String>) -> Self {
            self.common.description = Some(description.into());
            self
        }

        /// Adds a provider-specific extra, such as iyzico's client `ip`. Providers document
        /// the keys they read and validate the values; unknown keys are ignored.
        pub fn extra(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.common.extras.insert(key.into(), value.into());
            self
        }
    };
}

/// A validated request to refund `amount` of a payment: full, partial, or one more partial.
///
/// Built with [`RefundRequest::builder`]; `build` validates everything that can be checked
/// locally, so an invalid request never reaches a provider. Providers check what only they
/// know (currency support, id formats) before sending.
///
/// ```
/// use refund_core::{Currency, Money, PaymentRef, RefundReason, RefundRequest};
///
/// let request = RefundRequest::builder(
///     PaymentRef::payment("INV-2026-0001"),
///     Money::parse("25.00", Currency::Try)?,
/// )
/// .reference("order-42-refund-1")
/// .reason(RefundReason::BuyerRequest)
/// .build()?;
/// assert_eq!(request.amount().to_string(), "25.00 TRY");
/// assert_eq!(request.reference().as_str(), "order-42-refund-1");
///
/// // Zero is not a refund.
/// let zero = RefundRequest::builder(PaymentRef::payment("INV-1"), Money::zero(Currency::Try));
/// assert!(zero.build().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Requests serialize (for journals and logs) but do not deserialize: a request is only ever
/// made through the builder, which validates it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefundRequest {
    #[serde(flatten)]
    common: Common,
    amount: Money,
}

impl RefundRequest {
    /// Starts a request to refund `amount` of `payment`.
    pub fn builder(payment: PaymentRef, amount: Money) -> RefundRequestBuilder {
        RefundRequestBuilder {
            common: CommonBuilder::new(payment),
            amount,
        }
    }

    /// The amount to refund.
    pub fn amount(&self) -> Money {
        self.amount
    }

    common_accessors!();
}

/// Builds a [`RefundRequest`].
#[derive(Clone, Debug)]
#[must_use]
pub struct RefundRequestBuilder {
    common: CommonBuilder,
    amount: Money,
}

impl RefundRequestBuilder {
    common_setters!();

    /// Validates and builds the request, generating a reference when none was set.
    pub fn build(self) -> Result<RefundRequest, ValidationError> {
        if self.amount.is_zero() {
            return Err(ValidationError::ZeroAmount);
        }
        Ok(RefundRequest {
            common: self.common.build()?,
            amount: self.amount,
        })
    }
}

/// A validated request to void (cancel) a whole payment, typically on the day it was taken.
///
/// ```
/// use refund_core::{PaymentRef, VoidRequest};
///
/// let void = VoidRequest::builder(PaymentRef::payment("25180158")).build()?;
/// assert_eq!(void.payment().id(), "25180158");
/// # Ok::<(), refund_core::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VoidRequest {
    #[serde(flatten)]
    common: Common,
}

impl VoidRequest {
    /// Starts a request to void `payment`.
    pub fn builder(payment: PaymentRef) -> VoidRequestBuilder {
        VoidRequestBuilder {
            common: CommonBuilder::new(payment),
        }
    }

    common_accessors!();
}

/// Builds a [`VoidRequest`].
#[derive(Clone, Debug)]
#[must_use]
pub struct VoidRequestBuilder {
    common: CommonBuilder,
}

impl VoidRequestBuilder {
    common_setters!();

    /// Validates and builds the request, generating a reference when none was set.
    pub fn build(self) -> Result<VoidRequest, ValidationError> {
        Ok(VoidRequest {
            common: self.common.build()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_(s: &str) -> Money {
        Money::parse(s, Currency::Try).unwrap()
    }

    #[test]
    fn a_reference_is_generated_when_absent() {
        let r = RefundRequest::builder(PaymentRef::payment("I"), try_("1"))
            .build()
            .unwrap();
        assert!(r.reference().as_str().starts_with("rf-"));
    }

    #[test]
    fn zero_refunds_are_rejected() {
        let e = RefundRequest::builder(PaymentRef::payment("I"), try_("0"))
            .build()
            .unwrap_err();
        assert_eq!(e, ValidationError::ZeroAmount);
    }

    #[test]
    fn invalid_fields_are_rejected() {
        let b = || RefundRequest::builder(PaymentRef::payment("I"), try_("1"));
        assert!(b().reference("bad ref").build().is_err());
        assert!(b().description("x".repeat(256)).build().is_err());
        assert!(b().description("x".repeat(255)).build().is_ok());
        assert!(
            RefundRequest::builder(PaymentRef::payment(""), try_("1"))
                .build()
                .is_err()
        );
        assert!(
            VoidRequest::builder(PaymentRef::payment(""))
                .build()
                .is_err()
        );
    }

    #[test]
    fn extras_are_kept_for_the_provider() {
        let r = RefundRequest::builder(PaymentRef::payment("I"), try_("1"))
            .extra("ip", "85.34.78.112")
            .reason(RefundReason::Fraud)
            .description("chargeback")
            .build()
            .unwrap();
        assert_eq!(r.extra("ip"), Some("85.34.78.112"));
        assert_eq!(r.extra("nope"), None);
        assert_eq!(r.reason(), Some(RefundReason::Fraud));
        assert_eq!(r.description(), Some("chargeback"));
    }

    #[test]
    fn requests_serialize_flat_with_string_amounts() {
        let r = RefundRequest::builder(PaymentRef::item("2").in_payment("1"), try_("1.5"))
            .reference("x-1")
            .build()
            .unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["reference"], "x-1");
        assert_eq!(json["amount"]["amount"], "1.50");
        assert_eq!(json["payment"]["parent"], "1");
    }
}
