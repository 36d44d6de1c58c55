//! TLS to PostgreSQL (feature `tls`): `refund_outbox::connect` against a throwaway server with
//! TLS on loopback and a certificate made here (a test CA and a server certificate for
//! `db.refunds.test`), each `sslmode` checked by what the server says (`pg_stat_ssl`).
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use refund_outbox::testing::{TestOptions, TestPostgres, TestPostgresError};
use refund_outbox::tls::Connector;
use refund_outbox::tokio_postgres::Client;

/// The name on the server's certificate.
const HOST: &str = "db.refunds.test";
const PASSWORD_USER: &str = "alice";
const PASSWORD: &str = "right-Pa55word";

struct Tls {
    server: TestPostgres,
    /// The test CA, PEM, and a file holding it.
    ca_pem: String,
    ca_file: PathBuf,
    /// Another CA, which signed nothing the server has.
    other_ca_file: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

static TLS: OnceLock<Option<Tls>> = OnceLock::new();

/// The TLS server of this test binary, or `None` (skipped, and said) without PostgreSQL
/// binaries outside CI.
fn tls() -> Option<&'static Tls> {
    TLS.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let ca = ca("refund-outbox test CA");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![HOST.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, HOST);
        let cert = params.signed_by(&key, &ca).unwrap();
        let options = TestOptions::new()
            .with_tls(&cert.pem(), &key.serialize_pem())
            .with_password_auth_for(PASSWORD_USER);
        let server = match TestPostgres::start_with(&base, &options) {
            Ok(server) => server,
            Err(TestPostgresError::NoBinaries) if std::env::var_os("CI").is_none() => {
                eprintln!("SKIPPED: no PostgreSQL binaries (apt-get install postgresql)");
                return None;
            }
            Err(e) => panic!("the TLS test server: {e}"),
        };
        let ca_file = base.join(format!("tls-test-ca-{}.pem", std::process::id()));
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let other_ca_file = base.join(format!("tls-test-other-ca-{}.pem", std::process::id()));
        std::fs::write(&other_ca_file, self::ca("another CA").pem()).unwrap();
        Some(Tls {
            server,
            ca_pem: ca.pem(),
            ca_file,
            other_ca_file,
        })
    })
    .as_ref()
}

impl Tls {
    /// A URL to the server under `host` (the address is always 127.0.0.1), with `options`.
    fn url(&self, user: &str, host: &str, options: &str) -> String {
        format!(
            "postgres://{user}@{host}:{}/postgres?hostaddr=127.0.0.1&connect_timeout=10{options}",
            self.server.port()
        )
    }
}

