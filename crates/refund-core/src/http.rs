//! Shared HTTP plumbing for provider crates built on reqwest (feature `http`).
//!
//! Every provider crate needs the same few things done the same careful way: a client with
//! timeouts on and redirects off, a base URL that is HTTPS (plain HTTP only on loopback, for
//! simulators), a response reader with a size cap, and one honest mapping of transport
//! failures onto [`RefundError`]: a failure before the connection existed is
//! [`Unreachable`](RefundError::Unreachable) (retryable); anything after it is
//! [`OutcomeUnknown`](RefundError::OutcomeUnknown).

use std::net::IpAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::Url;

use crate::error::RefundError;
use crate::redact::scrub;

/// The reqwest this module's signatures take and return ([`send`] takes a
/// `reqwest::RequestBuilder`, [`build_client`] returns a `reqwest::Client`): build requests
/// with `refund_core::http::reqwest`, and a provider crate needs no reqwest dependency of its
/// own, nor can it pick a version that does not fit.
pub use reqwest;

/// How many characters of a response body an error message quotes ([`HttpReply::snippet`]).
pub const SNIPPET_CHARS: usize = 160;

/// Transport settings for one provider client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpSettings {
    /// The whole request, from connecting to the last byte of the response.
    pub timeout: Duration,
    /// Establishing the connection (TCP and TLS). A connect timeout means nothing was sent.
    pub connect_timeout: Duration,
    /// The largest response body read; a larger one is an error, never buffered whole.
    pub max_response_bytes: usize,
}

impl Default for HttpSettings {
    /// 30 s per request, 10 s to connect, 1 MiB of response.
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 1 << 20,
        }
    }
}

impl HttpSettings {
    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the response size cap.
    #[must_use]
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }
}

/// Whether this build has a TLS stack: one of the features `rustls`, `rustls-native-roots` or
/// `native-tls` (the provider crates turn on `rustls` by default). Without one, an `https`
/// request fails with a [`Configuration`](RefundError::Configuration) error that says so.
pub const TLS: bool = cfg!(any(
    feature = "rustls",
    feature = "rustls-native-roots",
    feature = "native-tls"
));

/// Builds the client a provider keeps for its whole life: the TLS stack the features chose
/// (`native-tls` when it is on, else rustls, trusting the webpki roots with `rustls` and the
/// operating system's with `rustls-native-roots`), timeouts from `settings`, redirects never
/// followed (a refund POST must not be replayed elsewhere), connections pooled and reused.
pub fn build_client(
    provider: &'static str,
    settings: &HttpSettings,
) -> Result<reqwest::Client, RefundError> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        // No replays by the HTTP client: whether a refund may be sent again is decided by
        // the error taxonomy alone. (reqwest's default replays HTTP/2 protocol refusals,
        // which we do not build; keeping its policy cost a copy of every request.)
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("refunds-rs/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RefundError::configuration(provider, format!("HTTP client: {e}")))
}

/// Parses a provider base URL: `https://…`, or `http://…` only for a loopback host
/// (`127.0.0.0/8`, `::1`, `localhost`), as simulators use. No credentials, query or fragment.
///
/// ```
/// use refund_core::http::base_url;
///
/// assert!(base_url("p", "https://sandbox-api.iyzipay.com").is_ok());
/// assert!(base_url("p", "http://127.0.0.1:8080").is_ok());
/// assert!(base_url("p", "http://example.com").is_err());
/// assert!(base_url("p", "ftp://example.com").is_err());
/// ```
pub fn base_url(provider: &'static str, text: &str) -> Result<Url, RefundError> {
    let bad = |why: &str| RefundError::configuration(provider, format!("base URL: {why}"));
    let url = Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(bad(
                "plain http is allowed only for loopback hosts; use https",
            ));
        }
        _ => return Err(bad("the scheme must be https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials do not belong in the URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment allowed"));
    }
    Ok(url)
}

/// Whether `url`'s host is loopback.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// `base` joined with an absolute API path such as `/ccpayment/api/refund`, keeping any path
/// prefix the base URL has.
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

/// A response read in full (within the size cap).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpReply {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
    /// `Retry-After`, when sent in seconds.
    pub retry_after: Option<Duration>,
}

