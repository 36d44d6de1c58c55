//! An amount of money: a [`Decimal`] bound to a [`Currency`], validated on construction.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::currency::{Currency, truncate};

/// Why an amount or currency was rejected.
///
/// Every variant means the value was refused locally: nothing was sent anywhere.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// The currency code is not one this crate knows.
    #[error("unknown currency code {0:?}")]
    UnknownCurrency(String),
    /// The text is not a plain decimal number such as `10.50`.
    #[error("malformed amount {text:?}: {reason}")]
    Malformed {
        /// The offending text (truncated when long).
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The amount is below zero.
    #[error("amount {0} is negative")]
    Negative(Decimal),
    /// The amount has more decimal places than the currency's minor unit allows,
    /// e.g. `10.005 TRY`.
    #[error("amount {amount} has more than {scale} decimal places, the most {currency} allows")]
    TooPrecise {
        /// The amount as given.
        amount: Decimal,
        /// The currency.
        currency: Currency,
        /// The currency's scale.
        scale: u32,
    },
    /// Two amounts in different currencies were combined or compared.
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch {
        /// The left-hand currency.
        left: Currency,
        /// The right-hand currency.
        right: Currency,
    },
    /// The result does not fit in a [`Decimal`].
    #[error("amount overflow")]
    Overflow,
}

/// A non-negative amount of money in a currency, never more precise than the currency allows.
///
/// `Money` is built on [`rust_decimal::Decimal`]: no float ever touches an amount. Construction
/// rejects negative amounts and amounts with more decimal places than the currency has
/// (`10.005 TRY`); trailing zeros are fine (`10.500 TRY` is `10.50 TRY`). The stored decimal
/// always carries exactly the currency's scale, so [`Money::amount`] prints as `10.50`.
///
/// ```
/// use refund_core::{Currency, Money};
///
/// let price = Money::parse("10.5", Currency::Try)?;
/// assert_eq!(price.to_string(), "10.50 TRY");
///
/// let full: Money = "100.00 TRY".parse()?;
/// let left = full.checked_sub(&price)?;
/// assert_eq!(left.amount().to_string(), "89.50");
///
/// assert!(Money::parse("10.005", Currency::Try).is_err()); // finer than a kuruş
/// assert!(Money::parse("-1", Currency::Try).is_err());
/// # Ok::<(), refund_core::MoneyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

/// The longest amount text accepted: far beyond any real refund, short enough to bound work.
const MAX_TEXT: usize = 32;

impl Money {
    /// Builds an amount, rejecting negatives and amounts finer than the currency's minor unit.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative(amount));
        }
        let scale = currency.scale();
        if amount.normalize().scale() > scale {
            return Err(MoneyError::TooPrecise {
                amount,
                currency,
                scale,
            });
        }
        let mut amount = amount.normalize();
        // Exact: the normalised scale is at most the currency's, so this only adds zeros.
        amount.rescale(scale);
        if amount.scale() != scale {
            return Err(MoneyError::Overflow);
        }
        // `-0` normalises to `0`, but keep the sign bit clean for Display and Eq.
        amount.set_sign_positive(true);
        Ok(Money { amount, currency })
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        let mut amount = Decimal::ZERO;
        amount.rescale(currency.scale());
        Money { amount, currency }
    }

    /// Parses a plain decimal such as `"10.50"`, `"10.5"` or `"10"` in `currency`.
    ///
    /// Only ASCII digits with at most one `.` are accepted: no sign, exponent, separators
    /// or spaces. A comma is refused with a hint, since `10,50` is the Turkish way to
    /// write ten lira fifty and must not be misread.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let malformed = |reason| MoneyError::Malformed {
            text: truncate(text),
            reason,
        };
        if text.is_empty() {
            return Err(malformed("empty"));
        }
        if text.len() > MAX_TEXT {
            return Err(malformed("too long"));
        }
        if text.starts_with('-') {
            return match Decimal::from_str(text) {
                Ok(d) if !d.is_zero() => Err(MoneyError::Negative(d)),
                _ => Err(malformed("a sign is not allowed")),
            };
        }
        if text.contains(',') {
            return Err(malformed("use '.' as the decimal separator"));
        }
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(malformed(
                "expected digits with an optional '.' and fraction",
            ));
        }
        let amount = Decimal::from_str(text).map_err(|_| MoneyError::Overflow)?;
        Money::new(amount, currency)
    }

    /// The amount, at exactly the currency's scale (`10.50`, never `10.5`).
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Whether the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// The amount in minor units (kuruş, cents): `10.50 TRY` is `1050`.
    pub fn minor_units(&self) -> i128 {
        // The scale always equals the currency's, so the mantissa is the minor-unit count.
        self.amount.mantissa()
    }

    /// Builds an amount from minor units: `1050` kuruş is `10.50 TRY`.
    pub fn from_minor_units(units: i64, currency: Currency) -> Result<Self, MoneyError> {
        Money::new(Decimal::new(units, currency.scale()), currency)
    }

    /// `self + other`, in the same currency.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::new(sum, self.currency)
    }

    /// `self - other`, in the same currency; an error when the result would be negative.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let diff = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::new(diff, self.currency)
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

/// Amounts compare only within one currency: `10 TRY` and `10 USD` are unordered.
impl PartialOrd for Money {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self.currency == other.currency).then(|| self.amount.cmp(&other.amount))
    }
}

impl fmt::Display for Money {
    /// `10.50 TRY`: the amount at the currency's scale, a space, the ISO code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({} {})", self.amount, self.currency)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// Parses `"10.50 TRY"`: an amount as for [`Money::parse`], one space, an ISO code.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (amount, code) = s.split_once(' ').ok_or_else(|| MoneyError::Malformed {
            text: truncate(s),
            reason: "expected '<amount> <currency>', e.g. '10.50 TRY'",
        })?;
        Money::parse(amount, code.parse()?)
    }
}

