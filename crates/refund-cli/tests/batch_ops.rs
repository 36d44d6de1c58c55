//! `refund batch` for operations (issue 13), through the binary against the in-process
//! simulators: honest totals over every row of the journal, temporary refusals kept as
//! `retry_later` and sent again later with the same reference, pacing (`--rate`, and one 429
//! pausing every worker of its provider), validation before anything is sent, and the
//! accounting report (`--report`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use refund_core::{Currency, Decimal};
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};
use serde_json::Value;

mod support;
use support::*;

/// Runs the binary to completion, off the async runtime's threads.
async fn run(args: &[&str], env: &Env) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("run refund"))
        .await
        .unwrap();
    Out {
        code: output.status.code().expect("exited with a code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The references of the refund requests the simulator received, in order.
fn sipay_refund_references(sim: &SipaySim) -> Vec<String> {
    sim.requests()
        .iter()
        .filter(|r| r.path.contains("refund"))
        .filter_map(|r| r.json())
        .filter_map(|j| j["refund_transaction_id"].as_str().map(str::to_owned))
        .collect()
}

fn iyzico_refund_references(sim: &IyzicoSim) -> Vec<String> {
    sim.requests()
        .iter()
        .filter(|r| r.path.contains("refund") || r.path.contains("cancel"))
        .filter_map(|r| r.json())
        .filter_map(|j| j["conversationId"].as_str().map(str::to_owned))
        .collect()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refund-cli-ops-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The last record of each row key.
fn last_records(path: &Path) -> HashMap<String, Value> {
    records(path)
        .into_iter()
        .map(|r| (r["key"].as_str().unwrap().to_owned(), r))
        .collect()
}

/// The summary's `journal` totals as (rows, refunded, declined, unknown, retry_later, failed).
fn totals(out: &Out) -> (u64, u64, u64, u64, u64, u64) {
    let s = summary(out);
    let j = &s["journal"];
    let n = |k: &str| {
        j[k].as_u64()
            .unwrap_or_else(|| panic!("journal.{k} missing: {s}"))
    };
    (
        n("rows"),
        n("refunded"),
        n("declined"),
        n("unknown"),
        n("retry_later"),
        n("failed"),
    )
}

// ---------------------------------------------------------------------------------------
// Honest totals
// ---------------------------------------------------------------------------------------

/// The summary's `journal` counts every input row by its state after the run, touched or
/// not, and the exit code follows it: a rerun that skips a declined row still exits 3, and
/// one that leaves a row unknown exits 4 (it used to exit 0 with everything "skipped").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_totals_count_every_row_after_the_run_and_the_exit_code_follows_them() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-T1", dec("100.00"), Currency::Try);
    sim.add_payment("INV-T2", dec("5.00"), Currency::Try);
    sim.add_payment("INV-T3", dec("100.00"), Currency::Try);
    let dir = scratch("totals");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    let env = sipay_env(&sim);
    // T2 asks more than was paid: a final decline.
    std::fs::write(
        &input,
        "provider,payment,amount,currency\nsipay,INV-T1,10.00,TRY\nsipay,INV-T2,50.00,TRY\n",
    )
    .unwrap();
    let args = batch_args(&input, &journal, &["--timeout", "5", "--settle-time", "60"]);

    let out = run(&args, &env).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(totals(&out), (2, 1, 1, 0, 0, 0), "{out:?}");

    // The rerun touches nothing, and says so honestly: still one declined row, exit 3.
    let out = run(&args, &env).await;
    assert_eq!(out.code, 3, "{out:?}");
    let s = summary(&out);
    assert_eq!(s["skipped"], 2, "{s}");
    assert_eq!(s["refunded"], 0, "{s}");
    assert_eq!(totals(&out), (2, 1, 1, 0, 0, 0), "{s}");
    assert!(out.stderr.contains("journal, 2 rows"), "{out:?}");

    // A third row whose answer is lost, and whose refund the lookup does not show yet: the
    // run and every rerun inside the settle time exit 4, counting it unknown.
    set_lookup_lag(sim.base_url(), Duration::from_secs(120)).await;
    sim.arm(Fault::LostResponse, 1);
    std::fs::write(
        &input,
        "provider,payment,amount,currency\nsipay,INV-T1,10.00,TRY\nsipay,INV-T2,50.00,TRY\n\
         sipay,INV-T3,7.00,TRY\n",
    )
    .unwrap();
    let out = run(&args, &env).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(totals(&out), (3, 1, 1, 1, 0, 0), "{out:?}");
    let out = run(&args, &env).await;
    assert_eq!(out.code, 4, "{out:?}");
    let s = summary(&out);
    assert_eq!(s["skipped"], 2, "{s}");
    assert_eq!(s["unknown"], 1, "{s}");
    assert_eq!(totals(&out), (3, 1, 1, 1, 0, 0), "{s}");
    // The keys the summary always had are still there.
    for key in [
        "rows",
        "refunded",
        "declined",
        "unknown",
        "failed",
        "skipped",
        "malformed",
    ] {
        assert!(s[key].is_u64(), "{key}: {s}");
    }
    assert_eq!(
        sim.payment("INV-T3").unwrap().refunds.len(),
        1,
        "never resent"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// Retry later
// ---------------------------------------------------------------------------------------

/// iyzico's bank refuses a refund (a retryable decline, each leaving a failed entry): the row
/// is `retry_later`, never `declined`, and since the policy's backoff is due within the run, it
/// is sent again in the same run with the same reference and refunded, exactly once. Refused
/// three times (the policy's limit), it is `declined` for good and never sent a fourth time.
/// (`--input-never-run-before`: the armed faults are for the refunds, not for the check of
/// iyzico's ledger before a first send.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_temporary_refusals_are_retried_later_with_the_same_reference() {
    let sim = IyzicoSim::start().await.unwrap();
    let once = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let thrice = sim.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let dir = scratch("retry-later");
    let env = iyzico_env(&sim);
    let campaign = |name: &str, payment: &str| {
        let input = dir.join(format!("{name}.csv"));
        std::fs::write(
            &input,
            format!("provider,payment,amount,currency\niyzico,{payment},12,TRY\n"),
        )
        .unwrap();
        (input, dir.join(format!("{name}.journal")))
    };

    // Refused once: sent again after the backoff, in this run, and refunded.
    let (input, journal) = campaign("once", &once.payment_id);
    sim.arm(Fault::Fail, 1);
    let out = run(
        &batch_args(
            &input,
            &journal,
            &["--timeout", "5", "--input-never-run-before"],
        ),
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(totals(&out), (1, 1, 0, 0, 0, 0), "{out:?}");
    let journaled = records(&journal);
    let states: Vec<&str> = journaled
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["sending", "retry_later", "sending", "refunded"],
        "{journaled:?}"
    );
    assert_eq!(journaled[1]["refused"], true, "{journaled:?}");
    assert!(journaled[1]["not_before"].is_u64(), "{journaled:?}");
    let references = iyzico_refund_references(&sim);
    assert_eq!(references.len(), 2, "{references:?}");
    assert!(
        references.iter().all(|r| *r == references[0]),
        "one reference throughout: {references:?}"
    );
    let paid = sim.payment(&once.payment_id).unwrap();
    assert_eq!(paid.refunded(), dec("12"), "refunded once: {paid:?}");

    // Refused three times: declined after the third, never sent a fourth time.
    let (input, journal) = campaign("thrice", &thrice.payment_id);
    sim.arm(Fault::Fail, 3);
    let out = run(
        &batch_args(
            &input,
            &journal,
            &["--timeout", "5", "--input-never-run-before"],
        ),
        &env,
    )
    .await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(totals(&out), (1, 0, 1, 0, 0, 0), "{out:?}");
    assert_eq!(
        iyzico_refund_references(&sim).len(),
        5,
        "three more requests"
    );
    let last = records(&journal).pop().unwrap();
    assert_eq!(last["state"], "declined", "{last}");
    assert!(
        last["note"].as_str().unwrap().contains("refused 3 times"),
        "{last}"
    );
    let out = run(&batch_args(&input, &journal, &["--timeout", "5"]), &env).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(iyzico_refund_references(&sim).len(), 5, "final: not resent");
    let paid = sim.payment(&thrice.payment_id).unwrap();
    assert_eq!(paid.refunded(), dec("0"), "{paid:?}");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `retry_later` row is not sent before its not-before time, and is sent after it with its
/// journaled reference (the journal here is written by hand: one row due in an hour, one due
/// already).
#[tokio::test]
async fn batch_sends_a_retry_later_row_only_after_its_time_with_its_reference() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-W1", dec("100.00"), Currency::Try);
    sim.add_payment("INV-W2", dec("100.00"), Currency::Try);
    let dir = scratch("not-before");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        "provider,payment,amount,currency\nsipay,INV-W1,10.00,TRY\nsipay,INV-W2,20.00,TRY\n",
    )
    .unwrap();
    let now = now_ms();
    let record = |key: &str, reference: &str, state: &str, extra: &str| {
        format!(
            "{{\"key\":\"{key}\",\"reference\":\"{reference}\",\"state\":\"{state}\",\"at\":{}{extra}}}\n",
            now - 5_000
        )
    };
    let later = now + 3_600_000;
    let due = now - 1_000;
    std::fs::write(
        &journal,
        [
            record("sipay|payment:INV-W1|10.00 TRY|#1", "rf-w1", "sending", ""),
            record(
                "sipay|payment:INV-W1|10.00 TRY|#1",
                "rf-w1",
                "retry_later",
                &format!(",\"not_before\":{later},\"refused\":true"),
            ),
            record("sipay|payment:INV-W2|20.00 TRY|#1", "rf-w2", "sending", ""),
            record(
                "sipay|payment:INV-W2|20.00 TRY|#1",
                "rf-w2",
                "retry_later",
                &format!(",\"not_before\":{due}"),
            ),
        ]
        .concat(),
    )
    .unwrap();
    let out = run(&batch_args(&input, &journal, &[]), &sipay_env(&sim)).await;
    assert_eq!(out.code, 4, "W1 still waits: {out:?}");
    assert_eq!(totals(&out), (2, 1, 0, 0, 1, 0), "{out:?}");
    assert_eq!(summary(&out)["skipped"], 1);
    assert_eq!(
        sipay_refund_references(&sim),
        ["rf-w2"],
        "only W2, as journaled"
    );
    assert!(sim.payment("INV-W1").unwrap().refunds.is_empty());
    assert!(
        out.stderr.contains(&format!("after {}", utc_prefix(later))),
        "says when to run again: {out:?}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

/// `YYYY-MM-DDTHH:MM` of unix ms `ms`, UTC (the minute is enough to find it in a message).
fn utc_prefix(ms: u64) -> String {
    let secs = ms / 1_000;
    let days = i64::try_from(secs / 86_400).unwrap();
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}",
        rem / 3_600,
        rem % 3_600 / 60
    )
}

/// A provider that cannot be reached leaves its rows `retry_later` (nothing was sent), not
/// `failed` for good.
#[tokio::test]
async fn batch_unreachable_provider_leaves_rows_to_retry_later() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let dir = scratch("unreachable");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        "provider,payment,amount,currency\nsipay,INV-U1,10.00,TRY\n",
    )
    .unwrap();
    let env: Env = vec![
        ("SIPAY_BASE_URL".into(), url),
        ("SIPAY_APP_ID".into(), "app".into()),
        ("SIPAY_APP_SECRET".into(), "secret".into()),
        ("SIPAY_MERCHANT_KEY".into(), "key".into()),
    ];
    let out = run(&batch_args(&input, &journal, &[]), &env).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(totals(&out), (1, 0, 0, 0, 1, 0), "{out:?}");
    let last = records(&journal).pop().unwrap();
    assert_eq!(last["state"], "retry_later", "{last}");
    assert!(last["not_before"].is_u64(), "{last}");
    assert!(
        last.get("refused").is_none(),
        "nothing was processed: {last}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// Pacing
// ---------------------------------------------------------------------------------------

/// `--rate 2`: each provider's refunds leave at most two a second, evenly spaced, whatever
/// the concurrency; the two providers are paced independently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_rate_paces_each_provider_separately() {
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    let mut csv = String::from("provider,payment,amount,currency\n");
    for i in 0..4 {
        let invoice = format!("INV-P{i}");
        sipay.add_payment(&invoice, dec("100.00"), Currency::Try);
        csv.push_str(&format!("sipay,{invoice},1.00,TRY\n"));
        let p = iyzico.add_payment(Currency::Try, &[dec("100.0")]);
        csv.push_str(&format!("iyzico,{},1,TRY\n", p.payment_id));
    }
    let dir = scratch("rate");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(&input, csv).unwrap();
    let mut env = sipay_env(&sipay);
    env.extend(iyzico_env(&iyzico));
    let out = run(
        // A fresh journal and input: no check of iyzico's ledger before the first sends, so
        // only refunds are paced here.
        &batch_args(
            &input,
            &journal,
            &[
                "--rate",
                "2",
                "--concurrency",
                "8",
                "--input-never-run-before",
            ],
        ),
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(totals(&out), (8, 8, 0, 0, 0, 0));

    let sends = |provider: &str| -> Vec<u64> {
        records(&journal)
            .iter()
            .filter(|r| r["state"] == "sending")
            .filter(|r| r["key"].as_str().unwrap().starts_with(provider))
            .map(|r| r["at"].as_u64().unwrap())
            .collect()
    };
    let (s, i) = (sends("sipay|"), sends("iyzico|"));
    assert_eq!((s.len(), i.len()), (4, 4));
    for times in [&s, &i] {
        for pair in times.windows(2) {
            assert!(
                pair[1] >= pair[0] + 450,
                "two a second, evenly spaced: {times:?}"
            );
        }
    }
    // Paced separately: iyzico's first refund did not wait for SiPay's last.
    assert!(i[0] < s[3] && s[0] < i[3], "sipay {s:?}, iyzico {i:?}");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// One 429 with `Retry-After: 1` pauses every worker of that provider: the two workers
/// whose (slow) refunds were in flight when it came back do not send their next rows before
/// the second is up. The refused row is sent again after it, with its reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_one_429_pauses_every_worker_of_its_provider() {
    let sim = SipaySim::start().await.unwrap();
    let mut csv = String::from("provider,payment,amount,currency\n");
    for i in 0..6 {
        let invoice = format!("INV-Q{i}");
        sim.add_payment(&invoice, dec("100.00"), Currency::Try);
        csv.push_str(&format!("sipay,{invoice},1.00,TRY\n"));
    }
    // The first of the three first requests to arrive is answered 429 at once; the other two
    // take 600 ms, so their workers come back for more well inside the requested second.
    sim.arm(Fault::Http429, 1);
    sim.arm(Fault::Delay(Duration::from_millis(600)), 2);
    let dir = scratch("429");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(&input, csv).unwrap();
    let out = run(
        &batch_args(&input, &journal, &["--concurrency", "3"]),
        &sipay_env(&sim),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(totals(&out), (6, 6, 0, 0, 0, 0), "{out:?}");
    let journaled = records(&journal);
    let limited = journaled
        .iter()
        .find(|r| r["state"] == "retry_later")
        .unwrap_or_else(|| panic!("the 429 is journaled retry_later: {journaled:?}"));
    let paused_at = limited["at"].as_u64().unwrap();
    let sends: Vec<u64> = journaled
        .iter()
        .filter(|r| r["state"] == "sending")
        .map(|r| r["at"].as_u64().unwrap())
        .collect();
    let later_sends: Vec<u64> = sends.iter().copied().filter(|at| *at > paused_at).collect();
    // Seven requests in all (six rows and the resend). How many left before the 429 came back
    // depends on how fast the workers started (on a loaded machine the 429 can beat the other
    // two first sends); every one after it waited the second out.
    assert_eq!(sends.len(), 7, "six rows and the resend: {journaled:?}");
    assert!(
        (4..=6).contains(&later_sends.len()),
        "at most three sends before the 429's answer: {journaled:?}"
    );
    for at in later_sends {
        assert!(
            at + 50 >= paused_at + 1_000,
            "no request within the second the 429 asked for: sent {} ms after it",
            at - paused_at
        );
    }
    let references = sipay_refund_references(&sim);
    assert_eq!(references.len(), 7, "{references:?}");
    let limited_reference = limited["reference"].as_str().unwrap();
    assert_eq!(
        references
            .iter()
            .filter(|r| *r == limited_reference)
            .count(),
        2,
        "the refused row was sent again with its reference: {references:?}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// Validation before anything is sent
// ---------------------------------------------------------------------------------------

/// Rows that share a reference are refused, all of them, before anything is sent (the dry
/// run says so too, and writes nothing); a new row reusing the reference of a row refunded
/// earlier is refused while the earlier row keeps its state.
#[tokio::test]
async fn batch_refuses_rows_that_share_a_reference() {
    let sim = SipaySim::start().await.unwrap();
    for invoice in ["INV-S1", "INV-S2", "INV-S3", "INV-S4"] {
        sim.add_payment(invoice, dec("100.00"), Currency::Try);
    }
    let dir = scratch("shared-ref");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        "provider,payment,amount,currency,reference\n\
         sipay,INV-S1,1.00,TRY,camp-1\n\
         sipay,INV-S2,2.00,TRY,camp-dup\n\
         sipay,INV-S3,3.00,TRY,camp-dup\n",
    )
    .unwrap();
    let env = sipay_env(&sim);

    let dry = run(&batch_args(&input, &journal, &["--dry-run"]), &env).await;
    assert_eq!(dry.code, 2, "{dry:?}");
    assert_eq!(dry.stdout.matches("would refuse").count(), 2, "{dry:?}");
    assert!(!journal.exists(), "a dry run writes nothing");

    let out = run(&batch_args(&input, &journal, &[]), &env).await;
    assert_eq!(out.code, 2, "{out:?}");
    let s = summary(&out);
    assert_eq!(s["malformed"], 2, "{s}");
    assert_eq!(totals(&out), (1, 1, 0, 0, 0, 0), "{s}");
    assert_eq!(
        sipay_refund_references(&sim),
        ["camp-1"],
        "the others never left"
    );
    let refusals: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("camp-dup"))
        .collect();
    assert_eq!(refusals.len(), 2, "{out:?}");
    assert!(
        refusals[0].starts_with("line 3:") && refusals[0].contains("lines 3, 4"),
        "{out:?}"
    );

    // camp-1 was refunded; a new row reusing it is refused, the refunded row stays so.
    std::fs::write(
        &input,
        "provider,payment,amount,currency,reference\n\
         sipay,INV-S1,1.00,TRY,camp-1\n\
         sipay,INV-S4,4.00,TRY,camp-1\n",
    )
    .unwrap();
    let out = run(&batch_args(&input, &journal, &[]), &env).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(totals(&out), (1, 1, 0, 0, 0, 0), "{out:?}");
    assert_eq!(summary(&out)["malformed"], 1);
    assert_eq!(sipay_refund_references(&sim), ["camp-1"]);

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A journaled reference that cannot be parsed (a hand-edited or foreign journal) leaves
/// its row unknown, whatever its (unfinished) state: nothing is sent, and never under a fresh
/// reference.
#[tokio::test]
async fn batch_leaves_a_row_with_an_unusable_journaled_reference_unknown() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-X1", dec("100.00"), Currency::Try);
    sim.add_payment("INV-X2", dec("100.00"), Currency::Try);
    let dir = scratch("bad-ref");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        "provider,payment,amount,currency\nsipay,INV-X1,1.00,TRY\nsipay,INV-X2,2.00,TRY\n",
    )
    .unwrap();
    let at = now_ms() - 60_000;
    std::fs::write(
        &journal,
        format!(
            "{{\"key\":\"sipay|payment:INV-X1|1.00 TRY|#1\",\"reference\":\"bad ref!\",\"state\":\"sending\",\"at\":{at}}}\n\
             {{\"key\":\"sipay|payment:INV-X2|2.00 TRY|#1\",\"reference\":\"also bad\",\"state\":\"retry_later\",\"at\":{at},\"not_before\":{at}}}\n"
        ),
    )
    .unwrap();
    let before = std::fs::read(&journal).unwrap();
    let out = run(&batch_args(&input, &journal, &[]), &sipay_env(&sim)).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(totals(&out), (2, 0, 0, 2, 0, 0), "{out:?}");
    assert!(
        sim.requests().iter().all(|r| !r.path.contains("refund")),
        "nothing sent"
    );
    assert_eq!(
        out.stderr
            .matches("never sent under a new reference")
            .count(),
        2,
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        before,
        "nothing journaled"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A row edited (its amount changed) after an attempt whose outcome is unknown is a new row
/// to the journal. Keeping its reference is refused for good (the reference names the earlier
/// refund); with a reference of its own it is refused, with a message naming the earlier
/// attempt, until that attempt is reconciled, which the batch does by itself (never resending
/// it). Then it is sent as it stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_refuses_a_row_edited_after_an_unknown_attempt_until_that_is_reconciled() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-E1", dec("100.00"), Currency::Try);
    set_lookup_lag(sim.base_url(), Duration::from_secs(120)).await;
    sim.arm(Fault::LostResponse, 1);
    let dir = scratch("edited");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    let rows = |amount: &str, reference: &str| {
        std::fs::write(
            &input,
            format!("provider,payment,amount,currency,reference\nsipay,INV-E1,{amount},TRY,{reference}\n"),
        )
        .unwrap();
    };
    rows("10.00", "edit-1");
    let args = batch_args(&input, &journal, &["--timeout", "5", "--settle-time", "60"]);
    let env = sipay_env(&sim);
    let out = run(&args, &env).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(sim.payment("INV-E1").unwrap().refunds.len(), 1, "applied");

    // The amount edited, the reference kept: refused, it names the earlier refund.
    rows("12.00", "edit-1");
    let out = run(&args, &env).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.lines().any(|l| l.starts_with("line 2:")
            && l.contains("already used")
            && l.contains("10.00 TRY")),
        "{out:?}"
    );
    assert_eq!(sipay_refund_references(&sim), ["edit-1"], "nothing sent");

    // With its own reference: it waits for the earlier attempt, named in the message; that
    // attempt is looked up (the lookup still lags: unknown), nothing is sent.
    rows("12.00", "edit-2");
    let out = run(&args, &env).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(totals(&out), (1, 0, 0, 1, 0, 0), "{out:?}");
    let refusal = out
        .stderr
        .lines()
        .find(|l| l.starts_with("line 2:"))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        refusal.contains("10.00 TRY")
            && refusal.contains("edit-1")
            && refusal.contains("unknown outcome"),
        "names the earlier attempt: {refusal}"
    );
    assert!(
        out.stderr.contains("(no longer in the input): unknown"),
        "{out:?}"
    );
    assert_eq!(sipay_refund_references(&sim), ["edit-1"], "nothing sent");

    // The lookup catches up: this run reconciles the earlier attempt (refunded) and still
    // holds the edited row, decided before anything was sent.
    set_lookup_lag(sim.base_url(), Duration::ZERO).await;
    let out = run(&args, &env).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        out.stderr.contains("(no longer in the input): refunded"),
        "{out:?}"
    );
    let old = last_records(&journal)["sipay|payment:INV-E1|10.00 TRY|edit-1#1"].clone();
    assert_eq!(old["state"], "refunded", "{old}");
    assert_eq!(
        sipay_refund_references(&sim),
        ["edit-1"],
        "still nothing sent"
    );

    // Reconciled: the edited row goes, as the operator left it.
    let out = run(&args, &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(totals(&out), (1, 1, 0, 0, 0, 0), "{out:?}");
    assert_eq!(sipay_refund_references(&sim), ["edit-1", "edit-2"]);
    let refunds: Vec<(Option<String>, Decimal)> = sim
        .payment("INV-E1")
        .unwrap()
        .refunds
        .iter()
        .map(|r| (r.refund_transaction_id.clone(), r.amount))
        .collect();
    assert_eq!(
        refunds,
        [
            (Some("edit-1".to_owned()), dec("10.00")),
            (Some("edit-2".to_owned()), dec("12.00"))
        ]
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

/// `--report` prints every journaled row's latest state as CSV, with the provider's id of
/// each refund from its receipt (SiPay `ref_no`, iyzico `hostReference`), without `--input`,
/// and sends or writes nothing.
#[tokio::test]
async fn batch_report_lists_every_row_with_its_latest_state() {
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    sipay.add_payment("INV-R1", dec("100.00"), Currency::Try);
    sipay.add_payment("INV-R2", dec("5.00"), Currency::Try);
    let p = iyzico.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let item = p.items[0].payment_transaction_id.clone();
    let dir = scratch("report");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        format!(
            "provider,payment,amount,currency,reference\n\
             sipay,INV-R1,10.00,TRY,rep-1\n\
             sipay,INV-R2,50.00,TRY,rep-2\n\
             iyzico,tx:{item}@{pid},20.0,TRY,rep-3\n",
            pid = p.payment_id
        ),
    )
    .unwrap();
    let mut env = sipay_env(&sipay);
    env.extend(iyzico_env(&iyzico));
    let out = run(&batch_args(&input, &journal, &[]), &env).await;
    assert_eq!(out.code, 3, "{out:?}");

    let journal_before = std::fs::read(&journal).unwrap();
    let requests_before = sipay.requests().len() + iyzico.requests().len();
    let report = run(
        &["batch", "--journal", path_str(&journal), "--report"],
        &Env::new(),
    )
    .await;
    assert_eq!(report.code, 0, "{report:?}");
    let mut lines = report.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(
            "provider,payment,amount,currency,reference,state,provider_reference,updated_at,\
             requested_amount,refunded_amount,attempts,first_attempt_at,last_attempt_at,\
             last_error,decision,decided_by,decided_at,decided_why"
        )
    );
    let rows: HashMap<String, Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .map(|cols| (cols[4].clone(), cols))
        .collect();
    assert_eq!(rows.len(), 3, "{report:?}");
    let ref_no = sipay.payment("INV-R1").unwrap().refunds[0]
        .ref_number
        .clone();
    let r1 = &rows["rep-1"];
    assert_eq!(
        r1[..7],
        [
            "sipay",
            "INV-R1",
            "10.00",
            "TRY",
            "rep-1",
            "refunded",
            ref_no.as_str()
        ],
        "{report:?}"
    );
    assert!(r1[7].ends_with('Z') && r1[7].len() == 20, "{r1:?}");
    assert_eq!(rows["rep-2"][5], "declined", "{report:?}");
    assert_eq!(rows["rep-2"][6], "", "{report:?}");
    let r3 = &rows["rep-3"];
    assert_eq!(r3[0], "iyzico");
    assert_eq!(r3[1], format!("tx:{item}@{}", p.payment_id));
    assert_eq!((r3[2].as_str(), r3[5].as_str()), ("20.00", "refunded"));
    assert!(!r3[6].is_empty(), "iyzico's host reference: {r3:?}");
    assert!(
        report
            .stderr
            .contains("journal, 3 rows: 2 refunded, 1 declined"),
        "{report:?}"
    );
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        journal_before,
        "read only"
    );
    assert_eq!(
        sipay.requests().len() + iyzico.requests().len(),
        requests_before
    );

    // --report with --input lists the input's rows (in its order) and sends nothing; a missing
    // journal is an error.
    let both = run(
        &[
            "batch",
            "--journal",
            path_str(&journal),
            "--report",
            "--input",
            path_str(&input),
        ],
        &Env::new(),
    )
    .await;
    assert_eq!(both.code, 0, "{both:?}");
    assert_eq!(
        sipay.requests().len() + iyzico.requests().len(),
        requests_before,
        "a report sends nothing"
    );
    let missing = run(
        &[
            "batch",
            "--journal",
            path_str(&dir.join("nope")),
            "--report",
        ],
        &Env::new(),
    )
    .await;
    assert_eq!(missing.code, 2, "{missing:?}");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// SiPay's 49 that only asks to wait ("at least 30 seconds before another refund") is a
/// temporary refusal with the provider's own retry-after (refund-sipay gives it): the row is
/// journaled `retry_later`, refused, with a not-before time 30 s on, never `declined`; the run
/// takes it up again when that time comes (the wait holds up no other row) and sends it with
/// the same reference. A plain 49 after the wait is final. (The simulator never answers this
/// 49's text, so a stub stands in for SiPay.)
#[tokio::test]
async fn batch_sipay_wait_and_retry_is_sent_again_after_30_seconds_in_the_same_run() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let sipay = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(refund_sipay::paths::TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(refund_testkit::fixtures::sipay::TOKEN_SUCCESS.body),
        )
        .mount(&sipay)
        .await;
    Mock::given(method("POST"))
        .and(path(refund_sipay::paths::REFUND))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status_code":49,"status_description":"Please wait at least 30 seconds before another refund"}"#,
        ))
        .up_to_n_times(1)
        .mount(&sipay)
        .await;
    Mock::given(method("POST"))
        .and(path(refund_sipay::paths::REFUND))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"status_code":49,"status_description":"Refund Failed"}"#),
        )
        .mount(&sipay)
        .await;
    let dir = scratch("sipay-49");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        "provider,payment,amount,currency,reference\nsipay,INV-49,10.00,TRY,wait-1\n",
    )
    .unwrap();
    let env: Env = vec![
        ("SIPAY_BASE_URL".into(), sipay.uri()),
        ("SIPAY_APP_ID".into(), "app".into()),
        ("SIPAY_APP_SECRET".into(), "secret".into()),
        ("SIPAY_MERCHANT_KEY".into(), "key".into()),
    ];

    let out = run(&batch_args(&input, &journal, &[]), &env).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(totals(&out), (1, 0, 1, 0, 0, 0), "{out:?}");
    let refunds: Vec<_> = sipay
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == refund_sipay::paths::REFUND)
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .collect();
    assert_eq!(refunds.len(), 2, "sent again after the wait: {refunds:?}");
    assert!(
        refunds
            .iter()
            .all(|r| r["refund_transaction_id"] == "wait-1"),
        "the same reference: {refunds:?}"
    );
    let journaled = records(&journal);
    let states: Vec<&str> = journaled
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["sending", "retry_later", "sending", "declined"],
        "{journaled:?}"
    );
    let wait = &journaled[1];
    assert_eq!(wait["refused"], true, "{wait}");
    let not_before = wait["not_before"].as_u64().unwrap();
    let waited = not_before - wait["at"].as_u64().unwrap();
    assert!(
        (29_000..=32_000).contains(&waited),
        "not before 30 s on: {waited} ms"
    );
    assert!(
        journaled[2]["at"].as_u64().unwrap() >= not_before,
        "not sent before its time: {journaled:?}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}
