//! The simulator server: everything a simulated provider gets for free.
//!
//! A simulator implements [`Simulator`] (answer a provider request against its own ledger;
//! seed a payment and show the ledger for the admin API) and [`SimServer`] runs it: a
//! hyper 1 HTTP/1.1 keep-alive server on loopback, a bounded request log, every [`Fault`]
//! (the true connection drop included), late application ([`Fault::Delay`] finishes the work
//! after the client has gone), lookup lag, and the admin API under `/__sandbox/`. SiPay's and
//! iyzico's simulators are built on exactly these pieces.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use refund_core::{Decimal, Money};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::{Fault, lock};

/// Largest request body a simulator reads (providers' bodies are a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

/// How many requests a simulator keeps for [`SimServer::requests`]; older ones are dropped,
/// so a long-running sandbox does not grow without limit.
pub const RECORDED_REQUESTS_CAP: usize = 10_000;

/// How many bytes (bodies, headers, paths) the request log keeps at most: 16 MiB. The oldest
/// requests are dropped first, so a sandbox fed large bodies stays bounded however long it
/// runs (1,500 large POSTs once grew one to 1.9 GB).
pub const RECORDED_BYTES_CAP: usize = 16 << 20;

/// The longest body the request log keeps whole: 64 KiB. A longer one is kept cut at this
/// length and followed by [`TRUNCATED_MARKER`] and the original length in bytes, so a reader
/// can tell (the handler always sees the whole body).
pub const RECORDED_BODY_CAP: usize = 64 << 10;

/// What follows a recorded body cut at [`RECORDED_BODY_CAP`]: `…[truncated: N bytes]`.
pub const TRUNCATED_MARKER: &str = "…[truncated: ";

/// A simulated provider: what it alone knows, for [`SimServer`] to serve.
///
/// Implement [`handle`](Self::handle) (a provider request against your ledger),
/// [`seed`](Self::seed) and [`ledger`](Self::ledger) (the admin API's `POST
/// /__sandbox/payments` and `GET /__sandbox/ledger`) and [`reset`](Self::reset); the other
/// methods have defaults. Faults, the request log, lookup lag and the rest of the admin API are
/// the server's. The handler runs on the server's tasks and must not block for long; under
/// [`Fault::Delay`] it runs after the delay, in a task of its own that a client disconnect does
/// not cancel.
///
/// ```
/// use refund_core::{Currency, Money};
/// use refund_testkit::sim::{Ledger, SimContext, SimRequest, SimResponse, SimServer, Simulator};
/// use serde_json::{Value, json};
///
/// /// "Toy Pay": `POST /refund {"payment": "P1", "amount": "10.00", "ref": "r-1"}`.
/// #[derive(Default)]
/// struct ToyPay {
///     ledger: Ledger,
/// }
///
/// impl Simulator for ToyPay {
///     fn handle(&self, request: &SimRequest, ctx: &SimContext) -> SimResponse {
///         let body = request.json().unwrap_or_default();
///         let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
///         let Ok(amount) = Money::parse(&field("amount"), Currency::Try) else {
///             return SimResponse::json(400, &json!({"error": "bad amount"}));
///         };
///         match self.ledger.refund(ctx, &field("payment"), Some(&field("ref")), amount) {
///             Ok(refund) => SimResponse::json(200, &json!({"refund": refund.id})),
///             Err(e) => SimResponse::json(422, &json!({"error": e.code()})),
///         }
///     }
///     fn seed(&self, body: &Value) -> Result<Value, String> {
///         self.ledger.seed(body)
///     }
///     fn ledger(&self) -> Value {
///         self.ledger.to_json()
///     }
///     fn reset(&self) {
///         self.ledger.reset();
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = SimServer::start(ToyPay::default()).await?;
/// let payment = server.sim().ledger.add_payment(Money::parse("100", Currency::Try)?);
/// let reply = reqwest::Client::new()
///     .post(format!("{}/refund", server.base_url()))
///     .body(json!({"payment": payment.id, "amount": "10.00", "ref": "r-1"}).to_string())
///     .send()
///     .await?;
/// assert_eq!(reply.status(), 200);
/// assert_eq!(server.sim().ledger.refunded(&payment.id), Some(Money::parse("10", Currency::Try)?));
/// assert_eq!(server.count_requests(|r| r.path == "/refund"), 1);
/// # Ok(()) }
/// ```
pub trait Simulator: Send + Sync + 'static {
    /// Processes one provider request (authentication, the ledger) and answers it.
    ///
    /// `ctx` carries the [`Fault`] being applied, if any, and the lookup lag: a handler that
    /// moves money records a *failed* entry instead when [`SimContext::refuses`], states a
    /// different amount in its answer when [`SimContext::misstates_amount`], and a lookup
    /// shows only entries [`SimContext::visible`] to it. [`Ledger`](super::Ledger) does the
    /// first and the last for you.
    fn handle(&self, request: &SimRequest, ctx: &SimContext) -> SimResponse;

    /// `POST /__sandbox/payments`: seeds a payment from the JSON body and returns what was
    /// created (answered 201), or why the body is wrong (answered 400).
    fn seed(&self, body: &Value) -> Result<Value, String>;

    /// `GET /__sandbox/ledger`: the ledger as JSON.
    fn ledger(&self) -> Value;

    /// `POST /__sandbox/reset` and [`SimServer::reset`]: forgets payments and anything else
    /// the simulator keeps. The server clears faults, the request log and the lookup lag
    /// itself.
    fn reset(&self);

    /// Whether armed faults apply to this request. By default every provider request is
    /// faultable; a simulator with a token endpoint keeps it out, so a fault armed for a
    /// refund is not spent on the token fetch before it.
    fn faultable(&self, request: &SimRequest) -> bool {
        let _ = request;
        true
    }

    /// The answer under [`Fault::TokenExpired`]: HTTP 401 `{"message":"Unauthenticated."}`
    /// unless the provider rejects credentials otherwise (a simulator with tokens also
    /// revokes them here).
    fn token_expired(&self) -> SimResponse {
        SimResponse::raw_json(401, r#"{"message":"Unauthenticated."}"#)
    }

    /// Admin routes of the simulator's own under `/__sandbox/` (the demo credentials, say);
    /// `None` answers 404. The server's own routes come first.
    fn admin(&self, request: &SimRequest) -> Option<SimResponse> {
        let _ = request;
        None
    }

    /// Applies the simulator's own keys of a `POST /__sandbox/behaviour` body (the server
    /// handles `lookup_lag_ms`). Unknown keys are ignored; `Err` answers 400.
    fn behaviour(&self, body: &Value) -> Result<(), String> {
        let _ = body;
        Ok(())
    }
}

