//! `refund bench`: issue many refunds through the [`RefundProvider`] trait and report the rate,
//! the latency percentiles, the token requests, the errors by class and the peak RSS.
//!
//! By default the target is a simulator started in this process (recording off); with
//! `--base-url` it is a running `refund sandbox`, seeded through its `/__sandbox/` admin API,
//! with the credentials taken from the provider's environment variables.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Args as ClapArgs, ValueEnum};
use refund_core::{
    Currency, Decimal, Money, PaymentRef, RefundError, RefundProvider, RefundRequest,
};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::{IyzicoSim, SipaySim};
use serde::Serialize;

use super::Connection;
use crate::exit::{Code, Failure};
use crate::output::{err_line, out_line};

/// Refunds per seeded payment: each payment is paid [`PAYMENT_MINOR_UNITS`] and refunded
/// [`REFUNDS_PER_PAYMENT`] times 1.00, so every refund has room.
const REFUNDS_PER_PAYMENT: usize = 100;
/// What each seeded payment is worth, in kuruş (200.00 TRY: twice what its refunds need).
const PAYMENT_MINOR_UNITS: i64 = 20_000;
/// Each refund: 1.00 TRY.
const REFUND_MINOR_UNITS: i64 = 100;

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The provider to load.
    #[arg(long, value_enum)]
    provider: Provider,
    /// How many refunds to issue.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    requests: u32,
    /// How many refunds are in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: u32,
    /// `--base-url`: a running `refund sandbox` simulator (default: one started in this process).
    #[command(flatten)]
    connection: Connection,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Provider {
    Sipay,
    Iyzico,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Sipay => "sipay",
            Provider::Iyzico => "iyzico",
        }
    }
}

/// The client under load and what it refunds; keeps an in-process simulator alive.
struct Target {
    provider: Arc<dyn RefundProvider>,
    payments: Vec<PaymentRef>,
    sipay: Option<Sipay>,
    sipay_sim: Option<SipaySim>,
    _iyzico_sim: Option<IyzicoSim>,
}

impl Target {
    /// Token requests: the in-process simulator's count, else the client's own.
    fn token_requests(&self) -> u64 {
        match (&self.sipay_sim, &self.sipay) {
            (Some(sim), _) => sim.token_requests(),
            (None, Some(client)) => client.token_requests(),
            (None, None) => 0,
        }
    }
}

/// The last stdout line.
#[derive(Debug, Serialize)]
struct Summary {
    provider: &'static str,
    requests: u64,
    concurrency: u64,
    refunds_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    token_requests: u64,
    errors: u64,
    peak_rss_kib: u64,
}

/// What one worker measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: BTreeMap<&'static str, u64>,
}

