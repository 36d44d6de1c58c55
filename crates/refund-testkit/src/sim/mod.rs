//! In-process simulators of SiPay and iyzico: real HTTP/1.1 servers on `127.0.0.1` with a
//! ledger, provider-exact authentication, and fault injection.
//!
//! Each simulator is a hyper server on a free port, started with one async call and stopped
//! when its handle is dropped. It keeps a ledger (payments and their refunds) behind one
//! mutex, so concurrent refunds on one payment can never exceed what was paid, records every
//! provider request it receives ([`SipaySim::requests`]), and can be told to misbehave for the
//! next N provider requests ([`SipaySim::arm`] with a [`Fault`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use refund_testkit::sim::{Fault, SipaySim};
//!
//! let sim = SipaySim::start().await?;
//! sim.add_payment("INV-1", "100.00".parse().unwrap(), refund_core::Currency::Try);
//! sim.arm(Fault::LostResponse, 1); // the next refund is applied, then the connection drops
//! assert!(sim.base_url().starts_with("http://127.0.0.1:"));
//! assert_eq!(sim.ledger().payments[0].refunded(), refund_core::Decimal::ZERO);
//! # Ok(())
//! # }
//! ```
//!
//! Both simulators also serve an admin API under `/__sandbox/` on their own base URL (seed a
//! payment, read the ledger, arm faults, reset); see `docs/testkit.md`.

mod iyzico;
mod server;
mod sipay;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::{HeaderMap, Method};

pub use iyzico::{
    IyzicoCancel, IyzicoCredentials, IyzicoItem, IyzicoLedger, IyzicoPayment, IyzicoRefund,
    IyzicoSim,
};
pub use sipay::{SipayCredentials, SipayLedger, SipayPayment, SipayRefund, SipaySim};

/// A misbehaviour the simulator applies to the next provider request(s).
///
/// Faults apply to provider operations only (SiPay refund and check status; iyzico refund,
/// v2 refund, cancel and the reporting lookup), never to SiPay's token endpoint or the admin
/// API. [`Fault::applies_refund`] says whether a refund that would have succeeded is in the
/// ledger afterwards; that is what a client must reconcile against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Wait this long, then process and answer normally (refund applied). The processing
    /// happens even when the client has given up and disconnected meanwhile, as a real
    /// provider's does: the way to simulate a refund applied after a client timeout.
    Delay(Duration),
    /// Never answer: hold the request (unprocessed) for [`Fault::TIMEOUT_HOLD`] or until the
    /// simulator stops, whichever is first. Refund not applied.
    Timeout,
    /// Close the connection without processing the request or sending a byte. Refund not
    /// applied.
    Reset,
    /// HTTP 500 with a JSON error body, request not processed. Refund not applied.
    Http500,
    /// HTTP 502 with an nginx-style HTML page, request not processed. Refund not applied.
    Html502,
    /// HTTP 503 with an HTML page, request not processed. Refund not applied.
    Http503,
    /// HTTP 429 with `Retry-After: 1`, request not processed. Refund not applied.
    Http429,
    /// Process the request (refund applied), then answer HTTP 200 with truncated JSON: the
    /// provider did the work and the answer was mangled on the way.
    Malformed,
    /// Process the request (refund applied), then answer HTTP 200 with an empty body.
    Empty,
    /// SiPay: revoke every issued token and answer HTTP 401 `{"message":"Unauthenticated."}`
    /// (a client refreshes its token once and resends). iyzico, which has no tokens: answer
    /// the authentication failure `1000 Geçersiz imza`. Refund not applied.
    TokenExpired,
    /// Process the request (refund applied), then close the connection before any response
    /// byte: the case only reconciliation can resolve.
    LostResponse,
    /// Process the request as one the bank refused: the refund is recorded as a *failed*
    /// entry carrying its merchant reference (lookups list it as failed), and the provider's
    /// decline is answered. Refund not applied.
    Fail,
    /// As [`Fault::Fail`], then close the connection before any response byte: a lookup must
    /// find the failed entry and report the refund not applied, never refunded.
    FailLostResponse,
}

impl Fault {
    /// How long [`Fault::Timeout`] holds a request: longer than any sane client timeout.
    pub const TIMEOUT_HOLD: Duration = Duration::from_secs(600);

    /// Whether a refund that would have succeeded is applied to the ledger under this fault.
    pub const fn applies_refund(self) -> bool {
        matches!(
            self,
            Fault::Delay(_) | Fault::Malformed | Fault::Empty | Fault::LostResponse
        )
    }

    /// Whether the client receives any HTTP response at all.
    pub const fn answers(self) -> bool {
        !matches!(
            self,
            Fault::Timeout | Fault::Reset | Fault::LostResponse | Fault::FailLostResponse
        )
    }

