//! What a user sets: credentials, where the API lives, timeouts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use refund_core::http::{self, HttpSettings};
use refund_core::{Capabilities, RefundError};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::NAME;

/// SiPay documents a token lifetime of two hours.
pub const DOCUMENTED_TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);

/// How long a token is reused by default: 110 minutes from when it was fetched, ten minutes
/// short of the documented two hours (measured on our clock, so the unstated timezone of the
/// response's `expires_at` does not matter).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(110 * 60);

/// Where a SiPay-platform API lives: SiPay's own hosts, and the white-label platforms that
/// serve the very same `/ccpayment/api` (token flow, paths, hash_key) under another brand.
///
/// Only the base URL differs between them. **None of these hosts was tested live by this
/// crate**: every test runs against wiremock or the test kit's simulator; the white-label hosts
/// come from public merchant integrations that use them with the same code (see
/// `docs/providers/sipay.md`). Use [`SipayConfig::with_base_url`] for any other host.
///
/// ```
/// use refund_sipay::Environment;
///
/// assert_eq!(Environment::Sandbox.base_url(), "https://provisioning.sipay.com.tr");
/// assert_eq!("qnbpay-sandbox".parse::<Environment>()?, Environment::QnbpaySandbox);
/// assert!(Environment::Production.is_production());
/// # Ok::<(), refund_core::RefundError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Environment {
    /// SiPay's test environment, `https://provisioning.sipay.com.tr` (from SiPay's
    /// documentation; not tested against the live host).
    Sandbox,
    /// SiPay production, `https://app.sipay.com.tr` (not tested against the live host).
    Production,
    /// QNBpay sandbox, `https://test.qnbpay.com.tr` (not tested against the live host).
    QnbpaySandbox,
    /// QNBpay production, `https://portal.qnbpay.com.tr` (not tested against the live host).
    QnbpayProduction,
    /// Halkode sandbox, `https://testapp.halkode.com.tr` (not tested against the live host).
    HalkodeSandbox,
    /// Halkode production, `https://app.halkode.com.tr` (not tested against the live host).
    HalkodeProduction,
    /// Vepara sandbox, `https://test.vepara.com.tr` (not tested against the live host).
    VeparaSandbox,
    /// Paybull sandbox, `https://test.paybull.com` (not tested against the live host).
    PaybullSandbox,
    /// Paybull production, `https://app.paybull.com` (not tested against the live host).
    PaybullProduction,
    /// Platformode sandbox, `https://testapp.platformode.com.tr` (not tested against the live
    /// host).
    PlatformodeSandbox,
}

