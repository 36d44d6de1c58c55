//! `refund batch --journal postgres://…` and `refund outbox status`, against a throwaway
//! PostgreSQL server (`refund_outbox::testing`) and the in-process simulators. Without
//! PostgreSQL binaries the tests say so and return, except under CI, where they fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use refund_core::{Currency, Decimal};
use refund_outbox::testing::{TestPostgres, TestPostgresError};
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_refund");

static SERVER: OnceLock<Result<TestPostgres, String>> = OnceLock::new();

fn server() -> Option<&'static TestPostgres> {
    let started = SERVER.get_or_init(|| {
        TestPostgres::start(Path::new(env!("CARGO_TARGET_TMPDIR"))).map_err(|e| match e {
            TestPostgresError::NoBinaries => String::new(),
            other => other.to_string(),
        })
    });
    match started {
        Ok(server) => Some(server),
        Err(why) if why.is_empty() => {
            assert!(
                std::env::var_os("CI").is_none(),
                "no PostgreSQL binaries: CI must install them (apt-get install postgresql)"
            );
            eprintln!(
                "SKIPPED: no PostgreSQL binaries; install them (Debian: apt-get install \
                 postgresql) or set REFUND_OUTBOX_PG_BIN to run this test"
            );
            None
        }
        Err(why) => panic!("starting the test PostgreSQL server failed: {why}"),
    }
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// The last stdout line, as JSON.
    fn json(&self) -> Value {
        let last = self.stdout.lines().last().unwrap_or("");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

fn command(args: &[&str], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .stdin(Stdio::null());
    cmd
}

async fn run(args: &[&str], env: &[(String, String)]) -> Out {
    let mut cmd = command(args, env);
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("run refund"))
        .await
        .unwrap();
    Out {
        code: output.status.code().expect("exited with a code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn env(sipay: &SipaySim, iyzico: &IyzicoSim, url: &str) -> Vec<(String, String)> {
    let s = sipay.credentials();
    let i = iyzico.credentials();
    vec![
        ("SIPAY_BASE_URL".into(), s.base_url),
        ("SIPAY_APP_ID".into(), s.app_id.into()),
        ("SIPAY_APP_SECRET".into(), s.app_secret.into()),
        ("SIPAY_MERCHANT_KEY".into(), s.merchant_key.into()),
        ("IYZICO_BASE_URL".into(), i.base_url),
        ("IYZICO_API_KEY".into(), i.api_key.into()),
        ("IYZICO_SECRET_KEY".into(), i.secret_key.into()),
        ("DATABASE_URL".into(), url.into()),
    ]
}

/// Two `refund batch` processes on one outbox and one file, at once, with lost answers on
/// the way: every row refunded exactly once by the ledgers, both runs report every row
/// refunded, a rerun sends nothing, and `refund outbox status` counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batch_runs_on_one_outbox_refund_every_row_once() {
    let Some(server) = server() else {
        return;
    };
    server.create_database("cli_batch").await.unwrap();
    let url = server.url("cli_batch");
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    let mut csv = String::from("provider,payment,amount,currency,reference\n");
    let mut rows = Vec::new();
    for n in 0..20 {
        let invoice = format!("ob-{n}");
        sipay.add_payment(&invoice, Decimal::new(10_000, 2), Currency::Try);
        // Half the rows carry their own reference, half get a derived one.
        let reference = if n % 2 == 0 {
            format!("ob-s-{n}")
        } else {
            String::new()
        };
        csv.push_str(&format!("sipay,{invoice},10.00,TRY,{reference}\n"));
        let p = iyzico.add_payment(Currency::Try, &[Decimal::new(10_000, 2)]);
        let tx = &p.items[0].payment_transaction_id;
        csv.push_str(&format!(
            "iyzico,tx:{tx}@{},10.00,TRY,ob-i-{n}\n",
            p.payment_id
        ));
        rows.push((invoice, p.payment_id));
    }
    sipay.arm(Fault::LostResponse, 3);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-outbox");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("rows.csv");
    std::fs::write(&input, csv).unwrap();
    let input = input.to_str().unwrap();
    let env = env(&sipay, &iyzico, &url);
    let args = [
        "batch",
        "--journal",
        &url,
        "--input",
        input,
        "--concurrency",
        "4",
        "--settle-time",
        "1",
        "--timeout",
        "2",
    ];
    let (a, b) = tokio::join!(run(&args, &env), run(&args, &env));
    for out in [&a, &b] {
        assert!(
            !out.stderr.contains("cli_batch@") && !out.stdout.contains("postgres://"),
            "{out:?}"
        );
    }
    // A run can end before the other's lost answers settle: run again until both agree.
    let mut last = b;
    for _ in 0..10 {
        if last.code == 0 && last.json()["journal"]["refunded"] == 40 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        last = run(&args, &env).await;
    }
    assert_eq!(last.code, 0, "{a:?}\n{last:?}");
    assert_eq!(last.json()["journal"]["refunded"], 40, "{last:?}");
    for (invoice, payment_id) in &rows {
        assert_eq!(
            sipay.payment(invoice).unwrap().refunds.len(),
            1,
            "{invoice}"
        );
        assert_eq!(
            iyzico.payment(payment_id).unwrap().refunds().count(),
            1,
            "{payment_id}"
        );
    }

    // A rerun sends nothing.
    let before = sipay.ledger().refunds().count() + iyzico.ledger().payments.len();
    let rerun = run(&args, &env).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(rerun.json()["skipped"], 40, "{rerun:?}");
    assert_eq!(
        sipay.ledger().refunds().count() + iyzico.ledger().payments.len(),
        before
    );

    let status = run(&["outbox", "status"], &env).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.json()["refunded"], 40, "{status:?}");

    let report = run(&["batch", "--journal", &url, "--report"], &env).await;
    assert_eq!(report.code, 0, "{report:?}");
    assert_eq!(report.stdout.lines().count(), 41, "{report:?}");
    assert!(
        report
            .stdout
            .lines()
            .skip(1)
            .all(|l| l.contains(",refunded,")),
        "{report:?}"
    );
}

