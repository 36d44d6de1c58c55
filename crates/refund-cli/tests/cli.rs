//! End-to-end tests of the `refund` binary against the in-process simulators.
//!
//! Every test runs the real binary (`CARGO_BIN_EXE_refund`) with a cleared environment and
//! only the variables it needs, so nothing from the developer's shell (proxies, real
//! credentials) leaks in. Commands run on the blocking pool so the simulators keep serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use refund_core::{Currency, Decimal};
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};
use serde_json::Value;

mod support;
use support::*;

fn both_env(sipay: &SipaySim, iyzico: &IyzicoSim) -> Env {
    let mut env = sipay_env(sipay);
    env.extend(iyzico_env(iyzico));
    env
}

/// A loopback URL nothing listens on: a listener's port, after the listener is dropped.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refund-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn help_works_on_every_command_and_a_usage_error_exits_2() {
    let env = Env::new();
    for args in [
        &["--help"][..],
        &["sandbox", "--help"],
        &["sipay", "--help"],
        &["sipay", "refund", "--help"],
        &["sipay", "status", "--help"],
        &["sipay", "hash-key", "--help"],
        &["sipay", "verify-hash-key", "--help"],
        &["sipay", "verify-notification", "--help"],
        &["iyzico", "--help"],
        &["iyzico", "refund", "--help"],
        &["iyzico", "cancel", "--help"],
        &["iyzico", "status", "--help"],
        &["iyzico", "auth-header", "--help"],
        &["batch", "--help"],
        &["bench", "--help"],
        &["completions", "--help"],
        &["outbox", "--help"],
        &["outbox", "status", "--help"],
    ] {
        let out = run(args, &env).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(out.stdout.contains("Usage"), "{args:?}: {out:?}");
        // One example, a command line to copy.
        let example = out
            .stdout
            .split_once("Example:\n")
            .map(|(_, e)| e.trim_start())
            .unwrap_or_else(|| panic!("{args:?} shows no example: {out:?}"));
        assert!(example.starts_with("refund "), "{args:?}: {out:?}");
    }
    for args in [
        &["no-such-command"][..],
        &["sipay", "refund"],
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "I",
            "--amount",
            "1",
            "--timeout",
            "0",
        ],
        &["iyzico", "refund", "--amount", "1"],
        &[],
    ] {
        let out = run(args, &env).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

// ---------------------------------------------------------------------------------------
// sipay
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sipay_refund_prints_a_receipt_and_exits_0() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-OK", dec("100.00"), Currency::Try);
    let out = run(
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "INV-OK",
            "--amount",
            "25.50",
            "--reference",
            "cli-ref-1",
            "--timeout",
            "5",
        ],
        &sipay_env(&sim),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let receipt = out.json();
    assert_eq!(receipt["amount"]["amount"], "25.50", "{receipt}");
    assert_eq!(receipt["amount"]["currency"], "TRY", "{receipt}");
    assert_eq!(receipt["reference"], "cli-ref-1", "{receipt}");
    assert_eq!(receipt["provider"], "sipay", "{receipt}");
    let payment = sim.payment("INV-OK").unwrap();
    assert_eq!(payment.refunded(), dec("25.50"));
    assert_eq!(
        payment.refunds[0].refund_transaction_id.as_deref(),
        Some("cli-ref-1")
    );
}

#[tokio::test]
async fn sipay_over_refund_exits_3_with_one_line_on_stderr() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-OVER", dec("10.00"), Currency::Try);
    let out = run(
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "INV-OVER",
            "--amount",
            "10.01",
            "--timeout",
            "5",
        ],
        &sipay_env(&sim),
    )
    .await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    assert_eq!(sim.payment("INV-OVER").unwrap().refunded(), Decimal::ZERO);
}

#[tokio::test]
async fn sipay_timeout_exits_4_and_says_how_to_reconcile() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-SLOW", dec("10.00"), Currency::Try);
    sim.arm(Fault::Timeout, 1);
    let started = Instant::now();
    let out = run(
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "INV-SLOW",
            "--amount",
            "1.00",
            "--reference",
            "slow-ref",
            "--timeout",
            "1",
        ],
        &sipay_env(&sim),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        out.stderr
            .contains("refund sipay status --invoice-id INV-SLOW"),
        "{out:?}"
    );
    assert!(out.stderr.contains("slow-ref"), "{out:?}");
    assert!(out.stderr.contains("Do not resend"), "{out:?}");
}

