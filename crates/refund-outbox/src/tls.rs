//! TLS to PostgreSQL with rustls (feature `tls`): [`connect`] and
//! [`Connector`] honour the URL's `sslmode` the way libpq does.
//!
//! | `sslmode` | what happens |
//! |---|---|
//! | `disable` | plain text, no TLS |
//! | `prefer` (the default when the URL names none, as in libpq) | TLS when the server offers it, else plain text; **no certificate check** |
//! | `require` | TLS or no connection; **no certificate check** (anyone on the path can pose as the server), as in libpq; with a CA given (`sslrootcert=` or [`Connector::with_root_certificates_pem`]) it checks the chain like `verify-ca`, as libpq does when it has a root file |
//! | `verify-ca` | TLS, the server's certificate chain checked against the CA given, else the system's roots; the host name is not checked |
//! | `verify-full` | as `verify-ca`, and the certificate must name the host of the URL (`host`, not `hostaddr`) |
//!
//! `sslrootcert=/path/to/ca.pem` (PEM, one or more certificates) names the CA; `sslrootcert=system`
//! (or none) means the operating system's roots (through `rustls-native-certs`). libpq's
//! default of `~/.postgresql/root.crt` is not looked at. Client certificates (`sslcert`,
//! `sslkey`) are not supported. Channel binding (`SCRAM-SHA-256-PLUS`) is not offered: the
//! password exchange is SCRAM without it, which still never sends the password.
//!
//! Errors never carry the URL nor its password: a refused connection's error is the server's
//! reason (`password authentication failed for user "app"`) or the TLS handshake's
//! (`invalid peer certificate: ...`).
//!
//! ```no_run
//! # async fn example() -> Result<(), refund_outbox::OutboxError> {
//! let (client, _connection) =
//!     refund_outbox::connect("postgres://app@db.internal/shop?sslmode=verify-full").await?;
//! client.execute("SELECT 1", &[]).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config};

use crate::OutboxError;

/// libpq's `sslmode`, all five that make sense without client certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without a certificate check; else plain text.
    Prefer,
    /// TLS, without a certificate check (unless a CA is given: then as `VerifyCa`).
    Require,
    /// TLS, the certificate chain checked; not the host name.
    VerifyCa,
    /// TLS, the certificate chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    /// libpq's name: `disable`, `prefer`, `require`, `verify-ca`, `verify-full`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Result<SslMode, OutboxError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // libpq's `allow` (plain first, TLS when the server insists) is not offered: it
            // would be plain text against every server that allows it.
            other => {
                return Err(connection(format!(
                    "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connects to PostgreSQL with TLS as the URL's `sslmode` says; see the [module](self).
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Connector {
    roots: Option<Arc<Vec<CertificateDer<'static>>>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("roots", &self.roots.as_ref().map(|r| r.len()))
            .finish()
    }
}

impl Connector {
    /// A connector that takes everything from the URL (`sslmode`, `sslrootcert`).
    pub fn new() -> Connector {
        Connector::default()
    }

    /// Trusts the CA certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks) instead
    /// of the system's roots, for `verify-ca`, `verify-full` and `require`. A URL's own
    /// `sslrootcert` still wins.
    pub fn with_root_certificates_pem(mut self, pem: &[u8]) -> Result<Connector, OutboxError> {
        self.roots = Some(Arc::new(parse_pem(pem, "the root certificates given")?));
        Ok(self)
    }

    /// Trusts the CA certificates of a PEM file; see
    /// [`with_root_certificates_pem`](Self::with_root_certificates_pem).
    pub fn with_root_certificate_file(self, path: &Path) -> Result<Connector, OutboxError> {
        let pem = std::fs::read(path)
            .map_err(|e| connection(format!("reading {}: {e}", path.display())))?;
        self.with_root_certificates_pem(&pem)
    }

    /// Connects to `url` (a `postgres://` URL or libpq's `key=value` form), spawning the
    /// connection on the current tokio runtime. The handle ends with the connection (its error,
    /// when it failed, is also logged as a warning). Errors never carry the URL or its password.
    pub async fn connect(
        &self,
        url: &str,
    ) -> Result<(Client, JoinHandle<Result<(), tokio_postgres::Error>>), OutboxError> {
        let parsed = split_ssl(url)?;
        let mode = match parsed.mode.as_deref() {
            Some(m) => SslMode::parse(m)?,
            None => SslMode::Prefer,
        };
        let mut config: Config = parsed.rest.parse().map_err(|e| connection(chain(&e)))?;
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let roots = match parsed.rootcert.as_deref() {
            None | Some("") => self.roots.clone(),
            Some("system") => None,
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| connection(format!("sslrootcert {path}: {e}")))?;
                Some(Arc::new(parse_pem(&pem, "sslrootcert")?))
            }
        };
        let tls = MakeRustls::new(mode, roots.as_deref().map(Vec::as_slice))?;
        let (client, conn) = config
            .connect(tls)
            .await
            .map_err(|e| connection(chain(&e)))?;
        let handle = tokio::spawn(async move {
            let ended = conn.await;
            if let Err(e) = &ended {
                tracing::warn!(error = %e, "PostgreSQL connection ended");
            }
            ended
        });
        Ok((client, handle))
    }
}

/// Connects to `url` with [`Connector::new`]: TLS as its `sslmode` says (the default is
/// `prefer`, as in libpq), the CA from its `sslrootcert` or the system's roots. See
/// [`tls`](crate::tls).
pub async fn connect(
    url: &str,
) -> Result<(Client, JoinHandle<Result<(), tokio_postgres::Error>>), OutboxError> {
    Connector::new().connect(url).await
}

fn connection(reason: String) -> OutboxError {
    OutboxError::Connection { reason }
}

/// An error with its causes, `a: b: c`: tokio-postgres shows only the first ("db error",
/// "error performing TLS handshake"), the server's or the handshake's reason is in the causes.
/// None of them carries the URL or the password (tokio-postgres never puts them in errors).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let shown = cause.to_string();
        if !out.ends_with(&shown) {
            out.push_str(": ");
            out.push_str(&shown);
        }
        next = cause.source();
    }
    out
}