/// A provider request as the simulator received it: what [`Simulator::handle`] answers and
/// what [`SimServer::requests`] keeps. Its `Debug` hides the headers and the body, which
/// carry credentials.
#[derive(Clone)]
pub struct SimRequest {
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

impl SimRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The first value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The percent-decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }
}

impl fmt::Debug for SimRequest {
    // Requests carry credentials (bearer tokens, app_secret in SiPay bodies, signatures):
    // print only what identifies the request.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRequest")
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

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes are kept as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| char::from(*c).to_digit(16));
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    out.extend(u8::try_from(hi * 16 + lo).ok());
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A simulator's answer: status, content type, extra headers and the body. Its `Debug` shows
/// the status and the body's length only (an answer may carry an issued token).
#[derive(Clone)]
pub struct SimResponse {
    status: StatusCode,
    content_type: HeaderValue,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl SimResponse {
    /// `value` as JSON (`application/json`). A status outside 100–999 is answered as 500.
    pub fn json<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> SimResponse {
        match serde_json::to_vec(value) {
            Ok(body) => SimResponse::raw_json(status, body),
            Err(_) => SimResponse::raw_json(
                500,
                r#"{"message":"simulator could not serialise its answer"}"#,
            ),
        }
    }

    /// A JSON body written out already, sent byte for byte (`application/json`).
    pub fn raw_json(status: u16, body: impl Into<Bytes>) -> SimResponse {
        SimResponse::with_type(status, APPLICATION_JSON, body.into())
    }

    /// An HTML page (`text/html; charset=utf-8`).
    pub fn html(status: u16, body: impl Into<Bytes>) -> SimResponse {
        SimResponse::with_type(status, TEXT_HTML, body.into())
    }

    /// Plain text (`text/plain; charset=utf-8`).
    pub fn text(status: u16, body: impl Into<Bytes>) -> SimResponse {
        SimResponse::with_type(status, TEXT_PLAIN, body.into())
    }

    fn with_type(status: u16, content_type: HeaderValue, body: Bytes) -> SimResponse {
        SimResponse {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header; a name or value that is not valid HTTP is left out.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> SimResponse {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.push((name, value));
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn into_hyper(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, self.content_type);
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

impl fmt::Debug for SimResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimResponse")
            .field("status", &self.status.as_u16())
            .field(
                "body",
                &format_args!("[{} bytes, REDACTED]", self.body.len()),
            )
            .finish_non_exhaustive()
    }
}

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// What the server tells [`Simulator::handle`] about the request being served: the fault
/// being applied, if any, and how far lookups lag.
///
/// ```
/// use std::time::{Duration, Instant};
/// use refund_core::{Currency, Money};
/// use refund_testkit::sim::{Fault, SimContext};
///
/// let normal = SimContext::default();
/// assert!(!normal.refuses() && normal.visible(Instant::now()));
/// let failing = SimContext::default().with_fault(Fault::Fail);
/// assert!(failing.refuses());
/// let lying = SimContext::default().with_fault(Fault::WrongAmount);
/// let asked = Money::parse("10.00", Currency::Try)?;
/// assert_ne!(lying.amount_to_answer(asked), asked);
/// let lagging = SimContext::default().with_lookup_lag(Duration::from_secs(5));
/// assert!(!lagging.visible(Instant::now()));
/// # Ok::<(), refund_core::MoneyError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimContext {
    fault: Option<Fault>,
    lookup_lag: Duration,
}

impl SimContext {
    /// The same context, applying `fault` (for testing a handler without a server).
    #[must_use]
    pub fn with_fault(mut self, fault: Fault) -> SimContext {
        self.fault = Some(fault);
        self
    }

    /// The same context, with lookups lagging by `lag`.
    #[must_use]
    pub fn with_lookup_lag(mut self, lag: Duration) -> SimContext {
        self.lookup_lag = lag;
        self
    }

    /// The fault being applied to this request, if any. Only [`Fault::Fail`],
    /// [`Fault::FailLostResponse`] and [`Fault::WrongAmount`] ask anything of the handler
    /// ([`refuses`](Self::refuses), [`misstates_amount`](Self::misstates_amount)); the
    /// server carries out the others around it.
    pub fn fault(&self) -> Option<Fault> {
        self.fault
    }

    /// The bank refuses this request's money movement ([`Fault::Fail`],
    /// [`Fault::FailLostResponse`]): record a *failed* entry under the request's reference,
    /// move no money, answer the provider's decline.
    pub fn refuses(&self) -> bool {
        matches!(self.fault, Some(Fault::Fail | Fault::FailLostResponse))
    }

    /// Apply the refund as asked, but state a different amount in the success answer
    /// ([`Fault::WrongAmount`]).
    pub fn misstates_amount(&self) -> bool {
        self.fault == Some(Fault::WrongAmount)
    }

    /// The amount a success answer states for a refund of `applied`: `applied` itself, or
    /// one major unit more under [`Fault::WrongAmount`].
    pub fn amount_to_answer(&self, applied: Money) -> Money {
        if !self.misstates_amount() {
            return applied;
        }
        Money::new(applied.amount() + Decimal::ONE, applied.currency()).unwrap_or(applied)
    }

    /// How long an applied (or failed) refund stays invisible to lookups.
    pub fn lookup_lag(&self) -> Duration {
        self.lookup_lag
    }

    /// Whether an entry applied at `applied_at` is visible to a lookup now.
    pub fn visible(&self, applied_at: Instant) -> bool {
        applied_at.elapsed() >= self.lookup_lag
    }
}

/// What the server keeps besides the simulator: armed faults, the request log, the lag.
struct Controls {
    armed_count: AtomicUsize,
    faults: Mutex<VecDeque<(Fault, usize)>>,
    recording: AtomicBool,
    requests: Mutex<RequestLog>,
    lookup_lag_ms: AtomicU64,
    response_delay_ms: AtomicU64,
}

/// The recorded requests and what they weigh, bounded by entries and by bytes.
#[derive(Default)]
struct RequestLog {
    entries: VecDeque<SimRequest>,
    bytes: usize,
}

impl RequestLog {
    fn iter(&self) -> impl Iterator<Item = &SimRequest> {
        self.entries.iter()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn push(&mut self, request: SimRequest) {
        let weight = weight_of(&request);
        while !self.entries.is_empty()
            && (self.entries.len() >= RECORDED_REQUESTS_CAP
                || self.bytes + weight > RECORDED_BYTES_CAP)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes = self.bytes.saturating_sub(weight_of(&old));
            }
        }
        self.bytes += weight;
        self.entries.push_back(request);
    }
}

/// What a recorded request weighs in the log: body, headers, path and query.
fn weight_of(request: &SimRequest) -> usize {
    let headers: usize = request
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    request.body.len()
        + headers
        + request.path.len()
        + request.query.as_ref().map_or(0, String::len)
}

/// `request` as the log keeps it: a body longer than [`RECORDED_BODY_CAP`] cut there and
/// marked with its original length.
fn for_the_log(request: &SimRequest) -> SimRequest {
    let mut kept = request.clone();
    if kept.body.len() > RECORDED_BODY_CAP {
        let mut body = Vec::with_capacity(RECORDED_BODY_CAP + 40);
        body.extend_from_slice(&request.body[..RECORDED_BODY_CAP]);
        body.extend_from_slice(
            format!("{TRUNCATED_MARKER}{} bytes]", request.body.len()).as_bytes(),
        );
        kept.body = Bytes::from(body);
    }
    kept
}

impl Controls {
    fn new() -> Self {
        Controls {
            armed_count: AtomicUsize::new(0),
            faults: Mutex::new(VecDeque::new()),
            recording: AtomicBool::new(true),
            requests: Mutex::new(RequestLog::default()),
            lookup_lag_ms: AtomicU64::new(0),
            response_delay_ms: AtomicU64::new(0),
        }
    }

