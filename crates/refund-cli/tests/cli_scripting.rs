//! The `refund` command as scripts and people use it (issue 16): JSON outcomes, the exit code
//! for "try again later", shell-quoted sandbox variables, secrets from files only, refund
//! reasons, `RUST_LOG`, shell completions.
//!
//! Every test runs the real binary with a cleared environment and only the variables it
//! needs, against in-process simulators on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use refund_core::{Currency, Decimal};
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_refund");

/// The fields every JSON outcome has.
const FIELDS: [&str; 11] = [
    "ok",
    "kind",
    "provider",
    "code",
    "message",
    "reference",
    "retryable",
    "outcome_known",
    "lookup",
    "retry_after_seconds",
    "exit_code",
];

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// The one JSON object on stdout, with every common field, and the exit code it states.
    fn outcome(&self) -> Value {
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "one line of JSON on stdout: {self:?}"
        );
        let v: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"));
        for field in FIELDS {
            assert!(v.get(field).is_some(), "no {field:?}: {v}");
        }
        assert_eq!(v["exit_code"], self.code, "{v}");
        assert_eq!(v["ok"], self.code == 0, "{v}");
        v
    }

    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

type Env = Vec<(String, String)>;

fn command(args: &[&str], env: &Env) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .stdin(Stdio::null());
    cmd
}

fn finish(output: std::process::Output) -> Out {
    Out {
        code: output.status.code().expect("exited with a code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs the binary to completion, off the async runtime's threads.
async fn run(args: &[&str], env: &Env) -> Out {
    let mut cmd = command(args, env);
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("run refund"))
        .await
        .unwrap();
    finish(output)
}

/// Runs `script` with `sh -c`, the `refund` binary first on PATH.
async fn sh(script: &str, env: &Env) -> Out {
    let bin_dir = Path::new(BIN).parent().unwrap().to_owned();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let mut cmd = Command::new("sh");
    cmd.env_clear()
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["-c", script])
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("run sh"))
        .await
        .unwrap();
    finish(output)
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn var(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

fn sipay_env(sim: &SipaySim) -> Env {
    let c = sim.credentials();
    vec![
        var("SIPAY_BASE_URL", c.base_url),
        var("SIPAY_APP_ID", c.app_id),
        var("SIPAY_APP_SECRET", c.app_secret),
        var("SIPAY_MERCHANT_KEY", c.merchant_key),
    ]
}

fn iyzico_env(sim: &IyzicoSim) -> Env {
    let c = sim.credentials();
    vec![
        var("IYZICO_BASE_URL", c.base_url),
        var("IYZICO_API_KEY", c.api_key),
        var("IYZICO_SECRET_KEY", c.secret_key),
    ]
}

fn json(mut env: Env) -> Env {
    env.push(var("REFUND_OUTPUT", "json"));
    env
}

fn without(env: &Env, names: &[&str]) -> Env {
    env.iter()
        .filter(|(k, _)| !names.contains(&k.as_str()))
        .cloned()
        .collect()
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn refund_requests(sim: &SipaySim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.contains("refund"))
        .count()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refund-cli-16-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

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

// ---------------------------------------------------------------------------------------
// --output json
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn json_success_is_one_object_with_the_receipt_by_flag_or_by_refund_output() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-J0", dec("100.00"), Currency::Try);
    let args = [
        "sipay",
        "refund",
        "--invoice-id",
        "INV-J0",
        "--amount",
        "2.50",
        "--reference",
    ];
    let by_flag = run(
        &[&["--output", "json"][..], &args, &["json-ok-1"]].concat(),
        &sipay_env(&sim),
    )
    .await;
    let by_env = run(
        &[&args[..], &["json-ok-2"]].concat(),
        &json(sipay_env(&sim)),
    )
    .await;
    for (out, reference) in [(by_flag, "json-ok-1"), (by_env, "json-ok-2")] {
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        let v = out.outcome();
        assert_eq!(v["kind"], "refunded", "{v}");
        assert_eq!(v["provider"], "sipay", "{v}");
        assert_eq!(v["reference"], reference, "{v}");
        assert_eq!(v["outcome_known"], true, "{v}");
        assert_eq!(v["retryable"], false, "{v}");
        assert_eq!(v["code"], Value::Null, "{v}");
        assert_eq!(v["lookup"], Value::Null, "{v}");
        assert_eq!(v["receipt"]["amount"]["amount"], "2.50", "{v}");
        assert_eq!(v["receipt"]["status"], "completed", "{v}");
    }
    assert_eq!(sim.payment("INV-J0").unwrap().refunded(), dec("5.00"));

    // The text default is unchanged: the receipt, pretty, on stdout.
    let out = run(&[&args[..], &["json-ok-3"]].concat(), &sipay_env(&sim)).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.lines().count() > 1, "{out:?}");
    let receipt: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(receipt["reference"], "json-ok-3");
}

#[tokio::test]
async fn json_decline_is_one_object_on_stdout_nothing_on_stderr_exit_3() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-J3", dec("10.00"), Currency::Try);
    let out = run(
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "INV-J3",
            "--amount",
            "10.01",
            "--reference",
            "json-over",
        ],
        &json(sipay_env(&sim)),
    )
    .await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let v = out.outcome();
    assert_eq!(v["kind"], "declined", "{v}");
    assert_eq!(v["provider"], "sipay", "{v}");
    assert!(v["code"].is_string(), "the provider's code: {v}");
    assert_eq!(v["reference"], "json-over", "{v}");
    assert_eq!(v["outcome_known"], true, "{v}");
    assert_eq!(v["retryable"], false, "{v}");
    assert_eq!(v["lookup"], Value::Null, "{v}");
    assert!(v["message"].as_str().unwrap().contains("declined"), "{v}");
}

