//! How a provider writes amounts on the wire: one [`AmountFormat`] per provider format, all fed
//! from the same [`Money`].

use crate::currency::Currency;
use crate::money::{Money, MoneyError};

/// Formats and parses amounts the way one provider's API expects them.
///
/// The idea is hyperswitch's `AmountConvertor`: the core keeps one exact representation
/// ([`Money`]) and each provider crate picks or writes the codec that produces its wire text.
/// Implementations never go through a float.
///
/// ```
/// use refund_core::{AmountFormat, Currency, DecimalAtScale, MinorUnits, Money};
///
/// let m = Money::parse("100.5", Currency::Try)?;
/// assert_eq!(DecimalAtScale.format(&m), "100.50");
/// assert_eq!(MinorUnits.format(&m), "10050");
/// assert_eq!(MinorUnits.parse("10050", Currency::Try)?, m);
/// # Ok::<(), refund_core::MoneyError>(())
/// ```
pub trait AmountFormat {
    /// The wire text for `money`.
    fn format(&self, money: &Money) -> String;

    /// Reads wire text back into [`Money`], with the same validation as [`Money::parse`].
    fn parse(&self, text: &str, currency: Currency) -> Result<Money, MoneyError>;
}

/// A decimal with exactly the currency's number of places: `100.50`, `0.50`, `7` for JPY.
///
/// What SiPay's documentation shows (`"100.50"`), and what most form-style APIs take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecimalAtScale;

impl AmountFormat for DecimalAtScale {
    fn format(&self, money: &Money) -> String {
        // `Money` always stores the currency's scale, so Display prints exactly those places.
        money.amount().to_string()
    }

    fn parse(&self, text: &str, currency: Currency) -> Result<Money, MoneyError> {
        Money::parse(text, currency)
    }
}

/// An integer count of minor units: `10050` for `100.50 TRY` (kuruş), as PayTR-style APIs take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinorUnits;

impl AmountFormat for MinorUnits {
    fn format(&self, money: &Money) -> String {
        money.minor_units().to_string()
    }

    fn parse(&self, text: &str, currency: Currency) -> Result<Money, MoneyError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::Malformed {
                text: crate::currency::truncate(text),
                reason: "expected a whole number of minor units",
            });
        }
        let units: i64 = text.parse().map_err(|_| MoneyError::Overflow)?;
        Money::from_minor_units(units, currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_at_scale_pads_to_the_currency_scale() {
        let cases = [
            ("0.5", "0.50"),
            ("10", "10.00"),
            ("100.50", "100.50"),
            ("1.01", "1.01"),
        ];
        for (input, wire) in cases {
            let m = Money::parse(input, Currency::Try).unwrap();
            assert_eq!(DecimalAtScale.format(&m), wire);
            assert_eq!(DecimalAtScale.parse(wire, Currency::Try).unwrap(), m);
        }
        let yen = Money::parse("7", Currency::Jpy).unwrap();
        assert_eq!(DecimalAtScale.format(&yen), "7");
    }

    #[test]
    fn minor_units_are_whole_numbers() {
        let m = Money::parse("0.07", Currency::Usd).unwrap();
        assert_eq!(MinorUnits.format(&m), "7");
        for bad in ["", "1.0", "-1", "1e2", "x"] {
            assert!(MinorUnits.parse(bad, Currency::Usd).is_err(), "{bad:?}");
        }
        assert!(
            MinorUnits
                .parse("99999999999999999999", Currency::Usd)
                .is_err()
        );
    }
}
