//! Money parsing and the providers' amount formats. Run with `cargo bench --bench money`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use refund_core::{AmountFormat, Currency, DecimalAtScale, Money};

fn money(c: &mut Criterion) {
    c.bench_function("money/parse \"1234.50\" TRY", |b| {
        b.iter(|| Money::parse(black_box("1234.50"), Currency::Try))
    });
    c.bench_function("money/parse \"1234.50 TRY\" (FromStr)", |b| {
        b.iter(|| black_box("1234.50 TRY").parse::<Money>())
    });
    let m = Money::parse("1234.5", Currency::Try).unwrap_or_else(|_| Money::zero(Currency::Try));
    c.bench_function("money/format sipay (DecimalAtScale \"1234.50\")", |b| {
        b.iter(|| DecimalAtScale.format(black_box(&m)))
    });
    c.bench_function("money/format iyzico (\"1234.5\")", |b| {
        b.iter(|| refund_iyzico::price::format_price(black_box(&m)))
    });
    c.bench_function("money/checked_add", |b| {
        b.iter(|| black_box(&m).checked_add(black_box(&m)))
    });
}

criterion_group!(benches, money);
criterion_main!(benches);
