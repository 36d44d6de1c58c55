//! Simulated providers: real HTTP/1.1 servers on `127.0.0.1` with a ledger, the provider's
//! own authentication, and fault injection — SiPay's and iyzico's, and the pieces to build
//! one for any other provider.
//!
//! **For any provider** (always compiled): implement [`Simulator`] — answer a provider request
//! against your ledger, seed a payment and show the ledger for the admin API — and
//! [`SimServer`] serves it: a loopback hyper server, a bounded request log
//! ([`SimServer::requests`]), every [`Fault`] including the true connection drop
//! ([`Fault::LostResponse`]), late application ([`Fault::Delay`] finishes the work after the
//! client has gone), lookup lag ([`SimServer::set_lookup_lag`]), failed entries
//! ([`Fault::Fail`]) and the `/__sandbox/` admin API. [`Ledger`] is a small ledger to keep
//! behind it (payments, an atomic over-refund check, references seen, failed entries,
//! applied-at stamps for lag). The [`Simulator`] docs have a complete example;
//! `examples/refund-acme` in the repository is a provider crate whose fake is built this way.
//!
//! **SiPay and iyzico** (`SipaySim` with feature `sipay`, `IyzicoSim` with feature `iyzico`)
//! are built on the same pieces: each starts with one async call, stops when its handle is
//! dropped, keeps its ledger behind one mutex (concurrent refunds on one payment can never
//! exceed what was paid), records every provider request, and can be told to misbehave for the
//! next N provider requests (`SipaySim::arm` with a [`Fault`]).
//!
//! ```
//! # #[cfg(feature = "sipay")]
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
//! # #[cfg(not(feature = "sipay"))]
//! # fn main() {}
//! ```
//!
//! Every simulator serves an admin API under `/__sandbox/` on its own base URL (seed a
//! payment, read the ledger, arm faults, set the lookup lag, reset); see `docs/testkit.md`. It
//! answers only requests whose `Host` is a loopback address (403 otherwise) and whose POST or
//! PUT bodies say `Content-Type: application/json` (415 otherwise), so a web page on the same
//! machine can neither read the demo credentials nor arm faults.

#[cfg(feature = "iyzico")]
mod iyzico;
mod ledger;
mod server;
#[cfg(feature = "sipay")]
mod sipay;

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

pub use hyper::{HeaderMap, Method};
#[cfg(feature = "iyzico")]
pub use iyzico::{
    IyzicoCancel, IyzicoCredentials, IyzicoEntryError, IyzicoItem, IyzicoLedger, IyzicoPayment,
    IyzicoRefund, IyzicoSim,
};
pub use ledger::{Ledger, LedgerError, LedgerPayment, LedgerRefund};
pub use server::{
    RECORDED_BODY_CAP, RECORDED_BYTES_CAP, RECORDED_REQUESTS_CAP, SimContext, SimRequest,
    SimResponse, SimServer, Simulator, TRUNCATED_MARKER,
};
#[cfg(feature = "sipay")]
pub use sipay::{
    PendingVisibility, SipayCredentials, SipayLedger, SipayPayment, SipayRefund, SipaySim,
};

/// A misbehaviour the simulator applies to the next provider request(s).
///
/// Faults apply to the requests a [`Simulator`] calls faultable (SiPay refund and check
/// status; iyzico refund, v2 refund, cancel and the reporting lookup; by default every
/// provider request), never to SiPay's token endpoint or the admin API. The server carries
/// most of them out itself; [`Fault::Fail`], [`Fault::FailLostResponse`] and
/// [`Fault::WrongAmount`] ask the simulator's handler to act ([`SimContext`]).
/// [`Fault::applies_refund`] says whether a refund that would have succeeded is in the ledger
/// afterwards; that is what a client must reconcile against.
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
    /// Process the request (refund applied as asked), then answer success stating a
    /// different amount: one major unit more ([`SimContext::amount_to_answer`]). A client
    /// must not issue a receipt it cannot trust: outcome unknown. iyzico signs the stated
    /// price, so the signature holds; SiPay's refund answer states no amount and is answered
    /// normally.
    WrongAmount,
}

impl Fault {
    /// How long [`Fault::Timeout`] holds a request: longer than any sane client timeout.
    pub const TIMEOUT_HOLD: Duration = Duration::from_secs(600);

    /// Whether a refund that would have succeeded is applied to the ledger under this fault.
    pub const fn applies_refund(self) -> bool {
        matches!(
            self,
            Fault::Delay(_)
                | Fault::Malformed
                | Fault::Empty
                | Fault::LostResponse
                | Fault::WrongAmount
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
    /// `fail_lost_response`, `wrong_amount`.
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
            Fault::WrongAmount => "wrong_amount",
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
            "wrong_amount" => Fault::WrongAmount,
            _ => return None,
        })
    }

    /// Every fault, with `delay` at 50 ms (for tables and exhaustive tests).
    pub const ALL: [Fault; 14] = [
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
        Fault::WrongAmount,
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

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the ledger stays
/// consistent: every mutation is completed before the guard is dropped).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A decimal's text as a raw JSON number (never through f64).
#[cfg(any(feature = "sipay", feature = "iyzico"))]
pub(crate) fn number(text: String) -> Option<Box<serde_json::value::RawValue>> {
    serde_json::value::RawValue::from_string(text).ok()
}

/// Formats `d` with exactly `scale` decimals (`25` → `25.00`).
#[cfg(any(feature = "sipay", feature = "iyzico"))]
pub(crate) fn fixed(d: refund_core::Decimal, scale: u32) -> String {
    let mut d = d;
    d.rescale(scale);
    d.to_string()
}

/// `unix_seconds` as `YYYY-MM-DD HH:MM:SS` (UTC), the way SiPay writes dates.
#[cfg(any(feature = "sipay", feature = "iyzico"))]
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

#[cfg(any(feature = "sipay", feature = "iyzico"))]
pub(crate) fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(feature = "sipay", feature = "iyzico"))]
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
}
