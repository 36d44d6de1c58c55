//! What a user sets: credentials, environment, locale, default client IP, timeouts, and (for
//! tests) the random-key and clock sources.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use refund_core::http::{HttpSettings, base_url};
use refund_core::{Capabilities, RefundError};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::NAME;

/// A named iyzico environment.
///
/// ```
/// use refund_iyzico::Environment;
///
/// assert_eq!(Environment::Sandbox.base_url(), "https://sandbox-api.iyzipay.com");
/// assert_eq!("production".parse::<Environment>()?, Environment::Production);
/// assert!(Environment::Production.is_production());
/// # Ok::<(), refund_core::RefundError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Environment {
    /// `https://sandbox-api.iyzipay.com`: test credentials, no money moves.
    Sandbox,
    /// `https://api.iyzipay.com`: live.
    Production,
}

impl Environment {
    /// Every environment.
    pub const ALL: &'static [Environment] = &[Environment::Sandbox, Environment::Production];

    /// The environment's base URL.
    pub const fn base_url(self) -> &'static str {
        match self {
            Environment::Sandbox => "https://sandbox-api.iyzipay.com",
            Environment::Production => "https://api.iyzipay.com",
        }
    }

    /// The environment's name, as [`FromStr`] accepts it: `sandbox` or `production`.
    pub const fn name(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }

    /// Whether real money moves there.
    pub const fn is_production(self) -> bool {
        matches!(self, Environment::Production)
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Environment {
    type Err = RefundError;

    /// Parses `sandbox` or `production` (`iyzico-sandbox`, `iyzico-production` also work),
    /// case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let s = s.strip_prefix("iyzico-").unwrap_or(&s);
        Environment::ALL
            .iter()
            .copied()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                RefundError::configuration(
                    NAME,
                    format!(
                        "unknown environment {}; expected sandbox or production",
                        shown_value(s, |b| b.is_ascii_lowercase())
                    ),
                )
            })
    }
}

/// The language of iyzico's messages (`locale` in every request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Locale {
    /// Turkish, iyzico's default.
    #[default]
    Tr,
    /// English.
    En,
}

impl Locale {
    /// The wire value: `tr` or `en`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Locale::Tr => "tr",
            Locale::En => "en",
        }
    }
}

/// Produces the random key of each request (`x-iyzi-rnd`, signed into the header).
pub type RandomKeySource = Arc<dyn Fn() -> String + Send + Sync>;

/// The current time, for the default random key.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Configuration of an [`Iyzico`](crate::Iyzico) client.
///
/// ```
/// use std::time::Duration;
/// use refund_iyzico::{Environment, IyzicoConfig};
///
/// let config = IyzicoConfig::new("sandbox-api-key", "sandbox-secret-key")
///     .with_environment(Environment::Sandbox)
///     .with_timeout(Duration::from_secs(20))
///     .with_default_ip("85.34.78.112".parse()?);
/// assert!(!format!("{config:?}").contains("sandbox-secret-key"));
///
/// // A simulator on loopback may use plain http; anything else must be https.
/// assert!(config.clone().with_base_url("http://127.0.0.1:8080").is_ok());
/// assert!(config.with_base_url("http://example.com").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct IyzicoConfig {
    pub(crate) api_key: SecretString,
    pub(crate) secret_key: SecretString,
    pub(crate) base: Base,
    pub(crate) locale: Locale,
    pub(crate) default_ip: Option<IpAddr>,
    pub(crate) http: HttpSettings,
    pub(crate) settle_time: Duration,
    pub(crate) random_key: Option<RandomKeySource>,
    pub(crate) clock: Option<Clock>,
    pub(crate) client: Option<reqwest::Client>,
}

impl IyzicoConfig {
    /// Credentials for the sandbox, Turkish messages, no client IP (set one with
    /// [`with_default_ip`](Self::with_default_ip), or give each request its own
    /// `extra("ip", …)`; only a loopback base URL, a simulator, gets `127.0.0.1` without
    /// one), 30 s timeout, the default settle time ([`Capabilities::DEFAULT_SETTLE_TIME`]).
    pub fn new(api_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        IyzicoConfig {
            api_key: SecretString::from(api_key.into()),
            secret_key: SecretString::from(secret_key.into()),
            base: Base::Environment(Environment::Sandbox),
            locale: Locale::Tr,
            default_ip: None,
            http: HttpSettings::default(),
            settle_time: Capabilities::DEFAULT_SETTLE_TIME,
            random_key: None,
            clock: None,
            client: None,
        }
    }

