//! SiPay refund answers: the first two bytes pick an HTTP status in 100..600, the rest is the
//! body. `interpret_refund_answer` must never panic, and a receipt must carry exactly the
//! requested amount (a parser that invents or rounds an amount is a bug).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use refund_core::{Currency, Money, PaymentRef, RefundRequest};
use refund_sipay::{Sipay, SipayConfig};

struct Setup {
    client: Sipay,
    request: RefundRequest,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let client = Sipay::new(SipayConfig::new("app-id", "app-secret", "merchant-key"))
        .expect("the fixed configuration is valid");
    let amount = Money::parse("10.50", Currency::Try).expect("10.50 TRY is valid");
    let request = RefundRequest::builder(PaymentRef::payment("INV-1"), amount)
        .build()
        .expect("the fixed request is valid");
    Setup { client, request }
});

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_be_bytes([data[0], data[1]]) % 500;
    let body = &data[2..];
    let setup = &*SETUP;
    if let Ok(receipt) = setup
        .client
        .interpret_refund_answer(&setup.request, status, body)
    {
        assert_eq!(
            receipt.amount,
            setup.request.amount(),
            "receipt amount differs from the request (status {status})"
        );
    }
});
