//! Refund notifications (webhooks) for tests: sign one the way the provider does, and deliver
//! it to a loopback URL, so an application can test its webhook handler end to end — as
//! async-stripe's test header generator does for Stripe's signatures.
//!
//! - `SipayNotification` (feature `sipay`): SiPay's refund notification, signed with an app
//!   secret into the form fields or the `application/x-www-form-urlencoded` body SiPay posts.
//!   The SiPay simulator (`sim::SipaySim`) delivers the same thing when a refund completes.
//! - [`post_form`]: one HTTP/1.1 `POST` of a form body to an `http://` loopback URL; the
//!   handler's status code comes back. Nothing else is ever contacted.
//! - [`Delivery`]: what a simulator records for each notification it delivered.
//!
//! ```
//! # #[cfg(feature = "sipay")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use refund_sipay::notification::NotificationVerifier;
//! use refund_testkit::notifications::SipayNotification;
//!
//! let body = SipayNotification::completed("INV-1", "VP1", "10.50").form_body("app-secret");
//! // What the application's handler does with it:
//! let notice = NotificationVerifier::new("app-secret").verify_form(body.as_bytes())?;
//! assert_eq!(notice.amount.to_string(), "10.50 TRY");
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "sipay"))]
//! # fn main() {}
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

/// How long [`post_form`] waits for the whole exchange.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most [`post_form`] reads of an answer.
const MAX_ANSWER: usize = 64 * 1024;

/// One notification a simulator delivered (or tried to), as its request log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Where it was posted.
    pub url: String,
    /// The form body posted.
    pub body: String,
    /// The handler's HTTP status, or why there was none (connection refused, timeout, an
    /// answer that is not HTTP).
    pub answer: Result<u16, String>,
}

/// A SiPay refund notification to sign: the four fields SiPay posts besides the `hash_key`.
///
/// ```
/// # #[cfg(feature = "sipay")]
/// # fn main() {
/// use refund_testkit::notifications::SipayNotification;
///
/// let n = SipayNotification::completed("INV-1", "VP1", "10.50");
/// let fields = n.fields("app-secret");
/// let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
/// assert_eq!(names, ["invoice_id", "order_id", "amount", "status", "hash_key"]);
/// assert!(n.form_body("app-secret").starts_with("invoice_id=INV-1&order_id=VP1&amount=10.50&status=Completed&hash_key="));
/// # }
/// # #[cfg(not(feature = "sipay"))]
/// # fn main() {}
/// ```
#[cfg(feature = "sipay")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipayNotification {
    /// `invoice_id`.
    pub invoice_id: String,
    /// `order_id`.
    pub order_id: String,
    /// `amount`, as text exactly as signed and posted (`10.50`).
    pub amount: String,
    /// `status`: `Completed`, the only documented value.
    pub status: String,
}

#[cfg(feature = "sipay")]
impl SipayNotification {
    /// A `Completed` notification.
    pub fn completed(
        invoice_id: impl Into<String>,
        order_id: impl Into<String>,
        amount: impl Into<String>,
    ) -> Self {
        SipayNotification {
            invoice_id: invoice_id.into(),
            order_id: order_id.into(),
            amount: amount.into(),
            status: refund_sipay::notification::STATUS_COMPLETED.to_owned(),
        }
    }

    /// The same notification with another status (none but `Completed` is documented).
    #[must_use]
    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.status = status.into();
        self
    }

    /// The `hash_key`: `status|amount|invoice_id|order_id` encrypted with `app_secret`, with a
    /// fresh iv and salt.
    pub fn hash_key(&self, app_secret: &str) -> String {
        refund_sipay::hash_key::generate(
            app_secret,
            &[&self.status, &self.amount, &self.invoice_id, &self.order_id],
        )
    }

    /// The five posted fields, signed with `app_secret`, in the order of SiPay's page.
    pub fn fields(&self, app_secret: &str) -> Vec<(&'static str, String)> {
        use refund_sipay::notification::fields;
        vec![
            (fields::INVOICE_ID, self.invoice_id.clone()),
            (fields::ORDER_ID, self.order_id.clone()),
            (fields::AMOUNT, self.amount.clone()),
            (fields::STATUS, self.status.clone()),
            (fields::HASH_KEY, self.hash_key(app_secret)),
        ]
    }

    /// The `application/x-www-form-urlencoded` body SiPay posts, signed with `app_secret`.
    pub fn form_body(&self, app_secret: &str) -> String {
        form_encode(
            self.fields(app_secret)
                .iter()
                .map(|(k, v)| (*k, v.as_str())),
        )
    }

    /// Signs it with `app_secret` and POSTs it to `url` (an `http://` loopback URL), as SiPay
    /// would; returns the handler's HTTP status.
    pub async fn deliver(&self, url: &str, app_secret: &str) -> io::Result<u16> {
        post_form(url, &self.form_body(app_secret)).await
    }
}

/// Encodes name–value pairs as `application/x-www-form-urlencoded`: unreserved characters
/// (`A–Z a–z 0–9 - . _ ~`) as they are, a space as `+`, every other byte as `%XX`.
///
/// ```
/// use refund_testkit::notifications::form_encode;
///
/// assert_eq!(form_encode([("a", "1 2"), ("b", "x/y+z")]), "a=1+2&b=x%2Fy%2Bz");
/// ```
pub fn form_encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, name);
        out.push('=');
        encode_into(&mut out, value);
    }
    out
}

fn encode_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
}