impl Environment {
    /// Every preset.
    pub const ALL: &'static [Environment] = &[
        Environment::Sandbox,
        Environment::Production,
        Environment::QnbpaySandbox,
        Environment::QnbpayProduction,
        Environment::HalkodeSandbox,
        Environment::HalkodeProduction,
        Environment::VeparaSandbox,
        Environment::PaybullSandbox,
        Environment::PaybullProduction,
        Environment::PlatformodeSandbox,
    ];

    /// The base URL (no trailing slash); API paths start with `/ccpayment/api`.
    pub const fn base_url(self) -> &'static str {
        match self {
            Environment::Sandbox => "https://provisioning.sipay.com.tr",
            Environment::Production => "https://app.sipay.com.tr",
            Environment::QnbpaySandbox => "https://test.qnbpay.com.tr",
            Environment::QnbpayProduction => "https://portal.qnbpay.com.tr",
            Environment::HalkodeSandbox => "https://testapp.halkode.com.tr",
            Environment::HalkodeProduction => "https://app.halkode.com.tr",
            Environment::VeparaSandbox => "https://test.vepara.com.tr",
            Environment::PaybullSandbox => "https://test.paybull.com",
            Environment::PaybullProduction => "https://app.paybull.com",
            Environment::PlatformodeSandbox => "https://testapp.platformode.com.tr",
        }
    }

    /// The preset's name, as [`FromStr`] accepts it: `sandbox`, `production`,
    /// `qnbpay-sandbox`, …
    pub const fn name(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
            Environment::QnbpaySandbox => "qnbpay-sandbox",
            Environment::QnbpayProduction => "qnbpay-production",
            Environment::HalkodeSandbox => "halkode-sandbox",
            Environment::HalkodeProduction => "halkode-production",
            Environment::VeparaSandbox => "vepara-sandbox",
            Environment::PaybullSandbox => "paybull-sandbox",
            Environment::PaybullProduction => "paybull-production",
            Environment::PlatformodeSandbox => "platformode-sandbox",
        }
    }

    /// Whether real money moves there.
    pub const fn is_production(self) -> bool {
        matches!(
            self,
            Environment::Production
                | Environment::QnbpayProduction
                | Environment::HalkodeProduction
                | Environment::PaybullProduction
        )
    }

    /// Whether this crate was tested against the live host. False for every preset: the
    /// tests run against wiremock and the test kit's simulator only.
    pub const fn tested_against_live_host(self) -> bool {
        false
    }

    /// The refund body field that names the refund webhook key
    /// ([`SipayConfig::with_refund_webhook_key`]): `refund_webhook_key` on Paybull, whose
    /// refund and webhook pages spell it so, `refund_web_hook_key` everywhere else (SiPay's
    /// refund page and official PHP SDK). The other white-label brands publish no refund page
    /// of their own; SiPay's spelling is **assumed** for them.
    ///
    /// ```
    /// use refund_sipay::Environment;
    ///
    /// assert_eq!(Environment::Production.refund_webhook_field(), "refund_web_hook_key");
    /// assert_eq!(Environment::PaybullSandbox.refund_webhook_field(), "refund_webhook_key");
    /// ```
    pub const fn refund_webhook_field(self) -> &'static str {
        match self {
            Environment::PaybullSandbox | Environment::PaybullProduction => {
                REFUND_WEBHOOK_FIELD_PAYBULL
            }
            _ => REFUND_WEBHOOK_FIELD,
        }
    }
}

/// SiPay's name for the refund webhook key field of a refund body.
pub(crate) const REFUND_WEBHOOK_FIELD: &str = "refund_web_hook_key";
/// Paybull's name for it.
pub(crate) const REFUND_WEBHOOK_FIELD_PAYBULL: &str = "refund_webhook_key";

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Environment {
    type Err = RefundError;

    /// Parses a preset name (`sandbox`, `production`, `qnbpay-sandbox`, …; `sipay-sandbox`
    /// and `sipay-production` also work), case-insensitively. SiPay's own word `test` is
    /// accepted for `sandbox` (`test`, `qnbpay-test`, …), as 0.1 spelled it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let s = s.strip_prefix("sipay-").unwrap_or(&s);
        let wanted = match s.strip_suffix("test") {
            Some(brand) if brand.is_empty() || brand.ends_with('-') => format!("{brand}sandbox"),
            _ => s.to_owned(),
        };
        Environment::ALL
            .iter()
            .copied()
            .find(|e| e.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Environment::ALL.iter().map(|e| e.name()).collect();
                RefundError::configuration(
                    NAME,
                    format!(
                        "unknown environment {}; expected one of {}",
                        shown_name(s),
                        names.join(", ")
                    ),
                )
            })
    }
}

/// Everything a [`Sipay`](crate::Sipay) client needs.
///
/// `app_secret` and `merchant_key` are [`SecretString`]s: exposed only where a request is
/// signed or sent, never printed (`Debug` shows `[REDACTED]`; the `app_id` is shown by its
/// first four characters only).
///
/// ```
/// use std::time::Duration;
/// use refund_sipay::{Environment, SipayConfig};
///
/// let config = SipayConfig::new("app-id", "app-secret", "merchant-key")
///     .with_environment(Environment::Sandbox)
///     .with_timeout(Duration::from_secs(20));
/// assert_eq!(config.base_url(), "https://provisioning.sipay.com.tr");
/// assert!(!format!("{config:?}").contains("app-secret"));
///
/// // Plain http only for loopback (simulators).
/// assert!(config.clone().with_base_url("http://127.0.0.1:8080").is_ok());
/// assert!(config.with_base_url("http://sipay.example").is_err());
/// ```
#[derive(Clone)]
pub struct SipayConfig {
    pub(crate) app_id: String,
    pub(crate) app_secret: SecretString,
    pub(crate) merchant_key: SecretString,
    pub(crate) base_url: String,
    pub(crate) environment: Option<Environment>,
    pub(crate) http: HttpSettings,
    pub(crate) token_lifetime: Duration,
    pub(crate) settle_time: Duration,
    pub(crate) client: Option<reqwest::Client>,
    pub(crate) refund_webhook_key: Option<String>,
    pub(crate) refund_spacing: Duration,
}