    fn arm(&self, fault: Fault, count: usize) {
        if count == 0 {
            return;
        }
        let mut faults = lock(&self.faults);
        faults.push_back((fault, count));
        self.armed_count.fetch_add(count, Ordering::SeqCst);
    }

    /// Takes one armed fault for the request being served (FIFO).
    fn take_fault(&self) -> Option<Fault> {
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

    fn armed(&self) -> Vec<(Fault, usize)> {
        lock(&self.faults).iter().copied().collect()
    }

    fn disarm(&self) {
        let mut faults = lock(&self.faults);
        faults.clear();
        self.armed_count.store(0, Ordering::SeqCst);
    }

    fn record(&self, request: &SimRequest) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let kept = for_the_log(request);
        lock(&self.requests).push(kept);
    }

    fn lookup_lag(&self) -> Duration {
        Duration::from_millis(self.lookup_lag_ms.load(Ordering::Relaxed))
    }

    fn set_lookup_lag(&self, lag: Duration) {
        let ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
        self.lookup_lag_ms.store(ms, Ordering::Relaxed);
    }

    fn response_delay(&self) -> Duration {
        Duration::from_millis(self.response_delay_ms.load(Ordering::Relaxed))
    }

    fn set_response_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.response_delay_ms.store(ms, Ordering::Relaxed);
    }

