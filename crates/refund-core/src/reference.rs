//! Identifiers: which payment a refund is for, and the merchant's own reference for a refund.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::request::ValidationError;

/// What part of a payment a [`PaymentRef`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PaymentScope {
    /// A whole payment: SiPay's `invoice_id`, iyzico's `paymentId`.
    Payment,
    /// One line of a basket payment: iyzico's `paymentTransactionId`.
    Item,
}

/// The provider's reference to the payment being refunded: opaque text plus its scope.
///
/// Providers name payments differently: SiPay by the merchant's `invoice_id`, iyzico by
/// `paymentId` for the whole payment or `paymentTransactionId` for one basket line. A
/// `PaymentRef` carries the id and says which kind it is; each provider documents which it
/// accepts (see [`Capabilities::item_refunds`](crate::Capabilities)). An item may name the
/// payment it belongs to, which lets a provider look up its refunds for reconciliation.
///
/// ```
/// use refund_core::{PaymentRef, PaymentScope};
///
/// let invoice = PaymentRef::payment("INV-2026-0001");
/// assert_eq!(invoice.scope(), PaymentScope::Payment);
///
/// let line = PaymentRef::item("11433038").in_payment("10844367");
/// assert_eq!(line.id(), "11433038");
/// assert_eq!(line.parent(), Some("10844367"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PaymentRef {
    scope: PaymentScope,
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
}

impl PaymentRef {
    /// A whole payment.
    pub fn payment(id: impl Into<String>) -> Self {
        PaymentRef {
            scope: PaymentScope::Payment,
            id: id.into(),
            parent: None,
        }
    }

    /// One line (item transaction) of a payment.
    pub fn item(id: impl Into<String>) -> Self {
        PaymentRef {
            scope: PaymentScope::Item,
            id: id.into(),
            parent: None,
        }
    }

    /// Records the payment this item belongs to.
    #[must_use]
    pub fn in_payment(mut self, payment_id: impl Into<String>) -> Self {
        self.parent = Some(payment_id.into());
        self
    }

    /// The scope.
    pub fn scope(&self) -> PaymentScope {
        self.scope
    }

    /// The provider's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// For an item, the payment it belongs to, when known.
    pub fn parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    /// Checks the ids: 1 to 128 characters, no control characters, no surrounding spaces.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_id("payment id", &self.id)?;
        if let Some(p) = &self.parent {
            check_id("parent payment id", p)?;
        }
        Ok(())
    }
}

fn check_id(field: &'static str, id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::field(field, "is empty"));
    }
    if id.chars().count() > 128 {
        return Err(ValidationError::field(
            field,
            "is longer than 128 characters",
        ));
    }
    if id.chars().any(char::is_control) || id.trim() != id {
        return Err(ValidationError::field(
            field,
            "has control characters or surrounding spaces",
        ));
    }
    Ok(())
}

impl fmt::Debug for PaymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for PaymentRef {
    /// `payment:INV-1`, `item:11433038`, `item:11433038@10844367`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = match self.scope {
            PaymentScope::Payment => "payment",
            PaymentScope::Item => "item",
        };
        write!(f, "{scope}:{}", self.id)?;
        if let Some(p) = &self.parent {
            write!(f, "@{p}")?;
        }
        Ok(())
    }
}

/// The merchant's own reference for one refund: the key that finds it again.
///
/// It travels to the provider (SiPay's `refund_transaction_id`, iyzico's `conversationId`), so
/// an outcome-unknown refund can be looked up by it instead of being sent again. Every request
/// has one: [`RefundRequestBuilder::build`](crate::RefundRequestBuilder::build) generates one
/// when none is given. Set your own when the refund must be traceable across restarts (a batch
/// journal, an order id).
///
/// 1 to 64 characters from `A-Z a-z 0-9 - _ . :`.
///
/// ```
/// use refund_core::MerchantRef;
///
/// let r = MerchantRef::new("order-42-refund-1")?;
/// assert_eq!(r.as_str(), "order-42-refund-1");
/// assert!(MerchantRef::new("has space").is_err());
/// assert_ne!(MerchantRef::generate(), MerchantRef::generate());
/// # Ok::<(), refund_core::ValidationError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MerchantRef(String);

impl MerchantRef {
    /// Validates and wraps a reference.
    pub fn new(reference: impl Into<String>) -> Result<Self, ValidationError> {
        let reference = reference.into();
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
        if reference.is_empty() || reference.len() > 64 {
            return Err(ValidationError::field(
                "reference",
                "must be 1 to 64 characters",
            ));
        }
        if !reference.chars().all(ok_char) {
            return Err(ValidationError::field(
                "reference",
                "may only contain A-Z a-z 0-9 - _ . :",
            ));
        }
        Ok(MerchantRef(reference))
    }

    /// A fresh random reference (`rf-` and 24 hex digits from the OS RNG).
    ///
    /// Falls back to the clock and a process counter if the OS RNG is unavailable, which
    /// still never repeats within a process.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 12];
        if getrandom::fill(&mut bytes).is_err() {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            bytes[..8].copy_from_slice(&nanos.to_le_bytes()[..8]);
            bytes[8..].copy_from_slice(&n.to_le_bytes()[..4]);
        }
        let mut s = String::with_capacity(27);
        s.push_str("rf-");
        for b in bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        MerchantRef(s)
    }

    /// The reference text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl TryFrom<String> for MerchantRef {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MerchantRef::new(s)
    }
}

impl From<MerchantRef> for String {
    fn from(r: MerchantRef) -> String {
        r.0
    }
}

impl fmt::Debug for MerchantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for MerchantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MerchantRef {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_ids_are_validated() {
        assert!(PaymentRef::payment("INV-1").validate().is_ok());
        assert!(PaymentRef::payment("").validate().is_err());
        assert!(PaymentRef::payment(" INV").validate().is_err());
        assert!(PaymentRef::payment("a\nb").validate().is_err());
        assert!(PaymentRef::payment("x".repeat(129)).validate().is_err());
        assert!(PaymentRef::item("1").in_payment("").validate().is_err());
    }

    #[test]
    fn display_names_scope_and_parent() {
        assert_eq!(PaymentRef::payment("I").to_string(), "payment:I");
        assert_eq!(
            PaymentRef::item("2").in_payment("1").to_string(),
            "item:2@1"
        );
    }

    #[test]
    fn references_are_validated() {
        assert!(MerchantRef::new("a-Z_0.9:x").is_ok());
        assert!(MerchantRef::new("").is_err());
        assert!(MerchantRef::new("x".repeat(65)).is_err());
        assert!(MerchantRef::new("ı").is_err());
        assert!(MerchantRef::new("a/b").is_err());
    }

    #[test]
    fn generated_references_are_valid_and_distinct() {
        let a = MerchantRef::generate();
        assert!(MerchantRef::new(a.as_str()).is_ok());
        assert_eq!(a.as_str().len(), 27);
        assert_ne!(a, MerchantRef::generate());
    }

    #[test]
    fn serde_validates_references() {
        assert!(serde_json::from_str::<MerchantRef>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<MerchantRef>("\"not ok\"").is_err());
        let p = PaymentRef::item("2").in_payment("1");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<PaymentRef>(&json).unwrap(), p);
    }
}