    /// The admin API name: `delay`, `timeout`, `reset`, `http500`, `html502`, `http503`,
    /// `http429`, `malformed`, `empty`, `token_expired`, `lost_response`, `fail`,
    /// `fail_lost_response`.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::Delay(_) => "delay",
            Fault::Timeout => "timeout",
            Fault::Reset => "reset",
            Fault::Http500 => "http500",
            Fault::Html502 => "html502",
            Fault::Http503 => "http503",
            Fault::Http429 => "http429",
            Fault::Malformed => "malformed",
            Fault::Empty => "empty",
            Fault::TokenExpired => "token_expired",
            Fault::LostResponse => "lost_response",
            Fault::Fail => "fail",
            Fault::FailLostResponse => "fail_lost_response",
        }
    }

    /// Parses an admin API name; `delay` takes its duration from `delay`.
    pub fn from_name(name: &str, delay: Duration) -> Option<Fault> {
        Some(match name {
            "delay" => Fault::Delay(delay),
            "timeout" => Fault::Timeout,
            "reset" => Fault::Reset,
            "http500" => Fault::Http500,
            "html502" => Fault::Html502,
            "http503" => Fault::Http503,
            "http429" => Fault::Http429,
            "malformed" => Fault::Malformed,
            "empty" => Fault::Empty,
            "token_expired" => Fault::TokenExpired,
            "lost_response" => Fault::LostResponse,
            "fail" => Fault::Fail,
            "fail_lost_response" => Fault::FailLostResponse,
            _ => return None,
        })
    }

    /// Every fault, with `delay` at 50 ms (for tables and exhaustive tests).
    pub const ALL: [Fault; 13] = [
        Fault::Delay(Duration::from_millis(50)),
        Fault::Timeout,
        Fault::Reset,
        Fault::Http500,
        Fault::Html502,
        Fault::Http503,
        Fault::Http429,
        Fault::Malformed,
        Fault::Empty,
        Fault::TokenExpired,
        Fault::LostResponse,
        Fault::Fail,
        Fault::FailLostResponse,
    ];
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Delay(d) => write!(f, "delay({} ms)", d.as_millis()),
            other => f.write_str(other.name()),
        }
    }
}

/// A provider request as the simulator received it.
#[derive(Clone)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any (without `?`).
    pub query: Option<String>,
    /// All headers as received (a repeated header appears repeatedly).
    pub headers: HeaderMap,
    /// The exact body bytes.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The first value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl fmt::Debug for RecordedRequest {
    // Requests carry credentials (bearer tokens, app_secret in SiPay bodies, signatures):
    // print only what identifies the request.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field(
                "headers",
                &format_args!("[{} headers, REDACTED]", self.headers.len()),
            )
            .field(
                "body",
                &format_args!("[{} bytes, REDACTED]", self.body.len()),
            )
            .finish()
    }
}

/// How many requests a simulator keeps for [`SipaySim::requests`]; older ones are dropped.
pub const RECORDED_REQUESTS_CAP: usize = 10_000;

/// State every simulator shares: armed faults, recorded requests, the lookup lag.
#[derive(Default)]
pub(crate) struct Common {
    armed_count: AtomicUsize,
    faults: Mutex<VecDeque<(Fault, usize)>>,
    recording: AtomicBool,
    requests: Mutex<VecDeque<RecordedRequest>>,
    lookup_lag_ms: AtomicU64,
}

impl Common {
    pub(crate) fn new() -> Self {
        Common {
            recording: AtomicBool::new(true),
            ..Common::default()
        }
    }

    pub(crate) fn arm(&self, fault: Fault, count: usize) {
        if count == 0 {
            return;
        }
        let mut faults = lock(&self.faults);
        faults.push_back((fault, count));
        self.armed_count.fetch_add(count, Ordering::SeqCst);
    }

    /// Takes one armed fault for the request being served (FIFO).
    pub(crate) fn take_fault(&self) -> Option<Fault> {
        if self.armed_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut faults = lock(&self.faults);
        let (fault, left) = faults.front_mut()?;
        let fault = *fault;
        *left -= 1;
        if *left == 0 {
            faults.pop_front();
        }
        self.armed_count.fetch_sub(1, Ordering::SeqCst);
        Some(fault)
    }

    pub(crate) fn armed(&self) -> Vec<(Fault, usize)> {
        lock(&self.faults).iter().copied().collect()
    }

    pub(crate) fn disarm(&self) {
        let mut faults = lock(&self.faults);
        faults.clear();
        self.armed_count.store(0, Ordering::SeqCst);
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let mut requests = lock(&self.requests);
        if requests.len() >= RECORDED_REQUESTS_CAP {
            requests.pop_front();
        }
        requests.push_back(request);
    }

