//! The per-request signing costs: SiPay's hash_key and iyzico's IYZWSv2 signature.
//!
//! Targets on the project's 2-core machine: hash_key ≤ 3 µs, iyzico signature ≤ 2 µs
//! (the physical floor is about 1 µs each). Run with `cargo bench --bench signing`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use refund_iyzico::signature::{self, RequestSigner};
use refund_sipay::hash_key::{self, HashKeySigner};

const APP_SECRET: &str = "b46a67571aa1e7ef5641dc3fa6f1712a";
const MERCHANT_KEY: &str = "$2y$10$HmRgYosneqcwHj.UH7upGuyCZqpQ1ITgSMj9Vvxn.t6f.Vdf2SQFO";
const IYZICO_BODY: &[u8] = br#"{"locale":"tr","conversationId":"rf-0123456789abcdef01234567","paymentTransactionId":"11433038","price":"10.5","ip":"85.34.78.112","currency":"TRY"}"#;

fn sipay(c: &mut Criterion) {
    let signer = HashKeySigner::new(APP_SECRET);
    let fields = ["100.50", "INV-2026-0001", MERCHANT_KEY];
    c.bench_function("sipay/hash_key/sign (client path, OS RNG iv+salt)", |b| {
        b.iter(|| signer.sign(black_box(&fields)))
    });
    let key = signer.sign(&fields);
    c.bench_function("sipay/hash_key/validate", |b| {
        b.iter(|| signer.validate(black_box(&key)))
    });
    c.bench_function(
        "sipay/hash_key/generate (one-off, derives the password)",
        |b| b.iter(|| hash_key::generate(black_box(APP_SECRET), black_box(&fields))),
    );
}

fn iyzico(c: &mut Criterion) {
    let signer = RequestSigner::new("sandbox-wbwpzKIiplZxI3hh5ALI4FJyAcZKL6kq");
    c.bench_function("iyzico/signature (client path)", |b| {
        b.iter(|| {
            signer.signature_hex(
                black_box("1700000000123456789"),
                "/payment/refund",
                black_box(IYZICO_BODY),
            )
        })
    });
    c.bench_function("iyzico/authorization_header (client path)", |b| {
        b.iter(|| {
            signer.authorization_header(
                "sandbox-afXhZPW0MQlE4dCUUlHcEopnMBgXnAZI",
                black_box("1700000000123456789"),
                "/payment/refund",
                black_box(IYZICO_BODY),
            )
        })
    });
    c.bench_function("iyzico/signature_hex (one-off, keys the HMAC)", |b| {
        b.iter(|| {
            signature::signature_hex(
                black_box("sandbox-wbwpzKIiplZxI3hh5ALI4FJyAcZKL6kq"),
                "1700000000123456789",
                "/payment/refund",
                IYZICO_BODY,
            )
        })
    });
}

criterion_group!(benches, sipay, iyzico);
criterion_main!(benches);