#[tokio::test]
async fn sipay_connection_refused_exits_75_and_sends_nothing() {
    let sim = SipaySim::start().await.unwrap();
    let url = closed_port_url();
    let out = run(
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "INV-1",
            "--amount",
            "1.00",
            "--base-url",
            &url,
            "--timeout",
            "2",
        ],
        &sipay_env(&sim),
    )
    .await;
    assert_eq!(out.code, 75, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr.contains("try again later"), "{out:?}");
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn sipay_invalid_amount_exits_2_and_sends_nothing() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    for amount in ["10.005", "-1", "abc"] {
        let out = run(
            &[
                "sipay",
                "refund",
                "--invoice-id",
                "INV-1",
                &format!("--amount={amount}"),
            ],
            &sipay_env(&sim),
        )
        .await;
        assert_eq!(out.code, 2, "{amount}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    assert_eq!(sipay_refund_requests(&sim), 0);
    assert!(sim.requests().is_empty(), "not even a token request");
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), Decimal::ZERO);
}

#[tokio::test]
async fn sipay_status_lists_the_refund_by_reference() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-ST", dec("50.00"), Currency::Try);
    let env = sipay_env(&sim);
    let out = run(
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "INV-ST",
            "--amount",
            "5.00",
            "--reference",
            "status-ref-1",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(&["sipay", "status", "--invoice-id", "INV-ST"], &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    let state = out.json();
    assert_eq!(state["refunded"]["amount"], "5.00", "{state}");
    assert!(out.stdout.contains("status-ref-1"), "{out:?}");
}

#[tokio::test]
async fn hash_key_round_trips_through_verify_hash_key() {
    let env: Env = vec![
        ("SIPAY_APP_SECRET".into(), SipaySim::APP_SECRET.into()),
        ("SIPAY_MERCHANT_KEY".into(), SipaySim::MERCHANT_KEY.into()),
    ];
    let out = run(
        &[
            "sipay",
            "hash-key",
            "--amount",
            "100.50",
            "--invoice-id",
            "INV-HK",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let key = out.stdout.trim().to_owned();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(!key.contains('\n') && !key.is_empty());

    let out = run(&["sipay", "verify-hash-key", "--hash-key", &key], &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    // The decrypted fields, the merchant key part masked and compared, never printed.
    let masked = format!(
        "100.50|INV-HK|{}… ({} characters)",
        &SipaySim::MERCHANT_KEY[..4],
        SipaySim::MERCHANT_KEY.chars().count()
    );
    assert!(out.stdout.starts_with(&masked), "{out:?}");
    assert!(
        out.stdout
            .contains("its merchant key part matches the configured merchant key"),
        "{out:?}"
    );
    assert!(!out.stdout.contains(SipaySim::MERCHANT_KEY), "{out:?}");

    // A secret file works as well as the environment.
    let dir = scratch("hash-key");
    let secret_file = dir.join("app-secret");
    std::fs::write(&secret_file, format!("{}\n", SipaySim::APP_SECRET)).unwrap();
    let out = run(
        &[
            "sipay",
            "verify-hash-key",
            "--hash-key",
            &key,
            "--app-secret-file",
            path_str(&secret_file),
        ],
        &Env::new(),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");

    for garbage in ["not-a-hash-key", "", "a:b:c", "@@@@"] {
        let out = run(
            &["sipay", "verify-hash-key", &format!("--hash-key={garbage}")],
            &env,
        )
        .await;
        assert_eq!(out.code, 2, "{garbage:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(!out.stderr.contains(SipaySim::APP_SECRET), "{out:?}");
    }
    // The right key with the wrong secret is garbage too.
    std::fs::write(&secret_file, "another-secret").unwrap();
    let out = run(
        &[
            "sipay",
            "verify-hash-key",
            "--hash-key",
            &key,
            "--app-secret-file",
            path_str(&secret_file),
        ],
        &Env::new(),
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// iyzico
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn iyzico_auth_header_reproduces_the_documented_vector() {
    let body = r#"{"locale":"tr","conversationId":"1","paymentTransactionId":"11","price":"0.5","ip":"1.2.3.4"}"#;
    let dir = scratch("auth-header");
    let secret_file = dir.join("secret-key");
    std::fs::write(&secret_file, "sec\n").unwrap();
    let out = run(
        &[
            "iyzico",
            "auth-header",
            "--api-key",
            "key",
            "--secret-key-file",
            path_str(&secret_file),
            "--random-key",
            "123456",
            "--path",
            "/payment/refund",
            "--body",
            body,
        ],
        &Env::new(),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "IYZWSv2 YXBpS2V5OmtleSZyYW5kb21LZXk6MTIzNDU2JnNpZ25hdHVyZTplYjY1NmRmZGFmMjBiYzkwNzJhNTdkOTdmZjZiM2Q3Y2M2YjUxOTM0NDhkNzhhN2EwYThmYmE3YjIyZjIwMjFl\n"
    );
    // The same from the environment.
    let env: Env = vec![
        ("IYZICO_API_KEY".into(), "key".into()),
        ("IYZICO_SECRET_KEY".into(), "sec".into()),
    ];
    let again = run(
        &[
            "iyzico",
            "auth-header",
            "--random-key",
            "123456",
            "--path",
            "/payment/refund",
            "--body",
            body,
        ],
        &env,
    )
    .await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.stdout, out.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn iyzico_item_refund_by_payment_transaction_id_prints_a_receipt() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let item = payment.items[0].payment_transaction_id.clone();
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--payment-transaction-id",
            &item,
            "--amount",
            "10.5",
            "--conversation-id",
            "iyz-item-1",
            "--timeout",
            "5",
        ],
        &iyzico_env(&sim),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let receipt = out.json();
    assert_eq!(receipt["amount"]["amount"], "10.50", "{receipt}");
    assert_eq!(receipt["reference"], "iyz-item-1", "{receipt}");
    let ledger = sim.ledger();
    let line = ledger.item(&item).unwrap();
    assert_eq!(line.refunded(), dec("10.5"));
    assert_eq!(
        line.refunds[0].conversation_id.as_deref(),
        Some("iyz-item-1")
    );
    assert_eq!(
        ledger.payment(&payment.payment_id).unwrap().refunded(),
        dec("10.5")
    );
}

#[tokio::test]
async fn iyzico_payment_refund_by_payment_id_prints_a_receipt() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--amount",
            "70",
            "--ip",
            "10.1.2.3",
        ],
        &iyzico_env(&sim),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["amount"]["amount"], "70.00", "{}", out.stdout);
    assert_eq!(
        sim.payment(&payment.payment_id).unwrap().refunded(),
        dec("70")
    );
    let v2 = sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2/payment/refund")
        .expect("a v2 refund request");
    assert_eq!(v2.json().unwrap()["ip"], "10.1.2.3");
}

#[tokio::test]
async fn iyzico_cancel_voids_the_whole_payment() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let out = run(
        &["iyzico", "cancel", "--payment-id", &payment.payment_id],
        &iyzico_env(&sim),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let receipt = out.json();
    assert_eq!(receipt["amount"]["amount"], "100.00", "{receipt}");
    assert!(sim.payment(&payment.payment_id).unwrap().cancel.is_some());

    // A second cancel is declined.
    let out = run(
        &["iyzico", "cancel", "--payment-id", &payment.payment_id],
        &iyzico_env(&sim),
    )
    .await;
    assert_eq!(out.code, 3, "{out:?}");
}

#[tokio::test]
async fn iyzico_failures_map_to_the_documented_exit_codes() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let item = payment.items[1].payment_transaction_id.clone();
    let env = iyzico_env(&sim);

    // Over-refund of the line: declined.
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--payment-transaction-id",
            &item,
            "--amount",
            "40.01",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");

    // Invalid amount: nothing sent.
    let before = sim.requests().len();
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--payment-transaction-id",
            &item,
            "--amount",
            "10.005",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(sim.requests().len(), before);

    // Timeout: unknown, with the lookup to run.
    sim.arm(Fault::Timeout, 1);
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--amount",
            "1",
            "--conversation-id",
            "iyz-slow",
            "--timeout",
            "1",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "refund iyzico status --payment-id {}",
            payment.payment_id
        )),
        "{out:?}"
    );
    assert!(out.stderr.contains("iyz-slow"), "{out:?}");

    // Connection refused: nothing happened, try again later.
    let url = closed_port_url();
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--amount",
            "1",
            "--base-url",
            &url,
            "--timeout",
            "2",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 75, "{out:?}");
    assert!(out.stderr.contains("try again later"), "{out:?}");
    assert_eq!(
        sim.payment(&payment.payment_id).unwrap().refunded(),
        Decimal::ZERO
    );
}

