//! Crash safety of `refund batch` under a real SIGKILL.
//!
//! The batch runs against an in-process SiPay simulator that delays provider requests (and
//! loses every fifth answer after applying the refund, so the client is often mid-reconcile),
//! so a run takes a second or two; it is killed (SIGKILL on Unix: no destructor, no flush, no
//! signal handler runs) at a pseudo-random moment, several times, and then run to completion.
//! Whatever moment the kill hit — before a `sending` record, between it and the request,
//! while the request was in flight, after the answer but before the terminal record — the
//! ledger must show every row refunded exactly once and the journal must end `refunded` for
//! every row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use refund_core::{Currency, Decimal};
use refund_testkit::sim::{Fault, SipaySim};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_refund");
const ROWS: usize = 40;
const KILLS: u64 = 8;
/// Every provider request (refund and check status) waits this long before it is processed.
const DELAY: Duration = Duration::from_millis(150);
/// The settle time the runs are given: longer than DELAY, so a run never takes an attempt
/// still held by the simulator for one that did not take effect.
const SETTLE_SECS: u64 = 1;

fn command(sim: &SipaySim, input: &Path, journal: &Path) -> Command {
    let c = sim.credentials();
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("SIPAY_BASE_URL", c.base_url)
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
            "4",
            "--settle-time",
            &SETTLE_SECS.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The row's invoice and amount: one payment per row, a distinct amount per row.
fn row(i: usize) -> (String, String) {
    (format!("INV-S{i:02}"), format!("{}.{:02}", 5 + i, i))
}

/// A pseudo-random kill moment in 50..=700 ms, from the iteration number (no RNG crate).
fn kill_after(iteration: u64) -> Duration {
    let x = iteration
        .wrapping_add(1)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    Duration::from_millis(50 + (x >> 33) % 651)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_moment_never_refunds_a_row_twice() {
    let sim = SipaySim::start().await.unwrap();
    let mut csv = String::from("provider,payment,amount,currency\n");
    for i in 0..ROWS {
        let (invoice, amount) = row(i);
        // Paid far more than the row refunds: a second refund would be accepted and visible.
        sim.add_payment(&invoice, "1000.00".parse().unwrap(), Currency::Try);
        csv.push_str(&format!("sipay,{invoice},{amount},TRY\n"));
    }
    let dir = std::env::temp_dir().join(format!("refund-cli-sigkill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(&input, csv).unwrap();

    // Every fifth provider request is applied and its answer lost: the client then waits and
    // reconciles, which widens the window in which a kill finds a refund applied but not yet
    // journaled as `refunded` (the case only a lookup by reference can resolve).
    for _ in 0..2_000 {
        sim.arm(Fault::Delay(DELAY), 4);
        sim.arm(Fault::LostResponse, 1);
    }
    let mut killed_mid_run = 0;
    for iteration in 0..KILLS {
        let mut child = command(&sim, &input, &journal).spawn().unwrap();
        tokio::time::sleep(kill_after(iteration)).await;
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Requests of the killed run still held by the simulator finish within DELAY; the
        // next run starts after them, as an operator's rerun would.
        tokio::time::sleep(DELAY + Duration::from_millis(50)).await;
    }
    assert!(
        killed_mid_run >= 1,
        "no kill landed while the batch was running"
    );

    sim.disarm();
    // A row killed between its `sending` record and the request is resent only once that
    // attempt is older than the settle time; the final run starts after it.
    tokio::time::sleep(Duration::from_secs(SETTLE_SECS) + Duration::from_millis(200)).await;
    let mut last = command(&sim, &input, &journal);
    last.stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || last.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "final run: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // The ledger: every row's invoice refunded exactly once, by the row's amount.
    let ledger = sim.ledger();
    for i in 0..ROWS {
        let (invoice, amount) = row(i);
        let payment = ledger.payment(&invoice).unwrap();
        let amounts: Vec<Decimal> = payment.refunds.iter().map(|r| r.amount).collect();
        assert_eq!(
            amounts,
            vec![amount.parse::<Decimal>().unwrap()],
            "{invoice} must be refunded exactly once by {amount} (after {KILLS} kills, {killed_mid_run} mid-run)"
        );
    }

    // The journal: the last record of every row is `refunded`. A line torn by a kill is
    // skipped, exactly as the batch itself reads the journal.
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut states: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        if let Ok(record) = serde_json::from_str::<Value>(line) {
            states.insert(
                record["key"].as_str().unwrap().to_owned(),
                record["state"].as_str().unwrap().to_owned(),
            );
        }
    }
    assert_eq!(states.len(), ROWS, "one journal key per row: {states:?}");
    for i in 0..ROWS {
        let (invoice, _) = row(i);
        let (key, state) = states
            .iter()
            .find(|(k, _)| k.contains(&format!("{invoice}|")))
            .unwrap_or_else(|| panic!("no journal record for {invoice}: {states:?}"));
        assert_eq!(state, "refunded", "journal row {key}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