fn parse_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, OutboxError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| connection(format!("{what}: not PEM certificates ({e})")))?;
    if certs.is_empty() {
        return Err(connection(format!("{what}: no certificate in it")));
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A [`MakeTlsConnect`] for tokio-postgres over rustls, for a given [`SslMode`]: what
/// [`Connector`] hands to `tokio_postgres::Config::connect`. Set the config's own ssl mode to
/// match (`disable`, `prefer`, else `require`).
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MakeRustls").finish_non_exhaustive()
    }
}

impl MakeRustls {
    /// A connector for `mode`, trusting `roots` when given, else the system's roots
    /// (`verify-ca` and `verify-full` only; `prefer` and `require` without roots check
    /// nothing).
    pub fn new(
        mode: SslMode,
        roots: Option<&[CertificateDer<'static>]>,
    ) -> Result<MakeRustls, OutboxError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| connection(format!("TLS: {e}")))?;
        let store =
            |roots: Option<&[CertificateDer<'static>]>| -> Result<RootCertStore, OutboxError> {
                let mut store = RootCertStore::empty();
                match roots {
                    Some(roots) => {
                        for cert in roots {
                            store
                                .add(cert.clone())
                                .map_err(|e| connection(format!("a root certificate: {e}")))?;
                        }
                    }
                    None => {
                        let found = rustls_native_certs::load_native_certs();
                        for cert in found.certs {
                            // A system root rustls cannot use is skipped, as browsers do.
                            let _ = store.add(cert);
                        }
                    }
                }
                if store.is_empty() {
                    return Err(connection(
                    "no root certificates to check the server's with: give sslrootcert=/path/to/ca.pem"
                        .to_owned(),
                ));
                }
                Ok(store)
            };
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
                Arc::new(NoCheck(provider))
            }
            (SslMode::Require | SslMode::VerifyCa, roots) => {
                Arc::new(ChainOnly(webpki(store(roots)?, &provider)?))
            }
            (SslMode::VerifyFull, roots) => webpki(store(roots)?, &provider)?,
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustls {
            config: Arc::new(config),
        })
    }
}

fn webpki(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, OutboxError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| connection(format!("TLS: {e}")))
}

/// `require` without a CA (and `prefer`): the handshake's signatures are checked (the
/// session is with whoever holds the certificate's key), the certificate is not.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: webpki's check, except that a certificate valid for another name passes
/// (webpki checks the name only after the chain, so that error means the chain is good).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        let name = ServerName::try_from(domain.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the host is not a valid TLS server name",
            )
        })?;
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
        })
    }
}