    fn context(&self, fault: Option<Fault>) -> SimContext {
        SimContext {
            fault,
            lookup_lag: self.lookup_lag(),
        }
    }

    fn reset(&self) {
        self.disarm();
        lock(&self.requests).clear();
        self.set_lookup_lag(Duration::ZERO);
        self.set_response_delay(Duration::ZERO);
    }
}

struct Shared<S> {
    sim: S,
    controls: Controls,
}

/// A [`Simulator`] served over HTTP/1.1 on loopback. Dropping it stops the server and closes
/// every connection.
///
/// Besides the simulator's own routes it serves the admin API under `/__sandbox/` (never
/// recorded, never faulted): `POST payments` ([`Simulator::seed`]), `GET ledger`
/// ([`Simulator::ledger`]), `POST reset`, `POST|GET|DELETE faults` (arm, list, disarm),
/// `GET requests` (method, path and query of each recorded request), `POST|GET behaviour`
/// (`lookup_lag_ms`, plus [`Simulator::behaviour`]). See `docs/testkit.md`.
pub struct SimServer<S> {
    shared: Arc<Shared<S>>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl<S> Drop for SimServer<S> {
    fn drop(&mut self) {
        // The accept task owns the connection tasks (a JoinSet): aborting it drops them all.
        self.task.abort();
    }
}

impl<S> fmt::Debug for SimServer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimServer")
            .field("base_url", &base_url(self.addr))
            .finish_non_exhaustive()
    }
}

