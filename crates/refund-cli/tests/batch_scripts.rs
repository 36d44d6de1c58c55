//! `refund batch` for scripts (issue 23): `--output json` gives the summary in the envelope
//! every command has (`ok`, `kind`, `exit_code`, …), and the exit code follows the README's
//! table, the mixed case included (some rows malformed, the others refunded: 2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use refund_core::Currency;
use refund_testkit::sim::SipaySim;

mod support;
use support::*;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("refund-cli-scripts-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// All rows refunded: `ok` true, exit 0; one malformed row and the others refunded (the mixed
/// case): exit 2, `ok` false, the counts in the same object, the refunded rows refunded once.
#[tokio::test]
async fn batch_json_summary_has_the_envelope_and_the_mixed_case_exits_2() {
    let sim = SipaySim::start().await.unwrap();
    for i in 1..=3 {
        sim.add_payment(&format!("INV-{i}"), dec("100.00"), Currency::Try);
    }
    let dir = scratch("envelope");
    let good = dir.join("good.csv");
    std::fs::write(
        &good,
        "provider,payment,amount,currency,reference\nsipay,INV-1,1.00,TRY,s-1\n",
    )
    .unwrap();
    let mixed = dir.join("mixed.csv");
    std::fs::write(
        &mixed,
        "provider,payment,amount,currency,reference\nsipay,INV-2,2.00,TRY,s-2\n\
         sipay,INV-3,abc,TRY,s-3\n",
    )
    .unwrap();
    let env = sipay_env(&sim);
    let json = |out: &Out| -> serde_json::Value {
        serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap()
    };

    let good_journal = dir.join("good.journal");
    let mut args = vec!["--output", "json"];
    args.extend(batch_args(&good, &good_journal, &[]));
    let out = run(&args, &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    let s = json(&out);
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(s["kind"], "batch", "{s}");
    assert_eq!(s["exit_code"], 0, "{s}");
    assert_eq!(s["outcome_known"], true, "{s}");
    assert_eq!(s["refunded"], 1, "{s}");
    assert_eq!(s["journal"]["refunded"], 1, "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("this run, 1 rows"),
        "{s}"
    );

    let mixed_journal = dir.join("mixed.journal");
    let mut args = vec!["--output", "json"];
    args.extend(batch_args(&mixed, &mixed_journal, &[]));
    let out = run(&args, &env).await;
    assert_eq!(out.code, 2, "{out:?}");
    let s = json(&out);
    assert_eq!(s["ok"], false, "{s}");
    assert_eq!(s["exit_code"], 2, "{s}");
    assert_eq!(s["refunded"], 1, "{s}");
    assert_eq!(s["malformed"], 1, "{s}");
    assert_eq!(sim.payment("INV-2").unwrap().refunded(), dec("2.00"));
    assert!(sim.payment("INV-3").unwrap().refunds.is_empty());

    std::fs::remove_dir_all(&dir).unwrap();
}
