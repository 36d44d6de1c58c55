//! Response handling per provider: a documented answer (bytes) to a receipt or a typed error,
//! through each client's `interpret_refund_answer`, the exact code `refund()` runs once the
//! answer has arrived. Run with `cargo bench --bench parsing`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use refund_core::{Currency, Money, PaymentRef, RefundRequest};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::fixtures::{iyzico, sipay};

fn request(payment: PaymentRef, amount: &str, reference: &str) -> RefundRequest {
    RefundRequest::builder(payment, Money::parse(amount, Currency::Try).unwrap())
        .reference(reference)
        .build()
        .unwrap()
}

fn parsing(c: &mut Criterion) {
    let client = Sipay::new(SipayConfig::new("app-id", "app-secret", "merchant-key")).unwrap();
    // The seed's English success answer, for its invoice.
    let success = request(
        PaymentRef::payment("CPIKQUM29TXMQFF-1769581631"),
        "100.50",
        "r-1",
    );
    let body = sipay::REFUND_SUCCESS_EN.body.as_bytes();
    assert!(client.interpret_refund_answer(&success, 200, body).is_ok());
    c.bench_function("sipay/answer/success → receipt", |b| {
        b.iter(|| client.interpret_refund_answer(black_box(&success), 200, black_box(body)))
    });
    let failed = request(PaymentRef::payment("66955"), "0.50", "r-2");
    let body = sipay::REFUND_FAILED_TR.body.as_bytes();
    assert!(client.interpret_refund_answer(&failed, 200, body).is_err());
    c.bench_function("sipay/answer/49 → declined", |b| {
        b.iter(|| client.interpret_refund_answer(black_box(&failed), 200, black_box(body)))
    });

    let client = Iyzico::new(IyzicoConfig::new("api-key", "secret-key")).unwrap();
    let success = request(PaymentRef::item("11433038"), "0.50", "123456789");
    let body = iyzico::REFUND_SUCCESS.body.as_bytes();
    assert!(client.interpret_refund_answer(&success, 200, body).is_ok());
    c.bench_function("iyzico/answer/success → receipt", |b| {
        b.iter(|| client.interpret_refund_answer(black_box(&success), 200, black_box(body)))
    });
    let body = iyzico::FAILURE_REFUND_DECLINED.body.as_bytes();
    assert!(client.interpret_refund_answer(&success, 200, body).is_err());
    c.bench_function("iyzico/answer/10246 → declined", |b| {
        b.iter(|| client.interpret_refund_answer(black_box(&success), 200, black_box(body)))
    });
}

criterion_group!(benches, parsing);
criterion_main!(benches);