impl<S: Simulator> SimServer<S> {
    /// Serves `sim` on `127.0.0.1`, on a free port.
    pub async fn start(sim: S) -> io::Result<SimServer<S>> {
        SimServer::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), sim).await
    }

    /// Serves `sim` on `addr` (port 0 picks a free port).
    pub async fn start_on(addr: SocketAddr, sim: S) -> io::Result<SimServer<S>> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            sim,
            controls: Controls::new(),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(SimServer { shared, addr, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` (an unspecified listen address such as `0.0.0.0` is shown as
    /// `127.0.0.1`).
    pub fn base_url(&self) -> String {
        base_url(self.addr)
    }

    /// The simulator.
    pub fn sim(&self) -> &S {
        &self.shared.sim
    }

    /// Applies `fault` to the next `count` faultable requests, after any faults armed before.
    pub fn arm(&self, fault: Fault, count: usize) {
        self.shared.controls.arm(fault, count);
    }

    /// Faults still armed, with how many requests each has left.
    pub fn armed(&self) -> Vec<(Fault, usize)> {
        self.shared.controls.armed()
    }

    /// Clears every armed fault.
    pub fn disarm(&self) {
        self.shared.controls.disarm();
    }

    /// The provider requests received so far (admin API excluded), oldest first, at most
    /// [`RECORDED_REQUESTS_CAP`].
    pub fn requests(&self) -> Vec<SimRequest> {
        lock(&self.shared.controls.requests)
            .iter()
            .cloned()
            .collect()
    }

    /// How many recorded requests satisfy `filter`, without copying the log.
    pub fn count_requests(&self, filter: impl Fn(&SimRequest) -> bool) -> usize {
        lock(&self.shared.controls.requests)
            .iter()
            .filter(|r| filter(r))
            .count()
    }

    /// Turns request recording on or off (on by default; off for benchmarks).
    pub fn set_recording(&self, on: bool) {
        self.shared.controls.recording.store(on, Ordering::Relaxed);
    }

    /// Hides refunds younger than `lag` from lookups ([`SimContext::visible`]). Zero (the
    /// default) shows every refund at once.
    pub fn set_lookup_lag(&self, lag: Duration) {
        self.shared.controls.set_lookup_lag(lag);
    }

    /// The lookup lag.
    pub fn lookup_lag(&self) -> Duration {
        self.shared.controls.lookup_lag()
    }

    /// Late application for every request: each faultable request with no fault armed is
    /// processed `delay` after it arrived, in a task of its own, and answered then — so a
    /// client whose timeout is shorter gives up on a refund the provider applies anyway, as
    /// [`Fault::Delay`] does for one request. Zero (the default) answers at once. Admin:
    /// `{"response_delay_ms": N}`.
    pub fn set_response_delay(&self, delay: Duration) {
        self.shared.controls.set_response_delay(delay);
    }

    /// The response delay ([`set_response_delay`](Self::set_response_delay)).
    pub fn response_delay(&self) -> Duration {
        self.shared.controls.response_delay()
    }

    /// Clears faults, the request log, the lookup lag and the response delay, and resets the
    /// simulator ([`Simulator::reset`]).
    pub fn reset(&self) {
        self.shared.controls.reset();
        self.shared.sim.reset();
    }
}

/// `http://<addr>`, with an unspecified address shown as loopback.
pub(crate) fn base_url(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}")
}

/// Returned to hyper to close the connection without writing a response.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("simulated connection drop")
    }
}

impl std::error::Error for DropConnection {}

