//! `refund batch` when the journal is lost (issue 21): the provider's ledger backs it up. Rows
//! without a reference get one derived from their content, the same in every run; before a
//! row's first send to iyzico (which does not refuse a reused reference) its payment is
//! looked up; a journal deleted or replaced during a run stops it. Each test runs the real
//! binary against the in-process simulators and checks their ledgers through the admin API
//! (`GET /__sandbox/ledger`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use refund_core::{Currency, Decimal};
use refund_testkit::sim::{IyzicoSim, SipaySim};
use serde_json::Value;

mod support;
use support::*;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refund-cli-ledger-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `GET path` over a raw socket: the body as JSON.
fn http_get_json(base_url: &str, path: &str) -> Value {
    let host = base_url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(" 200 "), "{head}");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("ledger JSON ({e}): {body}"))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// Each payment's refunded total and number of refunds, from the simulator's admin API.
async fn ledger(base_url: String) -> HashMap<String, (Decimal, usize)> {
    let json = tokio::task::spawn_blocking(move || http_get_json(&base_url, "/__sandbox/ledger"))
        .await
        .unwrap();
    json["payments"]
        .as_array()
        .unwrap_or_else(|| panic!("payments: {json}"))
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                (
                    dec(p["refunded"].as_str().unwrap()),
                    p["refunds"].as_array().unwrap().len(),
                ),
            )
        })
        .collect()
}

