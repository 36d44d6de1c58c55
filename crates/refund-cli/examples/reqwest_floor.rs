//! The HTTP floor for `benches/peers/compare.sh`: what any reqwest-based client pays per
//! request on this machine, with none of our library's work.
//!
//! It builds the very client our providers use ([`refund_core::http::build_client`]) and
//! replays one fixed, pre-signed request with C in flight, reading every answer whole; it
//! builds no body, signs nothing and parses nothing. `refund bench` against the same endpoint,
//! divided by this rate, is the share of the HTTP client's ceiling our library keeps.
//!
//! ```text
//! cargo run --release -p refund-cli --example reqwest_floor -- \
//!     URL BODY REQUESTS CONCURRENCY ['Header: value' ...]
//! ```
//!
//! An answer counts as an error unless it is a 2xx whose body contains `"status":"success"`.
//! The last stdout line is JSON: `{"requests", "concurrency", "requests_per_sec", "errors"}`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

struct Args {
    url: reqwest::Url,
    /// Leaked once, so each request sends it without a copy.
    body: &'static str,
    requests: usize,
    concurrency: usize,
    headers: HeaderMap,
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, body, requests, concurrency, headers @ ..] = args.as_slice() else {
        return Err(
            "usage: reqwest_floor URL BODY REQUESTS CONCURRENCY ['Header: value' ...]".into(),
        );
    };
    let number = |text: &str, what: &str| {
        text.parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{what} must be a positive integer, not {text:?}"))
    };
    let mut map = HeaderMap::new();
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("a header is 'Name: value', not {header:?}"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(value.trim()).map_err(|e| e.to_string())?;
        map.insert(name, value);
    }
    Ok(Args {
        url: url.parse().map_err(|e| format!("URL {url:?}: {e}"))?,
        body: body.clone().leak(),
        requests: number(requests, "REQUESTS")?,
        concurrency: number(concurrency, "CONCURRENCY")?,
        headers: map,
    })
}

/// One request; `true` when the answer is a successful refund.
async fn once(client: &reqwest::Client, args: &Args) -> bool {
    let sent = client
        .post(args.url.clone())
        .headers(args.headers.clone())
        .body(args.body)
        .send()
        .await;
    let Ok(response) = sent else { return false };
    let ok_status = response.status().is_success();
    match response.bytes().await {
        Ok(body) => ok_status && contains(&body, br#""status":"success""#),
        Err(_) => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => Arc::new(args),
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::from(2);
        }
    };
    let client = match refund_core::http::build_client("floor", &Default::default()) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.min(args.requests) {
        let (client, args, next) = (client.clone(), Arc::clone(&args), Arc::clone(&next));
        workers.spawn(async move {
            let mut errors = 0usize;
            while next.fetch_add(1, Ordering::Relaxed) < args.requests {
                if !once(&client, &args).await {
                    errors += 1;
                }
            }
            errors
        });
    }
    let mut errors = 0;
    while let Some(joined) = workers.join_next().await {
        errors += joined.unwrap_or(args.requests);
    }
    let rate = rate(args.requests, started.elapsed().as_secs_f64());
    eprintln!(
        "reqwest floor: {} requests, {} in flight: {rate:.0}/s, {errors} errors",
        args.requests, args.concurrency
    );
    println!(
        r#"{{"requests":{},"concurrency":{},"requests_per_sec":{rate:.3},"errors":{errors}}}"#,
        args.requests, args.concurrency
    );
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Requests per second. A rate for a report, never money.
#[allow(clippy::float_arithmetic, clippy::cast_precision_loss)]
fn rate(requests: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        requests as f64 / seconds
    } else {
        0.0
    }
}