async fn accept_loop<S: Simulator>(listener: TcpListener, shared: Arc<Shared<S>>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = service_fn(move |request| serve(Arc::clone(&shared), request));
                    let _ = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve<S: Simulator>(
    shared: Arc<Shared<S>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(SimResponse::text(413, "request body too large").into_hyper()),
    };
    let req = SimRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };
    if req.path.starts_with("/__sandbox/") {
        if let Err(refused) = admin_allowed(&req) {
            return Ok(refused.into_hyper());
        }
        return Ok(admin(&shared, &req).into_hyper());
    }
    respond(shared, req).await.map(SimResponse::into_hyper)
}

/// Serves a provider request: records it, takes a fault if one is armed, and carries it out.
async fn respond<S: Simulator>(
    shared: Arc<Shared<S>>,
    req: SimRequest,
) -> Result<SimResponse, DropConnection> {
    let (sim, controls) = (&shared.sim, &shared.controls);
    controls.record(&req);
    let faultable = sim.faultable(&req);
    let fault = if faultable {
        controls.take_fault()
    } else {
        None
    };
    let Some(fault) = fault else {
        let delay = controls.response_delay();
        if faultable && !delay.is_zero() {
            // Late application, for every request: processed after the delay in a task of its
            // own, finished even when the client has given up meanwhile.
            let shared = Arc::clone(&shared);
            let worker = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                shared.sim.handle(&req, &shared.controls.context(None))
            });
            return worker.await.map_err(|_| DropConnection);
        }
        return Ok(sim.handle(&req, &controls.context(None)));
    };
    let handle = || sim.handle(&req, &controls.context(Some(fault)));
    match fault {
        Fault::Delay(delay) => {
            // A provider finishes what it started even when the client gives up: the work runs
            // in its own task, which a dropped connection does not cancel.
            let shared = Arc::clone(&shared);
            let worker = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let ctx = shared.controls.context(Some(fault));
                shared.sim.handle(&req, &ctx)
            });
            worker.await.map_err(|_| DropConnection)
        }
        Fault::Timeout => {
            tokio::time::sleep(Fault::TIMEOUT_HOLD).await;
            Err(DropConnection)
        }
        Fault::Reset => Err(DropConnection),
        Fault::Http500 => Ok(SimResponse::raw_json(500, r#"{"message":"Server Error"}"#)),
        Fault::Html502 => Ok(SimResponse::html(502, HTML_502)),
        Fault::Http503 => Ok(SimResponse::html(503, HTML_503)),
        Fault::Http429 => Ok(
            SimResponse::raw_json(429, r#"{"message":"Too Many Attempts."}"#)
                .with_header(RETRY_AFTER.as_str(), "1"),
        ),
        Fault::Malformed => {
            // Cut the real answer in half: what a proxy that dropped the tail would pass on.
            let full = handle().body;
            Ok(SimResponse::raw_json(200, full.slice(..full.len() / 2)))
        }
        Fault::Empty => {
            let _processed = handle();
            Ok(SimResponse::raw_json(200, Bytes::new()))
        }
        Fault::TokenExpired => Ok(sim.token_expired()),
        Fault::LostResponse | Fault::FailLostResponse => {
            let _processed = handle();
            Err(DropConnection)
        }
        Fault::Fail | Fault::WrongAmount => Ok(handle()),
    }
}

/// Whether an admin request may be served. A web page can reach a loopback port, so the admin
/// API (demo credentials, faults, the ledger) answers only requests that a page cannot make
/// or read: the `Host` must name a loopback address (`127.0.0.0/8`, `localhost`, `[::1]`, any
/// port), which a DNS-rebinding page cannot fake, and a `POST`/`PUT`/`PATCH` must say
/// `Content-Type: application/json`, which a cross-origin page cannot send without a CORS
/// preflight (answered by nothing here). `Err` is the refusal: 403 or 415.
#[allow(clippy::result_large_err)] // the Err is the answer itself, built once per refused request
fn admin_allowed(req: &SimRequest) -> Result<(), SimResponse> {
    let mut hosts = req.headers.get_all(hyper::header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok(),
        _ => None,
    };
    if !host.is_some_and(is_loopback_host) {
        return Err(admin_error(
            403,
            "the sandbox admin API answers only requests whose Host is a loopback address \
             (127.0.0.1, localhost or [::1], any port)",
        ));
    }
    let sends_body = matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
    if sends_body && !is_json_content_type(&req.headers) {
        return Err(admin_error(
            415,
            "the sandbox admin API takes POST and PUT bodies as Content-Type: application/json only",
        ));
    }
    Ok(())
}

/// `127.0.0.1`, `127.x.y.z`, `localhost`, `[::1]`, each optionally with `:port`.
fn is_loopback_host(host: &str) -> bool {
    let (name, port, bracketed) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, "")) => (inside, None, true),
            Some((inside, after)) => match after.strip_prefix(':') {
                Some(port) => (inside, Some(port), true),
                None => return false,
            },
            None => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port), false),
            None => (host, None, false),
        },
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = if bracketed {
        name.parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback())
    } else {
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    };
    port_ok && name_ok
}

