//! `refund batch --outbox` parity with the file journal (issue 23), against a throwaway
//! PostgreSQL server: identical rows without a reference are refused before anything is sent
//! (unless `--allow-identical-rows`), the report is formula-safe (unless `--report-raw`), and
//! `refund outbox status --output json` has the envelope every command has. Without PostgreSQL
//! binaries the test says so and returns, except under CI, where it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::path::Path;

use refund_core::Currency;
use refund_outbox::testing::{TestPostgres, TestPostgresError};
use refund_testkit::sim::SipaySim;

mod support;
use support::*;

/// The throwaway server, or `None` (said on stderr) without PostgreSQL binaries.
fn server() -> Option<TestPostgres> {
    match TestPostgres::start(Path::new(env!("CARGO_TARGET_TMPDIR"))) {
        Ok(server) => Some(server),
        Err(TestPostgresError::NoBinaries) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "no PostgreSQL binaries: CI must install them (apt-get install postgresql)"
            );
            eprintln!(
                "SKIPPED: no PostgreSQL binaries (set REFUND_OUTBOX_PG_BIN to run this test)"
            );
            None
        }
        Err(other) => panic!("starting the test PostgreSQL server failed: {other}"),
    }
}

/// Two identical rows without a reference are refused on the outbox as in a file journal
/// (nothing sent for them, exit 2, the other row refunded); the report prefixes formula-like
/// cells with `'` and `--report-raw` does not; `outbox status --output json` is an envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_on_the_outbox_refuses_identical_rows_and_reports_formula_safe_cells() {
    let Some(server) = server() else {
        return;
    };
    server.create_database("cli_parity").await.unwrap();
    let url = server.url("cli_parity");
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    sim.add_payment("=HYPERLINK(1)", dec("100.00"), Currency::Try);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-batch-outbox-parity");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "provider,payment,amount,currency,reference\nsipay,INV-1,1.00,TRY,\n\
         sipay,INV-1,1.00,TRY,\nsipay,=HYPERLINK(1),2.00,TRY,r-3\n",
    )
    .unwrap();
    let input_arg = path_str(&input).to_owned();
    let env = sipay_env(&sim);

    let out = run(
        &[
            "batch",
            "--input",
            &input_arg,
            "--outbox",
            &url,
            "--timeout",
            "5",
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("line 2: the rows on lines 2, 3 are identical"),
        "{out:?}"
    );
    assert!(sim.payment("INV-1").unwrap().refunds.is_empty(), "not sent");
    assert_eq!(
        sim.payment("=HYPERLINK(1)").unwrap().refunded(),
        dec("2.00")
    );
    assert_eq!(summary(&out)["malformed"], 2, "{out:?}");

    let report = run(&["batch", "--outbox", &url, "--report"], &env).await;
    assert_eq!(report.code, 0, "{report:?}");
    let row = report.stdout.lines().nth(1).unwrap();
    assert!(
        row.starts_with("sipay,'=HYPERLINK(1),2.00,TRY,r-3,"),
        "{row}"
    );
    let raw = run(
        &["batch", "--outbox", &url, "--report", "--report-raw"],
        &env,
    )
    .await;
    let row = raw.stdout.lines().nth(1).unwrap();
    assert!(row.starts_with("sipay,=HYPERLINK(1),2.00,"), "{row}");

    let mut status_env = env.clone();
    status_env.push(("DATABASE_URL".into(), url.clone()));
    let status = run(&["--output", "json", "outbox", "status"], &status_env).await;
    assert_eq!(status.code, 0, "{status:?}");
    let s = summary(&status);
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(s["kind"], "outbox_status", "{s}");
    assert_eq!(s["exit_code"], 0, "{s}");
    assert_eq!(s["refunded"], 1, "{s}");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// An intent of the file that another worker claimed (and died holding) is waited for, and
/// the run says so: which worker, how many intents, up to how long; then it is refunded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_on_the_outbox_says_when_it_waits_for_another_workers_lease() {
    let Some(server) = server() else {
        return;
    };
    let mut db = server.create_database("cli_lease").await.unwrap();
    let url = server.url("cli_lease");
    refund_outbox::migrate(&mut db).await.unwrap();
    db.execute(
        "INSERT INTO refund_outbox_intents (provider, payment_scope, payment_id, amount, \
         currency, reference, claim, lease_owner, lease_until) VALUES ('sipay', 'payment', \
         'INV-9', 3.00, 'TRY', 'lease-1', 1, 'worker-x', now() + interval '3 seconds')",
        &[],
    )
    .await
    .unwrap();
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-9", dec("100.00"), Currency::Try);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-batch-outbox-lease");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "provider,payment,amount,currency,reference\nsipay,INV-9,3.00,TRY,lease-1\n",
    )
    .unwrap();
    let input_arg = path_str(&input).to_owned();
    let out = run(
        &[
            "batch",
            "--input",
            &input_arg,
            "--outbox",
            &url,
            "--timeout",
            "5",
        ],
        &sipay_env(&sim),
    )
    .await;
    assert!(
        out.stderr
            .contains("for 1 intents claimed by worker worker-x"),
        "{out:?}"
    );
    assert!(out.stderr.contains("waiting up to "), "{out:?}");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        sim.payment("INV-9").unwrap().refunds.len(),
        1,
        "refunded once"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

/// On the outbox too, the first SIGINT claims nothing more, lets the intents in flight finish,
/// prints the summary and exits 130; the rerun refunds the rest, each payment exactly once.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_on_the_outbox_stops_on_sigint_with_the_summary_and_exit_130() {
    let Some(server) = server() else {
        return;
    };
    server.create_database("cli_sigint").await.unwrap();
    let url = server.url("cli_sigint");
    let sim = SipaySim::start().await.unwrap();
    let mut csv = String::from("provider,payment,amount,currency,reference\n");
    for i in 1..=4 {
        sim.add_payment(&format!("INV-{i}"), dec("100.00"), Currency::Try);
        csv.push_str(&format!("sipay,INV-{i},1.00,TRY,os-{i}\n"));
    }
    sim.set_response_delay(std::time::Duration::from_secs(3));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-batch-outbox-sigint");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("rows.csv");
    std::fs::write(&input, csv).unwrap();
    let input_arg = path_str(&input).to_owned();
    let args = [
        "batch",
        "--input",
        &input_arg,
        "--outbox",
        &url,
        "--concurrency",
        "1",
        "--timeout",
        "20",
    ];
    let env = sipay_env(&sim);
    let child = command(&args, &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    let status = std::process::Command::new("kill")
        .args(["-INT".to_owned(), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("SIGINT: no new intents are claimed"),
        "{stderr}"
    );
    assert!(stderr.contains("this run, "), "the summary: {stderr}");
    assert!(sipay_refund_requests(&sim) < 4, "stopped early");

    sim.set_response_delay(std::time::Duration::ZERO);
    let rerun = run(&args, &env).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    for i in 1..=4 {
        assert_eq!(
            sim.payment(&format!("INV-{i}")).unwrap().refunds.len(),
            1,
            "INV-{i} exactly once"
        );
    }

    std::fs::remove_dir_all(&dir).unwrap();
}
