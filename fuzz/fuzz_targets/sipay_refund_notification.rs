//! SiPay refund notifications (the refund webhook's form body) on arbitrary bytes: a typed
//! error or a verified notification, never a panic (it decodes the form, parses the amount,
//! decrypts the hash_key and compares four fields). A notification that verifies must be one
//! the secret signed: its fields come back unchanged through the provider-neutral type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refund_core::RefundNotification;
use refund_sipay::notification::NotificationVerifier;

fuzz_target!(|data: &[u8]| {
    let verifier = NotificationVerifier::new("secret");
    if let Ok(notice) = verifier.verify_form(data) {
        assert!(!notice.amount.amount().is_zero());
        let neutral = RefundNotification::from(notice.clone());
        assert_eq!(neutral.payment.id(), notice.invoice_id);
        assert_eq!(
            neutral.provider_reference.as_deref(),
            Some(notice.order_id.as_str())
        );
        assert_eq!(neutral.amount, notice.amount);
    }
});