/// Whether the request's one `Content-Type` is `application/json` (parameters allowed).
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    value.to_str().is_ok_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// The admin API: the server's own routes, then the simulator's.
fn admin<S: Simulator>(shared: &Shared<S>, req: &SimRequest) -> SimResponse {
    let (sim, controls) = (&shared.sim, &shared.controls);
    let armed = |controls: &Controls| {
        serde_json::json!({
            "armed": controls.armed().iter().map(|(fault, left)| serde_json::json!({
                "fault": fault.name(),
                "remaining": left,
                "applies_refund": fault.applies_refund(),
            })).collect::<Vec<_>>()
        })
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/__sandbox/payments") => {
            let Some(body) = req.json() else {
                return admin_error(400, "body must be JSON");
            };
            match sim.seed(&body) {
                Ok(created) => SimResponse::json(201, &created),
                Err(why) => admin_error(400, &why),
            }
        }
        ("GET", "/__sandbox/ledger") => SimResponse::json(200, &sim.ledger()),
        ("POST", "/__sandbox/reset") => {
            controls.reset();
            sim.reset();
            SimResponse::json(200, &serde_json::json!({"reset": true}))
        }
        (_, "/__sandbox/behaviour") => behaviour(shared, req),
        ("POST", "/__sandbox/faults") => {
            let Some(body) = req.json() else {
                return admin_error(400, "body must be JSON");
            };
            let delay =
                Duration::from_millis(body.get("delay_ms").and_then(Value::as_u64).unwrap_or(1000));
            let Some(fault) = body
                .get("fault")
                .and_then(Value::as_str)
                .and_then(|name| Fault::from_name(name, delay))
            else {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                return admin_error(400, &format!("fault must be one of {}", names.join(", ")));
            };
            let count = body
                .get("count")
                .and_then(Value::as_u64)
                .map_or(Some(1), |n| usize::try_from(n).ok());
            let Some(count) = count else {
                return admin_error(400, "count out of range");
            };
            controls.arm(fault, count);
            SimResponse::json(200, &armed(controls))
        }
        ("GET", "/__sandbox/faults") => SimResponse::json(200, &armed(controls)),
        ("DELETE", "/__sandbox/faults") => {
            controls.disarm();
            SimResponse::json(200, &armed(controls))
        }
        ("GET", "/__sandbox/requests") => {
            let requests: Vec<Value> = lock(&controls.requests)
                .iter()
                .map(|r| serde_json::json!({"method": r.method.as_str(), "path": r.path, "query": r.query}))
                .collect();
            SimResponse::json(200, &serde_json::json!({ "requests": requests }))
        }
        _ => sim
            .admin(req)
            .unwrap_or_else(|| admin_error(404, "no such sandbox route")),
    }
}

