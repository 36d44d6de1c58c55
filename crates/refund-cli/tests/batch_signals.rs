//! `refund batch` and signals (issue 23): the first SIGINT/SIGTERM stops sending new requests,
//! waits (up to 10 s) for the ones in flight, journals them, prints the summary and exits
//! 130/143; a second one exits at once. A rerun refunds each row exactly once.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use refund_core::Currency;
use refund_testkit::sim::SipaySim;

mod support;
use support::*;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("refund-cli-signals-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sends `signal` (`INT`, `TERM`) to `pid` with kill(1).
fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Six rows whose requests each take 3 s, two at a time: a SIGINT 1.5 s in lets the two in
/// flight finish and be journaled, sends nothing more, prints the summary and exits 130; the
/// rerun refunds the other four, and every payment is refunded exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_first_sigint_finishes_the_requests_in_flight_prints_the_summary_and_exits_130() {
    let sim = SipaySim::start().await.unwrap();
    let mut csv = String::from("provider,payment,amount,currency,reference\n");
    for i in 1..=6 {
        sim.add_payment(&format!("INV-{i}"), dec("100.00"), Currency::Try);
        csv.push_str(&format!("sipay,INV-{i},1.00,TRY,sig-{i}\n"));
    }
    sim.set_response_delay(Duration::from_secs(3));
    let dir = scratch("int");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(&input, csv).unwrap();
    let env = sipay_env(&sim);
    let args = batch_args(&input, &journal, &["--concurrency", "2", "--timeout", "20"]);

    let child = command(&args, &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    kill("INT", child.id());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(130), "{stdout} {stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "bounded wait");
    assert!(
        stderr.contains("SIGINT: no new requests are sent"),
        "{stderr}"
    );
    assert!(stderr.contains("this run, "), "the summary: {stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["refunded"], 2,
        "the two in flight, journaled: {summary}"
    );
    assert_eq!(
        sipay_refund_requests(&sim),
        2,
        "nothing new after the signal"
    );
    let refunded_in_journal = records(&journal)
        .iter()
        .filter(|r| r["state"] == "refunded")
        .count();
    assert_eq!(refunded_in_journal, 2, "journaled");

    sim.set_response_delay(Duration::ZERO);
    let rerun = run(&args, &env).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    for i in 1..=6 {
        let payment = sim.payment(&format!("INV-{i}")).unwrap();
        assert_eq!(payment.refunds.len(), 1, "INV-{i} refunded exactly once");
    }
    assert_eq!(sipay_refund_requests(&sim), 6);

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A second SIGTERM while the first waits for a slow request exits 143 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_second_sigterm_exits_143_at_once() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    sim.set_response_delay(Duration::from_secs(30));
    let dir = scratch("term");
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "provider,payment,amount,currency,reference\nsipay,INV-1,1.00,TRY,sig-t\n",
    )
    .unwrap();
    let journal = dir.join("rows.journal");
    let args = batch_args(&input, &journal, &["--timeout", "60"]);
    let child = command(&args, &sipay_env(&sim))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    kill("TERM", child.id());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    kill("TERM", child.id());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(3), "at once");
    assert!(
        stderr.contains("SIGTERM: no new requests are sent"),
        "{stderr}"
    );
    assert_eq!(
        records(&journal).last().unwrap()["state"],
        "sending",
        "the attempt in flight is journaled before it left"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}
