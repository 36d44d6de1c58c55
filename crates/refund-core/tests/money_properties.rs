//! Properties of Money parsing and formatting: exact round trips, no precision lost, and
//! every provider format's output readable back as the same amount.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use refund_core::{AmountFormat, Currency, Decimal, DecimalAtScale, MinorUnits, Money};

fn currency() -> impl Strategy<Value = Currency> {
    proptest::sample::select(Currency::ALL.to_vec())
}

/// Any valid amount: up to 15 integer digits, at most the currency's scale.
fn money() -> impl Strategy<Value = Money> {
    (currency(), 0i64..1_000_000_000_000_000)
        .prop_map(|(c, units)| Money::from_minor_units(units, c).unwrap())
}

proptest! {
    #[test]
    fn display_then_from_str_is_the_identity(m in money()) {
        prop_assert_eq!(m.to_string().parse::<Money>().unwrap(), m);
    }

    #[test]
    fn every_format_reads_back_as_the_same_amount(m in money()) {
        let c = m.currency();
        prop_assert_eq!(DecimalAtScale.parse(&DecimalAtScale.format(&m), c).unwrap(), m);
        prop_assert_eq!(MinorUnits.parse(&MinorUnits.format(&m), c).unwrap(), m);
    }

    #[test]
    fn decimal_at_scale_always_prints_exactly_the_currency_scale(m in money()) {
        let text = DecimalAtScale.format(&m);
        let decimals = text.split_once('.').map_or(0, |(_, f)| f.len());
        prop_assert_eq!(decimals, usize::try_from(m.currency().scale()).unwrap());
        prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    }

    #[test]
    fn minor_units_are_exact(m in money()) {
        let back = Decimal::from_i128_with_scale(m.minor_units(), m.currency().scale());
        prop_assert_eq!(back, m.amount());
    }

    #[test]
    fn one_digit_past_the_scale_is_always_rejected(m in money(), extra in 1u8..10) {
        let scale = m.currency().scale();
        let mut text = m.amount().to_string();
        if scale == 0 { text.push('.'); }
        text.push(char::from(b'0' + extra));
        prop_assert!(Money::parse(&text, m.currency()).is_err(), "{} accepted", text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,40}", c in currency()) {
        let _ = Money::parse(&text, c);
        let _ = text.parse::<Money>();
        let _ = MinorUnits.parse(&text, c);
    }

    #[test]
    fn addition_then_subtraction_returns_the_start(a in money(), b in money()) {
        let b = Money::from_minor_units(i64::try_from(b.minor_units()).unwrap(), a.currency()).unwrap();
        let sum = a.checked_add(&b).unwrap();
        prop_assert_eq!(sum.checked_sub(&b).unwrap(), a);
    }
}
