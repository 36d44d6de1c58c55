//! `refund decide` (issue 23): what a person decided for a row of a batch journal — refunded,
//! not refunded, retry now — is kept with who, when and why, later runs follow it, and a
//! decision never races a request that may be in flight nor contradicts the provider's ledger.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use refund_core::Currency;
use refund_testkit::sim::{Fault, SipaySim};

mod support;
use support::*;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refund-cli-decide-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The arguments as `&str`s.
fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The journal's last record.
fn last_record(journal: &std::path::Path) -> serde_json::Value {
    records(journal).pop().unwrap()
}

/// An `unknown` row (the answer was lost, the lookup lags): "not refunded" is refused while
/// the attempt may still appear (exit 75) and, once the ledger shows the refund, refused for
/// good (exit 2) — never a decline the ledger contradicts; "refunded" is then recorded with the
/// refund id the person gives, who, when and why; the rerun sends nothing more, paid exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_looks_up_an_in_flight_row_first_and_never_records_a_decline_the_ledger_contradicts()
{
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    set_lookup_lag(sim.base_url(), Duration::from_secs(600)).await;
    sim.arm(Fault::LostResponse, 1);
    let dir = scratch("in-flight");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        "provider,payment,amount,currency,reference\nsipay,INV-1,10.00,TRY,d-1\n",
    )
    .unwrap();
    let env = sipay_env(&sim);
    let slow = ["--timeout", "5", "--settle-time", "3600"];
    let first = run(&batch_args(&input, &journal, &slow), &env).await;
    assert_eq!(first.code, 4, "{first:?}");
    assert_eq!(last_record(&journal)["state"], "unknown");

    let journal_arg = path_str(&journal).to_owned();
    let decide = |what: &'static [&'static str]| {
        let mut args = vec![
            "--output",
            "json",
            "decide",
            "--journal",
            journal_arg.as_str(),
            "--reference",
            "d-1",
            "--by",
            "ayse",
            "--why",
            "checked the panel",
            "--settle-time",
            "3600",
        ];
        args.extend_from_slice(what);
        args.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };

    // The lookup does not show it yet and the attempt is younger than the settle time.
    let args = decide(&["--not-refunded"]);
    let early = run(&refs(&args), &env).await;
    assert_eq!(early.code, 75, "{early:?}");
    assert!(early.stdout.contains("settles at"), "{early:?}");
    let args = decide(&["--refunded"]);
    let early = run(&refs(&args), &env).await;
    assert_eq!(
        early.code, 75,
        "refunded waits for the settle time too: {early:?}"
    );
    assert_eq!(
        last_record(&journal)["state"],
        "unknown",
        "nothing recorded"
    );

    // The ledger now shows the refund: "not refunded" is refused.
    set_lookup_lag(sim.base_url(), Duration::ZERO).await;
    let args = decide(&["--not-refunded"]);
    let contradicted = run(&refs(&args), &env).await;
    assert_eq!(contradicted.code, 2, "{contradicted:?}");
    assert!(contradicted.stdout.contains("applied"), "{contradicted:?}");
    assert_eq!(
        last_record(&journal)["state"],
        "unknown",
        "nothing recorded"
    );

    let args = decide(&["--refunded", "--refund-id", "PANEL-77"]);
    let decided = run(&refs(&args), &env).await;
    assert_eq!(decided.code, 0, "{decided:?}");
    let json = decided.json();
    assert_eq!(json["ok"], true, "{json}");
    assert_eq!(json["kind"], "decided", "{json}");
    assert_eq!(json["lookup"], "applied", "{json}");
    let last = last_record(&journal);
    assert_eq!(last["state"], "refunded", "{last}");
    assert_eq!(last["decided"]["decision"], "refunded", "{last}");
    assert_eq!(last["decided"]["by"], "ayse", "{last}");
    assert_eq!(last["decided"]["why"], "checked the panel", "{last}");
    assert!(last["at"].as_u64().unwrap() > 0, "when: {last}");
    assert_eq!(
        last["provider_reference"], "PANEL-77",
        "the refund id: {last}"
    );

    let requests = sipay_refund_requests(&sim);
    let rerun = run(&batch_args(&input, &journal, &slow), &env).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(sipay_refund_requests(&sim), requests, "nothing more sent");
    assert_eq!(sim.payment("INV-1").unwrap().refunds.len(), 1, "paid once");

    // The report shows the decision, the amounts and the attempts, for accounting.
    let report = run(
        &["batch", "--journal", &journal_arg, "--report"],
        &Vec::new(),
    )
    .await;
    assert_eq!(report.code, 0, "{report:?}");
    let mut rows = csv::Reader::from_reader(report.stdout.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(str::to_owned).collect();
    let row = rows.records().next().unwrap().unwrap();
    let col = |name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        row.get(i).unwrap().to_owned()
    };
    assert_eq!(col("state"), "refunded");
    assert_eq!(col("provider_reference"), "PANEL-77");
    assert_eq!(col("requested_amount"), "10.00");
    assert_eq!(col("refunded_amount"), "10.00");
    assert_eq!(col("attempts"), "1");
    assert!(col("first_attempt_at").ends_with('Z'), "UTC: {report:?}");
    assert_eq!(col("first_attempt_at"), col("last_attempt_at"));
    assert_eq!(col("decision"), "refunded");
    assert_eq!(col("decided_by"), "ayse");
    assert_eq!(col("decided_why"), "checked the panel");
    assert!(col("decided_at").ends_with('Z'), "UTC: {report:?}");
    assert!(!col("last_error").is_empty(), "the lost answer: {report:?}");

    // A final row takes no decision.
    let args = decide(&["--not-refunded"]);
    let final_row = run(&refs(&args), &env).await;
    assert_eq!(final_row.code, 2, "{final_row:?}");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `failed` row (rejected credentials) decided "retry" after the fix is `retry_later` due
