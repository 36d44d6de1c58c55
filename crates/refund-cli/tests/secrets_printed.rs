//! Secrets the `refund` binary must never print, tried through the binary: the merchant key a
//! hash_key holds (`refund sipay verify-hash-key`), and a password in a malformed base URL of
//! either provider, from the environment or from `--base-url` (issue 23).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_refund");

/// The merchant key the tests configure: long, and unlike anything else in an output.
const MERCHANT_KEY: &str = "$2y$10$Zq9XwQ3mKeyOfTheMerchantNeverPrintedXy7uV1sT0pLmNb";
const APP_SECRET: &str = "app-secret-for-the-verify-test";
/// The password in the malformed base URLs.
const PASSWORD: &str = "pw-Secr3tPassw0rd";

struct Out {
    code: i32,
    all: String,
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let output = cmd
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run refund");
    Out {
        code: output.status.code().expect("exited with a code"),
        all: format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn hash_key() -> String {
    refund_sipay::hash_key::generate(APP_SECRET, &["10.50", "INV-1", MERCHANT_KEY])
}

#[test]
fn verify_hash_key_says_the_merchant_key_part_matches_and_shows_it_only_masked() {
    let key = hash_key();
    let env = [
        ("SIPAY_APP_SECRET", APP_SECRET),
        ("SIPAY_MERCHANT_KEY", MERCHANT_KEY),
    ];
    for output in [&[][..], &["--output", "json"]] {
        let mut args = output.to_vec();
        args.extend(["sipay", "verify-hash-key", "--hash-key", key.as_str()]);
        let out = run(&args, &env);
        assert_eq!(out.code, 0, "{}", out.all);
        assert!(!out.all.contains(MERCHANT_KEY), "{}", out.all);
        assert!(
            !out.all.contains(&MERCHANT_KEY[..12]),
            "more than 4 characters shown: {}",
            out.all
        );
        assert!(out.all.contains("matches the configured"), "{}", out.all);
        // The fields that are not secret, and the key masked: first 4 characters and length.
        assert!(
            out.all.contains("10.50") && out.all.contains("INV-1"),
            "{}",
            out.all
        );
        let masked = format!("$2y$… ({} characters)", MERCHANT_KEY.len());
        assert!(out.all.contains(&masked), "{}", out.all);
    }
}

#[test]
fn verify_hash_key_says_a_different_merchant_key_does_not_match_without_printing_either() {
    let key = hash_key();
    let other = "$2y$10$AnotherMerchantKeyThatIsConfiguredInsteadOfTheRightOne";
    let env = [
        ("SIPAY_APP_SECRET", APP_SECRET),
        ("SIPAY_MERCHANT_KEY", other),
    ];
    let out = run(&["sipay", "verify-hash-key", "--hash-key", &key], &env);
    assert_eq!(out.code, 0, "{}", out.all);
    assert!(out.all.contains("does NOT match"), "{}", out.all);
    assert!(!out.all.contains(MERCHANT_KEY), "{}", out.all);
    assert!(!out.all.contains(other), "{}", out.all);

    // No merchant key configured: nothing to compare with, the decrypted one still masked.
    let out = run(
        &["sipay", "verify-hash-key", "--hash-key", &key],
        &[("SIPAY_APP_SECRET", APP_SECRET)],
    );
    assert_eq!(out.code, 0, "{}", out.all);
    assert!(
        out.all.contains("no merchant key to compare"),
        "{}",
        out.all
    );
    assert!(!out.all.contains(MERCHANT_KEY), "{}", out.all);
}

/// Base URLs with a password in them, malformed or not: none may be echoed.
fn bad_urls() -> Vec<String> {
    vec![
        format!("http//user:{PASSWORD}@host"),
        format!("https//user:{PASSWORD}@host/"),
        format!("https://user:{PASSWORD}@host/"),
        format!("http://user:{PASSWORD}@example.com/"),
        format!("https://host.example/?token={PASSWORD}"),
        format!("https://host.example/#{PASSWORD}"),
        format!("user:{PASSWORD}"),
        PASSWORD.to_owned(),
    ]
}

fn assert_not_echoed(out: &Out, url: &str) {
    assert_eq!(out.code, 2, "{url}: {}", out.all);
    assert!(!out.all.contains(PASSWORD), "{url}: {}", out.all);
    assert!(!out.all.contains("Secr3t"), "{url}: {}", out.all);
    assert!(!out.all.contains("user"), "{url}: {}", out.all);
}

#[test]
fn a_sipay_base_url_with_a_password_is_never_echoed_from_the_environment_or_the_flag() {
    let secrets = [
        ("SIPAY_APP_ID", "1"),
        ("SIPAY_APP_SECRET", APP_SECRET),
        ("SIPAY_MERCHANT_KEY", MERCHANT_KEY),
    ];
    for url in bad_urls() {
        let mut env = secrets.to_vec();
        env.push(("SIPAY_BASE_URL", &url));
        let out = run(&["sipay", "status", "--invoice-id", "INV-1"], &env);
        assert_not_echoed(&out, &url);
        let out = run(
            &[
                "sipay",
                "status",
                "--invoice-id",
                "INV-1",
                "--base-url",
                &url,
            ],
            &secrets,
        );
        assert_not_echoed(&out, &url);
    }
}

#[test]
fn an_iyzico_base_url_with_a_password_is_never_echoed_from_the_environment_or_the_flag() {
    let secrets = [
        ("IYZICO_API_KEY", "sandbox-api-key"),
        ("IYZICO_SECRET_KEY", "sandbox-secret-key"),
    ];
    for url in bad_urls() {
        let mut env = secrets.to_vec();
        env.push(("IYZICO_BASE_URL", &url));
        let out = run(&["iyzico", "status", "--payment-id", "25180001"], &env);
        assert_not_echoed(&out, &url);
        let out = run(
            &[
                "iyzico",
                "status",
                "--payment-id",
                "25180001",
                "--base-url",
                &url,
            ],
            &secrets,
        );
        assert_not_echoed(&out, &url);
    }
}