#[tokio::test]
async fn json_unknown_outcome_exits_4_with_the_exact_status_command_that_finds_the_refund() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-J4", dec("100.00"), Currency::Try);
    // Applied, and the answer lost on the way.
    sim.arm(Fault::LostResponse, 1);
    let env = json(sipay_env(&sim));
    let out = run(
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "INV-J4",
            "--amount",
            "4.00",
            "--reference",
            "lost-ref-1",
            "--timeout",
            "5",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 4, "{out:?}");
    let v = out.outcome();
    assert_eq!(v["kind"], "outcome_unknown", "{v}");
    assert_eq!(v["outcome_known"], false, "{v}");
    assert_eq!(v["retryable"], false, "{v}");
    assert_eq!(v["reference"], "lost-ref-1", "{v}");
    let lookup = v["lookup"].as_str().unwrap();
    assert_eq!(lookup, "refund sipay status --invoice-id INV-J4", "{v}");

    // Run exactly that, through a shell: it shows the refund under its reference.
    let found = sh(lookup, &env).await;
    assert_eq!(found.code, 0, "{found:?}");
    let state = found.outcome();
    assert_eq!(state["kind"], "status", "{state}");
    assert_eq!(state["state"]["refunded"]["amount"], "4.00", "{state}");
    assert!(
        state["state"]["refunds"].to_string().contains("lost-ref-1"),
        "{state}"
    );
}

#[tokio::test]
async fn the_lookup_command_carries_the_base_url_and_secret_file_and_works_as_printed() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let item = payment.items[1].payment_transaction_id.clone();
    let dir = scratch("lookup files");
    let secret_file = dir.join("iyzico secret");
    std::fs::write(&secret_file, IyzicoSim::SECRET_KEY).unwrap();
    // Nothing but the API key in the environment: the URL and the secret are arguments.
    let env = json(vec![var("IYZICO_API_KEY", IyzicoSim::API_KEY)]);
    let url = sim.credentials().base_url;
    sim.arm(Fault::LostResponse, 1);
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--payment-transaction-id",
            &item,
            "--amount",
            "7.5",
            "--conversation-id",
            "iyz-lost-1",
            "--base-url",
            &url,
            "--secret-key-file",
            path_str(&secret_file),
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 4, "{out:?}");
    let v = out.outcome();
    assert_eq!(v["provider"], "iyzico", "{v}");
    let lookup = v["lookup"].as_str().unwrap();
    assert_eq!(
        lookup,
        format!(
            "refund iyzico status --payment-id {} --base-url {url} --secret-key-file '{}'",
            payment.payment_id,
            secret_file.display()
        ),
        "the path has a space, so it is quoted: {v}"
    );
    let found = sh(lookup, &env).await;
    assert_eq!(found.code, 0, "{found:?}");
    assert!(found.stdout.contains("iyz-lost-1"), "{found:?}");
    assert_no_secrets(&out, "unknown outcome");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_reused_reference_is_duplicate_reference_exit_4_with_the_lookup_not_a_decline() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-DUP", dec("100.00"), Currency::Try);
    let args = [
        "sipay",
        "refund",
        "--invoice-id",
        "INV-DUP",
        "--amount",
        "3.00",
        "--reference",
        "dup-ref-1",
    ];
    let first = run(&args, &sipay_env(&sim)).await;
    assert_eq!(first.code, 0, "{first:?}");

    let out = run(&args, &json(sipay_env(&sim))).await;
    assert_eq!(out.code, 4, "{out:?}");
    let v = out.outcome();
    assert_eq!(v["kind"], "duplicate_reference", "{v}");
    assert_eq!(v["code"], "104", "{v}");
    assert_eq!(v["outcome_known"], false, "{v}");
    assert_eq!(v["retryable"], false, "{v}");
    assert_eq!(v["reference"], "dup-ref-1", "{v}");
    assert_eq!(
        v["lookup"], "refund sipay status --invoice-id INV-DUP",
        "{v}"
    );

    // In text: the same advice for people.
    let out = run(&args, &sipay_env(&sim)).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        out.stderr.contains(
            "Do not resend. Check whether reference dup-ref-1 was applied: \
             refund sipay status --invoice-id INV-DUP"
        ),
        "{out:?}"
    );
    assert_eq!(sim.payment("INV-DUP").unwrap().refunded(), dec("3.00"));
}