/// An `http://` URL whose host is a loopback address: `127.0.0.0/8`, `[::1]` or `localhost`
/// (taken as `127.0.0.1`, never looked up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoopbackUrl {
    pub(crate) addr: SocketAddr,
    host: String,
    path: String,
}

impl LoopbackUrl {
    /// Parses `url`; anything but `http://<loopback>[:port][/path]` is `InvalidInput`.
    pub(crate) fn parse(url: &str) -> io::Result<LoopbackUrl> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_owned());
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| invalid("only http:// loopback URLs are delivered to"))?;
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("the URL has spaces or control characters"));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        if authority.contains('@') {
            return Err(invalid("the URL has user information"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| invalid("the URL's port is not a number"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| invalid("the URL's host is not a loopback address"))?
        };
        if !ip.is_loopback() || port == 0 {
            return Err(invalid(
                "only loopback hosts (127.0.0.1, [::1], localhost) with a port are delivered to",
            ));
        }
        Ok(LoopbackUrl {
            addr: SocketAddr::new(ip, port),
            host: authority.to_owned(),
            path,
        })
    }
}

/// Checks that `url` is one [`post_form`] delivers to: `http://` and a loopback host.
///
/// ```
/// use refund_testkit::notifications::check_loopback_url;
///
/// assert!(check_loopback_url("http://127.0.0.1:8080/hooks/sipay").is_ok());
/// assert!(check_loopback_url("http://localhost:9000").is_ok());
/// assert!(check_loopback_url("http://[::1]:9000/h").is_ok());
/// assert!(check_loopback_url("https://127.0.0.1:8080/").is_err());
/// assert!(check_loopback_url("http://hooks.example.com/").is_err());
/// assert!(check_loopback_url("http://10.0.0.1:80/").is_err());
/// ```
pub fn check_loopback_url(url: &str) -> io::Result<()> {
    LoopbackUrl::parse(url).map(|_| ())
}

/// POSTs `body` as `application/x-www-form-urlencoded` to `url`, an `http://` loopback URL
/// (see [`check_loopback_url`]), over one HTTP/1.1 connection closed afterwards, within
/// [`DELIVERY_TIMEOUT`]. Returns the answer's status code.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let status = refund_testkit::notifications::post_form("http://127.0.0.1:8080/hook", "a=1").await?;
/// assert_eq!(status, 200);
/// # Ok(()) }
/// ```
pub async fn post_form(url: &str, body: &str) -> io::Result<u16> {
    let target = LoopbackUrl::parse(url)?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nUser-Agent: refund-testkit\r\nAccept: */*\r\nConnection: close\r\n\r\n{body}",
        target.path,
        target.host,
        body.len()
    );
    let exchange = async {
        let stream = TcpStream::connect(target.addr).await?;
        write_all(&stream, request.as_bytes()).await?;
        let answer = read_to_end(&stream).await?;
        status_of(&answer)
    };
    tokio::time::timeout(DELIVERY_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))?
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads until the peer closes (`Connection: close`) or [`MAX_ANSWER`] bytes.
async fn read_to_end(stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while answer.len() < MAX_ANSWER {
        stream.readable().await?;
        match stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // A reset after the status line arrived still leaves a status to report.
            Err(e) if !answer.is_empty() && e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    Ok(answer)
}

/// The status code of an HTTP/1.x answer (`HTTP/1.1 200 OK`).
fn status_of(answer: &[u8]) -> io::Result<u16> {
    let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let text = std::str::from_utf8(line).unwrap_or_default();
    let mut words = text.split_whitespace();
    match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(v), Some(Ok(code))) if v.starts_with("HTTP/1.") && (100..1000).contains(&code) => {
            Ok(code)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the answer is not HTTP/1.x",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_only() {
        let ok = LoopbackUrl::parse("http://127.0.0.1:8080/hooks/sipay?x=1").unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert_eq!(ok.addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(ok.path, "/hooks/sipay?x=1");
        assert_eq!(ok.host, "127.0.0.1:8080");
        for (url, path) in [
            ("http://127.0.0.1:1", "/"),
            ("http://127.1.2.3:1/", "/"),
            ("http://localhost:1/h", "/h"),
            ("http://LOCALHOST:1?q", "/?q"),
            ("http://[::1]:1/h", "/h"),
        ] {
            assert_eq!(
                LoopbackUrl::parse(url).map(|u| u.path).ok().as_deref(),
                Some(path),
                "{url}"
            );
        }
        for url in [
            "https://127.0.0.1:1/",
            "http://example.com:80/",
            "http://10.0.0.1:80/",
            "http://0.0.0.0:80/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:x/",
            "http://user@127.0.0.1:1/",
            "http://127.0.0.1:1/a b",
            "http://[::2]:1/",
            "127.0.0.1:1",
            "",
        ] {
            assert!(LoopbackUrl::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(
            status_of(b"HTTP/1.1 204 No Content\r\n\r\n").ok(),
            Some(204)
        );
        assert_eq!(status_of(b"HTTP/1.0 500\r\n").ok(), Some(500));
        assert!(status_of(b"").is_err());
        assert!(status_of(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(status_of(b"HTTP/1.1 abc\r\n").is_err());
    }

    #[test]
    fn form_encoding_escapes_everything_but_unreserved_characters() {
        assert_eq!(
            form_encode([("hash_key", "ab+/=:_"), ("x", "ç &")]),
            "hash_key=ab%2B%2F%3D%3A_&x=%C3%A7+%26"
        );
        assert_eq!(form_encode(std::iter::empty()), "");
    }
}
