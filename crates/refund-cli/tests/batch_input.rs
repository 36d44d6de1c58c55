//! `refund batch` input that cannot be misread (issue 23): a record with more or fewer fields
//! than the header, a header naming a column twice, a line over the length limit, identical
//! rows without a reference and what a provider cannot take are refused before anything is
//! sent; input from a pipe is read once; the report is safe to open in a spreadsheet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use refund_core::Currency;
use refund_testkit::sim::SipaySim;

mod support;
use support::*;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refund-cli-input-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A simulator with payments `INV-1`…`INV-4` of 100.00 TRY.
async fn sim() -> SipaySim {
    let sim = SipaySim::start().await.unwrap();
    for i in 1..=4 {
        sim.add_payment(&format!("INV-{i}"), dec("100.00"), Currency::Try);
    }
    sim
}

/// With the header `provider,payment,currency,amount`, the row `sipay,INV-1,TRY,10,50` (a
/// decimal comma, unquoted) used to refund 10.00 with exit 0; it has five fields where the
/// header has four, so it is refused with its line, and never sent. So is a row with too few.
#[tokio::test]
async fn batch_refuses_a_record_with_more_or_fewer_fields_than_the_header() {
    let sim = sim().await;
    let dir = scratch("fields");
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "provider,payment,currency,amount\nsipay,INV-1,TRY,10,50\nsipay,INV-2,TRY\nsipay,INV-3,TRY,7.00\n",
    )
    .unwrap();
    let out = run(
        &batch_args(&input, &dir.join("j.journal"), &[]),
        &sipay_env(&sim),
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("line 2: 5 fields where the header has 4"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("line 3: 3 fields where the header has 4"),
        "{out:?}"
    );
    assert!(sim.payment("INV-1").unwrap().refunds.is_empty(), "not sent");
    assert!(sim.payment("INV-2").unwrap().refunds.is_empty(), "not sent");
    assert_eq!(sim.payment("INV-3").unwrap().refunded(), dec("7.00"));
    assert_eq!(summary(&out)["malformed"], 2, "{out:?}");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A header naming a column twice (the first one used to win) is refused: nothing is sent.
#[tokio::test]
async fn batch_refuses_a_header_that_names_a_column_twice() {
    let sim = sim().await;
    let dir = scratch("header");
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "provider,payment,amount,currency,Amount\nsipay,INV-1,10.00,TRY,1.00\n",
    )
    .unwrap();
    let journal = dir.join("j.journal");
    let out = run(&batch_args(&input, &journal, &[]), &sipay_env(&sim)).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("line 1") && out.stderr.contains("\"amount\" twice"),
        "{out:?}"
    );
    assert_eq!(sipay_refund_requests(&sim), 0, "nothing sent");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A line longer than the documented 64 KiB is refused with its number before anything is