pub(crate) async fn run(args: Args) -> Result<ExitCode, Failure> {
    let requests = args.requests as usize;
    let concurrency = (args.concurrency as usize).min(requests);
    let payments_needed = requests.div_ceil(REFUNDS_PER_PAYMENT);
    let target = match args.provider {
        Provider::Sipay => sipay_target(&args.connection, payments_needed).await?,
        Provider::Iyzico => iyzico_target(&args.connection, payments_needed).await?,
    };
    let amount = Money::from_minor_units(REFUND_MINOR_UNITS, Currency::Try)?;
    let payments = Arc::new(target.payments.clone());
    let next = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let provider = Arc::clone(&target.provider);
        let payments = Arc::clone(&payments);
        let next = Arc::clone(&next);
        workers.spawn(async move {
            let mut tally = Tally {
                latencies_us: Vec::with_capacity(requests / concurrency + 1),
                errors: BTreeMap::new(),
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let payment = payments[i / REFUNDS_PER_PAYMENT].clone();
                let sent = Instant::now();
                let result = match RefundRequest::builder(payment, amount).build() {
                    Ok(request) => provider.refund(&request).await.map(drop),
                    Err(e) => Err(RefundError::from(e)),
                };
                let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                tally.latencies_us.push(micros);
                if let Err(e) = result {
                    *tally.errors.entry(class(&e)).or_insert(0) += 1;
                }
            }
            tally
        });
    }
    let mut latencies_us: Vec<u32> = Vec::with_capacity(requests);
    let mut errors: BTreeMap<&'static str, u64> = BTreeMap::new();
    while let Some(joined) = workers.join_next().await {
        let tally = joined.map_err(|e| Failure::other(format!("a bench worker failed: {e}")))?;
        latencies_us.extend_from_slice(&tally.latencies_us);
        for (class, n) in tally.errors {
            *errors.entry(class).or_insert(0) += n;
        }
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();

    let summary = summarize(
        args.provider.name(),
        concurrency,
        &latencies_us,
        elapsed,
        target.token_requests(),
        errors.values().sum(),
        peak_rss_kib(),
    );
    let error_classes = if errors.is_empty() {
        "none".to_owned()
    } else {
        errors
            .iter()
            .map(|(class, n)| format!("{class}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for line in [
        format!(
            "{} refunds through {} with {} in flight in {:.3} s",
            summary.requests,
            summary.provider,
            summary.concurrency,
            elapsed.as_secs_f64()
        ),
        format!("refunds/s: {:.0}", summary.refunds_per_sec),
        format!(
            "latency: p50 {:.3} ms, p99 {:.3} ms",
            summary.p50_ms, summary.p99_ms
        ),
        format!("token requests: {}", summary.token_requests),
        format!("errors: {} ({error_classes})", summary.errors),
        format!("peak RSS: {} KiB", summary.peak_rss_kib),
    ] {
        err_line(&line).map_err(Failure::other)?;
    }
    let json = serde_json::to_string(&summary).map_err(Failure::other)?;
    out_line(&json).map_err(Failure::other)?;
    Ok(if summary.errors == 0 {
        ExitCode::SUCCESS
    } else {
        Code::Other.into()
    })
}

/// The summary. Floats here are for reporting a rate and latencies only, never money: the
/// workspace forbids float arithmetic elsewhere, so it is allowed on this one function.
#[allow(clippy::float_arithmetic)]
fn summarize(
    provider: &'static str,
    concurrency: usize,
    sorted_latencies_us: &[u32],
    elapsed: Duration,
    token_requests: u64,
    errors: u64,
    peak_rss_kib: u64,
) -> Summary {
    let requests = sorted_latencies_us.len() as u64;
    let secs = elapsed.as_secs_f64();
    let refunds_per_sec = if secs > 0.0 {
        round3(requests as f64 / secs)
    } else {
        0.0
    };
    let ms = |p: usize| round3(f64::from(percentile(sorted_latencies_us, p)) / 1000.0);
    Summary {
        provider,
        requests,
        concurrency: concurrency as u64,
        refunds_per_sec,
        p50_ms: ms(50),
        p99_ms: ms(99),
        token_requests,
        errors,
        peak_rss_kib,
    }
}

/// Rounds to three decimals, for reporting.
#[allow(clippy::float_arithmetic)]
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[u32], p: usize) -> u32 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(0)
}

/// The error's class, for counting.
fn class(error: &RefundError) -> &'static str {
    match error {
        RefundError::InvalidRequest(_) => "invalid_request",
        RefundError::Declined { .. } => "declined",
        RefundError::AuthenticationRejected { .. } => "authentication",
        RefundError::RateLimited { .. } => "rate_limited",
        RefundError::Unreachable { .. } => "unreachable",
        RefundError::OutcomeUnknown { .. } => "outcome_unknown",
        RefundError::Unsupported { .. } => "unsupported",
        RefundError::Configuration { .. } => "configuration",
        _ => "other",
    }
}

/// Peak resident set size (`VmHWM`) in KiB; 0 where `/proc/self/status` does not exist.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