#[derive(Serialize, Deserialize)]
struct MoneyRepr<'a> {
    #[serde(borrow)]
    amount: std::borrow::Cow<'a, str>,
    currency: Currency,
}

impl Serialize for Money {
    /// `{"amount":"10.50","currency":"TRY"}`: the amount is a string, so no JSON reader
    /// ever turns it into a float.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MoneyRepr {
            amount: self.amount.to_string().into(),
            currency: self.currency,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = MoneyRepr::deserialize(deserializer)?;
        Money::parse(&repr.amount, repr.currency).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_(s: &str) -> Result<Money, MoneyError> {
        Money::parse(s, Currency::Try)
    }

    #[test]
    fn parses_plain_decimals_at_the_currency_scale() {
        assert_eq!(try_("10.50").unwrap().amount().to_string(), "10.50");
        assert_eq!(try_("10.5").unwrap().amount().to_string(), "10.50");
        assert_eq!(try_("10").unwrap().amount().to_string(), "10.00");
        assert_eq!(try_("0.01").unwrap().minor_units(), 1);
        assert_eq!(try_("007.10").unwrap().amount().to_string(), "7.10");
    }

    #[test]
    fn trailing_zeros_beyond_the_scale_are_not_extra_precision() {
        assert_eq!(try_("10.500").unwrap(), try_("10.5").unwrap());
    }

    #[test]
    fn over_precise_amounts_are_rejected() {
        assert!(matches!(
            try_("10.005"),
            Err(MoneyError::TooPrecise { scale: 2, .. })
        ));
        assert!(matches!(
            Money::parse("1.5", Currency::Jpy),
            Err(MoneyError::TooPrecise { scale: 0, .. })
        ));
        assert!(Money::new(Decimal::new(1, 3), Currency::Usd).is_err());
    }

    #[test]
    fn negative_amounts_are_rejected() {
        assert!(matches!(try_("-1"), Err(MoneyError::Negative(_))));
        assert!(matches!(
            Money::new(Decimal::new(-5, 1), Currency::Try),
            Err(MoneyError::Negative(_))
        ));
    }

    #[test]
    fn negative_zero_is_zero() {
        let z = Money::new(Decimal::new(-0, 2), Currency::Try).unwrap();
        assert!(z.is_zero());
        assert_eq!(z.to_string(), "0.00 TRY");
    }

    #[test]
    fn malformed_text_is_rejected_with_a_reason() {
        for bad in [
            "", " 1", "1 ", "+1", "1e3", "1.", ".5", "1.2.3", "abc", "1_000", "٣", "0x10", "NaN",
            "--1", "1-",
        ] {
            assert!(
                matches!(try_(bad), Err(MoneyError::Malformed { .. })),
                "{bad:?} was accepted"
            );
        }
        let comma = try_("10,50").unwrap_err().to_string();
        assert!(comma.contains("'.'"), "{comma}");
    }

    #[test]
    fn overlong_and_overflowing_text_is_rejected() {
        assert!(matches!(
            try_(&"9".repeat(33)),
            Err(MoneyError::Malformed { .. })
        ));
        assert!(matches!(try_(&"9".repeat(31)), Err(MoneyError::Overflow)));
    }

    #[test]
    fn checked_arithmetic_stays_in_one_currency() {
        let a = try_("10.25").unwrap();
        let b = try_("0.75").unwrap();
        assert_eq!(a.checked_add(&b).unwrap(), try_("11").unwrap());
        assert_eq!(a.checked_sub(&b).unwrap(), try_("9.5").unwrap());
        assert!(matches!(b.checked_sub(&a), Err(MoneyError::Negative(_))));
        let usd = Money::parse("1", Currency::Usd).unwrap();
        assert!(matches!(
            a.checked_add(&usd),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        let max = Money::new(Decimal::MAX, Currency::Jpy).unwrap();
        let one = Money::parse("1", Currency::Jpy).unwrap();
        assert_eq!(max.checked_add(&one), Err(MoneyError::Overflow));
    }

    #[test]
    fn ordering_is_only_within_a_currency() {
        let a = try_("1").unwrap();
        let b = try_("2").unwrap();
        assert!(a < b);
        let usd = Money::parse("1", Currency::Usd).unwrap();
        assert_eq!(a.partial_cmp(&usd), None);
    }

    #[test]
    fn minor_units_round_trip() {
        let m = Money::from_minor_units(1050, Currency::Try).unwrap();
        assert_eq!(m.to_string(), "10.50 TRY");
        assert_eq!(m.minor_units(), 1050);
        assert!(Money::from_minor_units(-1, Currency::Try).is_err());
        assert_eq!(
            Money::from_minor_units(7, Currency::Jpy)
                .unwrap()
                .to_string(),
            "7 JPY"
        );
    }

    #[test]
    fn display_and_from_str_round_trip() {
        let m: Money = "100.5 EUR".parse().unwrap();
        assert_eq!(m.to_string(), "100.50 EUR");
        assert_eq!(m.to_string().parse::<Money>().unwrap(), m);
        assert!("100.5".parse::<Money>().is_err());
        assert!("100.5 XYZ".parse::<Money>().is_err());
    }

    #[test]
    fn serde_keeps_the_amount_a_string_and_validates_on_the_way_in() {
        let m = try_("0.5").unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"0.50","currency":"TRY"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Money>(r#"{"amount":"0.505","currency":"TRY"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":0.5,"currency":"TRY"}"#).is_err());
    }
}
