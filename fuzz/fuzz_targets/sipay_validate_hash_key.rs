//! SiPay `hash_key` validation on arbitrary text: a typed error or the decrypted fields,
//! never a panic (it decodes base64-ish text, derives a key and decrypts AES-CBC).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let _ = refund_sipay::hash_key::validate_hash_key(s, "secret");
});