// ---------------------------------------------------------------------------------------
// Exit 75: nothing happened, try again later
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limited_exits_75_retryable_with_the_wait_and_nothing_refunded() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-429", dec("100.00"), Currency::Try);
    let args = [
        "sipay",
        "refund",
        "--invoice-id",
        "INV-429",
        "--amount",
        "1.00",
        "--reference",
        "rl-ref",
    ];
    sim.arm(Fault::Http429, 1);
    let out = run(&args, &json(sipay_env(&sim))).await;
    assert_eq!(out.code, 75, "{out:?}");
    let v = out.outcome();
    assert_eq!(v["kind"], "rate_limited", "{v}");
    assert_eq!(v["retryable"], true, "{v}");
    assert_eq!(v["outcome_known"], true, "{v}");
    assert_eq!(v["retry_after_seconds"], 1, "{v}");
    assert_eq!(v["lookup"], Value::Null, "{v}");

    sim.arm(Fault::Http429, 1);
    let out = run(&args, &sipay_env(&sim)).await;
    assert_eq!(out.code, 75, "{out:?}");
    assert!(
        out.stderr
            .contains("Nothing was refunded: try again later (the provider asked to wait 1 s)."),
        "{out:?}"
    );
    assert_eq!(sim.payment("INV-429").unwrap().refunded(), Decimal::ZERO);

    // And later it goes through.
    let out = run(&args, &sipay_env(&sim)).await;
    assert_eq!(out.code, 0, "{out:?}");
}

#[tokio::test]
async fn unreachable_exits_75_retryable_and_sends_nothing() {
    let sim = SipaySim::start().await.unwrap();
    let out = run(
        &[
            "sipay",
            "refund",
            "--invoice-id",
            "INV-1",
            "--amount",
            "1.00",
            "--base-url",
            &closed_port_url(),
            "--timeout",
            "2",
        ],
        &json(sipay_env(&sim)),
    )
    .await;
    assert_eq!(out.code, 75, "{out:?}");
    let v = out.outcome();
    assert_eq!(v["kind"], "unreachable", "{v}");
    assert_eq!(v["retryable"], true, "{v}");
    assert_eq!(v["outcome_known"], true, "{v}");
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn a_temporary_decline_exits_75_and_a_final_one_3() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0")]);
    let item = payment.items[0].payment_transaction_id.clone();
    let env = json(iyzico_env(&sim));
    let refund = |amount: &'static str| {
        let (pid, item, env) = (payment.payment_id.clone(), item.clone(), env.clone());
        async move {
            run(
                &[
                    "iyzico",
                    "refund",
                    "--payment-id",
                    &pid,
                    "--payment-transaction-id",
                    &item,
                    "--amount",
                    amount,
                ],
                &env,
            )
            .await
        }
    };
    // The bank refused for now (iyzico's 10246, which it marks retryable).
    sim.arm(Fault::Fail, 1);
    let out = refund("5").await;
    assert_eq!(out.code, 75, "{out:?}");
    let v = out.outcome();
    assert_eq!(v["kind"], "declined", "{v}");
    assert_eq!(v["code"], "10246", "{v}");
    assert_eq!(v["retryable"], true, "{v}");
    assert_eq!(v["outcome_known"], true, "{v}");

    // More than the line: declined for good.
    let out = refund("60.01").await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.outcome()["retryable"], false);
}