impl HttpReply {
    /// A reply with no `Retry-After`: for replaying a recorded answer, tests and benchmarks.
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        HttpReply {
            status,
            body: body.into(),
            retry_after: None,
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first [`SNIPPET_CHARS`] characters of the body, printable, for an error message,
    /// with `secrets` scrubbed in every form [`scrub`] knows (a JSON-escaped echo included).
    ///
    /// The whole body is scrubbed *before* it is cut: cutting first would leave the head of a
    /// secret that crosses the cut, which no longer matches the secret and so would survive.
    ///
    /// ```
    /// use refund_core::http::HttpReply;
    ///
    /// let secret = "merchant/key/0123456789";
    /// let body = format!("{}{{\"echo\":\"{}\"}}", "x".repeat(140), secret.replace('/', "\\/"));
    /// let snippet = HttpReply::new(500, body).snippet(&[secret]);
    /// assert!(!snippet.contains("merchant"), "{snippet}");
    /// ```
    pub fn snippet(&self, secrets: &[&str]) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let clean = scrub(&text, secrets);
        let start = clean.trim_start_matches(|c: char| c.is_whitespace() || c.is_control());
        let mut short: String = start
            .chars()
            .take(SNIPPET_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        short.truncate(short.trim_end().len());
        if short.is_empty() {
            "(empty body)".to_owned()
        } else {
            short
        }
    }

    /// The error for a response whose body the provider crate could not make sense of:
    /// 429 is [`RateLimited`](RefundError::RateLimited), 401 and 403 are
    /// [`AuthenticationRejected`](RefundError::AuthenticationRejected), and anything else,
    /// including a 2xx with an unreadable body, is
    /// [`OutcomeUnknown`](RefundError::OutcomeUnknown): the request reached the provider and
    /// nobody can say what it did.
    pub fn unreadable(&self, provider: &'static str, why: &str, secrets: &[&str]) -> RefundError {
        match self.status {
            429 => RefundError::RateLimited {
                provider,
                retry_after: self.retry_after,
            },
            401 | 403 => RefundError::authentication(
                provider,
                format!("HTTP {}", self.status),
                self.snippet(secrets),
            ),
            status => RefundError::outcome_unknown(
                provider,
                format!("HTTP {status} with {why}: {}", self.snippet(secrets)),
            ),
        }
    }
}

/// `application/json`, for `Content-Type` and `Accept`, without a copy per request.
pub const APPLICATION_JSON: reqwest::header::HeaderValue =
    reqwest::header::HeaderValue::from_static("application/json");

/// Sends `request` and reads the whole response, at most `max_bytes` of it.
pub async fn send(
    provider: &'static str,
    request: reqwest::RequestBuilder,
    max_bytes: usize,
) -> Result<HttpReply, RefundError> {
    let mut response = request.send().await.map_err(|e| classify(provider, e))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let too_large = || {
        RefundError::outcome_unknown(
            provider,
            format!("HTTP {status} response larger than {max_bytes} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(too_large());
    }
    // Most answers arrive as one chunk: keep it as it is, and copy only when there are more.
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let held = first.as_ref().map_or(0, Bytes::len) + rest.len();
                if held + chunk.len() > max_bytes {
                    return Err(too_large());
                }
                match first.take() {
                    None if rest.is_empty() => first = Some(chunk),
                    Some(earlier) => {
                        rest.extend_from_slice(&earlier);
                        rest.extend_from_slice(&chunk);
                    }
                    None => rest.extend_from_slice(&chunk),
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(RefundError::outcome_unknown_from(
                    provider,
                    format!("HTTP {status} response interrupted ({})", describe(&e)),
                    e.without_url(),
                ));
            }
        }
    }
    let body = first.unwrap_or_else(|| rest.freeze());
    Ok(HttpReply {
        status,
        body,
        retry_after,
    })
}

/// Maps a reqwest send error onto the taxonomy: connect failures (refused, DNS, TLS, connect
/// timeout) provably sent nothing and are [`Unreachable`](RefundError::Unreachable);
/// everything after the connection existed is [`OutcomeUnknown`](RefundError::OutcomeUnknown).
pub fn classify(provider: &'static str, error: reqwest::Error) -> RefundError {
    if error.is_builder() {
        return RefundError::configuration(provider, error.without_url().to_string());
    }
    if !TLS && error.url().is_some_and(|url| url.scheme() == "https") {
        // Nothing was sent; retrying cannot help, only a rebuild can.
        return RefundError::configuration(
            provider,
            "https needs a TLS stack and this build has none: turn on the provider crate's \
             `rustls` (default), `rustls-native-roots` or `native-tls` feature",
        );
    }
    if error.is_connect() {
        return RefundError::Unreachable {
            provider,
            source: Box::new(error.without_url()),
        };
    }
    let reason = describe(&error);
    RefundError::outcome_unknown_from(provider, reason, error.without_url())
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out waiting for the response".to_owned();
    }
    // The innermost cause says what happened ("connection reset by peer", …).
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("connection failed after the request was sent: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_https_or_loopback_http() {
        for ok in [
            "https://api.iyzipay.com",
            "https://provisioning.sipay.com.tr/",
            "http://127.0.0.1:9999",
            "http://127.5.0.1",
            "http://localhost:1",
            "http://[::1]:80",
        ] {
            assert!(base_url("p", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1",
            "http://example.com",
            "ftp://127.0.0.1",
            "https://user:pw@api.iyzipay.com",
            "https://api.iyzipay.com/?x=1",
            "not a url",
            "",
        ] {
            let e = base_url("p", bad).unwrap_err();
            assert!(matches!(e, RefundError::Configuration { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn endpoints_keep_a_base_path_prefix() {
        let base = base_url("p", "http://127.0.0.1:1/prefix/").unwrap();
        assert_eq!(
            endpoint(&base, "/ccpayment/api/refund").as_str(),
            "http://127.0.0.1:1/prefix/ccpayment/api/refund"
        );
        let base = base_url("p", "https://api.iyzipay.com").unwrap();
        assert_eq!(
            endpoint(&base, "/payment/refund").as_str(),
            "https://api.iyzipay.com/payment/refund"
        );
    }

    /// A build without a TLS feature cannot speak https: it says so as a configuration error
    /// (nothing sent, not retryable) instead of a retryable "unreachable".
    #[cfg(not(any(
        feature = "rustls",
        feature = "rustls-native-roots",
        feature = "native-tls"
    )))]
    #[tokio::test]
    async fn https_without_a_tls_feature_is_a_configuration_error() {
        let client = build_client("p", &HttpSettings::default()).unwrap();
        let request = client.post("https://127.0.0.1:1/refund");
        let e = send("p", request, 1024).await.unwrap_err();
        assert!(matches!(e, RefundError::Configuration { .. }), "{e}");
        assert!(e.to_string().contains("rustls"), "{e}");
        assert!(!e.is_retryable());
    }

    fn reply(status: u16, body: &str) -> HttpReply {
        HttpReply {
            status,
            body: Bytes::copy_from_slice(body.as_bytes()),
            retry_after: Some(Duration::from_secs(3)),
        }
    }

    #[test]
    fn unreadable_bodies_are_classified_by_status() {
        let e = reply(429, "").unreadable("p", "no JSON", &[]);
        assert!(matches!(
            e,
            RefundError::RateLimited {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            reply(401, "").unreadable("p", "x", &[]),
            RefundError::AuthenticationRejected { .. }
        ));
        for status in [200, 400, 404, 500, 502, 503] {
            let e = reply(status, "<html>bad gateway</html>").unreadable("p", "HTML", &[]);
            assert!(!e.is_outcome_known(), "{status}");
            assert!(e.to_string().contains("bad gateway"));
        }
    }

    #[test]
    fn snippets_are_short_printable_and_scrubbed() {
        let r = reply(502, &format!("a\nb secret {}", "x".repeat(500)));
        let s = r.snippet(&["secret"]);
        assert!(s.starts_with("a b [REDACTED]"));
        assert!(s.chars().count() < 200);
        assert_eq!(reply(500, "").snippet(&[]), "(empty body)");
    }

    #[test]
    fn a_secret_crossing_the_cut_leaves_no_head_behind() {
        let secret = "sk_live_0123456789abcdef";
        // The secret starts 10 characters before the cut and ends after it.
        let body = format!("{}{secret} and more", "x".repeat(SNIPPET_CHARS - 10));
        let s = reply(500, &body).snippet(&[secret]);
        assert!(!s.contains("sk_live"), "{s}");
        assert!(s.chars().count() <= SNIPPET_CHARS, "{s}");
        assert!(s.ends_with("xxx[REDACTED]"), "{s}");
    }

    #[test]
    fn a_json_escaped_echo_of_a_secret_is_scrubbed_from_the_snippet() {
        // A SiPay merchant key has `/` in it; PHP's json_encode echoes it as `\/`.
        let key = "$2y$10$SIM/merchant/KEY0000001";
        let body = r#"{"status_code":30,"merchant_key":"$2y$10$SIM\/merchant\/KEY0000001"}"#;
        let s = reply(200, body).snippet(&[key]);
        assert!(!s.contains("SIM"), "{s}");
        assert!(s.contains("[REDACTED]"), "{s}");
        let e = reply(502, body).unreadable("p", "no JSON", &[key]);
        assert!(!format!("{e} {e:?}").contains("SIM"), "{e:?}");
    }
}