async fn sipay_target(connection: &Connection, payments: usize) -> Result<Target, Failure> {
    let paid = Decimal::new(PAYMENT_MINOR_UNITS, 2);
    let (config, sim, refs) = match &connection.base_url {
        None => {
            let sim = SipaySim::start()
                .await
                .map_err(|e| Failure::other(format!("cannot start the SiPay simulator: {e}")))?;
            sim.set_recording(false);
            let refs = (0..payments)
                .map(|n| {
                    let invoice_id = format!("BENCH-INV-{n}");
                    sim.add_payment(&invoice_id, paid, Currency::Try);
                    PaymentRef::payment(invoice_id)
                })
                .collect();
            let c = sim.credentials();
            let config = SipayConfig::new(c.app_id, c.app_secret, c.merchant_key)
                .with_base_url(&c.base_url)?;
            (config, Some(sim), refs)
        }
        Some(url) => {
            let config = SipayConfig::from_env()?.with_base_url(url)?;
            let body = serde_json::json!({"amount": paid.to_string(), "currency": "TRY"});
            let ids = seed(url, payments, &body, "/invoice_id").await?;
            let refs = ids.into_iter().map(PaymentRef::payment).collect();
            (config, None, refs)
        }
    };
    let client = Sipay::new(config.with_timeout(connection.timeout()))?;
    Ok(Target {
        provider: Arc::new(client.clone()),
        payments: refs,
        sipay: Some(client),
        sipay_sim: sim,
        _iyzico_sim: None,
    })
}

async fn iyzico_target(connection: &Connection, payments: usize) -> Result<Target, Failure> {
    let paid = Decimal::new(PAYMENT_MINOR_UNITS, 2);
    let (config, sim, refs) = match &connection.base_url {
        None => {
            let sim = IyzicoSim::start()
                .await
                .map_err(|e| Failure::other(format!("cannot start the iyzico simulator: {e}")))?;
            sim.set_recording(false);
            let mut refs = Vec::with_capacity(payments);
            for _ in 0..payments {
                let payment = sim.add_payment(Currency::Try, &[paid]);
                let item = payment.items.first().ok_or_else(|| {
                    Failure::other("the simulator seeded a payment without items")
                })?;
                refs.push(PaymentRef::item(item.payment_transaction_id.clone()));
            }
            let c = sim.credentials();
            let config = IyzicoConfig::new(c.api_key, c.secret_key).with_base_url(&c.base_url)?;
            (config, Some(sim), refs)
        }
        Some(url) => {
            let config = IyzicoConfig::from_env()?.with_base_url(url)?;
            let body =
                serde_json::json!({"currency": "TRY", "items": [{"price": paid.to_string()}]});
            let ids = seed(url, payments, &body, "/items/0/paymentTransactionId").await?;
            let refs = ids.into_iter().map(PaymentRef::item).collect();
            (config, None, refs)
        }
    };
    let client = Iyzico::new(config.with_timeout(connection.timeout()))?;
    Ok(Target {
        provider: Arc::new(client),
        payments: refs,
        sipay: None,
        sipay_sim: None,
        _iyzico_sim: sim,
    })
}

/// Seeds `count` payments through a running sandbox's admin API (`POST /__sandbox/payments`
/// with `body`), over one connection; returns the id at `pointer` in each answer.
async fn seed(
    base_url: &str,
    count: usize,
    body: &serde_json::Value,
    pointer: &str,
) -> Result<Vec<String>, Failure> {
    let url = format!("{}/__sandbox/payments", base_url.trim_end_matches('/'));
    let failed = |why: String| Failure::other(format!("seeding through {url}: {why}"));
    let http = reqwest::Client::new();
    let body = body.to_string();
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let reply = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = reply.status();
        let text = reply.text().await.map_err(|e| failed(e.to_string()))?;
        if !status.is_success() {
            return Err(failed(format!(
                "HTTP {status} (is --base-url a `refund sandbox` simulator?)"
            )));
        }
        let answer: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| failed(format!("unreadable answer: {e}")))?;
        let id = answer
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| failed(format!("the answer has no {pointer}")))?;
        ids.push(id.to_owned());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[], 50), 0);
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib() > 0);
        }
    }
}
