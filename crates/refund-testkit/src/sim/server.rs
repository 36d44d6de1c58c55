//! The HTTP plumbing both simulators share: a hyper 1 HTTP/1.1 server with keep-alive, the
//! admin/provider split, request recording and fault execution.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::{Common, Fault, RecordedRequest};

/// Largest request body a simulator reads (providers' bodies are a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

pub(crate) type Body = Full<Bytes>;

pub(crate) const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// A request with its whole body read.
pub(crate) struct Req {
    pub(crate) parts: Parts,
    pub(crate) body: Bytes,
}

impl Req {
    pub(crate) fn path(&self) -> &str {
        self.parts.uri.path()
    }

    /// The percent-decoded value of query parameter `name`.
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        self.parts.uri.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
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

/// What a simulator implements; the server does the rest.
pub(crate) trait Simulator: Send + Sync + 'static {
    fn common(&self) -> &Common;
    /// Answers a request under `/__sandbox/`.
    fn admin(&self, req: &Req) -> Response<Body>;
    /// Whether armed faults apply to this request.
    fn faultable(&self, req: &Req) -> bool;
    /// Processes a provider request (authentication, ledger) and answers it.
    fn handle(&self, req: &Req) -> Response<Body>;
    /// Processes a provider request as one the bank refused ([`Fault::Fail`]): a refund that
    /// would have succeeded is recorded as a *failed* entry carrying its merchant reference
    /// (visible to lookups as failed), and the provider's decline is answered. The default
    /// processes nothing and answers 500 (a simulator that does not model failed entries).
    fn handle_failed(&self, req: &Req) -> Response<Body> {
        let _ = req;
        json(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(br#"{"message":"Server Error"}"#),
        )
    }
    /// The answer under [`Fault::TokenExpired`].
    fn token_expired(&self) -> Response<Body>;
    /// Applies simulator-specific keys of a `POST /__sandbox/behaviour` body (the shared
    /// `lookup_lag_ms` is handled before). Unknown keys are ignored.
    fn behaviour(&self, body: &serde_json::Value) -> Result<(), String> {
        let _ = body;
        Ok(())
    }
}

/// Returned to hyper to close the connection without writing a response.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("simulated connection drop")
    }
}

impl std::error::Error for DropConnection {}

/// A running server; dropping it stops accepting and closes every connection.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The accept task owns the connection tasks (a JoinSet): aborting it drops them all.
        self.task.abort();
    }
}

pub(crate) async fn start<S: Simulator>(addr: SocketAddr, sim: Arc<S>) -> io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, sim));
    Ok(Running { addr, task })
}

async fn accept_loop<S: Simulator>(listener: TcpListener, sim: Arc<S>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let sim = Arc::clone(&sim);
                connections.spawn(async move {
                    let service = service_fn(move |request| serve(Arc::clone(&sim), request));
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
    sim: Arc<S>,
    request: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
    };
    let req = Req { parts, body };
    if req.path() == "/__sandbox/behaviour" {
        return Ok(behaviour(&*sim, &req));
    }
    if req.path().starts_with("/__sandbox/") {
        return Ok(sim.admin(&req));
    }
    let common = sim.common();
    common.record(RecordedRequest {
        method: req.parts.method.clone(),
        path: req.path().to_owned(),
        query: req.parts.uri.query().map(str::to_owned),
        headers: req.parts.headers.clone(),
        body: req.body.clone(),
    });
    let fault = if sim.faultable(&req) {
        common.take_fault()
    } else {
        None
    };
    let Some(fault) = fault else {
        return Ok(sim.handle(&req));
    };
    match fault {
        Fault::Delay(delay) => {
            // A provider finishes what it started even when the client gives up: the work runs
            // in its own task, which a dropped connection does not cancel.
            let worker = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                sim.handle(&req)
            });
            worker.await.map_err(|_| DropConnection)
        }
        Fault::Fail => Ok(sim.handle_failed(&req)),
        Fault::FailLostResponse => {
            let _processed = sim.handle_failed(&req);
            Err(DropConnection)
        }
        Fault::Timeout => {
            tokio::time::sleep(Fault::TIMEOUT_HOLD).await;
            Err(DropConnection)
        }
        Fault::Reset => Err(DropConnection),
        Fault::Http500 => Ok(json(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(br#"{"message":"Server Error"}"#),
        )),
        Fault::Html502 => Ok(html(StatusCode::BAD_GATEWAY, HTML_502)),
        Fault::Http503 => Ok(html(StatusCode::SERVICE_UNAVAILABLE, HTML_503)),
        Fault::Http429 => {
            let mut response = json(
                StatusCode::TOO_MANY_REQUESTS,
                Bytes::from_static(br#"{"message":"Too Many Attempts."}"#),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            Ok(response)
        }
        Fault::Malformed => {
            let processed = sim.handle(&req);
            let full = processed.into_body();
            let full = full
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            // Cut the real answer in half: what a proxy that dropped the tail would pass on.
            let cut = full.slice(..full.len() / 2);
            Ok(json(StatusCode::OK, cut))
        }
        Fault::Empty => {
            let _processed = sim.handle(&req);
            Ok(json(StatusCode::OK, Bytes::new()))
        }
        Fault::TokenExpired => Ok(sim.token_expired()),
        Fault::LostResponse => {
            let _processed = sim.handle(&req);
            Err(DropConnection)
        }
    }
}

/// `POST /__sandbox/behaviour`: `lookup_lag_ms` for every simulator, other keys for the
/// simulator's own [`Simulator::behaviour`]. `GET` shows the shared settings.
fn behaviour<S: Simulator>(sim: &S, req: &Req) -> Response<Body> {
    let common = sim.common();
    let current = |common: &Common| {
        serde_json::json!({
            "lookup_lag_ms": u64::try_from(common.lookup_lag().as_millis()).unwrap_or(u64::MAX),
        })
    };
    if req.parts.method == hyper::Method::GET {
        return to_json(StatusCode::OK, &current(common));
    }
    if req.parts.method != hyper::Method::POST {
        return admin_error(StatusCode::METHOD_NOT_ALLOWED, "GET or POST");
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
        return admin_error(StatusCode::BAD_REQUEST, "body must be a JSON object");
    };
    if !body.is_object() {
        return admin_error(StatusCode::BAD_REQUEST, "body must be a JSON object");
    }
    if let Some(lag) = body.get("lookup_lag_ms") {
        let Some(ms) = lag.as_u64() else {
            return admin_error(
                StatusCode::BAD_REQUEST,
                "lookup_lag_ms must be a whole number",
            );
        };
        common.set_lookup_lag(std::time::Duration::from_millis(ms));
    }
    if let Err(why) = sim.behaviour(&body) {
        return admin_error(StatusCode::BAD_REQUEST, &why);
    }
    to_json(StatusCode::OK, &current(common))
}

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
const HTML_503: &str = "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head><body><h1>503 Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>\n";

pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, APPLICATION_JSON);
    response
}

pub(crate) fn html(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, TEXT_HTML);
    response
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN);
    response
}

/// A JSON response from anything serde can write (the simulators' own structs cannot fail).
pub(crate) fn to_json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => json(status, body),
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(br#"{"message":"simulator could not serialise its answer"}"#),
        ),
    }
}

pub(crate) fn admin_error(status: StatusCode, message: &str) -> Response<Body> {
    to_json(status, &serde_json::json!({ "error": message }))
}