/// `POST /__sandbox/behaviour`: `lookup_lag_ms` and `response_delay_ms` for every simulator,
/// other keys for the simulator's own [`Simulator::behaviour`]. `GET` shows the shared
/// settings.
fn behaviour<S: Simulator>(shared: &Shared<S>, req: &SimRequest) -> SimResponse {
    let controls = &shared.controls;
    let current = |controls: &Controls| {
        serde_json::json!({
            "lookup_lag_ms": u64::try_from(controls.lookup_lag().as_millis()).unwrap_or(u64::MAX),
            "response_delay_ms": u64::try_from(controls.response_delay().as_millis()).unwrap_or(u64::MAX),
        })
    };
    if req.method == Method::GET {
        return SimResponse::json(200, &current(controls));
    }
    if req.method != Method::POST {
        return admin_error(405, "GET or POST");
    }
    let Some(body) = req.json().filter(Value::is_object) else {
        return admin_error(400, "body must be a JSON object");
    };
    let millis = |key: &str| match body.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|ms| Some(Duration::from_millis(ms)))
            .ok_or_else(|| format!("{key} must be a whole number")),
    };
    let (lag, delay) = match (millis("lookup_lag_ms"), millis("response_delay_ms")) {
        (Ok(lag), Ok(delay)) => (lag, delay),
        (Err(why), _) | (_, Err(why)) => return admin_error(400, &why),
    };
    if let Some(lag) = lag {
        controls.set_lookup_lag(lag);
    }
    if let Some(delay) = delay {
        controls.set_response_delay(delay);
    }
    if let Err(why) = shared.sim.behaviour(&body) {
        return admin_error(400, &why);
    }
    SimResponse::json(200, &current(controls))
}

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
const HTML_503: &str = "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head><body><h1>503 Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>\n";

/// An admin API error: `{"error": message}`.
pub(crate) fn admin_error(status: u16, message: &str) -> SimResponse {
    SimResponse::json(status, &serde_json::json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_faults_are_taken_in_order_and_counted() {
        let controls = Controls::new();
        assert_eq!(controls.take_fault(), None);
        controls.arm(Fault::Http500, 2);
        controls.arm(Fault::Reset, 1);
        assert_eq!(controls.take_fault(), Some(Fault::Http500));
        assert_eq!(controls.take_fault(), Some(Fault::Http500));
        assert_eq!(controls.take_fault(), Some(Fault::Reset));
        assert_eq!(controls.take_fault(), None);
    }

    #[test]
    fn the_request_log_is_bounded() {
        let controls = Controls::new();
        let request = SimRequest {
            method: Method::GET,
            path: "/x".into(),
            query: None,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        for _ in 0..RECORDED_REQUESTS_CAP + 5 {
            controls.record(&request);
        }
        assert_eq!(
            lock(&controls.requests).entries.len(),
            RECORDED_REQUESTS_CAP
        );
    }

    #[test]
    fn the_request_log_is_bounded_in_bytes_and_cuts_long_bodies_with_a_marker() {
        let controls = Controls::new();
        let request = SimRequest {
            method: Method::POST,
            path: "/x".into(),
            query: None,
            headers: HeaderMap::new(),
            body: Bytes::from(vec![b'a'; 1 << 20]),
        };
        // 1,500 POSTs of 1 MiB each: 1.5 GB unbounded.
        for _ in 0..1_500 {
            controls.record(&request);
        }
        let log = lock(&controls.requests);
        assert!(log.bytes <= RECORDED_BYTES_CAP, "{} bytes kept", log.bytes);
        let kept: usize = log.iter().map(weight_of).sum();
        assert_eq!(kept, log.bytes);
        assert!(
            log.entries.len() >= 200,
            "only the oldest are dropped: {} kept",
            log.entries.len()
        );
        let body = &log.iter().last().unwrap().body;
        assert!(body.len() < RECORDED_BODY_CAP + 64);
        let tail = String::from_utf8_lossy(&body[RECORDED_BODY_CAP..]);
        assert_eq!(tail, format!("{TRUNCATED_MARKER}{} bytes]", 1 << 20));
    }

    #[test]
    fn loopback_hosts_are_recognised_with_and_without_ports() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "localhost",
            "LOCALHOST:443",
            "[::1]",
            "[::1]:40123",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "example.com",
            "attacker.example:8080",
            "127.0.0.1.nip.io",
            "10.0.0.1:80",
            "0.0.0.0:80",
            "[::2]:80",
            "[::1]x",
            "localhost:",
            "localhost:80a",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn query_parameters_are_percent_decoded() {
        let request = SimRequest {
            method: Method::GET,
            path: "/x".into(),
            query: Some("a=1&paymentId=P%201&b=x+y".into()),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        assert_eq!(request.query_param("paymentId").as_deref(), Some("P 1"));
        assert_eq!(request.query_param("b").as_deref(), Some("x y"));
        assert_eq!(request.query_param("c"), None);
    }
}