/// Failure 1 of issue 21: a campaign run to the end, then run again with a fresh journal
/// (a mistyped `--journal`, a deleted file). Before, every iyzico row and every SiPay row
/// without a reference was paid a second time. Now no row is: SiPay refuses the reused
/// (derived or own) reference and its lookup finds the refund; iyzico's ledger is checked
/// before each first send. Every row ends refunded, and the ledgers show each refund once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_rerun_with_a_fresh_journal_pays_no_row_twice() {
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    let mut csv = String::from("provider,payment,amount,currency,reference\n");
    let mut expected: Vec<(bool, String, Decimal)> = Vec::new();
    for i in 0..3 {
        let invoice = format!("INV-L{i}");
        sipay.add_payment(&invoice, dec("100.00"), Currency::Try);
        csv.push_str(&format!("sipay,{invoice},10.00,TRY,\n"));
        let own = format!("INV-LR{i}");
        sipay.add_payment(&own, dec("100.00"), Currency::Try);
        csv.push_str(&format!("sipay,{own},11.00,TRY,lr-s-{i}\n"));
        expected.push((true, invoice, dec("10.00")));
        expected.push((true, own, dec("11.00")));
        let p = iyzico.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
        csv.push_str(&format!("iyzico,{},12,TRY,\n", p.payment_id));
        expected.push((false, p.payment_id, dec("12")));
        let q = iyzico.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
        csv.push_str(&format!("iyzico,{},13,TRY,lr-i-{i}\n", q.payment_id));
        expected.push((false, q.payment_id, dec("13")));
    }
    let dir = scratch("fresh-journal");
    let input = dir.join("rows.csv");
    std::fs::write(&input, csv).unwrap();
    let mut env = sipay_env(&sipay);
    env.extend(iyzico_env(&iyzico));
    let check = |sipay_ledger: &HashMap<String, (Decimal, usize)>,
                 iyzico_ledger: &HashMap<String, (Decimal, usize)>| {
        for (is_sipay, id, amount) in &expected {
            let ledger = if *is_sipay {
                sipay_ledger
            } else {
                iyzico_ledger
            };
            let (refunded, _) = ledger[id];
            assert_eq!(refunded, *amount, "{id}: paid once, {ledger:?}");
        }
    };

    let first = dir.join("first.journal");
    let out = run(&batch_args(&input, &first, &["--timeout", "5"]), &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(summary(&out)["refunded"], 12, "{out:?}");
    check(
        &ledger(sipay.base_url()).await,
        &ledger(iyzico.base_url()).await,
    );
    let iyzico_refunds = iyzico_refund_requests(&iyzico);

    let second = dir.join("second.journal");
    let out = run(&batch_args(&input, &second, &["--timeout", "5"]), &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    let s = summary(&out);
    assert_eq!(s["refunded"], 12, "found on the ledgers: {out:?}");
    check(
        &ledger(sipay.base_url()).await,
        &ledger(iyzico.base_url()).await,
    );
    assert_eq!(
        iyzico_refund_requests(&iyzico),
        iyzico_refunds,
        "nothing sent to iyzico again: {out:?}"
    );
    assert_eq!(
        out.stderr.matches("refunded before").count(),
        12,
        "every row says so: {out:?}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A later campaign with the same row (same payment and amount, no reference column) finds
/// the earlier refund under the same derived reference: reported refunded before, not sent,
/// with a message saying to give the row its own reference. With one, it is refunded again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_a_later_campaign_with_the_same_row_is_refunded_before_and_not_sent() {
    let iyzico = IyzicoSim::start().await.unwrap();
    let p = iyzico.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let dir = scratch("later-campaign");
    let env = iyzico_env(&iyzico);
    let row = format!("iyzico,{},12,TRY", p.payment_id);

    let january = dir.join("january.csv");
    std::fs::write(
        &january,
        format!("provider,payment,amount,currency\n{row}\n"),
    )
    .unwrap();
    let out = run(
        &batch_args(&january, &dir.join("january.journal"), &[]),
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(iyzico_refund_requests(&iyzico), 1);

    let february = dir.join("february.csv");
    std::fs::write(
        &february,
        format!("provider,payment,amount,currency\n{row}\n"),
    )
    .unwrap();
    let out = run(
        &batch_args(&february, &dir.join("february.journal"), &[]),
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(iyzico_refund_requests(&iyzico), 1, "not sent: {out:?}");
    assert!(out.stderr.contains("refunded before"), "{out:?}");
    assert!(
        out.stderr.contains("give the row its own reference"),
        "{out:?}"
    );
    let (refunded, _) = ledger(iyzico.base_url()).await[&p.payment_id];
    assert_eq!(refunded, dec("12"));

    // Meant: the row gets its own reference, and the payment is refunded again.
    let march = dir.join("march.csv");
    std::fs::write(
        &march,
        format!("provider,payment,amount,currency,reference\n{row},march-1\n"),
    )
    .unwrap();
    let out = run(&batch_args(&march, &dir.join("march.journal"), &[]), &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(iyzico_refund_requests(&iyzico), 2);
    let (refunded, _) = ledger(iyzico.base_url()).await[&p.payment_id];
    assert_eq!(refunded, dec("24"));

    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--input-never-run-before` skips the check of iyzico's ledger (no lookup before the first
/// send), and is refused, with nothing sent, on a journal that already has records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_input_never_run_before_skips_the_ledger_check_and_is_refused_on_a_used_journal() {
    let iyzico = IyzicoSim::start().await.unwrap();
    let p = iyzico.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let dir = scratch("never-run");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        format!(
            "provider,payment,amount,currency\niyzico,{},12,TRY\n",
            p.payment_id
        ),
    )
    .unwrap();
    let env = iyzico_env(&iyzico);
    let flag = ["--input-never-run-before"];
    let out = run(&batch_args(&input, &journal, &flag), &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    let requests = iyzico.requests();
    assert_eq!(requests.len(), 1, "one refund and no lookup: {requests:?}");

    let out = run(&batch_args(&input, &journal, &flag), &env).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("already has records") && out.stderr.contains("nothing was sent"),
        "{out:?}"
    );
    assert_eq!(iyzico.requests().len(), 1, "nothing sent");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A journal deleted while the run is going stops it: nothing is sent after the first write
/// that finds it gone, the exit code is not 0, and the message names the journal. The same
/// for a journal replaced by another file at its path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_stops_when_its_journal_is_deleted_or_replaced_mid_run() {
    for replaced in [false, true] {
        let sim = SipaySim::start().await.unwrap();
        let mut csv = String::from("provider,payment,amount,currency\n");
        for i in 0..40 {
            let invoice = format!("INV-D{i}");
            sim.add_payment(&invoice, dec("100.00"), Currency::Try);
            csv.push_str(&format!("sipay,{invoice},1.00,TRY\n"));
        }
        let dir = scratch(if replaced { "replaced" } else { "deleted" });
        let input = dir.join("rows.csv");
        let journal = dir.join("rows.journal");
        std::fs::write(&input, csv).unwrap();
        let args = batch_args(&input, &journal, &["--rate", "10", "--concurrency", "1"]);
        let child = command(&args, &sipay_env(&sim))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // About ten rows in (10 a second).
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        if replaced {
            let other = dir.join("other.journal");
            std::fs::write(&other, "").unwrap();
            std::fs::rename(&other, &journal).unwrap();
        } else {
            std::fs::remove_file(&journal).unwrap();
        }
        let at_change = sipay_refund_requests(&sim);
        assert!(at_change > 0 && at_change < 40, "mid-run: {at_change}");
        let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_ne!(output.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains(&format!("journal {}", journal.display())),
            "names the journal: {stderr}"
        );
        let what = if replaced { "replaced" } else { "deleted" };
        assert!(
            stderr.contains(&format!("the journal was {what}")),
            "{stderr}"
        );
        let after = sipay_refund_requests(&sim);
        assert!(
            after <= at_change + 1,
            "at most the one request in flight: {at_change} then {after}; {stderr}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Failure 2 of issue 21: three partial refunds of one SiPay invoice in one campaign. SiPay
/// refuses a refund within 30 s of the invoice's last one with a bare 49 (the simulator's
/// 30-second rule, on here); refund-sipay reads a 49 soon after its own refund of the invoice
/// as a temporary refusal with the rest of the wait, and the run takes those rows up again
/// when it has passed. All three end refunded in one run, each once. (About a minute.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_three_partial_refunds_of_one_sipay_invoice_in_one_run_end_refunded() {
    let sim = SipaySim::start().await.unwrap();
    sim.set_refund_spacing(Some(Duration::from_secs(30)));
    sim.add_payment("INV-3P", dec("100.00"), Currency::Try);
    let dir = scratch("three-partials");
    let input = dir.join("rows.csv");
    let journal = dir.join("rows.journal");
    std::fs::write(
        &input,
        "provider,payment,amount,currency,reference\n\
         sipay,INV-3P,10.00,TRY,part-1\n\
         sipay,INV-3P,20.00,TRY,part-2\n\
         sipay,INV-3P,30.00,TRY,part-3\n",
    )
    .unwrap();
    // One row at a time: refund-sipay learns of its accepted refund of the invoice when it
    // reads that answer, so a 49 for a concurrent refund of the same invoice read before it
    // would still look final (reported to refund-sipay's owner).
    let out = run(
        &batch_args(&input, &journal, &["--concurrency", "1"]),
        &sipay_env(&sim),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let s = summary(&out);
    assert_eq!(s["refunded"], 3, "{out:?}");
    assert_eq!(s["declined"], 0, "{out:?}");
    let (refunded, refunds) = ledger(sim.base_url()).await["INV-3P"];
    assert_eq!((refunded, refunds), (dec("60.00"), 3), "each once");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// Before a row's first send to iyzico, a lookup of its payment that cannot tell what was
/// refunded (here: a `refundStatus` nobody documents on an earlier refund) leaves the row
/// `unknown`, not sent, with a note saying why, for a person; a rerun checks again, and once
/// the lookup can tell, the row is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_does_not_send_a_first_iyzico_refund_when_the_ledger_cannot_tell() {
    let iyzico = IyzicoSim::start().await.unwrap();
    let p = iyzico.add_payment(Currency::Try, &[dec("60.0"), dec("40.0")]);
    let dir = scratch("cannot-tell");
    let env = iyzico_env(&iyzico);
    // An earlier refund of the payment, under its own reference.
    let earlier = dir.join("earlier.csv");
    std::fs::write(
        &earlier,
        format!(
            "provider,payment,amount,currency,reference\niyzico,{},5,TRY,earlier-1\n",
            p.payment_id
        ),
    )
    .unwrap();
    let out = run(
        &batch_args(&earlier, &dir.join("earlier.journal"), &[]),
        &env,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");

    iyzico.set_refund_status_values(7, 0);
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        format!(
            "provider,payment,amount,currency,reference\niyzico,{},12,TRY,now-1\n",
            p.payment_id
        ),
    )
    .unwrap();
    let journal = dir.join("rows.journal");
    let out = run(&batch_args(&input, &journal, &[]), &env).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(summary(&out)["unknown"], 1, "{out:?}");
    assert_eq!(iyzico_refund_requests(&iyzico), 1, "not sent: {out:?}");
    let last = records(&journal).pop().unwrap();
    assert_eq!(last["state"], "unknown", "{last}");
    let note = last["note"].as_str().unwrap();
    assert!(
        note.contains("not sent") && note.contains("A person checks the payment"),
        "{note}"
    );

    iyzico.set_refund_status_values(1, 0);
    let out = run(&batch_args(&input, &journal, &[]), &env).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(iyzico_refund_requests(&iyzico), 2);
    let (refunded, _) = ledger(iyzico.base_url()).await[&p.payment_id];
    assert_eq!(refunded, dec("17"));

    std::fs::remove_dir_all(&dir).unwrap();
}