// ---------------------------------------------------------------------------------------
// Failures before anything is sent, in JSON too
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn usage_invalid_input_and_missing_credentials_are_json_objects_too() {
    let sim = SipaySim::start().await.unwrap();
    let env = json(sipay_env(&sim));

    // A command line clap refuses: by flag (before or after the command) and by variable.
    for (args, env) in [
        (&["--output", "json", "sipay", "refund"][..], Env::new()),
        (&["sipay", "refund", "--output=json"][..], Env::new()),
        (&["sipay", "refund", "--no-such-flag"][..], env.clone()),
    ] {
        let out = run(args, &env).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        let v = out.outcome();
        assert_eq!(v["kind"], "usage", "{v}");
        assert!(!v["message"].as_str().unwrap().is_empty(), "{v}");
    }
    // --help stays help, even in JSON mode.
    let out = run(&["sipay", "refund", "--help"], &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Usage"), "{out:?}");

    // An amount finer than the currency: invalid, nothing sent.
    let out = run(
        &["sipay", "refund", "--invoice-id", "I", "--amount", "1.005"],
        &env,
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    let v = out.outcome();
    assert_eq!(v["kind"], "invalid_request", "{v}");
    assert_eq!(v["provider"], "sipay", "{v}");

    // No merchant key anywhere: configuration, with how to give it.
    let out = run(
        &["sipay", "refund", "--invoice-id", "I", "--amount", "1.00"],
        &without(&env, &["SIPAY_MERCHANT_KEY"]),
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    let v = out.outcome();
    assert_eq!(v["kind"], "configuration", "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("SIPAY_MERCHANT_KEY") && message.contains("--merchant-key-file"),
        "{v}"
    );
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn refund_output_takes_any_case_empty_means_text_and_the_flag_wins() {
    let args = ["sipay", "hash-key", "--amount", "1.00", "--invoice-id", "I"];
    // No secrets: a configuration failure, printed the way REFUND_OUTPUT says.
    for (value, json) in [
        ("JSON", true),
        (" json ", true),
        ("", false),
        ("Text", false),
    ] {
        let out = run(&args, &vec![var("REFUND_OUTPUT", value)]).await;
        assert_eq!(out.code, 2, "{value:?}: {out:?}");
        if json {
            let v = out.outcome();
            assert_eq!(v["kind"], "configuration", "{v}");
            assert_eq!(v["provider"], "sipay", "{v}");
        } else {
            assert!(out.stdout.is_empty(), "{value:?}: {out:?}");
            assert!(
                out.stderr.starts_with("error: SIPAY_APP_SECRET is not set"),
                "{out:?}"
            );
        }
    }
    let out = run(
        &[&["--output", "text"][..], &args].concat(),
        &vec![var("REFUND_OUTPUT", "json")],
    )
    .await;
    assert!(out.stdout.is_empty(), "the flag wins: {out:?}");
    // Anything else is a usage error, said in text (JSON was not asked for).
    let out = run(&args, &vec![var("REFUND_OUTPUT", "yaml")]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("REFUND_OUTPUT"), "{out:?}");
    // Its value is never echoed: a password pasted into the wrong variable stays unprinted.
    let out = run(&args, &vec![var("REFUND_OUTPUT", "hunter2-Secret")]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!format!("{out:?}").contains("hunter2"), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// Secrets: the environment or files, never flags
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn secret_value_flags_are_refused_without_echoing_the_value() {
    let value = "Sup3r-Secret-Value-9876";
    for (args, var, file_flag) in [
        (
            &[
                "sipay",
                "hash-key",
                "--amount",
                "1.00",
                "--invoice-id",
                "I",
                "--app-secret",
            ][..],
            "SIPAY_APP_SECRET",
            "--app-secret-file",
        ),
        (
            &[
                "sipay",
                "hash-key",
                "--amount",
                "1.00",
                "--invoice-id",
                "I",
                "--merchant-key",
            ],
            "SIPAY_MERCHANT_KEY",
            "--merchant-key-file",
        ),
        (
            &[
                "sipay",
                "verify-hash-key",
                "--hash-key",
                "a:b:c",
                "--app-secret",
            ],
            "SIPAY_APP_SECRET",
            "--app-secret-file",
        ),
        (
            &[
                "iyzico",
                "auth-header",
                "--api-key",
                "k",
                "--random-key",
                "1",
                "--path",
                "/p",
                "--body",
                "{}",
                "--secret-key",
            ],
            "IYZICO_SECRET_KEY",
            "--secret-key-file",
        ),
        (
            &[
                "sipay",
                "refund",
                "--invoice-id",
                "I",
                "--amount",
                "1.00",
                "--app-secret",
            ],
            "SIPAY_APP_SECRET",
            "--app-secret-file",
        ),
    ] {
        let args = [args, &[value]].concat();
        let out = run(&args, &Env::new()).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(
            out.stderr.contains("shell history")
                && out.stderr.contains(var)
                && out.stderr.contains(file_flag),
            "says how to pass it instead: {out:?}"
        );
        assert!(!out.all().contains(value), "the value is echoed: {out:?}");

        let out = run(&args, &json(Env::new())).await;
        assert_eq!(out.code, 2, "{out:?}");
        assert_eq!(out.outcome()["kind"], "usage");
        assert!(!out.all().contains(value), "the value is echoed: {out:?}");
    }

    // Help lists the file options, not the refused ones.
    let out = run(&["sipay", "hash-key", "--help"], &Env::new()).await;
    assert!(out.stdout.contains("--app-secret-file <PATH>"), "{out:?}");
    assert!(out.stdout.contains("--merchant-key-file <PATH>"), "{out:?}");
    assert!(!out.stdout.contains("--app-secret "), "{out:?}");
    assert!(!out.stdout.contains("--merchant-key "), "{out:?}");
}

#[tokio::test]
async fn secret_files_stand_in_for_the_environment_on_every_provider_command() {
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    sipay.add_payment("INV-F1", dec("100.00"), Currency::Try);
    let payment = iyzico.add_payment(Currency::Try, &[dec("60.0")]);
    let unrefunded = iyzico.add_payment(Currency::Try, &[dec("20.0")]);
    let dir = scratch("secret-files");
    let (app_secret, merchant_key, secret_key) = (
        dir.join("app_secret"),
        dir.join("merchant_key"),
        dir.join("secret_key"),
    );
    // A trailing newline, as `echo` and editors leave it, is not part of the secret.
    std::fs::write(&app_secret, format!("{}\n", SipaySim::APP_SECRET)).unwrap();
    std::fs::write(&merchant_key, format!("{}\n", SipaySim::MERCHANT_KEY)).unwrap();
    std::fs::write(&secret_key, format!("{}\r\n", IyzicoSim::SECRET_KEY)).unwrap();
    let sipay_files = [
        "--app-secret-file",
        path_str(&app_secret),
        "--merchant-key-file",
        path_str(&merchant_key),
    ];
    let sipay_env = without(
        &sipay_env(&sipay),
        &["SIPAY_APP_SECRET", "SIPAY_MERCHANT_KEY"],
    );
    let iyzico_env = without(&iyzico_env(&iyzico), &["IYZICO_SECRET_KEY"]);

    let out = run(
        &[
            &[
                "sipay",
                "refund",
                "--invoice-id",
                "INV-F1",
                "--amount",
                "1.00",
            ][..],
            &sipay_files,
        ]
        .concat(),
        &sipay_env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(
        &[
            &["sipay", "status", "--invoice-id", "INV-F1"][..],
            &sipay_files,
        ]
        .concat(),
        &sipay_env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(
        &[
            &[
                "sipay",
                "hash-key",
                "--amount",
                "1.00",
                "--invoice-id",
                "INV-F1",
            ][..],
            &sipay_files,
        ]
        .concat(),
        &Env::new(),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let key = out.stdout.trim().to_owned();
    let out = run(
        &[
            "sipay",
            "verify-hash-key",
            "--hash-key",
            &key,
            "--app-secret-file",
            path_str(&app_secret),
        ],
        &Env::new(),
    )
    .await;
    // No merchant key configured here: the key part is shown masked, with nothing to compare.
    let masked = format!(
        "1.00|INV-F1|{}… ({} characters)",
        &SipaySim::MERCHANT_KEY[..4],
        SipaySim::MERCHANT_KEY.chars().count()
    );
    assert!(out.stdout.starts_with(&masked), "{out:?}");
    assert!(
        out.stdout.contains("no merchant key to compare with"),
        "{out:?}"
    );
    assert!(!out.stdout.contains(SipaySim::MERCHANT_KEY), "{out:?}");

    for args in [
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--amount",
            "5",
        ][..],
        &["iyzico", "status", "--payment-id", &payment.payment_id],
        &["iyzico", "cancel", "--payment-id", &unrefunded.payment_id],
    ] {
        let args = [args, &["--secret-key-file", path_str(&secret_key)]].concat();
        let out = run(&args, &iyzico_env).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
    }
    assert_eq!(sipay.payment("INV-F1").unwrap().refunded(), dec("1.00"));

    // An unreadable or empty file is a configuration failure, and nothing is sent.
    let before = sipay.requests().len();
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    for file in [dir.join("missing"), empty] {
        let out = run(
            &[
                "sipay",
                "refund",
                "--invoice-id",
                "INV-F1",
                "--amount",
                "1.00",
                "--merchant-key-file",
                path_str(&merchant_key),
                "--app-secret-file",
                path_str(&file),
            ],
            &json(sipay_env.clone()),
        )
        .await;
        assert_eq!(out.code, 2, "{out:?}");
        let v = out.outcome();
        assert_eq!(v["kind"], "configuration", "{v}");
        assert!(
            v["message"].as_str().unwrap().contains(path_str(&file)),
            "{v}"
        );
        assert_no_secrets(&out, "bad secret file");
    }
    assert_eq!(sipay.requests().len(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// --reason and --description
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn iyzico_line_refunds_and_cancels_send_the_reason_and_description() {
    let sim = IyzicoSim::start().await.unwrap();
    let payment = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let env = iyzico_env(&sim);
    let line = |i: usize| payment.items[i].payment_transaction_id.clone();
    let last_body = |path: &str| {
        sim.requests()
            .into_iter()
            .rev()
            .find(|r| r.path == path)
            .and_then(|r| r.json())
            .unwrap_or_else(|| panic!("no {path} request"))
    };

    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--payment-transaction-id",
            &line(0),
            "--amount",
            "10",
            "--reason",
            "fraud",
            "--description",
            "chargeback from the issuer",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let body = last_body("/payment/refund");
    assert_eq!(body["reason"], "fraud", "{body}");
    assert_eq!(body["description"], "chargeback from the issuer", "{body}");

    // A description alone goes with reason `other` (iyzico wants a reason with it).
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--payment-transaction-id",
            &line(1),
            "--amount",
            "5",
            "--description",
            "goodwill",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let body = last_body("/payment/refund");
    assert_eq!(body["reason"], "other", "{body}");
    assert_eq!(body["description"], "goodwill", "{body}");

    // Longer than 255 characters: invalid, not sent.
    let before = sim.requests().len();
    let long = "x".repeat(256);
    let out = run(
        &[
            "iyzico",
            "refund",
            "--payment-id",
            &payment.payment_id,
            "--payment-transaction-id",
            &line(1),
            "--amount",
            "1",
            "--description",
            &long,
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(sim.requests().len(), before);

    let fresh = sim.add_payment(Currency::Try, &[dec("30.0")]);
    let out = run(
        &[
            "iyzico",
            "cancel",
            "--payment-id",
            &fresh.payment_id,
            "--reason",
            "double-payment",
            "--description",
            "charged twice",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let body = last_body("/payment/cancel");
    assert_eq!(body["reason"], "double_payment", "{body}");
    assert_eq!(body["description"], "charged twice", "{body}");
}

#[tokio::test]
async fn a_reason_where_the_provider_has_no_field_is_refused_and_nothing_is_sent() {
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    sipay.add_payment("INV-R1", dec("100.00"), Currency::Try);
    let payment = iyzico.add_payment(Currency::Try, &[dec("60.0")]);

    for extra in [&["--reason", "fraud"][..], &["--description", "why"]] {
        let args = [
            &[
                "sipay",
                "refund",
                "--invoice-id",
                "INV-R1",
                "--amount",
                "1.00",
            ][..],
            extra,
        ]
        .concat();
        let out = run(&args, &sipay_env(&sipay)).await;
        assert_eq!(out.code, 2, "{out:?}");
        assert!(
            out.stderr
                .contains("SiPay's refund API has no reason or description field"),
            "{out:?}"
        );
        let out = run(&args, &json(sipay_env(&sipay))).await;
        assert_eq!(out.code, 2, "{out:?}");
        assert_eq!(out.outcome()["provider"], "sipay");

        // iyzico's payment-level refund takes none either.
        let args = [
            &[
                "iyzico",
                "refund",
                "--payment-id",
                &payment.payment_id,
                "--amount",
                "1",
            ][..],
            extra,
        ]
        .concat();
        let out = run(&args, &iyzico_env(&iyzico)).await;
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("--payment-transaction-id"), "{out:?}");
    }
    assert!(sipay.requests().is_empty(), "not even a token");
    assert!(iyzico.requests().is_empty());
    assert_eq!(refund_requests(&sipay), 0);

    // The help says so before anyone tries.
    let out = run(&["sipay", "refund", "--help"], &Env::new()).await;
    assert!(out.stdout.contains("no reason field"), "{out:?}");
    let out = run(&["iyzico", "refund", "--help"], &Env::new()).await;
    assert!(out.stdout.contains("buyer-request"), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// RUST_LOG
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rust_log_sets_the_level_and_without_it_v_and_vv_do() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-LOG", dec("100.00"), Currency::Try);
    let refund = |flags: &'static [&'static str], log: Option<&'static str>| {
        let mut env = sipay_env(&sim);
        env.extend(log.map(|l| var("RUST_LOG", l)));
        async move {
            let args = [
                flags,
                &[
                    "sipay",
                    "refund",
                    "--invoice-id",
                    "INV-LOG",
                    "--amount",
                    "0.01",
                ],
            ]
            .concat();
            run(&args, &env).await
        }
    };
    let lines = |out: &Out, level: &str| {
        out.stderr
            .lines()
            .filter(|l| l.contains(&format!(" {level} ")))
            .count()
    };

    let quiet = refund(&[], None).await;
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(quiet.stderr.is_empty(), "no logs unless asked: {quiet:?}");

    let info = refund(&[], Some("info")).await;
    assert_eq!(info.code, 0, "{info:?}");
    assert!(lines(&info, "INFO") > 0, "{info:?}");
    assert_eq!(lines(&info, "TRACE"), 0, "{info:?}");
    assert_eq!(lines(&info, "DEBUG"), 0, "{info:?}");

    // RUST_LOG decides over -vv.
    let warn_only = refund(&["-vv"], Some("warn")).await;
    assert_eq!(warn_only.code, 0, "{warn_only:?}");
    assert!(warn_only.stderr.is_empty(), "{warn_only:?}");

    // Per-crate directives work: only refund_sipay's own events, at every level.
    let sipay_only = refund(&[], Some("refund_sipay=trace")).await;
    assert_eq!(sipay_only.code, 0, "{sipay_only:?}");
    assert!(lines(&sipay_only, "INFO") > 0, "{sipay_only:?}");
    assert!(
        sipay_only.stderr.len() < refund(&["-vv"], None).await.stderr.len(),
        "hyper's and reqwest's traces left out"
    );

    // Without RUST_LOG, -v and -vv.
    let v = refund(&["-v"], None).await;
    assert!(lines(&v, "INFO") > 0, "{v:?}");
    assert_eq!(lines(&v, "TRACE"), 0, "{v:?}");
    let vv = refund(&["-vv"], None).await;
    assert!(lines(&vv, "TRACE") > 0, "{vv:?}");

    // A RUST_LOG that does not parse is reported, and -v applies.
    let bad = refund(&["-v"], Some("refund_sipay=loud")).await;
    assert_eq!(bad.code, 0, "{bad:?}");
    assert!(
        bad.stderr.starts_with("warning: RUST_LOG ignored"),
        "{bad:?}"
    );
    assert!(lines(&bad, "INFO") > 0, "{bad:?}");

    for out in [quiet, info, warn_only, sipay_only, v, vv, bad] {
        assert_no_secrets(&out, "logs");
    }
}

// ---------------------------------------------------------------------------------------
// sandbox
// ---------------------------------------------------------------------------------------

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

impl Reaper {
    /// SIGTERM, then the exit status within 5 s.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 5 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tokio::test]
async fn sandbox_env_file_round_trips_the_dollar_merchant_key_through_sh_eval() {
    assert!(
        SipaySim::MERCHANT_KEY.starts_with("$2y$10$"),
        "the key that used to expand"
    );
    let dir = scratch("sandbox env");
    let file = dir.join("sandbox.env");
    // A stale file from an earlier run is replaced, never read.
    std::fs::write(&file, "export SIPAY_BASE_URL='http://127.0.0.1:1'\n").unwrap();
    let mut cmd = command(&["sandbox", "--env-file", path_str(&file)], &Env::new());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Reaper(cmd.spawn().unwrap());
    // The note about the file goes to stderr; stdout stays empty.
    let stderr = child.0.stderr.take().unwrap();
    let note = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if !text.contains("127.0.0.1:1'") && !text.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no env file");
        std::thread::sleep(Duration::from_millis(50));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only: {mode:o}");
    }

    // The round trip the issue asks for, verbatim.
    let out = sh(
        &format!(
            r#"eval "$(cat '{}')"; printf %s "$SIPAY_MERCHANT_KEY""#,
            file.display()
        ),
        &Env::new(),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, SipaySim::MERCHANT_KEY);

    // Sourced, the variables are exported: the next `refund` command sees them.
    let out = sh(
        &format!(
            ". '{}' && refund --output json sipay hash-key --amount 1.00 --invoice-id X \
             && refund sipay verify-hash-key --hash-key \"$(refund sipay hash-key --amount 1.00 --invoice-id X)\"",
            file.display()
        ),
        &Env::new(),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    // The `$2y$…` merchant key survived `sh`: the decrypted key part matches the configured one
    // (and is shown only masked).
    let masked = format!(
        "1.00|X|{}… ({} characters)",
        &SipaySim::MERCHANT_KEY[..4],
        SipaySim::MERCHANT_KEY.chars().count()
    );
    assert!(out.stdout.contains(&masked), "{out:?}");
    assert!(
        out.stdout
            .contains("its merchant key part matches the configured merchant key"),
        "{out:?}"
    );
    assert!(!out.stdout.contains(SipaySim::MERCHANT_KEY), "{out:?}");

    // SIGTERM: exits 0 and takes the file with it (its ports die with the sandbox).
    let status = child.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(!file.exists(), "the env file outlived the sandbox");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(stdout.is_empty(), "{stdout}");
    let note = note.join().unwrap().join("\n");
    assert!(note.contains("eval \"$(cat"), "{note}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn sandbox_in_json_prints_one_object_with_the_variables() {
    let mut cmd = command(&["--output", "json", "sandbox"], &Env::new());
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = Reaper(cmd.spawn().unwrap());
    let stdout = child.0.stdout.take().unwrap();
    let line = std::thread::spawn(move || BufReader::new(stdout).lines().next())
        .join()
        .unwrap()
        .expect("a line")
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    for field in FIELDS {
        assert!(v.get(field).is_some(), "no {field:?}: {v}");
    }
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["kind"], "sandbox", "{v}");
    assert_eq!(
        v["env"]["SIPAY_MERCHANT_KEY"],
        SipaySim::MERCHANT_KEY,
        "{v}"
    );
    assert!(
        v["env"]["IYZICO_BASE_URL"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{v}"
    );
    assert_eq!(child.terminate().code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// Completions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn completions_for_bash_zsh_and_fish_know_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell], &Env::new()).await;
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        for word in [
            "sipay",
            "iyzico",
            "sandbox",
            "batch",
            "env-file",
            "secret-key-file",
        ] {
            assert!(out.stdout.contains(word), "{shell}: no {word}");
        }
        for removed in ["app-secret", "merchant-key", "secret-key"] {
            let offered = out
                .stdout
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .any(|w| w == removed || w == format!("--{removed}"));
            assert!(!offered, "{shell}: the removed --{removed} is offered");
        }
    }
    // bash loads it and registers the completion.
    if Path::new("/bin/bash").exists() || Path::new("/usr/bin/bash").exists() {
        let script = run(&["completions", "bash"], &Env::new()).await.stdout;
        let dir = scratch("completions");
        let file = dir.join("refund.bash");
        std::fs::write(&file, script).unwrap();
        let mut cmd = Command::new("bash");
        cmd.args([
            "--norc",
            "-c",
            &format!(". '{}' && complete -p refund", file.display()),
        ]);
        let out = finish(cmd.output().unwrap());
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("refund"), "{out:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let out = run(&["completions", "tcsh"], &Env::new()).await;
    assert_eq!(out.code, 2, "{out:?}");
}
