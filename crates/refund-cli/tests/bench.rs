//! End-to-end tests of `refund bench`: the binary runs small loads against the simulators
//! (in-process by default, or a running one given by `--base-url`) and its last stdout line
//! is the JSON summary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_refund");

const KEYS: [&str; 9] = [
    "provider",
    "requests",
    "concurrency",
    "refunds_per_sec",
    "p50_ms",
    "p99_ms",
    "token_requests",
    "errors",
    "peak_rss_kib",
];

/// Runs `refund bench …` with a cleared environment plus `env`.
fn bench(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(BIN);
    command.env_clear().arg("bench").args(args);
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the refund binary runs")
}

/// The last stdout line as a JSON object with exactly the documented keys.
fn summary(output: &Output) -> serde_json::Map<String, Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().expect("a summary line on stdout");
    let Value::Object(map) = serde_json::from_str::<Value>(last).expect("the last line is JSON")
    else {
        panic!("the last line is not a JSON object: {last}");
    };
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = KEYS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "summary keys");
    map
}

fn assert_clean_run(output: &Output, provider: &str) -> serde_json::Map<String, Value> {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let map = summary(output);
    assert_eq!(map["provider"], provider);
    assert_eq!(map["requests"], 200);
    assert_eq!(map["concurrency"], 16);
    assert_eq!(map["errors"], 0);
    assert!(map["refunds_per_sec"].as_f64().unwrap() > 0.0);
    assert!(map["p99_ms"].as_f64().unwrap() >= map["p50_ms"].as_f64().unwrap());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "refunds/s",
        "p50",
        "p99",
        "token requests",
        "errors",
        "peak RSS",
    ] {
        assert!(stderr.contains(needle), "stderr lacks {needle}: {stderr}");
    }
    map
}

#[test]
fn sipay_bench_refunds_everything_with_one_token() {
    let output = bench(
        &[
            "--provider",
            "sipay",
            "--requests",
            "200",
            "--concurrency",
            "16",
        ],
        &[],
    );
    let map = assert_clean_run(&output, "sipay");
    assert_eq!(map["token_requests"], 1);
}

#[test]
fn iyzico_bench_refunds_everything() {
    let output = bench(
        &[
            "--provider",
            "iyzico",
            "--requests",
            "200",
            "--concurrency",
            "16",
        ],
        &[],
    );
    assert_clean_run(&output, "iyzico");
}

/// `refund bench --provider P --requests 200 --concurrency 16 --base-url URL`, run off the
/// test's runtime (the simulator it targets lives on that runtime).
async fn bench_sandbox(
    provider: &'static str,
    url: String,
    env: Vec<(&'static str, String)>,
) -> Output {
    tokio::task::spawn_blocking(move || {
        let args = [
            "--provider",
            provider,
            "--requests",
            "200",
            "--concurrency",
            "16",
        ];
        bench(&[&args[..], &["--base-url", &url]].concat(), &env)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipay_bench_seeds_a_running_sandbox_through_the_admin_api() {
    let sim = SipaySim::start().await.unwrap();
    let c = sim.credentials();
    let env = vec![
        ("SIPAY_APP_ID", c.app_id.to_owned()),
        ("SIPAY_APP_SECRET", c.app_secret.to_owned()),
        ("SIPAY_MERCHANT_KEY", c.merchant_key.to_owned()),
    ];
    let output = bench_sandbox("sipay", c.base_url.clone(), env).await;
    let map = assert_clean_run(&output, "sipay");
    assert_eq!(map["token_requests"], 1);
    let refunds = sim.ledger().refunds().count();
    assert_eq!(refunds, 200, "every refund reached the running simulator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iyzico_bench_seeds_a_running_sandbox_through_the_admin_api() {
    let sim = IyzicoSim::start().await.unwrap();
    let c = sim.credentials();
    let env = vec![
        ("IYZICO_API_KEY", c.api_key.to_owned()),
        ("IYZICO_SECRET_KEY", c.secret_key.to_owned()),
    ];
    let output = bench_sandbox("iyzico", c.base_url.clone(), env).await;
    assert_clean_run(&output, "iyzico");
    let refunds: usize = sim
        .ledger()
        .payments
        .iter()
        .map(|p| p.refunds().count())
        .sum();
    assert_eq!(refunds, 200, "every refund reached the running simulator");
}

#[test]
fn bench_exits_5_when_the_sandbox_cannot_be_seeded() {
    // Nothing listens on port 1: seeding fails before any refund is sent.
    let output = bench(
        &[
            "--provider",
            "iyzico",
            "--requests",
            "3",
            "--concurrency",
            "2",
            "--base-url",
            "http://127.0.0.1:1",
        ],
        &[
            ("IYZICO_API_KEY", "k".to_owned()),
            ("IYZICO_SECRET_KEY", "s".to_owned()),
        ],
    );
    assert_eq!(output.status.code(), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_counts_failed_refunds_and_exits_5() {
    let sim = IyzicoSim::start().await.unwrap();
    sim.arm(Fault::Http500, 3);
    let c = sim.credentials();
    let env = vec![
        ("IYZICO_API_KEY", c.api_key.to_owned()),
        ("IYZICO_SECRET_KEY", c.secret_key.to_owned()),
    ];
    let url = c.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        bench(
            &[
                "--provider",
                "iyzico",
                "--requests",
                "20",
                "--concurrency",
                "4",
                "--base-url",
                &url,
            ],
            &env,
        )
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(5));
    let map = summary(&output);
    assert_eq!(map["requests"], 20);
    assert_eq!(map["errors"], 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("errors: 3 ("), "{stderr}");
}
