//! The service's configuration, from the environment (or any lookup function, for tests).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use refund_iyzico::IyzicoConfig;
use refund_sipay::SipayConfig;

use crate::error::ShopError;

/// A PostgreSQL URL that never shows itself: it may carry a password, so `Debug` prints
/// `[REDACTED]` and it appears in no error or log line.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps `url`.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl([REDACTED])")
    }
}

/// Everything the service needs to start.
///
/// | variable | default | |
/// |---|---|---|
/// | `DATABASE_URL` | required | PostgreSQL, e.g. `postgres://shop@127.0.0.1/shop` |
/// | `SHOP_LISTEN` | `127.0.0.1:8080` | where the HTTP server listens |
/// | `SHOP_WORKERS` | `2` | outbox workers in the process, one database connection each |
/// | `SHOP_WORKER_CONCURRENCY` | `4` | intents each worker has in flight |
/// | `SIPAY_APP_ID`, `SIPAY_APP_SECRET`, `SIPAY_MERCHANT_KEY`, `SIPAY_BASE_URL`, `SIPAY_REFUND_WEBHOOK_KEY` | see [`SipayConfig::from_lookup`] | |
/// | `IYZICO_API_KEY`, `IYZICO_SECRET_KEY`, `IYZICO_BASE_URL`, `IYZICO_IP` | see [`IyzicoConfig::from_lookup`] | |
///
/// `Debug` shows no secret (the provider configurations redact theirs, the URL is
/// [`DatabaseUrl`]).
#[derive(Debug, Clone)]
pub struct ShopConfig {
    /// The database: the shop's orders and the refund outbox.
    pub database_url: DatabaseUrl,
    /// Where the HTTP server listens (used by `main`; [`crate::Shop::serve`] takes a listener).
    pub listen: SocketAddr,
    /// Outbox workers in the process.
    pub workers: usize,
    /// Intents each worker has in flight.
    pub worker_concurrency: usize,
    /// How often an idle worker looks for due intents.
    pub idle_poll: Duration,
    /// How soon an outcome-unknown attempt is looked up (capped by the provider's settle time).
    pub recheck: Duration,
    /// The SiPay client's configuration.
    pub sipay: SipayConfig,
    /// The iyzico client's configuration.
    pub iyzico: IyzicoConfig,
}

impl ShopConfig {
    /// A configuration with the defaults of the table above.
    pub fn new(database_url: DatabaseUrl, sipay: SipayConfig, iyzico: IyzicoConfig) -> Self {
        ShopConfig {
            database_url,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 2,
            worker_concurrency: 4,
            idle_poll: Duration::from_secs(1),
            recheck: Duration::from_secs(5),
            sipay,
            iyzico,
        }
    }

    /// Reads the variables of the table above from the process environment.
    pub fn from_env() -> Result<Self, ShopError> {
        ShopConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any lookup function.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ShopError> {
        let value = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let database_url = value("DATABASE_URL")
            .map(DatabaseUrl::new)
            .ok_or(ShopError::Config(
                "environment variable DATABASE_URL is not set".into(),
            ))?;
        let sipay = SipayConfig::from_lookup(&lookup).map_err(ShopError::Provider)?;
        let iyzico = IyzicoConfig::from_lookup(&lookup).map_err(ShopError::Provider)?;
        let mut config = ShopConfig::new(database_url, sipay, iyzico);
        if let Some(listen) = value("SHOP_LISTEN") {
            config.listen = listen.trim().parse().map_err(|_| {
                ShopError::Config("SHOP_LISTEN is not an address such as 127.0.0.1:8080".into())
            })?;
        }
        let count = |name: &str, default: usize| match value(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => Ok(n),
                _ => Err(ShopError::Config(format!(
                    "{name} must be a number from 1 to 64"
                ))),
            },
        };
        config.workers = count("SHOP_WORKERS", config.workers)?;
        config.worker_concurrency = count("SHOP_WORKER_CONCURRENCY", config.worker_concurrency)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_the_database_password_nor_provider_secrets() {
        let vars = [
            ("DATABASE_URL", "postgres://shop:hunter2@db/shop"),
            ("SIPAY_APP_ID", "app-id"),
            ("SIPAY_APP_SECRET", "sipay-secret-value"),
            ("SIPAY_MERCHANT_KEY", "merchant-key-value"),
            ("IYZICO_API_KEY", "iyzico-api-key"),
            ("IYZICO_SECRET_KEY", "iyzico-secret-value"),
            ("SHOP_WORKERS", "3"),
        ];
        let lookup = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        };
        let config = ShopConfig::from_lookup(lookup).map_err(|e| e.to_string());
        let Ok(config) = config else {
            unreachable!("a complete environment is accepted: {config:?}");
        };
        assert_eq!(config.workers, 3);
        let shown = format!("{config:?}");
        for secret in [
            "hunter2",
            "sipay-secret-value",
            "merchant-key-value",
            "iyzico-secret-value",
        ] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
    }

    #[test]
    fn a_missing_database_url_is_a_configuration_error_naming_the_variable() {
        let err = ShopConfig::from_lookup(|_| None)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("configuration: environment variable DATABASE_URL is not set".into())
        );
    }
}