async fn on_tls(client: &Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn require_connects_over_tls_without_checking_the_certificate() {
    let Some(t) = tls() else { return };
    // Under a name the certificate does not have, and with no CA: require checks nothing.
    let (client, _conn) = refund_outbox::connect(&t.url(
        refund_outbox::testing::USER,
        "127.0.0.1",
        "&sslmode=require",
    ))
    .await
    .unwrap();
    assert!(on_tls(&client).await, "sslmode=require must be on TLS");
}

#[tokio::test]
async fn prefer_and_no_sslmode_use_tls_when_the_server_offers_it() {
    let Some(t) = tls() else { return };
    for options in ["&sslmode=prefer", ""] {
        let (client, _conn) =
            refund_outbox::connect(&t.url(refund_outbox::testing::USER, "127.0.0.1", options))
                .await
                .unwrap();
        assert!(on_tls(&client).await, "{options:?} must be on TLS");
    }
}

#[tokio::test]
async fn libpq_key_value_pairs_honour_sslmode_too() {
    let Some(t) = tls() else { return };
    let pairs = |mode: &str| {
        format!(
            "host={HOST} hostaddr=127.0.0.1 port={} user={} dbname=postgres sslmode={mode} \
             sslrootcert='{}'",
            t.server.port(),
            refund_outbox::testing::USER,
            t.ca_file.display()
        )
    };
    let (client, _conn) = refund_outbox::connect(&pairs("verify-full")).await.unwrap();
    assert!(on_tls(&client).await);
    let (client, _conn) = refund_outbox::connect(&pairs("disable")).await.unwrap();
    assert!(!on_tls(&client).await);
}

#[tokio::test]
async fn disable_connects_in_plain_text() {
    let Some(t) = tls() else { return };
    let (client, _conn) = refund_outbox::connect(&t.url(
        refund_outbox::testing::USER,
        "127.0.0.1",
        "&sslmode=disable",
    ))
    .await
    .unwrap();
    assert!(!on_tls(&client).await, "sslmode=disable must be plain text");
}

#[tokio::test]
async fn verify_full_with_the_test_ca_connects_and_refuses_another_host_name() {
    let Some(t) = tls() else { return };
    let ca = format!("&sslmode=verify-full&sslrootcert={}", t.ca_file.display());
    let (client, _conn) = refund_outbox::connect(&t.url(refund_outbox::testing::USER, HOST, &ca))
        .await
        .unwrap();
    assert!(on_tls(&client).await);

    let refused =
        refund_outbox::connect(&t.url(refund_outbox::testing::USER, "other.refunds.test", &ca))
            .await
            .expect_err("a certificate for db.refunds.test must not pass for other.refunds.test");
    let shown = refused.to_string();
    assert!(shown.contains("certificate"), "{shown}");
    // An IP address is a name too: the certificate does not have 127.0.0.1.
    assert!(
        refund_outbox::connect(&t.url(refund_outbox::testing::USER, "127.0.0.1", &ca))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn verify_full_refuses_a_server_whose_certificate_another_ca_signed() {
    let Some(t) = tls() else { return };
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = t.url(
            refund_outbox::testing::USER,
            HOST,
            &format!("&sslmode={mode}&sslrootcert={}", t.other_ca_file.display()),
        );
        let refused = refund_outbox::connect(&url)
            .await
            .expect_err("a certificate the given CA did not sign must be refused");
        assert!(
            refused.to_string().contains("certificate"),
            "{mode}: {refused}"
        );
    }
}

#[tokio::test]
async fn verify_ca_checks_the_chain_but_not_the_host_name() {
    let Some(t) = tls() else { return };
    let url = t.url(
        refund_outbox::testing::USER,
        "127.0.0.1",
        &format!("&sslmode=verify-ca&sslrootcert={}", t.ca_file.display()),
    );
    let (client, _conn) = refund_outbox::connect(&url).await.unwrap();
    assert!(on_tls(&client).await);
}

#[tokio::test]
async fn a_connector_given_the_ca_verifies_without_sslrootcert_in_the_url() {
    let Some(t) = tls() else { return };
    let connector = Connector::new()
        .with_root_certificates_pem(t.ca_pem.as_bytes())
        .unwrap();
    let (client, _conn) = connector
        .connect(&t.url(refund_outbox::testing::USER, HOST, "&sslmode=verify-full"))
        .await
        .unwrap();
    assert!(on_tls(&client).await);
    assert!(
        connector
            .connect(&t.url(
                refund_outbox::testing::USER,
                "other.refunds.test",
                "&sslmode=verify-full"
            ))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_wrong_password_fails_with_the_servers_reason_and_never_shows_the_password() {
    let Some(t) = tls() else { return };
    let admin = t.server.connect("postgres").await.unwrap();
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ))
        .await
        .unwrap();
    let ca = format!("&sslmode=verify-full&sslrootcert={}", t.ca_file.display());
    let (client, _conn) =
        refund_outbox::connect(&t.url(&format!("{PASSWORD_USER}:{PASSWORD}"), HOST, &ca))
            .await
            .unwrap();
    assert!(on_tls(&client).await);

    let wrong = "Wr0ng-S3cret-9817";
    for options in [ca.as_str(), "&sslmode=disable"] {
        let e = refund_outbox::connect(&t.url(&format!("{PASSWORD_USER}:{wrong}"), HOST, options))
            .await
            .expect_err("a wrong password must be refused");
        let shown = format!("{e} / {e:?}");
        assert!(
            e.to_string().contains("password authentication failed"),
            "the server's reason: {shown}"
        );
        assert!(!shown.contains(wrong), "the password leaked: {shown}");
        assert!(!shown.contains("postgres://"), "the URL leaked: {shown}");
    }
}

#[tokio::test]
async fn an_unknown_sslmode_or_a_missing_ca_file_is_refused_before_connecting() {
    let Some(t) = tls() else { return };
    let secret = "pw-not-to-show-5521";
    let e = refund_outbox::connect(&t.url(
        &format!("{PASSWORD_USER}:{secret}"),
        HOST,
        "&sslmode=allow",
    ))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("sslmode"), "{e}");
    let e = refund_outbox::connect(&t.url(
        &format!("{PASSWORD_USER}:{secret}"),
        HOST,
        "&sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ))
    .await
    .unwrap_err();
    let shown = format!("{e} / {e:?}");
    assert!(shown.contains("/nonexistent/ca.pem"), "{shown}");
    assert!(!shown.contains(secret), "{shown}");
}

#[tokio::test]
async fn require_refuses_a_server_without_tls_and_prefer_falls_back_to_plain_text() {
    if tls().is_none() {
        return;
    }
    let plain = TestPostgres::start(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap();
    let url = |mode: &str| format!("{}&sslmode={mode}", plain.url("postgres"));
    let e = refund_outbox::connect(&url("require"))
        .await
        .expect_err("require must not fall back to plain text");
    assert!(e.to_string().to_lowercase().contains("tls"), "{e}");
    let (client, _conn) = refund_outbox::connect(&url("prefer")).await.unwrap();
    assert!(!on_tls(&client).await);
}
