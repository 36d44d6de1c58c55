//! Where `refund batch` keeps its state (issue 23): the outbox is named by its own option
//! (`--outbox`, `--outbox-url-file`, `DATABASE_URL`), never guessed from `--journal`; a
//! `--journal` value that looks like a connection string, in any spelling, is refused without
//! printing it (nor its password), and no file named after it is created.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use refund_core::Currency;
use refund_testkit::sim::SipaySim;

mod support;
use support::*;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refund-cli-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The files in `dir`, by name.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `POSTGRES://…`, `postgres:/…`, libpq's `host=… password=…` and other URLs as `--journal`
/// used to become a journal file named after them (password included) or print the password
/// in "No such file"; each is refused with exit 2, nothing sent, no file created, and the
/// password in neither stdout nor stderr, in text and in JSON output.
#[tokio::test]
async fn batch_refuses_a_journal_that_looks_like_a_connection_string_without_printing_it() {
    let sim = SipaySim::start().await.unwrap();
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let dir = scratch("refused");
    std::fs::write(
        dir.join("rows.csv"),
        "provider,payment,amount,currency\nsipay,INV-1,1.00,TRY\n",
    )
    .unwrap();
    let secret = "S3cretPw";
    let spellings = [
        format!("POSTGRES://app:{secret}@127.0.0.1:1/shop"),
        format!("postgres:/app:{secret}@127.0.0.1:1/shop"),
        format!("Postgresql://app:{secret}@127.0.0.1:1/shop"),
        format!("host=127.0.0.1 port=1 password={secret} dbname=shop"),
        format!("dbname=shop user=app PASSWORD={secret}"),
        format!("mysql://app:{secret}@127.0.0.1/shop"),
    ];
    for journal in &spellings {
        for output in ["text", "json"] {
            let args = [
                "--output",
                output,
                "batch",
                "--input",
                "rows.csv",
                "--journal",
                journal,
            ];
            let mut cmd = command(&args, &sipay_env(&sim));
            cmd.current_dir(&dir);
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{journal}: {stdout} {stderr}");
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{journal}: {stdout} {stderr}"
            );
            assert!(
                format!("{stdout}{stderr}").contains("--outbox"),
                "says how to name the outbox: {stdout} {stderr}"
            );
            assert_eq!(files(&dir), ["rows.csv"], "{journal}: no file created");
        }
    }
    assert_eq!(sipay_refund_requests(&sim), 0, "nothing sent");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without `--journal`, the outbox is the one `--outbox`, `--outbox-url-file` or
/// `DATABASE_URL` names: a refused connection says "the outbox database" and never prints the
/// URL's password (the port is closed, so nothing is sent); with none of them the command says
/// what to name, exit 2.
#[tokio::test]
async fn batch_names_the_outbox_by_its_own_options_and_never_prints_its_password() {
    let dir = scratch("outbox");
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "provider,payment,amount,currency\nsipay,INV-1,1.00,TRY\n",
    )
    .unwrap();
    let secret = "An0therPw";
    let url = format!("postgres://app:{secret}@127.0.0.1:1/shop?connect_timeout=2");
    let url_file = dir.join("outbox.url");
    std::fs::write(&url_file, format!("{url}\n")).unwrap();
    let input_arg = path_str(&input).to_owned();
    let file_arg = path_str(&url_file).to_owned();

    let by_option = run(
        &["batch", "--input", &input_arg, "--outbox", &url],
        &Vec::new(),
    )
    .await;
    let by_file = run(
        &[
            "batch",
            "--input",
            &input_arg,
            "--outbox-url-file",
            &file_arg,
        ],
        &Vec::new(),
    )
    .await;
    let by_env = run(
        &["batch", "--input", &input_arg],
        &vec![("DATABASE_URL".into(), url.clone())],
    )
    .await;
    for out in [&by_option, &by_file, &by_env] {
        assert_eq!(out.code, 5, "{out:?}");
        assert!(out.stderr.contains("the outbox database"), "{out:?}");
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{out:?}"
        );
    }

    let neither = run(&["batch", "--input", &input_arg], &Vec::new()).await;
    assert_eq!(neither.code, 2, "{neither:?}");
    assert!(neither.stderr.contains("--outbox URL"), "{neither:?}");

    std::fs::remove_dir_all(&dir).unwrap();
}
