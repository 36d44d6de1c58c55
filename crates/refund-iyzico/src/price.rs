//! Prices as the official SDKs write them: the shortest decimal, with at least one digit
//! after the point (`"10.50"` → `"10.5"`, `"10"` → `"10.0"`, `"0.5"` → `"0.5"`).
//!
//! The node SDK does `parseFloat(price).toString()` and appends `".0"` when there is no dot
//! (iyzipay-node 2.0.69 `lib/utils.js`, `formatPrice`); the Python and PHP SDKs strip
//! trailing zeros the same way. We compute the same text from the [`Decimal`] by
//! normalising it, never through a float, so amounts beyond a float's 15–17 significant
//! digits stay exact (where the SDK would round them; no real refund is that large).
//!
//! ```
//! use refund_core::{Currency, Money};
//! use refund_iyzico::price::{format_decimal, format_price};
//!
//! assert_eq!(format_price(&Money::parse("10.50", Currency::Try)?), "10.5");
//! assert_eq!(format_price(&Money::parse("10", Currency::Try)?), "10.0");
//! assert_eq!(format_decimal("100.10".parse()?), "100.1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use refund_core::{Decimal, Money};

/// The iyzico text of an amount (see the [module docs](self)).
pub fn format_price(money: &Money) -> String {
    format_decimal(money.amount())
}

/// The iyzico text of a decimal: trailing zeros removed, `.0` added to whole numbers.
pub fn format_decimal(d: Decimal) -> String {
    let mut n = d.normalize();
    if n.is_zero() {
        // `-0` normalises to `-0` in some builds; the SDK prints `0.0`.
        n.set_sign_positive(true);
    }
    let mut text = n.to_string();
    if n.scale() == 0 {
        text.push_str(".0");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use refund_core::Currency;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn prices_match_the_sdk_format() {
        for (input, want) in [
            ("10.50", "10.5"),
            ("10", "10.0"),
            ("0.5", "0.5"),
            ("100.10", "100.1"),
            ("1234.00", "1234.0"),
            ("0.01", "0.01"),
            ("0.10", "0.1"),
            ("0", "0.0"),
            ("0.00", "0.0"),
            ("15", "15.0"),
            ("1000000.99", "1000000.99"),
            ("007.10", "7.1"),
        ] {
            assert_eq!(format_decimal(d(input)), want, "{input}");
        }
    }

    #[test]
    fn money_at_currency_scale_is_formatted_without_trailing_zeros() {
        let m = Money::parse("25.00", Currency::Try).unwrap();
        assert_eq!(m.amount().to_string(), "25.00");
        assert_eq!(format_price(&m), "25.0");
        let yen = Money::parse("500", Currency::Jpy).unwrap();
        assert_eq!(format_price(&yen), "500.0");
    }

    #[test]
    fn large_amounts_stay_exact() {
        assert_eq!(
            format_decimal(d("12345678901234567.89")),
            "12345678901234567.89"
        );
    }
}
