//! The service's errors.

use refund_core::RefundError;
use refund_outbox::OutboxError;

/// Why the service could not start or run. No variant carries the database URL or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShopError {
    /// A missing or malformed setting (names the variable, never its value).
    #[error("configuration: {0}")]
    Config(String),
    /// A provider client could not be built from its configuration.
    #[error("provider configuration: {0}")]
    Provider(#[source] RefundError),
    /// The database refused or failed (sqlx's errors name no password).
    #[error("database: {0}")]
    Database(#[from] refund_outbox::sqlx::sqlx::Error),
    /// The outbox refused or failed.
    #[error("refund outbox: {0}")]
    Outbox(#[from] OutboxError),
    /// The HTTP listener failed.
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
}
