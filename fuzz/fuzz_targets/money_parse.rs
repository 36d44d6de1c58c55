//! `Money::parse` for every currency and `"<amount> <CODE>".parse::<Money>()` on arbitrary
//! text: never a panic, and every accepted value round-trips through Display/FromStr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refund_core::{Currency, Money};

fn round_trips(money: Money) {
    let shown = money.to_string();
    let back: Money = match shown.parse() {
        Ok(back) => back,
        Err(e) => panic!("{shown:?} (Display of {money:?}) does not parse back: {e}"),
    };
    assert_eq!(back, money, "{shown:?} parses back to a different value");
}

fuzz_target!(|s: &str| {
    for &currency in Currency::ALL {
        if let Ok(money) = Money::parse(s, currency) {
            assert_eq!(money.currency(), currency);
            round_trips(money);
        }
    }
    if let Ok(money) = s.parse::<Money>() {
        round_trips(money);
    }
});