#[tokio::test]
async fn iyzico_status_lists_the_refund_with_its_conversation_id() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let env = iyzico_env(&sim);
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--payment-transaction-id",
            &payment.items[1].payment_transaction_id,
            "--amount",
            "12.5",
            "--conversation-id",
            "conv-status-77",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(
        &["iyzico", "status", "--payment-id", &payment.payment_id],
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let state = out.json();
    assert_eq!(state["refunded"]["amount"], "12.50", "{state}");
    let refunds = state["refunds"].as_array().expect("refunds listed");
    assert_eq!(refunds.len(), 1, "{state}");
    assert!(refunds[0].to_string().contains("conv-status-77"), "{state}");
}

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

fn assert_no_secrets(out: &Out, what: &str) {
    let all = out.all();
    for secret in [
        SipaySim::APP_SECRET,
        SipaySim::MERCHANT_KEY,
        IyzicoSim::SECRET_KEY,
    ] {
        assert!(
            !all.contains(secret),
            "{what}: a secret was printed:\n{all}"
        );
    }
}

#[tokio::test]
async fn secrets_never_appear_in_output_even_with_vv_or_rust_log_trace() {
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    sipay.add_payment("INV-SEC", dec("100.00"), Currency::Try);
    let payment = iyzico.add_payment(Currency::Try, &[dec("60.0")]);
    let item = payment.items[0].payment_transaction_id.clone();

    // The most verbose logging, either way it can be asked for: `-vv`, or `RUST_LOG=trace`
    // (every crate, every level, hyper and reqwest included).
    for (flags, var) in [(&["-vv"][..], None), (&[][..], Some(("RUST_LOG", "trace")))] {
        let mut env = both_env(&sipay, &iyzico);
        env.extend(var.map(|(k, v)| (k.to_owned(), v.to_owned())));
        let run_logged = |args: &[&str], env: &Env| {
            let mut all: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
            all.extend(args.iter().map(|a| (*a).to_owned()));
            let env = env.clone();
            async move {
                let args: Vec<&str> = all.iter().map(String::as_str).collect();
                run(&args, &env).await
            }
        };
        let how = format!("{flags:?} {var:?}");

        let out = run_logged(
            &[
                "sipay",
                "refund",
                "--invoice-id",
                "INV-SEC",
                "--amount",
                "10.00",
            ],
            &env,
        )
        .await;
        assert_eq!(out.code, 0, "{how}: {out:?}");
        assert!(
            out.stderr.contains("TRACE"),
            "{how}: traces are printed: {out:?}"
        );
        assert_no_secrets(&out, &format!("{how} sipay refund"));

        let out = run_logged(
            &[
                "sipay",
                "refund",
                "--invoice-id",
                "INV-SEC",
                "--amount",
                "1000.00",
            ],
            &env,
        )
        .await;
        assert_eq!(out.code, 3, "{how}: {out:?}");
        assert_no_secrets(&out, &format!("{how} sipay declined refund"));

        let out = run_logged(&["sipay", "status", "--invoice-id", "INV-SEC"], &env).await;
        assert_eq!(out.code, 0, "{how}: {out:?}");
        assert_no_secrets(&out, &format!("{how} sipay status"));

        let out = run_logged(
            &[
                "iyzico",
                "refund",
                "--payment-id",
                &payment.payment_id,
                "--payment-transaction-id",
                &item,
                "--amount",
                "5",
            ],
            &env,
        )
        .await;
        assert_eq!(out.code, 0, "{how}: {out:?}");
        assert!(
            out.stderr.contains("TRACE"),
            "{how}: traces are printed: {out:?}"
        );
        assert_no_secrets(&out, &format!("{how} iyzico refund"));

        let out = run_logged(
            &["iyzico", "status", "--payment-id", &payment.payment_id],
            &env,
        )
        .await;
        assert_eq!(out.code, 0, "{how}: {out:?}");
        assert_no_secrets(&out, &format!("{how} iyzico status"));

        // A rejected credential is reported without echoing it, in text and in JSON.
        let mut wrong = env.clone();
        for (k, v) in &mut wrong {
            if k == "SIPAY_APP_SECRET" {
                *v = format!("{}-wrong", SipaySim::APP_SECRET);
            }
        }
        for output in ["text", "json"] {
            let out = run_logged(
                &[
                    "--output",
                    output,
                    "sipay",
                    "refund",
                    "--invoice-id",
                    "INV-SEC",
                    "--amount",
                    "1.00",
                ],
                &wrong,
            )
            .await;
            assert_eq!(out.code, 5, "{how}: {out:?}");
            assert_no_secrets(&out, &format!("{how} {output} sipay wrong secret"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// sandbox
// ---------------------------------------------------------------------------------------

/// A minimal HTTP/1.1 POST over a raw socket (the admin API needs nothing more).
fn http_post(base_url: &str, path: &str, body: &str) -> (u16, String) {
    let host = base_url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Kills a child on drop, so a failing test does not leave a sandbox running.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test]
async fn sandbox_prints_credentials_serves_refunds_and_exits_0_on_sigterm() {
    let mut cmd = command(&["sandbox"], &Env::new());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Reaper(cmd.spawn().unwrap());
    let stdout = child.0.stdout.take().unwrap();

    // Read the eight lines (a comment, seven variables) on another thread, so a silent
    // sandbox fails the test instead of hanging it.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for _ in 0..8 {
            match lines.next() {
                Some(Ok(line)) => {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    let mut lines = Vec::new();
    for _ in 0..8 {
        lines.push(
            rx.recv_timeout(Duration::from_secs(15))
                .expect("the sandbox prints its credentials"),
        );
    }
    assert!(lines[0].starts_with("# refund sandbox: "), "{lines:?}");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("export ")),
        "{lines:?}"
    );
    // What a shell makes of them: eval'd, then the exported environment a command sees.
    let script = lines.join("\n");
    let shell = Command::new("sh")
        .args(["-c", "eval \"$1\" && env", "sh", &script])
        .env_clear()
        .output()
        .unwrap();
    assert!(shell.status.success(), "{shell:?}");
    let vars: HashMap<String, String> = String::from_utf8(shell.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let sipay_url = vars["SIPAY_BASE_URL"].as_str();
    let iyzico_url = vars["IYZICO_BASE_URL"].as_str();
    assert!(sipay_url.starts_with("http://127.0.0.1:"), "{lines:?}");
    assert!(iyzico_url.starts_with("http://127.0.0.1:"), "{lines:?}");
    for name in [
        "SIPAY_APP_ID",
        "SIPAY_APP_SECRET",
        "SIPAY_MERCHANT_KEY",
        "IYZICO_API_KEY",
        "IYZICO_SECRET_KEY",
    ] {
        assert!(
            vars.get(name).is_some_and(|v| !v.is_empty()),
            "{name} missing: {lines:?}"
        );
    }
    assert_eq!(vars["SIPAY_MERCHANT_KEY"], SipaySim::MERCHANT_KEY);
    assert_eq!(vars["SIPAY_APP_SECRET"], SipaySim::APP_SECRET);
    assert_eq!(vars["IYZICO_SECRET_KEY"], IyzicoSim::SECRET_KEY);

    // Seed a payment through the admin API, then refund part of it with the printed
    // credentials.
    let (url, seed) = (
        sipay_url.to_owned(),
        r#"{"invoice_id":"SBX-1","amount":"100.00","currency":"TRY"}"#,
    );
    let (status, body) =
        tokio::task::spawn_blocking(move || http_post(&url, "/__sandbox/payments", seed))
            .await
            .unwrap();
    assert_eq!(status, 201, "{body}");

    let env: Env = vars
        .iter()
        .filter(|(k, _)| k.starts_with("SIPAY_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let out = run(
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "SBX-1",
            "--amount",
            "30.00",
            "--timeout",
            "5",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["amount"]["amount"], "30.00");

    // The ledger saw it.
    let ledger_url = sipay_url.to_owned();
    let ledger = tokio::task::spawn_blocking(move || {
        let host = ledger_url.strip_prefix("http://").unwrap().to_owned();
        let mut s = TcpStream::connect(&host).unwrap();
        write!(
            s,
            "GET /__sandbox/ledger HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    })
    .await
    .unwrap();
    assert!(ledger.contains("\"refunded\":\"30.00\""), "{ledger}");

    // SIGTERM: exits 0, promptly.
    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the sandbox did not exit within 5 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test]
async fn sandbox_refuses_a_non_loopback_listen_address() {
    let out = run(&["sandbox", "--listen", "0.0.0.0"], &Env::new()).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr.contains("loopback"), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// batch
// ---------------------------------------------------------------------------------------

/// The journal's last state for each row key, and how many records it holds.
fn journal_states(path: &Path) -> (HashMap<String, String>, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut last = HashMap::new();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record: Value = serde_json::from_str(line).unwrap();
        n += 1;
        last.insert(
            record["key"].as_str().unwrap().to_owned(),
            record["state"].as_str().unwrap().to_owned(),
        );
    }
    (last, n)
}

#[tokio::test]
async fn batch_refunds_valid_rows_reports_malformed_ones_and_a_rerun_refunds_nothing() {
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    sipay.add_payment("INV-B1", dec("100.00"), Currency::Try);
    sipay.add_payment("INV-B2", dec("100.00"), Currency::Try);
    let p1 = iyzico.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let p2 = iyzico.add_payment(Currency::Try, &[dec("30.0")]);
    let item = &p1.items[0].payment_transaction_id;

    let dir = scratch("batch");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        format!(
            "provider,payment,amount,currency,reference\n\
             sipay,INV-B1,10.00,TRY,\n\
             sipay,INV-B2,5.50,TRY,batch-ref-1\n\
             iyzico,tx:{item}@{pid},20.0,TRY,\n\
             iyzico,{pid2},15,TRY,\n\
             sipay,INV-B1,10.005,TRY,\n\
             paytr,X-1,1.00,TRY,\n",
            pid = p1.payment_id,
            pid2 = p2.payment_id,
        ),
    )
    .unwrap();
    let args = batch_args(&input, &journal, &["--timeout", "5"]);
    let env = both_env(&sipay, &iyzico);

    let out = run(&args, &env).await;
    // Malformed rows make the exit code 2 even when every valid row was refunded.
    assert_eq!(out.code, 2, "{out:?}");
    let s = summary(&out);
    assert_eq!(s["rows"], 6, "{s}");
    assert_eq!(s["refunded"], 4, "{s}");
    assert_eq!(s["malformed"], 2, "{s}");
    assert_eq!(s["skipped"], 0, "{s}");
    assert_eq!(s["unknown"], 0, "{s}");
    let malformed: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("not sent"))
        .collect();
    assert_eq!(malformed.len(), 2, "{out:?}");
    assert!(malformed[0].starts_with("line 6:"), "{out:?}");
    assert!(malformed[1].starts_with("line 7:"), "{out:?}");
    assert!(malformed[1].contains("paytr"), "{out:?}");

    let b1 = sipay.payment("INV-B1").unwrap();
    assert_eq!(b1.refunds.len(), 1);
    assert_eq!(b1.refunded(), dec("10.00"));
    let b2 = sipay.payment("INV-B2").unwrap();
    assert_eq!(b2.refunds.len(), 1);
    assert_eq!(
        b2.refunds[0].refund_transaction_id.as_deref(),
        Some("batch-ref-1")
    );
    let ledger = iyzico.ledger();
    assert_eq!(ledger.item(item).unwrap().refunded(), dec("20.0"));
    assert_eq!(
        ledger.payment(&p2.payment_id).unwrap().refunded(),
        dec("15")
    );
    assert_eq!(
        sipay_refund_requests(&sipay),
        2,
        "malformed rows never sent"
    );
    assert_eq!(iyzico_refund_requests(&iyzico), 2);
    assert!(
        sipay
            .requests()
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains("10.005")),
        "the malformed amount never left"
    );
    let (states, _) = journal_states(&journal);
    assert_eq!(states.len(), 4, "{states:?}");
    assert!(states.values().all(|s| s == "refunded"), "{states:?}");

    // Same journal again: nothing is refunded twice.
    let sipay_before = sipay.ledger();
    let iyzico_before = iyzico.ledger();
    let out = run(&args, &env).await;
    assert_eq!(out.code, 2, "{out:?}");
    let s = summary(&out);
    assert_eq!(s["refunded"], 0, "{s}");
    assert_eq!(s["skipped"], 4, "{s}");
    assert_eq!(s["malformed"], 2, "{s}");
    assert_eq!(sipay.ledger(), sipay_before);
    assert_eq!(iyzico.ledger(), iyzico_before);
    assert_eq!(sipay_refund_requests(&sipay), 2);
    assert_eq!(iyzico_refund_requests(&iyzico), 2);

    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn batch_resumes_after_a_crash_and_refunds_every_row_exactly_once() {
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    for invoice in ["INV-K1", "INV-K2", "INV-K3"] {
        sipay.add_payment(invoice, dec("100.00"), Currency::Try);
    }
    let p = iyzico.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let item = p.items[0].payment_transaction_id.clone();
    let env = both_env(&sipay, &iyzico);

    let dir = scratch("crash");
    let journal = dir.join("crash.journal");
    let header = "provider,payment,amount,currency\n";
    // K1: the refund left and was applied, then the process was killed before its terminal
    // record. K2: killed after the `sending` record, before the request left.
    let crashed_rows = "sipay,INV-K1,10.00,TRY\nsipay,INV-K2,7.00,TRY\n";
    let first = dir.join("first.csv");
    std::fs::write(&first, format!("{header}{crashed_rows}")).unwrap();
    let out = run(
        &[
            "batch",
            "--input",
            path_str(&first),
            "--journal",
            path_str(&journal),
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    // What a SIGKILL between send and the terminal record leaves: `sending` as the last
    // record of each row.
    let text = std::fs::read_to_string(&journal).unwrap();
    let sending_only: String = text
        .lines()
        .filter(|l| !l.contains("\"refunded\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(sending_only.lines().count(), 2, "{text}");
    assert!(sending_only.lines().all(|l| l.contains("\"sending\"")));
    std::fs::write(&journal, sending_only).unwrap();
    // K2's request never left: the provider has no refund for it.
    sipay.add_payment("INV-K2", dec("100.00"), Currency::Try);
    // A lookup that finds nothing proves the request never took effect only once the attempt
    // is older than the settle time: let K2's attempt settle (1 s, below) before resuming.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(sipay.payment("INV-K1").unwrap().refunds.len(), 1);
    assert_eq!(sipay.payment("INV-K2").unwrap().refunds.len(), 0);

    // The full batch: the two crashed rows, an iyzico row whose answer will be lost, and a
    // fresh SiPay row.
    let input = dir.join("all.csv");
    std::fs::write(
        &input,
        format!(
            "{header}{crashed_rows}iyzico,tx:{item}@{pid},20.0,TRY\nsipay,INV-K3,3.00,TRY\n",
            pid = p.payment_id
        ),
    )
    .unwrap();
    // The first iyzico request is the ledger check before the row's first send (iyzico does
    // not refuse a reused reference): a harmless fault for it, then the refund's answer lost.
    iyzico.arm(Fault::Delay(Duration::ZERO), 1);
    iyzico.arm(Fault::LostResponse, 1);
    let sipay_refunds_before = sipay_refund_requests(&sipay);
    let args = batch_args(&input, &journal, &["--timeout", "5", "--settle-time", "1"]);
    let out = run(&args, &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    let s = summary(&out);
    assert_eq!(s["rows"], 4, "{s}");
    assert_eq!(s["refunded"], 4, "{s}");
    assert_eq!(s["unknown"], 0, "{s}");
    assert!(iyzico.armed().is_empty(), "the lost response was exercised");

    // Every row refunded exactly once.
    for (invoice, amount) in [("INV-K1", "10.00"), ("INV-K2", "7.00"), ("INV-K3", "3.00")] {
        let payment = sipay.payment(invoice).unwrap();
        assert_eq!(payment.refunds.len(), 1, "{invoice}: {payment:?}");
        assert_eq!(payment.refunded(), dec(amount), "{invoice}");
    }
    let line = iyzico.ledger().item(&item).unwrap().clone();
    assert_eq!(line.refunds.len(), 1, "{line:?}");
    assert_eq!(line.refunded(), dec("20.0"));
    // K1 was reconciled, not resent: only K2 and K3 were sent to SiPay in this run.
    assert_eq!(sipay_refund_requests(&sipay) - sipay_refunds_before, 2);
    assert_eq!(
        iyzico_refund_requests(&iyzico),
        1,
        "the lost refund was not resent"
    );

    let (states, _) = journal_states(&journal);
    assert_eq!(states.len(), 4, "{states:?}");
    assert!(states.values().all(|s| s == "refunded"), "{states:?}");
    let text = std::fs::read_to_string(&journal).unwrap();
    let reconciled: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("reconciled: reference"))
        .collect();
    assert_eq!(
        reconciled.len(),
        2,
        "K1 (from the earlier run) and the lost iyzico answer were found by lookups, not resent: {text}"
    );
    assert!(
        reconciled.iter().any(|l| l.contains("INV-K1|")),
        "K1 was found by its lookup: {text}"
    );

    // And once more: everything skipped, nothing sent.
    let sipay_before = sipay.ledger();
    let iyzico_before = iyzico.ledger();
    let out = run(&args, &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(summary(&out)["skipped"], 4);
    assert_eq!(sipay.ledger(), sipay_before);
    assert_eq!(iyzico.ledger(), iyzico_before);

    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn batch_dry_run_sends_nothing() {
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    sipay.add_payment("INV-D1", dec("100.00"), Currency::Try);
    let p = iyzico.add_payment(Currency::Try, &[dec("60.0")]);
    let dir = scratch("dry");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        format!(
            "provider,payment,amount,currency\nsipay,INV-D1,10.00,TRY\niyzico,{},5,TRY\n",
            p.payment_id
        ),
    )
    .unwrap();
    let out = run(
        &[
            "batch",
            "--dry-run",
            "--input",
            path_str(&input),
            "--journal",
            path_str(&journal),
        ],
        &both_env(&sipay, &iyzico),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains("would refund"))
            .count(),
        2,
        "{out:?}"
    );
    assert!(sipay.requests().is_empty());
    assert!(iyzico.requests().is_empty());
    assert_eq!(sipay.payment("INV-D1").unwrap().refunded(), Decimal::ZERO);
    assert_eq!(
        iyzico.payment(&p.payment_id).unwrap().refunded(),
        Decimal::ZERO
    );
    let journaled = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(journaled.trim().is_empty(), "a dry run journals nothing");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn verify_notification_accepts_a_signed_notification_and_refuses_a_tampered_one() {
    use refund_testkit::notifications::SipayNotification;
    let secret = SipaySim::APP_SECRET;
    let env: Env = vec![("SIPAY_APP_SECRET".into(), secret.into())];
    let fields = SipayNotification::completed("INV-77", "15767887576675", "10.50").fields(secret);
    let args = |fields: &[(&str, String)]| -> Vec<String> {
        let mut args = vec!["sipay".to_owned(), "verify-notification".to_owned()];
        for (name, value) in fields {
            args.push("--field".to_owned());
            args.push(format!("{name}={value}"));
        }
        args
    };
    let good = args(&fields);
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let out = run(&good, &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("INV-77") && out.stdout.contains("10.50"),
        "{out:?}"
    );

    // The amount changed after signing: refused (exit 2), and no secret in the output.
    let tampered: Vec<(&str, String)> = fields
        .iter()
        .map(|(name, value)| {
            let value = if *name == "amount" {
                "1000.50".to_owned()
            } else {
                value.clone()
            };
            (*name, value)
        })
        .collect();
    let bad = args(&tampered);
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let out = run(&bad, &env).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!out.all().contains(secret), "{out:?}");
}
