//! iyzico refund answers: the first two bytes pick an HTTP status in 100..600, the rest is the
//! body. `interpret_refund_answer` must never panic, and a receipt must carry exactly the
//! requested amount.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use refund_core::{Currency, Money, PaymentRef, RefundRequest};
use refund_iyzico::{Iyzico, IyzicoConfig};

struct Setup {
    client: Iyzico,
    request: RefundRequest,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let client = Iyzico::new(IyzicoConfig::new("api-key", "secret-key"))
        .expect("the fixed configuration is valid");
    let amount = Money::parse("10.50", Currency::Try).expect("10.50 TRY is valid");
    let request = RefundRequest::builder(PaymentRef::item("11433038"), amount)
        .reference("rf-1")
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