    /// Reads `IYZICO_API_KEY`, `IYZICO_SECRET_KEY` and, optionally, `IYZICO_BASE_URL` (a URL,
    /// or `sandbox` / `production`; default: [`Environment::Sandbox`]) and `IYZICO_IP` (the
    /// address refunds are sent from, [`with_default_ip`](Self::with_default_ip); required for
    /// a refund or cancel to any non-loopback host unless each request carries its own).
    pub fn from_env() -> Result<Self, RefundError> {
        IyzicoConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any lookup function (a config file, a secret store,
    /// a test's map).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use refund_iyzico::IyzicoConfig;
    ///
    /// let vars = HashMap::from([
    ///     ("IYZICO_API_KEY", "key"),
    ///     ("IYZICO_SECRET_KEY", "secret"),
    ///     ("IYZICO_BASE_URL", "production"),
    ///     ("IYZICO_IP", "85.34.78.112"),
    /// ]);
    /// let config = IyzicoConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string()))?;
    /// assert_eq!(config.base_url(), "https://api.iyzipay.com");
    /// assert_eq!(config.default_ip(), Some("85.34.78.112".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, RefundError> {
        let required = |name: &str| match lookup(name) {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
            _ => Err(RefundError::configuration(
                NAME,
                format!("environment variable {name} is not set"),
            )),
        };
        let mut config =
            IyzicoConfig::new(required("IYZICO_API_KEY")?, required("IYZICO_SECRET_KEY")?);
        if let Some(ip) = lookup("IYZICO_IP").filter(|v| !v.trim().is_empty()) {
            let ip = ip.trim().parse::<IpAddr>().map_err(|_| {
                RefundError::configuration(
                    NAME,
                    format!(
                        "IYZICO_IP {} is not an IP address",
                        shown_value(ip.trim(), |b| b.is_ascii_hexdigit()
                            || b == b'.'
                            || b == b':')
                    ),
                )
            })?;
            config = config.with_default_ip(ip);
        }
        match lookup("IYZICO_BASE_URL") {
            Some(v) if v.contains("://") => config.with_base_url(&v),
            Some(v) if !v.trim().is_empty() => Ok(config.with_environment(v.parse()?)),
            _ => Ok(config),
        }
    }

    /// Uses a named environment's base URL.
    #[must_use]
    pub fn with_environment(mut self, environment: Environment) -> Self {
        self.base = Base::Environment(environment);
        self
    }

    /// Uses another base URL: `https://…`, or `http://…` on a loopback host (a simulator).
    pub fn with_base_url(mut self, url: &str) -> Result<Self, RefundError> {
        self.base = Base::Url(base_url(NAME, url)?);
        Ok(self)
    }

    /// Sets the language of iyzico's messages.
    #[must_use]
    pub fn with_locale(mut self, locale: Locale) -> Self {
        self.locale = locale;
        self
    }

    /// Sets the `ip` sent when a request has no `extra("ip", …)`: the address the refund is
    /// sent from, which iyzico makes mandatory ("İşlemin gönderildiği ip adresi",
    /// `seeds/iyzico-refund-tr.md`). Without it a refund or cancel to a non-loopback host is
    /// refused before sending (`RefundError::Configuration`).
    #[must_use]
    pub fn with_default_ip(mut self, ip: IpAddr) -> Self {
        self.default_ip = Some(ip);
        self
    }

    /// The whole-request timeout (default 30 s). A refund that times out is outcome-unknown.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.with_timeout(timeout);
        self
    }

