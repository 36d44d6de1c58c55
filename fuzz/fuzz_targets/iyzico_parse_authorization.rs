//! iyzico `Authorization` header parsing (used by the simulators and test matchers on
//! headers from outside): never a panic; a parsed header has three non-empty parts, and a
//! header we build from those parts parses back to the same api key and random key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refund_iyzico::signature::{authorization_header, parse_authorization};

fuzz_target!(|s: &str| {
    let Some(parsed) = parse_authorization(s) else {
        return;
    };
    assert!(!parsed.api_key.is_empty());
    assert!(!parsed.random_key.is_empty());
    assert!(!parsed.signature.is_empty());
    if parsed.api_key.contains("&randomKey:") || parsed.random_key.contains("&signature:") {
        return; // ambiguous on the wire; the first separator wins
    }
    let header = authorization_header(
        &parsed.api_key,
        "secret-key",
        &parsed.random_key,
        "/payment/refund",
        b"{}",
    );
    let again = parse_authorization(&header);
    assert_eq!(
        again
            .as_ref()
            .map(|p| (p.api_key.as_str(), p.random_key.as_str())),
        Some((parsed.api_key.as_str(), parsed.random_key.as_str())),
        "{header:?} does not parse back"
    );
});
