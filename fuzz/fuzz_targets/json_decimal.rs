//! `refund_core::json::decimal` on arbitrary bytes: a JSON number or string into an exact
//! Decimal, or a serde error — never a panic. An accepted value's Display must parse back to
//! the same Decimal.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Wire {
    #[serde(deserialize_with = "refund_core::json::decimal")]
    price: Decimal,
    #[serde(default, deserialize_with = "refund_core::json::option_decimal")]
    paid_price: Option<Decimal>,
}

fn round_trips(d: Decimal) {
    let shown = d.to_string();
    assert_eq!(
        Decimal::from_str(&shown).ok(),
        Some(d),
        "{shown:?} does not round-trip"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(wire) = serde_json::from_slice::<Wire>(data) {
        round_trips(wire.price);
        if let Some(paid) = wire.paid_price {
            round_trips(paid);
        }
    }
    // Also the bare value, so the fuzzer need not discover the wrapper object.
    let wrapped = [br#"{"price":"#.as_slice(), data, b"}"].concat();
    if let Ok(wire) = serde_json::from_slice::<Wire>(&wrapped) {
        round_trips(wire.price);
    }
});
