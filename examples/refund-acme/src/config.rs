//! What the user configures.

use std::time::Duration;

use refund_core::http::HttpSettings;
use secrecy::SecretString;

/// An Acme Pay merchant's credentials and where to reach the API.
///
/// `Debug` shows the secret key as `[REDACTED]` (it is a `SecretString`).
#[derive(Clone, Debug)]
pub struct AcmeConfig {
    pub(crate) merchant_id: String,
    pub(crate) secret_key: SecretString,
    pub(crate) base_url: String,
    pub(crate) http: HttpSettings,
}

impl AcmeConfig {
    /// Acme Pay's production API.
    pub const PRODUCTION: &'static str = "https://api.acmepay.example";

    /// A merchant id and its secret key, for [`PRODUCTION`](Self::PRODUCTION), with
    /// refund-core's default timeouts.
    pub fn new(merchant_id: impl Into<String>, secret_key: impl Into<String>) -> Self {
        AcmeConfig {
            merchant_id: merchant_id.into(),
            secret_key: SecretString::from(secret_key.into()),
            base_url: Self::PRODUCTION.to_owned(),
            http: HttpSettings::default(),
        }
    }

    /// Another base URL: `https://…`, or plain `http://` on loopback (a simulator).
    /// Checked when the client is built.
    #[must_use]
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The whole request's timeout: past it, a refund's outcome is unknown.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.with_timeout(timeout);
        self
    }
}