/// One TLS handshake to come (tokio-postgres's [`TlsConnect`]).
pub struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl fmt::Debug for RustlsConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustlsConnect")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream<S>, io::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, stream).await?;
            Ok(TlsStream(stream))
        })
    }
}

/// A TLS stream to PostgreSQL.
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// The URL with its `sslmode` and `sslrootcert` taken out (tokio-postgres knows neither
/// `verify-*` nor `sslrootcert`).
#[derive(Debug)]
struct Split {
    rest: String,
    mode: Option<String>,
    rootcert: Option<String>,
}

const OURS: [&str; 2] = ["sslmode", "sslrootcert"];

fn split_ssl(url: &str) -> Result<Split, OutboxError> {
    let mut out = Split {
        rest: String::new(),
        mode: None,
        rootcert: None,
    };
    let mut take = |key: &str, value: String| match key {
        "sslmode" => out.mode = Some(value),
        _ => out.rootcert = Some(value),
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            out.rest = url.to_owned();
            return Ok(out);
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key_plain = decode(key)?;
            if OURS.contains(&key_plain.as_str()) {
                take(&key_plain, decode(value)?);
            } else {
                kept.push(pair);
            }
        }
        out.rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok(out);
    }
    // libpq's `key=value key='quoted \' value'` form.
    let mut rest = String::with_capacity(url.len());
    let mut chars = url.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(connection(
                "the connection string is neither a postgres:// URL nor key=value pairs".to_owned(),
            ));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        let mut closed = !quoted;
        while let Some((_, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        value.push(next);
                    }
                }
                '\'' if quoted => {
                    closed = true;
                    break;
                }
                c if !quoted && c.is_whitespace() => break,
                c => value.push(c),
            }
        }
        if !closed {
            return Err(connection(
                "the connection string has an unclosed quote".to_owned(),
            ));
        }
        let end = chars.peek().map_or(url.len(), |(i, _)| *i);
        if OURS.contains(&key.as_str()) {
            take(&key, value);
        } else {
            rest.push_str(url.get(start..end).unwrap_or_default().trim_end());
            rest.push(' ');
        }
    }
    out.rest = rest.trim_end().to_owned();
    Ok(out)
}

/// Percent-decodes a URL query part (`+` stays `+`, as tokio-postgres reads it).
fn decode(s: &str) -> Result<String, OutboxError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| connection("a bad %-escape in the URL's options".to_owned()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| connection("the URL's options are not UTF-8".to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_url_loses_its_sslmode_and_sslrootcert_and_keeps_the_rest() {
        let s = split_ssl(
            "postgres://u:p%3Fw@h:5432/db?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            s.rest,
            "postgres://u:p%3Fw@h:5432/db?connect_timeout=5&application_name=x"
        );
        assert_eq!(s.mode.as_deref(), Some("verify-full"));
        assert_eq!(s.rootcert.as_deref(), Some("/tmp/ca.pem"));
        let s = split_ssl("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!(s.rest, "postgresql://h/db");
        assert_eq!(s.mode.as_deref(), Some("require"));
        let s = split_ssl("postgres://h/db").unwrap();
        assert_eq!((s.rest.as_str(), s.mode), ("postgres://h/db", None));
    }

    #[test]
    fn key_value_pairs_lose_their_sslmode_and_keep_quoted_values() {
        let s = split_ssl(
            "host=h sslmode = verify-ca password='a b\\'c' sslrootcert='/tmp/my ca.pem' dbname=d",
        )
        .unwrap();
        assert_eq!(s.rest, "host=h password='a b\\'c' dbname=d");
        assert_eq!(s.mode.as_deref(), Some("verify-ca"));
        assert_eq!(s.rootcert.as_deref(), Some("/tmp/my ca.pem"));
        assert!(split_ssl("host=h password='open").is_err());
    }

    #[test]
    fn an_unknown_sslmode_is_refused_without_echoing_the_url() {
        let e = SslMode::parse("allow").unwrap_err().to_string();
        assert!(e.contains("allow"), "{e}");
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            assert_eq!(SslMode::parse(mode).unwrap().as_str(), mode);
        }
    }
}
