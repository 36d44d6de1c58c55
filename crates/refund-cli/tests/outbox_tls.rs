//! `refund batch --journal postgres://…?sslmode=…` and `refund outbox status` over TLS, against
//! a throwaway PostgreSQL server with TLS on loopback (a CA and a certificate for
//! `db.refunds.test` made here) and the in-process SiPay simulator. Without PostgreSQL binaries
//! the tests say so and return, except under CI, where they fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use refund_core::{Currency, Decimal};
use refund_outbox::testing::{TestOptions, TestPostgres, TestPostgresError};
use refund_testkit::sim::SipaySim;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_refund");
const HOST: &str = "db.refunds.test";

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// The TLS server, its CA's file and another CA's file.
fn tls_server(dir: &Path) -> Option<(TestPostgres, PathBuf, PathBuf)> {
    let ca = ca("refund-cli test CA");
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![HOST.to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let options = TestOptions::new().with_tls(&cert.pem(), &key.serialize_pem());
    let server = match TestPostgres::start_with(Path::new(env!("CARGO_TARGET_TMPDIR")), &options) {
        Ok(server) => server,
        Err(TestPostgresError::NoBinaries) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: no PostgreSQL binaries (apt-get install postgresql)");
            return None;
        }
        Err(e) => panic!("the TLS test server: {e}"),
    };
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let other = dir.join("other-ca.pem");
    std::fs::write(&other, self::ca("another CA").pem()).unwrap();
    Some((server, ca_file, other))
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        let last = self.stdout.lines().last().unwrap_or("");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

async fn run(args: &[&str], env: &[(String, String)]) -> Out {
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

/// A batch journalled on a TLS-only reachable outbox (`sslmode=require`) refunds its rows,
/// `refund outbox status` over `verify-full` with the test CA counts them, and the same
/// status against a CA that did not sign the server's certificate is refused (so the CLI
/// really checks it, over TLS) without printing the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_and_status_work_over_tls_and_verify_full_refuses_another_ca() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-outbox-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let Some((server, ca_file, other_ca)) = tls_server(&dir) else {
        return;
    };
    server.create_database("cli_tls").await.unwrap();
    let url = |mode: &str, ca: &Path| {
        format!(
            "postgres://{}@{HOST}:{}/cli_tls?hostaddr=127.0.0.1&connect_timeout=10&sslmode={mode}&sslrootcert={}",
            refund_outbox::testing::USER,
            server.port(),
            ca.display()
        )
    };
    let sipay = SipaySim::start().await.unwrap();
    let mut csv = String::from("provider,payment,amount,currency,reference\n");
    for n in 0..3 {
        let invoice = format!("tls-{n}");
        sipay.add_payment(&invoice, Decimal::new(5_000, 2), Currency::Try);
        csv.push_str(&format!("sipay,{invoice},50.00,TRY,tls-r-{n}\n"));
    }
    let input = dir.join("rows.csv");
    std::fs::write(&input, csv).unwrap();
    let s = sipay.credentials();
    let mut env = vec![
        ("SIPAY_BASE_URL".to_owned(), s.base_url),
        ("SIPAY_APP_ID".to_owned(), s.app_id.into()),
        ("SIPAY_APP_SECRET".to_owned(), s.app_secret.into()),
        ("SIPAY_MERCHANT_KEY".to_owned(), s.merchant_key.into()),
    ];

    // `require` with no CA: TLS without a certificate check.
    let require = format!(
        "postgres://{}@127.0.0.1:{}/cli_tls?connect_timeout=10&sslmode=require",
        refund_outbox::testing::USER,
        server.port()
    );
    let batch = run(
        &[
            "batch",
            "--journal",
            &require,
            "--input",
            input.to_str().unwrap(),
        ],
        &env,
    )
    .await;
    assert_eq!(batch.code, 0, "{batch:?}");
    assert_eq!(batch.json()["journal"]["refunded"], 3, "{batch:?}");
    for n in 0..3 {
        assert_eq!(sipay.payment(&format!("tls-{n}")).unwrap().refunds.len(), 1);
    }

    env.push(("DATABASE_URL".to_owned(), url("verify-full", &ca_file)));
    let status = run(&["outbox", "status"], &env).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.json()["refunded"], 3, "{status:?}");

    env.pop();
    env.push(("DATABASE_URL".to_owned(), url("verify-full", &other_ca)));
    let refused = run(&["outbox", "status"], &env).await;
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("certificate"), "{refused:?}");
    assert!(
        !refused.stderr.contains("postgres://") && !refused.stdout.contains("postgres://"),
        "{refused:?}"
    );
}
