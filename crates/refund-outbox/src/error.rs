//! What can go wrong with the outbox itself (a provider's answers are not errors here: they
//! become states of intents).

/// An outbox operation failed.
///
/// Never carries the database URL or any credential: PostgreSQL errors are kept as they come
/// (their text names the failing statement's problem, not the connection string).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// An intent with this merchant reference is already in the outbox, whatever its state:
    /// a reference names one refund, so the second is refused (nothing was written, and the
    /// application's transaction is still usable).
    #[error("a refund with reference {reference} is already in the outbox")]
    AlreadyEnqueued {
        /// The reference.
        reference: String,
        /// The id of the intent that has it, when this transaction can see it.
        existing: Option<crate::IntentId>,
    },
    /// The intent cannot be sent as it stands (an empty provider name, an invalid payment
    /// reference); nothing was written.
    #[error("invalid refund intent: {0}")]
    InvalidIntent(String),
    /// A row of the outbox cannot be read back (edited by hand into something the outbox
    /// never writes).
    #[error("outbox row {id}: {reason}")]
    Corrupt {
        /// The intent's id.
        id: i64,
        /// What is wrong.
        reason: String,
    },
    /// The database refused or failed a statement, or the connection is gone.
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// A schema migration failed; the transaction was rolled back.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// The migration's version.
        version: i32,
        /// Its name.
        name: &'static str,
        /// The database's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement sent through sqlx failed, or its connection is gone (feature `sqlx`).
    #[cfg(feature = "sqlx")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
    #[error("database: {0}")]
    Sqlx(#[from] ::sqlx::Error),
    /// A schema migration applied through sqlx failed; the transaction was rolled back
    /// (feature `sqlx`).
    #[cfg(feature = "sqlx")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
    #[error("migration {version} ({name}) failed: {source}")]
    SqlxMigration {
        /// The migration's version.
        version: i32,
        /// Its name.
        name: &'static str,
        /// The database's error.
        #[source]
        source: ::sqlx::Error,
    },
    /// A connection could not be opened (feature `tls`, [`connect`](crate::connect)): an
    /// `sslmode` or `sslrootcert` that cannot be used, a CA file that cannot be read, a server
    /// that cannot be reached, a TLS handshake refused (`invalid peer certificate: …`) or the
    /// server's own refusal (`password authentication failed for user "app"`), with its
    /// causes. Never carries the URL or its password.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error("cannot connect: {reason}")]
    Connection {
        /// What is wrong.
        reason: String,
    },
    /// The database has a newer schema than this build of the outbox knows.
    #[error(
        "the database's refund outbox schema is at version {found}, newer than this build's {known}: upgrade refund-outbox"
    )]
    SchemaTooNew {
        /// The latest version applied to the database.
        found: i32,
        /// The latest version this build knows.
        known: i32,
    },
}

impl OutboxError {
    /// Whether the database connection is gone: the worker must reconnect (a new
    /// `tokio_postgres::Client`) to go on.
    pub fn is_connection_closed(&self) -> bool {
        match self {
            OutboxError::Database(e) => e.is_closed(),
            _ => false,
        }
    }
}
