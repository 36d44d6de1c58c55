//! What the `refund` binary's integration tests share: running the binary, the simulators'
//! environment, journals and the simulators' admin API. Each test file includes this module and
//! uses what it needs; a file may define its own variant of a helper, which then shadows this one.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use refund_core::Decimal;
use refund_testkit::sim::{IyzicoSim, SipaySim};
use serde_json::Value;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_refund");

#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    /// stdout as JSON; panics with the whole output when it is not.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// stdout and stderr together, for checks that must hold for both.
    pub(crate) fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub(crate) type Env = Vec<(String, String)>;

pub(crate) fn command(args: &[&str], env: &Env) -> Command {
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

/// Runs the binary to completion, off the async runtime's threads.
pub(crate) async fn run(args: &[&str], env: &Env) -> Out {
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

pub(crate) fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub(crate) fn sipay_env(sim: &SipaySim) -> Env {
    let c = sim.credentials();
    vec![
        ("SIPAY_BASE_URL".into(), c.base_url),
        ("SIPAY_APP_ID".into(), c.app_id.into()),
        ("SIPAY_APP_SECRET".into(), c.app_secret.into()),
        ("SIPAY_MERCHANT_KEY".into(), c.merchant_key.into()),
    ]
}

pub(crate) fn iyzico_env(sim: &IyzicoSim) -> Env {
    let c = sim.credentials();
    vec![
        ("IYZICO_BASE_URL".into(), c.base_url),
        ("IYZICO_API_KEY".into(), c.api_key.into()),
        ("IYZICO_SECRET_KEY".into(), c.secret_key.into()),
    ]
}

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A minimal HTTP/1.1 POST over a raw socket (the admin API needs nothing more).
pub(crate) fn http_post(base_url: &str, path: &str, body: &str) -> u16 {
    let host = base_url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap()
}

/// Makes the simulator at `base_url` hide each refund from lookups for `lag` after applying it.
pub(crate) async fn set_lookup_lag(base_url: String, lag: Duration) {
    let body = format!(r#"{{"lookup_lag_ms":{}}}"#, lag.as_millis());
    let status =
        tokio::task::spawn_blocking(move || http_post(&base_url, "/__sandbox/behaviour", &body))
            .await
            .unwrap();
    assert_eq!(status, 200, "the simulator accepts lookup_lag_ms");
}

/// The journal's records, in order.
pub(crate) fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Sleeps until `ms` (unix ms) has passed.
pub(crate) async fn sleep_until_ms(ms: u64) {
    let now = now_ms();
    if ms > now {
        tokio::time::sleep(Duration::from_millis(ms - now)).await;
    }
}

pub(crate) fn summary(out: &Out) -> Value {
    let line = out
        .stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary: {out:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {out:?}"))
}

pub(crate) fn refund_requests(paths: impl IntoIterator<Item = String>) -> usize {
    paths
        .into_iter()
        .filter(|p| p.contains("refund") || p.contains("cancel"))
        .count()
}

pub(crate) fn sipay_refund_requests(sim: &SipaySim) -> usize {
    refund_requests(sim.requests().into_iter().map(|r| r.path))
}

pub(crate) fn iyzico_refund_requests(sim: &IyzicoSim) -> usize {
    refund_requests(sim.requests().into_iter().map(|r| r.path))
}

/// `refund batch --input INPUT --journal JOURNAL` followed by `extra`.
pub(crate) fn batch_args<'a>(
    input: &'a Path,
    journal: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "batch",
        "--input",
        path_str(input),
        "--journal",
        path_str(journal),
    ];
    args.extend_from_slice(extra);
    args
}