impl fmt::Debug for SipayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipayConfig")
            .field("app_id", &masked(&self.app_id))
            .field("app_secret", &"[REDACTED]")
            .field("merchant_key", &"[REDACTED]")
            .field("base_url", &self.base_url)
            .field("environment", &self.environment)
            .field("http", &self.http)
            .field("token_lifetime", &self.token_lifetime)
            .field("settle_time", &self.settle_time)
            .field("refund_webhook_key", &self.refund_webhook_key)
            .field("refund_spacing", &self.refund_spacing)
            .field("shared_client", &self.client.is_some())
            .finish()
    }
}

impl SipayConfig {
    /// Credentials from SiPay's merchant panel, for the [`Environment::Sandbox`] environment.
    /// The credentials are checked by [`Sipay::new`](crate::Sipay::new).
    pub fn new(
        app_id: impl Into<String>,
        app_secret: impl Into<String>,
        merchant_key: impl Into<String>,
    ) -> Self {
        let environment = Environment::Sandbox;
        SipayConfig {
            app_id: app_id.into(),
            app_secret: SecretString::from(app_secret.into()),
            merchant_key: SecretString::from(merchant_key.into()),
            base_url: environment.base_url().to_owned(),
            environment: Some(environment),
            http: HttpSettings::default(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            settle_time: Capabilities::DEFAULT_SETTLE_TIME,
            client: None,
            refund_webhook_key: None,
            refund_spacing: crate::spacing::SIPAY_REFUND_SPACING,
        }
    }

    /// Reads `SIPAY_APP_ID`, `SIPAY_APP_SECRET`, `SIPAY_MERCHANT_KEY` and, optionally,
    /// `SIPAY_BASE_URL` (a URL, or a preset name such as `production` or `qnbpay-sandbox`;
    /// default: [`Environment::Sandbox`]) and `SIPAY_REFUND_WEBHOOK_KEY`
    /// ([`with_refund_webhook_key`](Self::with_refund_webhook_key)).
    pub fn from_env() -> Result<SipayConfig, RefundError> {
        SipayConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any lookup function (a config file, a secret store,
    /// a test's map).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use refund_sipay::SipayConfig;
    ///
    /// let vars = HashMap::from([
    ///     ("SIPAY_APP_ID", "id"),
    ///     ("SIPAY_APP_SECRET", "secret"),
    ///     ("SIPAY_MERCHANT_KEY", "key"),
    ///     ("SIPAY_BASE_URL", "production"),
    /// ]);
    /// let config = SipayConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string()))?;
    /// assert_eq!(config.base_url(), "https://app.sipay.com.tr");
    /// # Ok::<(), refund_core::RefundError>(())
    /// ```
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SipayConfig, RefundError> {
        let required = |name: &str| match lookup(name) {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
            _ => Err(RefundError::configuration(
                NAME,
                format!("environment variable {name} is not set"),
            )),
        };
        let mut config = SipayConfig::new(
            required("SIPAY_APP_ID")?,
            required("SIPAY_APP_SECRET")?,
            required("SIPAY_MERCHANT_KEY")?,
        );
        if let Some(key) = lookup("SIPAY_REFUND_WEBHOOK_KEY").filter(|k| !k.trim().is_empty()) {
            config = config.with_refund_webhook_key(key.trim());
        }
        match lookup("SIPAY_BASE_URL") {
            Some(v) if v.contains("://") => config.with_base_url(&v),
            Some(v) if !v.trim().is_empty() => Ok(config.with_environment(v.parse()?)),
            _ => Ok(config),
        }
    }

    /// Uses a named environment's base URL.
    #[must_use]
    pub fn with_environment(mut self, environment: Environment) -> Self {
        self.base_url = environment.base_url().to_owned();
        self.environment = Some(environment);
        self
    }

    /// Uses any base URL: `https://…`, or `http://…` for a loopback host only (a simulator).
    /// A path prefix is kept (`https://gw.example/sipay` → `…/sipay/ccpayment/api/refund`).
    /// A base URL that already ends in `/ccpayment` (the official PHP SDK's own base form,
    /// `samples/test_config.php`) or `/ccpayment/api` is taken without that tail, so the path
    /// is never doubled.
    ///
    /// ```
    /// use refund_sipay::{Environment, SipayConfig};
    ///
    /// let config = SipayConfig::new("app-id", "app-secret", "merchant-key")
    ///     .with_base_url("https://app.sipay.com.tr/ccpayment")?;
    /// assert_eq!(config.base_url(), "https://app.sipay.com.tr/");
    /// assert_eq!(config.environment(), Some(Environment::Production));
    /// # Ok::<(), refund_core::RefundError>(())
    /// ```
    pub fn with_base_url(mut self, base_url: &str) -> Result<SipayConfig, RefundError> {
        let mut url = http::base_url(NAME, base_url)?;
        let path = url.path().trim_end_matches('/').to_owned();
        for tail in ["/ccpayment/api", "/ccpayment"] {
            if let Some(prefix) = path.strip_suffix(tail) {
                let prefix = if prefix.is_empty() { "/" } else { prefix };
                url.set_path(prefix);
                break;
            }
        }
        self.environment = Environment::ALL
            .iter()
            .copied()
            .find(|e| url.as_str().trim_end_matches('/') == e.base_url());
        self.base_url = url.into();
        Ok(self)
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

    /// All transport settings at once (timeouts, response size cap).
    #[must_use]
    pub fn with_http_settings(mut self, settings: HttpSettings) -> Self {
        self.http = settings;
        self
    }

    /// How long a token is reused after it was fetched (default
    /// [`DEFAULT_TOKEN_LIFETIME`], 110 minutes). Must be more than zero and less than the
    /// documented two hours; [`Sipay::new`](crate::Sipay::new) checks.
    #[must_use]
    pub fn with_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// How long after a refund attempt SiPay's check status may still not show it (lookup lag
    /// plus late application of a request the client gave up on); reported as
    /// [`Capabilities::settle_time`] and used by `refund_core::Reconciler`. Until an
    /// outcome-unknown attempt is this old, a lookup that does not find it proves nothing.
    ///
    /// Default [`Capabilities::DEFAULT_SETTLE_TIME`], 15 minutes. SiPay documents no lookup
    /// lag. The only figure on record is the Paybull white-label gateway's advice to repeat
    /// check status "her 15 dakikada bir" (every 15 minutes) until success (100) or failure
    /// (41) (`../shared/providers/sdk-models.md` §1.3, source `SP-DOC-PAYBULL-CS`); that it bounds
    /// SiPay's lag is **assumed**.
    #[must_use]
    pub fn with_settle_time(mut self, settle_time: Duration) -> Self {
        self.settle_time = settle_time;
        self
    }

    /// Sends `key` with every refund as the refund webhook key: the **name** of a webhook
    /// registered in the merchant panel (API settings), after which SiPay POSTs a refund
    /// notification to that webhook's URL when the refund is approved (verify it with
    /// [`NotificationVerifier`](crate::notification::NotificationVerifier)). Not set by
    /// default: nothing is sent.
    ///
    /// The field is `refund_web_hook_key`, or `refund_webhook_key` for the Paybull presets
    /// ([`Environment::refund_webhook_field`]); with a base URL that is no preset's, SiPay's
    /// spelling. SiPay's page calls the value a key that "exists in the database"; its PHP
    /// SDK's sample passes a URL instead. Either is sent as given (`../shared/providers/`
    /// `sdk-models.md` §1.4–1.5). [`Sipay::new`](crate::Sipay::new) refuses an empty key or
    /// one with control characters or surrounding spaces.
    ///
    /// ```
    /// use refund_sipay::{Environment, SipayConfig};
    ///
    /// let config = SipayConfig::new("app-id", "app-secret", "merchant-key")
    ///     .with_environment(Environment::PaybullProduction)
    ///     .with_refund_webhook_key("refunds");
    /// assert_eq!(config.refund_webhook_key(), Some("refunds"));
    /// assert_eq!(config.refund_webhook_field(), "refund_webhook_key");
    /// ```
    #[must_use]
    pub fn with_refund_webhook_key(mut self, key: impl Into<String>) -> Self {
        self.refund_webhook_key = Some(key.into());
        self
    }

    /// How long SiPay refuses another refund of an invoice after one was accepted (default
    /// 30 s, SiPay's rule as the node SDK's text for code 49 states it: "Please wait at least
    /// 30 seconds for another refund"; per invoice is **assumed**). A 49 on an invoice this
    /// client (or a clone) had a refund accepted for less than this long ago is a temporary
    /// decline with the rest of the wait as its
    /// [`retry_after`](refund_core::RefundError::retry_after); any other 49 stays final.
    /// `Duration::ZERO` turns the rule off (every 49 final, as SiPay's answer alone says).
    ///
    /// ```
    /// use std::time::Duration;
    /// use refund_sipay::SipayConfig;
    ///
    /// let config = SipayConfig::new("app-id", "app-secret", "merchant-key");
    /// assert_eq!(config.refund_spacing(), Duration::from_secs(30));
    /// let config = config.with_refund_spacing(Duration::from_secs(60));
    /// assert_eq!(config.refund_spacing(), Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn with_refund_spacing(mut self, spacing: Duration) -> Self {
        self.refund_spacing = spacing;
        self
    }

    /// The spacing of refunds of one invoice ([`with_refund_spacing`](Self::with_refund_spacing)).
    pub fn refund_spacing(&self) -> Duration {
        self.refund_spacing
    }

    /// The refund webhook key, when set.
    pub fn refund_webhook_key(&self) -> Option<&str> {
        self.refund_webhook_key.as_deref()
    }

    /// The body field the refund webhook key goes in: the preset's
    /// ([`Environment::refund_webhook_field`]), or `refund_web_hook_key` for any other base
    /// URL.
    pub fn refund_webhook_field(&self) -> &'static str {
        self.environment
            .map_or(REFUND_WEBHOOK_FIELD, Environment::refund_webhook_field)
    }

    /// Sends through this `reqwest::Client` instead of building one, to share a connection
    /// pool. Its own timeouts and redirect policy then apply (build it with
    /// [`refund_core::http::build_client`] to keep redirects off); the response size cap
    /// from [`with_http_settings`](Self::with_http_settings) still does.
    #[must_use]
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The app id (an identifier, not a secret).
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The base URL, as set (a preset's text, or the parsed URL given).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The base URL, parsed and checked (https, or http on loopback only).
    pub(crate) fn parsed_base_url(&self) -> Result<Url, RefundError> {
        http::base_url(NAME, &self.base_url)
    }

    /// The named environment, when the base URL is a preset's.
    pub fn environment(&self) -> Option<Environment> {
        self.environment
    }

    /// The transport settings.
    pub fn http_settings(&self) -> &HttpSettings {
        &self.http
    }

    /// How long a token is reused.
    pub fn token_lifetime(&self) -> Duration {
        self.token_lifetime
    }

    /// The settle time ([`with_settle_time`](Self::with_settle_time)).
    pub fn settle_time(&self) -> Duration {
        self.settle_time
    }

    /// Checks what can be checked without the network: credentials present and printable,
    /// no `|` in the merchant key (it would corrupt the hash_key plaintext), a token lifetime
    /// within the documented two hours.
    pub(crate) fn validate(&self) -> Result<(), RefundError> {
        let bad = |m: String| Err(RefundError::configuration(NAME, m));
        for (name, value) in [
            ("app_id", self.app_id.as_str()),
            ("app_secret", self.app_secret.expose_secret()),
            ("merchant_key", self.merchant_key.expose_secret()),
        ] {
            if value.trim().is_empty() {
                return bad(format!("{name} is empty"));
            }
            if value.chars().any(char::is_control) || value.trim() != value {
                return bad(format!(
                    "{name} has control characters or surrounding spaces"
                ));
            }
        }
        if let Some(key) = &self.refund_webhook_key
            && (key.trim().is_empty() || key.trim() != key || key.chars().any(char::is_control))
        {
            return bad(
                "refund webhook key is empty or has control characters or surrounding spaces"
                    .into(),
            );
        }
        if self.merchant_key.expose_secret().contains('|') {
            return bad("merchant_key contains '|', which would corrupt the hash_key".into());
        }
        if self.token_lifetime.is_zero() || self.token_lifetime >= DOCUMENTED_TOKEN_LIFETIME {
            return bad(format!(
                "token lifetime must be more than zero and less than the documented {} minutes",
                DOCUMENTED_TOKEN_LIFETIME.as_secs() / 60
            ));
        }
        Ok(())
    }
}

fn masked(app_id: &str) -> String {
    let head: String = app_id.chars().take(4).collect();
    if app_id.chars().count() > 4 {
        format!("{head}…")
    } else {
        "[REDACTED]".to_owned()
    }
}

/// A configuration value as an error may show it: quoted when it is provably not a secret (a
/// short word of letters and `-` each of whose parts begins like a part of a preset name, as a
/// mistyped `productoin` does), else only its shape. `SIPAY_BASE_URL=http//user:pw@host`
/// must not print `pw`: a value that is not a preset name may be a URL with credentials or a
/// secret pasted into the wrong variable.
fn shown_name(s: &str) -> String {
    let parts: Vec<&str> = Environment::ALL
        .iter()
        .flat_map(|e| e.name().split('-'))
        .collect();
    let like_a_part =
        |word: &str| word.len() >= 3 && parts.iter().any(|p| p.get(..3) == word.get(..3));
    let is_word = s.len() <= 24
        && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        && s.split('-').all(like_a_part);
    if is_word {
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
    fn a_malformed_base_url_is_never_echoed_with_its_credentials() {
        for bad in [
            "http//user:pw-Secret9@host",
            "https//user:pw-Secret9@host/",
            "user:pw-Secret9@host",
            "pw-Secret9",
        ] {
            let err = SipayConfig::from_lookup(|k| match k {
                "SIPAY_BASE_URL" => Some(bad.to_owned()),
                _ => Some("v".to_owned()),
            })
            .unwrap_err()
            .to_string();
            assert!(!err.contains("Secret9"), "{err}");
            assert!(!err.contains("user"), "{err}");
            assert!(err.contains("not shown"), "{err}");
        }
        let typo = "productoin".parse::<Environment>().unwrap_err().to_string();
        assert!(typo.contains("\"productoin\""), "{typo}");
    }

    #[test]
    fn every_preset_is_an_https_base_url_and_round_trips_by_name() {
        for e in Environment::ALL {
            let url = http::base_url(NAME, e.base_url()).unwrap();
            assert_eq!(url.scheme(), "https");
            assert_eq!(e.name().parse::<Environment>().unwrap(), *e);
            assert!(!e.tested_against_live_host());
            let config = SipayConfig::new("a", "b", "c").with_environment(*e);
            assert_eq!(config.environment(), Some(*e));
            assert!(config.parsed_base_url().is_ok());
        }
        assert_eq!(
            "SIPAY_PRODUCTION".parse::<Environment>().unwrap(),
            Environment::Production
        );
        // SiPay's word for the sandbox, as 0.1 spelled the presets.
        assert_eq!("test".parse::<Environment>().unwrap(), Environment::Sandbox);
        assert_eq!(
            "qnbpay-test".parse::<Environment>().unwrap(),
            Environment::QnbpaySandbox
        );
        assert!("contest".parse::<Environment>().is_err());
        assert!("staging".parse::<Environment>().is_err());
    }

    #[test]
    fn a_preset_url_given_as_text_is_recognised() {
        let c = SipayConfig::new("a", "b", "c")
            .with_base_url("https://app.sipay.com.tr/")
            .unwrap();
        assert_eq!(c.environment(), Some(Environment::Production));
        let c = c.with_base_url("http://127.0.0.1:1").unwrap();
        assert_eq!(c.environment(), None);
    }

    #[test]
    fn plain_http_is_refused_outside_loopback() {
        for bad in ["http://app.sipay.com.tr", "ftp://x", "nonsense"] {
            let e = SipayConfig::new("a", "b", "c")
                .with_base_url(bad)
                .unwrap_err();
            assert!(matches!(e, RefundError::Configuration { .. }), "{bad}");
        }
    }

    #[test]
    fn from_lookup_requires_the_credentials_and_names_the_missing_variable() {
        let e =
            SipayConfig::from_lookup(|k| (k == "SIPAY_APP_ID").then(|| "x".into())).unwrap_err();
        assert!(e.to_string().contains("SIPAY_APP_SECRET"), "{e}");
        let ok = SipayConfig::from_lookup(|k| match k {
            "SIPAY_BASE_URL" => Some("http://localhost:9".into()),
            _ => Some(format!("v-{k}")),
        })
        .unwrap();
        assert_eq!(ok.base_url(), "http://localhost:9/");
        let default =
            SipayConfig::from_lookup(|k| (k != "SIPAY_BASE_URL").then(|| "v".to_owned())).unwrap();
        assert_eq!(default.environment(), Some(Environment::Sandbox));
    }

    #[test]
    fn validation_catches_bad_credentials_without_printing_them() {
        let cases = [
            SipayConfig::new("", "s", "k"),
            SipayConfig::new("a", " ", "k"),
            SipayConfig::new("a", "s", "k|x-secret"),
            SipayConfig::new("a", "s\n", "k"),
            SipayConfig::new("a", "s", "k").with_token_lifetime(Duration::ZERO),
            SipayConfig::new("a", "s", "k").with_token_lifetime(DOCUMENTED_TOKEN_LIFETIME),
        ];
        for c in cases {
            let e = c.validate().unwrap_err();
            assert!(!e.to_string().contains("x-secret"));
        }
        assert!(SipayConfig::new("a", "s", "k").validate().is_ok());
    }

    #[test]
    fn the_refund_webhook_field_is_paybulls_spelling_on_paybull_and_sipays_elsewhere() {
        for e in Environment::ALL {
            let config = SipayConfig::new("a", "b", "c")
                .with_environment(*e)
                .with_refund_webhook_key("hook");
            let paybull = e.name().starts_with("paybull");
            let want = if paybull {
                "refund_webhook_key"
            } else {
                "refund_web_hook_key"
            };
            assert_eq!(config.refund_webhook_field(), want, "{e}");
            assert_eq!(config.refund_webhook_key(), Some("hook"));
            // A Paybull URL given as text is the Paybull preset, spelling and all.
            let by_url = config.with_base_url(e.base_url()).unwrap();
            assert_eq!(by_url.refund_webhook_field(), want, "{e}");
        }
        let custom = SipayConfig::new("a", "b", "c")
            .with_base_url("http://127.0.0.1:1")
            .unwrap();
        assert_eq!(custom.refund_webhook_field(), "refund_web_hook_key");
        assert_eq!(custom.refund_webhook_key(), None);
    }

    #[test]
    fn a_refund_webhook_key_must_be_printable_and_comes_from_the_environment_too() {
        for bad in ["", " ", " hook", "hook\n", "ho\u{7}ok"] {
            let e = SipayConfig::new("a", "s", "k")
                .with_refund_webhook_key(bad)
                .validate()
                .unwrap_err();
            assert!(e.to_string().contains("webhook"), "{e}");
        }
        let ok = SipayConfig::new("a", "s", "k").with_refund_webhook_key("https://hooks.example/r");
        assert!(ok.validate().is_ok());
        let from_env = SipayConfig::from_lookup(|k| match k {
            "SIPAY_REFUND_WEBHOOK_KEY" => Some(" refunds ".into()),
            "SIPAY_BASE_URL" => Some("paybull-production".into()),
            _ => Some("v".into()),
        })
        .unwrap();
        assert_eq!(from_env.refund_webhook_key(), Some("refunds"));
        assert_eq!(from_env.refund_webhook_field(), "refund_webhook_key");
        assert!(format!("{from_env:?}").contains("refunds"));
        let unset = SipayConfig::from_lookup(|k| match k {
            "SIPAY_REFUND_WEBHOOK_KEY" | "SIPAY_BASE_URL" => Some("  ".into()),
            _ => Some("v".into()),
        })
        .unwrap();
        assert_eq!(unset.refund_webhook_key(), None);
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = SipayConfig::new(
            "6d4a7e9374a76c15",
            "very-secret-value",
            "$2y$10$merchantkey",
        );
        let d = format!("{c:?}");
        assert!(!d.contains("very-secret-value"));
        assert!(!d.contains("merchantkey"));
        assert!(!d.contains("6d4a7e9374a76c15"));
        assert!(d.contains("6d4a…"));
    }
}