    /// The connect timeout (default 10 s). A connect timeout means nothing was sent.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.with_connect_timeout(timeout);
        self
    }

    /// Sets how long after a refund attempt the reporting lookup may still not show it
    /// (reported as [`Capabilities::settle_time`]; reconciliation treats "not found" as proof
    /// only after it). The default, [`Capabilities::DEFAULT_SETTLE_TIME`] (15 minutes), is an
    /// assumption: iyzico documents no reporting lag.
    ///
    /// ```
    /// use std::time::Duration;
    /// use refund_core::RefundProvider;
    /// use refund_iyzico::{Iyzico, IyzicoConfig};
    ///
    /// let config = IyzicoConfig::new("k", "s").with_settle_time(Duration::from_secs(3600));
    /// let iyzico = Iyzico::new(config)?;
    /// assert_eq!(iyzico.capabilities().settle_time, Duration::from_secs(3600));
    /// assert!(!iyzico.capabilities().deduplicates_references);
    /// # Ok::<(), refund_core::RefundError>(())
    /// ```
    #[must_use]
    pub fn with_settle_time(mut self, settle_time: Duration) -> Self {
        self.settle_time = settle_time;
        self
    }

    /// The settle time (see [`with_settle_time`](Self::with_settle_time)).
    pub fn settle_time(&self) -> Duration {
        self.settle_time
    }

    /// Replaces all transport settings (timeouts, response size cap).
    #[must_use]
    pub fn with_http_settings(mut self, settings: HttpSettings) -> Self {
        self.http = settings;
        self
    }

    /// Sends through this `reqwest::Client` instead of building one, to share a connection
    /// pool or a TLS setup. Its own timeouts and redirect policy then apply (build it with
    /// [`refund_core::http::build_client`] to keep redirects off); the response size cap
    /// from [`with_http_settings`](Self::with_http_settings) still does.
    ///
    /// ```
    /// use refund_core::http::{HttpSettings, build_client};
    /// use refund_iyzico::{Iyzico, IyzicoConfig};
    ///
    /// let shared = build_client("my-app", &HttpSettings::default())?;
    /// let iyzico = Iyzico::new(IyzicoConfig::new("k", "s").with_http_client(shared.clone()))?;
    /// # Ok::<(), refund_core::RefundError>(())
    /// ```
    #[must_use]
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Replaces the random-key source (for deterministic tests). The default is the clock's
    /// Unix seconds followed by 16 digits from the OS RNG, like the node SDK's
    /// seconds-plus-random-digits.
    #[must_use]
    pub fn with_random_key(mut self, source: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.random_key = Some(Arc::new(source));
        self
    }

    /// Replaces the clock used by the default random-key source.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The named environment, when the base URL is one's.
    pub fn environment(&self) -> Option<Environment> {
        match &self.base {
            Base::Environment(e) => Some(*e),
            Base::Url(u) => Environment::ALL
                .iter()
                .copied()
                .find(|e| u.as_str().trim_end_matches('/') == e.base_url()),
        }
    }

    /// The base URL, as text.
    pub fn base_url(&self) -> &str {
        match &self.base {
            Base::Environment(e) => e.base_url(),
            Base::Url(u) => u.as_str(),
        }
    }

    /// The base URL, parsed and checked.
    pub(crate) fn resolved_base_url(&self) -> Result<Url, RefundError> {
        match &self.base {
            Base::Environment(e) => base_url(NAME, e.base_url()),
            Base::Url(u) => Ok(u.clone()),
        }
    }

    /// The locale.
    pub fn locale(&self) -> Locale {
        self.locale
    }

    /// The default client IP, when one is configured.
    pub fn default_ip(&self) -> Option<IpAddr> {
        self.default_ip
    }

    /// The transport settings.
    pub fn http_settings(&self) -> &HttpSettings {
        &self.http
    }

    /// Checks the credentials are usable (non-empty, no control characters or spaces).
    pub(crate) fn validate(&self) -> Result<(), RefundError> {
        for (name, value) in [
            ("api key", self.api_key.expose_secret()),
            ("secret key", self.secret_key.expose_secret()),
        ] {
            if value.is_empty() {
                return Err(RefundError::configuration(
                    NAME,
                    format!("the {name} is empty"),
                ));
            }
            if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(RefundError::configuration(
                    NAME,
                    format!("the {name} contains spaces or control characters"),
                ));
            }
        }
        Ok(())
    }

    /// A fresh random key from the configured source.
    pub(crate) fn next_random_key(&self) -> String {
        if let Some(source) = &self.random_key {
            return source();
        }
        let now = self.clock.as_ref().map_or_else(SystemTime::now, |c| c());
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut n = getrandom::u64().unwrap_or_else(|_| fallback_entropy());
        let mut key = secs.to_string();
        for _ in 0..16 {
            key.push(char::from(b'0' + (n % 10) as u8));
            n /= 10;
        }
        key
    }
}

