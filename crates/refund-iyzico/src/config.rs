//! What a user sets: credentials, environment, locale, default client IP, timeouts, and (for
//! tests) the random-key and clock sources.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use refund_core::http::{HttpSettings, base_url};
use refund_core::{Capabilities, RefundError};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::NAME;

/// A named iyzico environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Environment {
    /// `https://sandbox-api.iyzipay.com`: test credentials, no money moves.
    Sandbox,
    /// `https://api.iyzipay.com`: live.
    Production,
}

impl Environment {
    /// The environment's base URL.
    pub const fn base_url(self) -> &'static str {
        match self {
            Environment::Sandbox => "https://sandbox-api.iyzipay.com",
            Environment::Production => "https://api.iyzipay.com",
        }
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
    pub(crate) default_ip: IpAddr,
    pub(crate) http: HttpSettings,
    pub(crate) settle_time: Duration,
    pub(crate) random_key: Option<RandomKeySource>,
    pub(crate) clock: Option<Clock>,
}

impl IyzicoConfig {
    /// Credentials for the sandbox, Turkish messages, client IP `127.0.0.1` unless a request
    /// carries its own (`extra("ip", …)`), 30 s timeout, the default settle time
    /// ([`Capabilities::DEFAULT_SETTLE_TIME`]).
    pub fn new(api_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        IyzicoConfig {
            api_key: SecretString::from(api_key.into()),
            secret_key: SecretString::from(secret_key.into()),
            base: Base::Environment(Environment::Sandbox),
            locale: Locale::Tr,
            default_ip: IpAddr::from([127, 0, 0, 1]),
            http: HttpSettings::default(),
            settle_time: Capabilities::DEFAULT_SETTLE_TIME,
            random_key: None,
            clock: None,
        }
    }

    /// From `IYZICO_API_KEY`, `IYZICO_SECRET_KEY` and optionally `IYZICO_BASE_URL` (a URL, or
    /// `sandbox` / `production`; the sandbox when unset).
    pub fn from_env() -> Result<Self, RefundError> {
        let var = |name: &'static str| -> Result<Option<String>, RefundError> {
            match std::env::var(name) {
                Ok(v) if v.trim().is_empty() => Ok(None),
                Ok(v) => Ok(Some(v)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => Err(RefundError::configuration(
                    NAME,
                    format!("{name} is not valid UTF-8"),
                )),
            }
        };
        let required = |name: &'static str| -> Result<String, RefundError> {
            var(name)?.ok_or_else(|| RefundError::configuration(NAME, format!("{name} is not set")))
        };
        let config = IyzicoConfig::new(required("IYZICO_API_KEY")?, required("IYZICO_SECRET_KEY")?);
        match var("IYZICO_BASE_URL")?.as_deref().map(str::trim) {
            None => Ok(config),
            Some(s) if s.eq_ignore_ascii_case("sandbox") => {
                Ok(config.with_environment(Environment::Sandbox))
            }
            Some(s) if s.eq_ignore_ascii_case("production") => {
                Ok(config.with_environment(Environment::Production))
            }
            Some(url) => config.with_base_url(url),
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

    /// Sets the `ip` sent when a request has no `extra("ip", …)`.
    #[must_use]
    pub fn with_default_ip(mut self, ip: IpAddr) -> Self {
        self.default_ip = ip;
        self
    }

    /// Sets the whole-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.with_timeout(timeout);
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

    /// The default client IP.
    pub fn default_ip(&self) -> IpAddr {
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
            .finish()
    }
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