/// `failed` on the outbox means what it means in a file journal: final, a person decides. A
/// row whose credentials are rejected ends `failed` (exit 5); a rerun with the right
/// credentials counts it as skipped and sends nothing; `--report` shows it with the file
/// journal's columns and totals line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_row_is_final_on_the_outbox_as_in_a_file_journal() {
    let Some(server) = server() else {
        return;
    };
    server.create_database("cli_failed").await.unwrap();
    let url = server.url("cli_failed");
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    let p = iyzico.add_payment(Currency::Try, &[Decimal::new(10_000, 2)]);
    let tx = &p.items[0].payment_transaction_id;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-outbox-failed");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        format!(
            "provider,payment,amount,currency,reference\niyzico,tx:{tx}@{},10.00,TRY,of-1\n",
            p.payment_id
        ),
    )
    .unwrap();
    let input = input.to_str().unwrap();
    let args = [
        "batch",
        "--journal",
        &url,
        "--input",
        input,
        "--timeout",
        "2",
    ];
    let good = env(&sipay, &iyzico, &url);
    let mut wrong = good.clone();
    for (k, v) in &mut wrong {
        if k == "IYZICO_SECRET_KEY" {
            *v = "not-the-secret-key".into();
        }
    }

    let first = run(&args, &wrong).await;
    assert_eq!(first.code, 5, "{first:?}");
    assert_eq!(first.json()["failed"], 1, "{first:?}");
    assert_eq!(first.json()["journal"]["failed"], 1, "{first:?}");
    assert!(!first.stderr.contains("not-the-secret-key"), "{first:?}");

    let rerun = run(&args, &good).await;
    assert_eq!(rerun.code, 5, "{rerun:?}");
    assert_eq!(rerun.json()["skipped"], 1, "{rerun:?}");
    assert_eq!(rerun.json()["failed"], 0, "{rerun:?}");
    assert_eq!(rerun.json()["journal"]["failed"], 1, "{rerun:?}");
    assert_eq!(iyzico.payment(&p.payment_id).unwrap().refunds().count(), 0);

    let report = run(&["batch", "--journal", &url, "--report"], &good).await;
    assert_eq!(report.code, 0, "{report:?}");
    let lines: Vec<&str> = report.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "provider,payment,amount,currency,reference,state,provider_reference,updated_at"
    );
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        fields[..7],
        [
            "iyzico",
            &format!("tx:{tx}@{}", p.payment_id),
            "10.00",
            "TRY",
            "of-1",
            "failed",
            ""
        ]
    );
    assert!(
        fields[7].ends_with('Z') && fields[7].len() == 20,
        "{report:?}"
    );
    assert!(
        report.stderr.contains(
            "journal, 1 rows: 0 refunded, 0 declined, 0 unknown, 0 retry later, 1 failed"
        ),
        "{report:?}"
    );
}