/// sent (the reader used to grow without bound: `--input /dev/zero` reached 2 GB), even the
/// valid rows before it.
#[tokio::test]
async fn batch_refuses_a_line_over_the_length_limit_before_anything_is_sent() {
    let sim = sim().await;
    let dir = scratch("long");
    let input = dir.join("rows.csv");
    let long = "x".repeat(64 * 1024 + 1);
    std::fs::write(
        &input,
        format!("provider,payment,amount,currency,reference\nsipay,INV-1,1.00,TRY,\nsipay,INV-2,1.00,TRY,{long}\n"),
    )
    .unwrap();
    let out = run(
        &batch_args(&input, &dir.join("j.journal"), &[]),
        &sipay_env(&sim),
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("line 3 is longer than 65536 bytes"),
        "{}",
        &out.stderr[..out.stderr.len().min(2_000)]
    );
    assert_eq!(sipay_refund_requests(&sim), 0, "nothing sent");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two identical rows without a reference (20,000 identical rows used to give 20,000 refunds
/// without a word) are refused, with their lines, before anything is sent; other rows go.
/// With `--allow-identical-rows` each is a refund of its own.
#[tokio::test]
async fn batch_refuses_identical_rows_without_a_reference_unless_they_are_meant() {
    let sim = sim().await;
    let dir = scratch("identical");
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "provider,payment,amount,currency\nsipay,INV-1,5.00,TRY\nsipay,INV-2,1.00,TRY\nsipay,INV-1,5.00,TRY\n",
    )
    .unwrap();
    let env = sipay_env(&sim);
    let out = run(&batch_args(&input, &dir.join("a.journal"), &[]), &env).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr
            .matches("the rows on lines 2, 4 are identical")
            .count(),
        2,
        "{out:?}"
    );
    assert!(out.stderr.contains("--allow-identical-rows"), "{out:?}");
    assert!(sim.payment("INV-1").unwrap().refunds.is_empty(), "not sent");
    assert_eq!(sim.payment("INV-2").unwrap().refunded(), dec("1.00"));

    let out = run(
        &batch_args(&input, &dir.join("b.journal"), &["--allow-identical-rows"]),
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("10.00"));

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A currency the provider cannot take (USD on SiPay) is refused in the validation pass,
/// never journaled `failed` at send time.
#[tokio::test]
async fn batch_refuses_what_the_providers_capabilities_refuse_before_sending() {
    let sim = sim().await;
    let dir = scratch("caps");
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "provider,payment,amount,currency\nsipay,INV-1,5.00,USD\nsipay,INV-2,1.00,TRY\n",
    )
    .unwrap();
    let journal = dir.join("j.journal");
    let out = run(&batch_args(&input, &journal, &[]), &sipay_env(&sim)).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("line 2: sipay does not refund in USD (it refunds in TRY)"),
        "{out:?}"
    );
    assert_eq!(sipay_refund_requests(&sim), 1, "only INV-2");
    assert!(
        records(&journal)
            .iter()
            .all(|r| !r["key"].as_str().unwrap().contains("INV-1")),
        "nothing journaled for it"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

/// What the provider itself refuses before sending (`RefundProvider::validate`: a `|` in a
/// SiPay invoice id, its hash_key's field separator) is refused in the validation pass with
/// its line, never sent and never journaled `failed` for every rerun to retry.
#[tokio::test]
async fn batch_refuses_a_pipe_in_a_sipay_invoice_id_before_sending() {
    let sim = sim().await;
    sim.add_payment("INV|9", dec("100.00"), Currency::Try);
    let dir = scratch("provider-validate");
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "provider,payment,amount,currency\nsipay,INV|9,5.00,TRY\nsipay,INV-2,1.00,TRY\n",
    )
    .unwrap();
    let journal = dir.join("j.journal");
    for _ in 0..2 {
        let out = run(&batch_args(&input, &journal, &[]), &sipay_env(&sim)).await;
        assert_eq!(out.code, 2, "{out:?}");
        assert!(
            out.stderr.contains("line 2: ") && out.stderr.contains("contains '|'"),
            "{out:?}"
        );
        assert_eq!(summary(&out)["malformed"], 1, "{out:?}");
    }
    assert_eq!(sipay_refund_requests(&sim), 1, "only INV-2, once");
    assert!(sim.payment("INV|9").unwrap().refunds.is_empty(), "not sent");
    assert!(
        records(&journal)
            .iter()
            .all(|r| !r["key"].as_str().unwrap().contains("INV|9")),
        "nothing journaled for it"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

/// Input from a pipe (`--input -`) works: it is read once into a temporary file, validated and
/// worked through like a file, and the temporary file is gone afterwards.
#[tokio::test]
async fn batch_reads_its_input_from_a_pipe() {
    let sim = sim().await;
    let dir = scratch("pipe");
    let journal = dir.join("j.journal");
    let journal_arg = path_str(&journal).to_owned();
    let args = ["batch", "--input", "-", "--journal", &journal_arg];
    let mut child = command(&args, &sipay_env(&sim))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"provider,payment,amount,currency,reference\nsipay,INV-1,3.00,TRY,p-1\nsipay,INV-2,4.00,TRY,p-2\n")
        .unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("3.00"));
    assert_eq!(sim.payment("INV-2").unwrap().refunded(), dec("4.00"));
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("refund-batch-input-")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "the temporary copy is removed: {leftovers:?}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--report` cells beginning with `=`, `+`, `-`, `@`, a tab or a carriage return get a
/// leading `'` (a spreadsheet would run them as formulas); `--report-raw` writes them as
/// they are.
#[tokio::test]
async fn batch_report_is_formula_safe_unless_raw() {
    let dir = scratch("report");
    let journal = dir.join("j.journal");
    std::fs::write(
        &journal,
        "{\"key\":\"sipay|payment:=HYPERLINK(1)|1.00 TRY|#1\",\"reference\":\"+SUM(1,2)\",\"state\":\"refunded\",\"provider_reference\":\"@x\",\"at\":1}\n",
    )
    .unwrap();
    let report = run(
        &["batch", "--journal", path_str(&journal), "--report"],
        &Env::new(),
    )
    .await;
    assert_eq!(report.code, 0, "{report:?}");
    let row = report.stdout.lines().nth(1).unwrap();
    assert!(
        row.starts_with("sipay,'=HYPERLINK(1),1.00,TRY,\"'+SUM(1,2)\",refunded,'@x,"),
        "{row}"
    );
    let raw = run(
        &[
            "batch",
            "--journal",
            path_str(&journal),
            "--report",
            "--report-raw",
        ],
        &Env::new(),
    )
    .await;
    assert_eq!(raw.code, 0, "{raw:?}");
    let row = raw.stdout.lines().nth(1).unwrap();
    assert!(
        row.starts_with("sipay,=HYPERLINK(1),1.00,TRY,\"+SUM(1,2)\",refunded,@x,"),
        "{row}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}