/// Where the client sends requests.
#[derive(Clone, Debug)]
pub(crate) enum Base {
    Environment(Environment),
    Url(Url),
}

fn fallback_entropy() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) ^ u64::from(nanos)
}

impl fmt::Debug for IyzicoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IyzicoConfig")
            .field("api_key", &"[REDACTED]")
            .field("secret_key", &"[REDACTED]")
            .field("base_url", &self.base_url())
            .field("locale", &self.locale)
            .field("default_ip", &self.default_ip)
            .field("http", &self.http)
            .field("settle_time", &self.settle_time)
            .field("random_key", &self.random_key.as_ref().map(|_| "custom"))
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .field("shared_client", &self.client.is_some())
            .finish()
    }
}

/// A configuration value as an error may show it: quoted when it is provably not a secret
/// (at most 40 bytes, each one `allowed`: a word of lowercase letters that begins like
/// `sandbox` or `production`, as a mistyped preset name does, or something with `.` or `:` in
/// it, as an IP address has), else only
/// its shape. `IYZICO_BASE_URL=http//user:pw@host` must not print `pw`.
fn shown_value(s: &str, allowed: impl Fn(u8) -> bool) -> String {
    let letters = s.bytes().all(|b| b.is_ascii_lowercase());
    let like_a_name = ["san", "pro"].iter().any(|p| s.starts_with(p));
    let like_an_address = s.contains(['.', ':']);
    let provable = if letters {
        like_a_name
    } else {
        like_an_address
    };
    if !s.is_empty() && s.len() <= 40 && s.bytes().all(allowed) && provable {
        return format!("{s:?}");
    }
    let hint = if s.contains(['/', ':', '@', '.']) {
        ", which looks like a URL without `://`"
    } else {
        ""
    };
    format!(
        "(a value of {} characters, not shown as it may hold a secret{hint})",
        s.chars().count()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_have_the_documented_hosts() {
        let c = IyzicoConfig::new("k", "s");
        assert_eq!(c.base_url(), "https://sandbox-api.iyzipay.com");
        assert!(c.resolved_base_url().is_ok());
        let c = c.with_environment(Environment::Production);
        assert_eq!(c.base_url(), "https://api.iyzipay.com");
        assert_eq!(
            c.resolved_base_url().unwrap().as_str(),
            "https://api.iyzipay.com/"
        );
    }

    #[test]
    fn environments_round_trip_by_name_and_are_recognised_by_url() {
        for e in Environment::ALL {
            assert_eq!(e.name().parse::<Environment>().unwrap(), *e);
            let c = IyzicoConfig::new("k", "s")
                .with_base_url(e.base_url())
                .unwrap();
            assert_eq!(c.environment(), Some(*e));
        }
        assert_eq!(
            "IYZICO_PRODUCTION".parse::<Environment>().unwrap(),
            Environment::Production
        );
        assert!("staging".parse::<Environment>().is_err());
        let local = IyzicoConfig::new("k", "s")
            .with_base_url("http://127.0.0.1:1")
            .unwrap();
        assert_eq!(local.environment(), None);
    }

    #[test]
    fn a_malformed_base_url_or_ip_is_never_echoed_with_its_credentials() {
        for (var, bad) in [
            ("IYZICO_BASE_URL", "http//user:pw-Secret9@host"),
            ("IYZICO_BASE_URL", "https//user:pw-Secret9@host/"),
            ("IYZICO_BASE_URL", "pw-Secret9"),
            ("IYZICO_IP", "user:pw-Secret9"),
        ] {
            let err = IyzicoConfig::from_lookup(|k| match k {
                k if k == var => Some(bad.to_owned()),
                "IYZICO_API_KEY" | "IYZICO_SECRET_KEY" => Some("v".to_owned()),
                _ => None,
            })
            .unwrap_err()
            .to_string();
            assert!(!err.contains("Secret9"), "{err}");
            assert!(!err.contains("user"), "{err}");
            assert!(err.contains("not shown"), "{err}");
        }
        let typo = "prodution".parse::<Environment>().unwrap_err().to_string();
        assert!(typo.contains("\"prodution\""), "{typo}");
    }

    #[test]
    fn from_lookup_requires_the_credentials_and_names_the_missing_variable() {
        let e =
            IyzicoConfig::from_lookup(|k| (k == "IYZICO_API_KEY").then(|| "x".into())).unwrap_err();
        assert!(e.to_string().contains("IYZICO_SECRET_KEY"), "{e}");
        let local = IyzicoConfig::from_lookup(|k| match k {
            "IYZICO_BASE_URL" => Some("http://localhost:9".into()),
            "IYZICO_IP" => None,
            _ => Some(format!("v-{k}")),
        })
        .unwrap();
        assert_eq!(local.base_url(), "http://localhost:9/");
        let default =
            IyzicoConfig::from_lookup(|k| k.ends_with("_KEY").then(|| "v".to_owned())).unwrap();
        assert_eq!(default.environment(), Some(Environment::Sandbox));
        assert!(
            IyzicoConfig::from_lookup(|k| Some(
                if k == "IYZICO_BASE_URL" { "live" } else { "v" }.into()
            ))
            .is_err()
        );
    }

    #[test]
    fn iyzico_ip_is_read_and_a_bad_one_is_a_configuration_error() {
        let vars = |ip: &'static str| {
            move |k: &str| match k {
                "IYZICO_IP" => Some(ip.to_owned()),
                "IYZICO_BASE_URL" => None,
                _ => Some("v".to_owned()),
            }
        };
        let c = IyzicoConfig::from_lookup(vars(" 85.34.78.112 ")).unwrap();
        assert_eq!(c.default_ip(), Some(IpAddr::from([85, 34, 78, 112])));
        assert_eq!(
            IyzicoConfig::from_lookup(vars("")).unwrap().default_ip(),
            None
        );
        let e = IyzicoConfig::from_lookup(vars("not-an-ip")).unwrap_err();
        assert!(matches!(e, RefundError::Configuration { .. }), "{e}");
        assert!(e.to_string().contains("IYZICO_IP"), "{e}");
        assert_eq!(IyzicoConfig::new("k", "s").default_ip(), None);
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        let c = IyzicoConfig::new("k", "s");
        assert!(c.clone().with_base_url("http://127.0.0.1:1").is_ok());
        assert!(c.clone().with_base_url("http://localhost:1").is_ok());
        assert!(c.clone().with_base_url("http://api.iyzipay.com").is_err());
        assert!(c.with_base_url("https://api.iyzipay.com").is_ok());
    }

    #[test]
    fn debug_never_shows_credentials() {
        let c =
            IyzicoConfig::new("my-api-key-123", "my-secret-key-456").with_random_key(|| "r".into());
        let text = format!("{c:?}");
        assert!(!text.contains("my-api-key-123"), "{text}");
        assert!(!text.contains("my-secret-key-456"), "{text}");
        assert!(text.contains("[REDACTED]"));
    }

    #[test]
    fn empty_or_spaced_credentials_are_configuration_errors() {
        for (k, s) in [("", "s"), ("k", ""), ("k k", "s"), ("k", "s\n")] {
            let e = IyzicoConfig::new(k, s).validate().unwrap_err();
            assert!(matches!(e, RefundError::Configuration { .. }));
            assert!(!e.to_string().contains("s\n"));
        }
    }

    #[test]
    fn the_default_random_key_is_clock_seconds_plus_sixteen_digits() {
        let c = IyzicoConfig::new("k", "s")
            .with_clock(|| UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let a = c.next_random_key();
        let b = c.next_random_key();
        assert!(a.starts_with("1700000000"), "{a}");
        assert_eq!(a.len(), 26);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(a, b);
        let fixed = c.with_random_key(|| "123456789".into());
        assert_eq!(fixed.next_random_key(), "123456789");
    }
}
