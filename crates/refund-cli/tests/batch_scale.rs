//! The scale benchmark of `refund batch` (issue 13): not a timed test, `#[ignore]`d and run by
//! hand, in release, with the figures recorded in docs/performance.md:
//!
//! ```sh
//! cargo test --release -p refund-cli --test batch_scale -- --ignored --nocapture
//! ```
//!
//! It starts the SiPay simulator in this process (recording off), writes an input of
//! `BATCH_SCALE_ROWS` rows (default 1,000,000; 100 rows of 1.00 TRY per payment of 200.00,
//! every other row with its own reference, the others with a generated one), runs the real
//! binary on it with `--concurrency BATCH_SCALE_CONCURRENCY` (default 64), then runs it again
//! over the finished journal. For each run it prints the wall time and the batch process's
//! peak RSS (`VmHWM` of `/proc/<pid>/status`, polled every 10 ms while it runs: the high-water
//! mark only grows, so the last reading before it exits is its peak, give or take the last
//! 10 ms). It checks that every row was refunded exactly once. `BATCH_SCALE_BIN=<path>` runs
//! another build of `refund` instead (to compare with an older one).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use refund_core::{Currency, Decimal};
use refund_testkit::sim::SipaySim;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_refund");
const ROWS_PER_PAYMENT: usize = 100;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// `VmHWM` of a running process, in KiB (0 when it cannot be read).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

struct Measured {
    code: i32,
    seconds: f64,
    peak_rss_kib: u64,
    summary: Value,
}

/// Runs the batch to completion, measuring its wall time and peak RSS.
async fn measure(sim: &SipaySim, input: &Path, journal: &Path, concurrency: usize) -> Measured {
    let c = sim.credentials();
    let other = std::env::var("BATCH_SCALE_BIN").ok();
    // The input's rows without a reference repeat on purpose (50 per payment): this build
    // refuses identical rows unless told they are meant (an older build has no such flag).
    let meant: &[&str] = if other.is_some() {
        &[]
    } else {
        &["--allow-identical-rows"]
    };
    let mut cmd = Command::new(other.unwrap_or_else(|| BIN.to_owned()));
    cmd.env_clear()
        .env("SIPAY_BASE_URL", c.base_url)
        .env("SIPAY_APP_ID", c.app_id)
        .env("SIPAY_APP_SECRET", c.app_secret)
        .env("SIPAY_MERCHANT_KEY", c.merchant_key)
        .args([
            "batch",
            "--input",
            input.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--concurrency",
            &concurrency.to_string(),
        ])
        .args(meant)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(peak_rss_kib(pid));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let summary = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Measured {
        code: status.code().unwrap_or(-1),
        seconds,
        peak_rss_kib: peak,
        summary,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by hand in release (see the module docs)"]
async fn batch_scale_a_million_rows_then_a_rerun_over_the_finished_journal() {
    let rows = env_number("BATCH_SCALE_ROWS", 1_000_000);
    let concurrency = env_number("BATCH_SCALE_CONCURRENCY", 64);
    let dir = std::env::temp_dir().join(format!("refund-batch-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");

    let sim = SipaySim::start().await.unwrap();
    sim.set_recording(false);
    let payments = rows.div_ceil(ROWS_PER_PAYMENT);
    for p in 0..payments {
        sim.add_payment(&format!("INV-{p:07}"), Decimal::from(200), Currency::Try);
    }
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        writeln!(out, "provider,payment,amount,currency,reference").unwrap();
        for i in 0..rows {
            let p = i / ROWS_PER_PAYMENT;
            if i % 2 == 0 {
                writeln!(out, "sipay,INV-{p:07},1.00,TRY,scale-{i:07}").unwrap();
            } else {
                writeln!(out, "sipay,INV-{p:07},1.00,TRY,").unwrap();
            }
        }
        out.flush().unwrap();
    }
    let input_mib = std::fs::metadata(&input).unwrap().len() / (1 << 20);

    let first = measure(&sim, &input, &journal, concurrency).await;
    let journal_mib = std::fs::metadata(&journal).unwrap().len() / (1 << 20);
    assert_eq!(first.code, 0, "{}", first.summary);
    // (`journal` is the whole input's totals; an older build has only this run's.)
    let refunded = &first.summary["journal"]["refunded"];
    let refunded = if refunded.is_null() {
        &first.summary["refunded"]
    } else {
        refunded
    };
    assert_eq!(refunded, rows, "{}", first.summary);

    let rerun = measure(&sim, &input, &journal, concurrency).await;
    assert_eq!(rerun.code, 0, "{}", rerun.summary);
    assert_eq!(rerun.summary["skipped"], rows, "{}", rerun.summary);

    let ledger = sim.ledger();
    let refunds: usize = (0..payments)
        .map(|p| {
            let paid = ledger.payment(&format!("INV-{p:07}")).unwrap();
            assert!(paid.refunds.len() <= ROWS_PER_PAYMENT, "{paid:?}");
            paid.refunds.len()
        })
        .sum();
    assert_eq!(refunds, rows, "every row refunded exactly once");

    let figures = serde_json::json!({
        "rows": rows,
        "concurrency": concurrency,
        "input_mib": input_mib,
        "journal_mib": journal_mib,
        "first_run_seconds": (first.seconds * 10.0).round() / 10.0,
        "first_run_rows_per_sec": (rows as f64 / first.seconds).round(),
        "first_run_peak_rss_mib": first.peak_rss_kib / 1024,
        "rerun_seconds": (rerun.seconds * 100.0).round() / 100.0,
        "rerun_peak_rss_mib": rerun.peak_rss_kib / 1024,
    });
    println!("{figures}");
    std::fs::remove_dir_all(&dir).unwrap();
}