    /// How long a refund stays invisible to lookups after it was applied.
    pub(crate) fn lookup_lag(&self) -> Duration {
        Duration::from_millis(self.lookup_lag_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn set_lookup_lag(&self, lag: Duration) {
        let ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
        self.lookup_lag_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether something applied at `applied_at` is visible to a lookup now.
    pub(crate) fn visible(&self, applied_at: std::time::Instant) -> bool {
        applied_at.elapsed() >= self.lookup_lag()
    }

    pub(crate) fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::Relaxed);
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).iter().cloned().collect()
    }

    pub(crate) fn reset(&self) {
        self.disarm();
        lock(&self.requests).clear();
        self.set_lookup_lag(Duration::ZERO);
    }
}

/// The admin routes both simulators share: `/__sandbox/faults` (POST arms, GET lists) and
/// `GET /__sandbox/requests` (method, path and query of each recorded request; no headers or
/// bodies, which carry credentials).
pub(crate) fn admin_common(common: &Common, req: &server::Req) -> hyper::Response<server::Body> {
    use hyper::StatusCode;
    let armed = |common: &Common| {
        serde_json::json!({
            "armed": common.armed().iter().map(|(fault, left)| serde_json::json!({
                "fault": fault.name(),
                "remaining": left,
                "applies_refund": fault.applies_refund(),
            })).collect::<Vec<_>>()
        })
    };
    match (&req.parts.method, req.path()) {
        (&Method::POST, "/__sandbox/faults") => {
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
                return server::admin_error(StatusCode::BAD_REQUEST, "body must be JSON");
            };
            let delay = Duration::from_millis(
                body.get("delay_ms")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(1000),
            );
            let Some(fault) = body
                .get("fault")
                .and_then(serde_json::Value::as_str)
                .and_then(|name| Fault::from_name(name, delay))
            else {
                return server::admin_error(
                    StatusCode::BAD_REQUEST,
                    "fault must be one of delay, timeout, reset, http500, html502, http503, http429, malformed, empty, token_expired, lost_response, fail, fail_lost_response",
                );
            };
            let count = body
                .get("count")
                .and_then(serde_json::Value::as_u64)
                .map_or(Some(1), |n| usize::try_from(n).ok());
            let Some(count) = count else {
                return server::admin_error(StatusCode::BAD_REQUEST, "count out of range");
            };
            common.arm(fault, count);
            server::to_json(StatusCode::OK, &armed(common))
        }
        (&Method::GET, "/__sandbox/faults") => server::to_json(StatusCode::OK, &armed(common)),
        (&Method::DELETE, "/__sandbox/faults") => {
            common.disarm();
            server::to_json(StatusCode::OK, &armed(common))
        }
        (&Method::GET, "/__sandbox/requests") => {
            let requests: Vec<serde_json::Value> = lock(&common.requests)
                .iter()
                .map(|r| serde_json::json!({"method": r.method.as_str(), "path": r.path, "query": r.query}))
                .collect();
            server::to_json(StatusCode::OK, &serde_json::json!({ "requests": requests }))
        }
        _ => server::admin_error(StatusCode::NOT_FOUND, "no such sandbox route"),
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the ledger stays
/// consistent: every mutation is completed before the guard is dropped).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Formats `d` with exactly `scale` decimals (`25` → `25.00`).
pub(crate) fn fixed(d: refund_core::Decimal, scale: u32) -> String {
    let mut d = d;
    d.rescale(scale);
    d.to_string()
}

/// `unix_seconds` as `YYYY-MM-DD HH:MM:SS` (UTC), the way SiPay writes dates.
pub(crate) fn datetime(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Civil-from-days (Howard Hinnant), for days since 1970-01-01, all values non-negative.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub(crate) fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_formats_utc() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00");
        assert_eq!(datetime(1_736_895_233), "2025-01-14 22:53:53");
        assert_eq!(datetime(951_782_400), "2000-02-29 00:00:00");
    }

    #[test]
    fn faults_round_trip_through_their_names() {
        for fault in Fault::ALL {
            assert_eq!(
                Fault::from_name(fault.name(), Duration::from_millis(50)),
                Some(fault)
            );
        }
        assert_eq!(Fault::from_name("nope", Duration::ZERO), None);
    }

    #[test]
    fn armed_faults_are_taken_in_order_and_counted() {
        let common = Common::new();
        assert_eq!(common.take_fault(), None);
        common.arm(Fault::Http500, 2);
        common.arm(Fault::Reset, 1);
        assert_eq!(common.take_fault(), Some(Fault::Http500));
        assert_eq!(common.take_fault(), Some(Fault::Http500));
        assert_eq!(common.take_fault(), Some(Fault::Reset));
        assert_eq!(common.take_fault(), None);
    }
}
