//! Properties of the hash_key: whatever the fields, generate → validate gives them back, the
//! output is one line without '/', and arbitrary input to the validator is an error, never a
//! panic.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use refund_sipay::hash_key::{HashKeySigner, generate, validate_hash_key};

/// Field text as SiPay sees it: anything printable except the '|' separator.
fn field() -> impl Strategy<Value = String> {
    "[^|\\r\\n]{0,70}"
}

proptest! {
    #[test]
    fn generate_then_validate_returns_the_fields(
        secret in "[ -~]{1,64}",
        a in field(), b in field(), c in field(),
    ) {
        let key = generate(&secret, &[&a, &b, &c]);
        prop_assert!(!key.contains('/') && !key.contains('\n') && !key.contains(' '));
        prop_assert_eq!(validate_hash_key(&key, &secret).unwrap(), vec![a, b, c]);
    }

    #[test]
    fn a_different_secret_never_yields_the_fields(
        secret in "[a-z0-9]{32}", other in "[a-z0-9]{32}", amount in "[0-9]{1,6}\\.[0-9]{2}",
    ) {
        prop_assume!(secret != other);
        let key = generate(&secret, &[&amount, "INV-1", "merchant"]);
        let opened = validate_hash_key(&key, &other);
        prop_assert!(opened.map_or(true, |f| f != [amount.as_str(), "INV-1", "merchant"]));
    }

    #[test]
    fn arbitrary_input_is_an_error_not_a_panic(input in ".{0,200}") {
        let signer = HashKeySigner::new("secret");
        let _ = signer.validate(&input);
    }

    #[test]
    fn mangled_keys_are_rejected(pos in 0usize..80, byte in proptest::num::u8::ANY) {
        let signer = HashKeySigner::new("secret");
        let key = signer.sign(&["10.00", "INV-1", "merchant"]);
        let mut bytes = key.into_bytes();
        let i = pos % bytes.len();
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            // Either rejected, or (rarely, e.g. a changed salt/iv byte that still decrypts
            // with valid padding) different fields: never the original fields silently.
            if let Ok(fields) = signer.validate(&text) {
                prop_assert_ne!(fields, vec!["10.00", "INV-1", "merchant"]);
            }
        }
    }
}
