//! `refund batch --report` for accounting (issue 23): with `--input`, rows in input order (a
//! row never sent reported `not_sent`), and `--report-format jsonl` with the same columns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use refund_core::Currency;
use refund_testkit::sim::SipaySim;

mod support;
use support::*;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refund-cli-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Three rows refunded, then a report given an input that lists them in another order plus a
/// row never sent: the rows come in the input's order, the new one `not_sent`; as JSON lines
/// every row is one object with the CSV's columns.
#[tokio::test]
async fn batch_report_follows_the_input_order_and_speaks_json_lines() {
    let sim = SipaySim::start().await.unwrap();
    for i in 1..=4 {
        sim.add_payment(&format!("INV-{i}"), dec("100.00"), Currency::Try);
    }
    let dir = scratch("order");
    let journal = dir.join("rows.journal");
    let first = dir.join("first.csv");
    std::fs::write(
        &first,
        "provider,payment,amount,currency,reference\nsipay,INV-1,1.00,TRY,o-1\n\
         sipay,INV-2,2.00,TRY,o-2\nsipay,INV-3,3.00,TRY,\n",
    )
    .unwrap();
    let out = run(&batch_args(&first, &journal, &[]), &sipay_env(&sim)).await;
    assert_eq!(out.code, 0, "{out:?}");

    let later = dir.join("later.csv");
    std::fs::write(
        &later,
        "provider,payment,amount,currency,reference\nsipay,INV-3,3.00,TRY,\n\
         sipay,INV-4,4.00,TRY,o-4\nsipay,INV-1,1.00,TRY,o-1\nsipay,INV-2,2.00,TRY,o-2\n",
    )
    .unwrap();
    let journal_arg = path_str(&journal).to_owned();
    let later_arg = path_str(&later).to_owned();
    let report = run(
        &[
            "batch",
            "--journal",
            &journal_arg,
            "--input",
            &later_arg,
            "--report",
        ],
        &sipay_env(&sim),
    )
    .await;
    assert_eq!(report.code, 0, "{report:?}");
    let mut reader = csv::Reader::from_reader(report.stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let payments: Vec<&str> = rows.iter().map(|r| &r[at("payment")]).collect();
    assert_eq!(payments, ["INV-3", "INV-4", "INV-1", "INV-2"], "{report:?}");
    let states: Vec<&str> = rows.iter().map(|r| &r[at("state")]).collect();
    assert_eq!(states, ["refunded", "not_sent", "refunded", "refunded"]);
    assert_eq!(&rows[0][at("refunded_amount")], "3.00");
    assert_eq!(&rows[1][at("requested_amount")], "4.00");
    assert!(
        sim.payment("INV-4").unwrap().refunds.is_empty(),
        "a report sends nothing"
    );

    let jsonl = run(
        &[
            "batch",
            "--journal",
            &journal_arg,
            "--report",
            "--report-format",
            "jsonl",
        ],
        &Vec::new(),
    )
    .await;
    assert_eq!(jsonl.code, 0, "{jsonl:?}");
    let objects: Vec<serde_json::Value> = jsonl
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 3, "{jsonl:?}");
    for o in &objects {
        assert_eq!(o["state"], "refunded", "{o}");
        assert_eq!(o["attempts"], "1", "{o}");
        assert_eq!(
            o.as_object().unwrap().len(),
            header.len(),
            "the same columns: {o}"
        );
    }

    std::fs::remove_dir_all(&dir).unwrap();
}
