//! Refund lookup answers of both providers (SiPay check status, iyzico payment details): the
//! first byte picks the provider (even: SiPay, odd: iyzico), the next two an HTTP status in
//! 100..600, the rest is the body. `interpret_lookup_answer` must never panic, and a state it
//! returns must be about the payment asked for, in one currency throughout. The payments are
//! those of the seeded fixtures (`seed.sh`), so the fuzzer starts from answers that match.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use refund_core::{MerchantRef, PaymentRef, RefundError, RefundState};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::{Sipay, SipayConfig};

struct Setup {
    sipay: Sipay,
    iyzico: Iyzico,
    invoice: PaymentRef,
    item: PaymentRef,
    reference: MerchantRef,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| Setup {
    sipay: Sipay::new(SipayConfig::new("app-id", "app-secret", "merchant-key"))
        .expect("the fixed SiPay configuration is valid"),
    iyzico: Iyzico::new(IyzicoConfig::new("api-key", "secret-key"))
        .expect("the fixed iyzico configuration is valid"),
    invoice: PaymentRef::payment("CPIKQUM29TXMQFF-1769581631"),
    item: PaymentRef::item("26120001").in_payment("25180208"),
    reference: MerchantRef::new("rf-1").expect("rf-1 is a valid reference"),
});

fn check(asked: &PaymentRef, answer: Result<RefundState, RefundError>, reference: &MerchantRef) {
    let Ok(state) = answer else { return };
    assert_eq!(&state.payment, asked, "a state for another payment");
    let currency = state.refunded.currency();
    for record in &state.refunds {
        assert_eq!(record.amount.currency(), currency, "records in two currencies");
    }
    if let Some(paid) = state.paid {
        assert_eq!(paid.currency(), currency, "paid and refunded in two currencies");
    }
    let _ = state.remaining();
    let _ = state.find(reference);
}

fuzz_target!(|data: &[u8]| {
    let [which, hi, lo, body @ ..] = data else {
        return;
    };
    let status = 100 + u16::from_be_bytes([*hi, *lo]) % 500;
    let s = &*SETUP;
    if which % 2 == 0 {
        let answer = s.sipay.interpret_lookup_answer(&s.invoice, status, body);
        check(&s.invoice, answer, &s.reference);
    } else {
        let answer = s.iyzico.interpret_lookup_answer(&s.item, status, body);
        check(&s.item, answer, &s.reference);
    }
});