/// now: the next run sends it with the same reference and refunds it once; "retry" is kept
/// with who and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_retry_sends_a_failed_row_again_with_the_same_reference() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-2", dec("100.00"), Currency::Try);
    let dir = scratch("retry");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        "provider,payment,amount,currency,reference\nsipay,INV-2,10.00,TRY,d-2\n",
    )
    .unwrap();
    let good = sipay_env(&sim);
    let mut wrong = good.clone();
    for (k, v) in &mut wrong {
        if k == "SIPAY_APP_SECRET" {
            *v = "not-the-app-secret".into();
        }
    }
    let args = batch_args(&input, &journal, &["--timeout", "5"]);
    let first = run(&args, &wrong).await;
    assert_eq!(last_record(&journal)["state"], "failed", "{first:?}");
    let rerun = run(&args, &good).await;
    assert_eq!(
        last_record(&journal)["state"],
        "failed",
        "final by itself: {rerun:?}"
    );
    assert!(sim.payment("INV-2").unwrap().refunds.is_empty());

    let journal_arg = path_str(&journal).to_owned();
    let decided = run(
        &[
            "decide",
            "--journal",
            &journal_arg,
            "--reference",
            "d-2",
            "--retry",
            "--by",
            "mehmet",
            "--why",
            "app secret rotated",
        ],
        &good,
    )
    .await;
    assert_eq!(decided.code, 0, "{decided:?}");
    let last = last_record(&journal);
    assert_eq!(last["state"], "retry_later", "{last}");
    assert_eq!(last["decided"]["decision"], "retry", "{last}");
    assert_eq!(last["decided"]["by"], "mehmet", "{last}");

    let after = run(&args, &good).await;
    assert_eq!(after.code, 0, "{after:?}");
    assert_eq!(last_record(&journal)["state"], "refunded");
    let refunds = sim.payment("INV-2").unwrap().refunds;
    assert_eq!(refunds.len(), 1, "refunded once");
    let sent: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("refund"))
        .filter_map(|r| r.json())
        .filter_map(|j| j["refund_transaction_id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        sent.iter().all(|r| r == "d-2"),
        "the same reference: {sent:?}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}
