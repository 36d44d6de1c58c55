//! A transactional refund outbox on PostgreSQL.
//!
//! An application decides to refund inside its own database transaction (an order cancelled,
//! a return accepted) and [`enqueue`]s a [`RefundIntent`] in that same transaction: the
//! intent commits or rolls back with the application's change. [`Worker`]s, on any number of
//! machines, claim due intents (`FOR UPDATE SKIP LOCKED`, with a lease), send them through a
//! [`RefundProvider`](refund_core::RefundProvider), and record every attempt as a row
//! **committed before the request leaves**. A worker that dies mid-refund leaves its lease to
//! expire; the next worker looks the refund up through
//! [`Reconciler`](refund_core::Reconciler), with the provider's settle time and the attempt's
//! time from the database, before anything is resent. What follows each send and each lookup
//! is decided by the attempt lifecycle of `refund_core` ([`AttemptPolicy`](refund_core::AttemptPolicy),
//! the same for every driver; [`WorkerConfig::with_policy`]): the worker stores the decision
//! and acts on its next step. An intent ends `refunded`, `declined` or `failed` (nothing
//! refunded, a person decides), or waits as `unknown` / `retry_later` until its not-before
//! time.
//!
//! ```text
//! app transaction ──enqueue──▶ pending ──claim──▶ attempt row committed ──▶ request
//!                                  ▲                                          │
//!               retry_later ◀──────┴── refused for now / not reached ◀────────┤
//!               unknown ──(lease expired, or not_before)──▶ lookup ◀── no trustworthy answer
//!                  │                                          │
//!                  └── safe to resend (settled, absent) ◀─────┤── applied ▶ refunded
//!                                                             └── failed  ▶ declined
//! ```
//!
//! The schema is versioned migrations the crate applies itself ([`migrate`]); the pace of
//! each provider's requests is shared by every worker through the database ([`set_rate`]);
//! [`status`] counts intents by state and lists the stuck ones; [`find`], [`report`] and
//! [`Tracked`] read intents back. See `docs/outbox.md` in the
//! repository for the flow, the schema, the guarantees and their limits.
//!
//! ```no_run
//! # async fn example(registry: refund_core::ProviderRegistry) -> Result<(), Box<dyn std::error::Error>> {
//! use refund_core::{MerchantRef, PaymentRef};
//! use refund_outbox::{RefundIntent, Worker, WorkerConfig, enqueue, migrate};
//!
//! let url = "postgres://app@127.0.0.1/shop";
//! let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
//! tokio::spawn(connection);
//! migrate(&mut client).await?;
//!
//! // In the request handler: the order change and the refund intent, one transaction.
//! let tx = client.transaction().await?;
//! tx.execute("UPDATE orders SET status = 'cancelled' WHERE id = $1", &[&42_i64]).await?;
//! let intent = RefundIntent::new(
//!     "sipay",
//!     PaymentRef::payment("INV-2026-0042"),
//!     "25.00 TRY".parse()?,
//!     MerchantRef::new("order-42-cancel")?,
//! )?;
//! enqueue(&tx, &intent).await?;
//! tx.commit().await?;
//!
//! // Anywhere else, on its own connection: a worker.
//! let (worker_db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
//! tokio::spawn(connection);
//! let worker = Worker::new(worker_db, registry, WorkerConfig::new("web-1")).await?;
//! worker.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `testing`: [`testing::TestPostgres`], a throwaway PostgreSQL server for tests.
//! - `sqlx`: [`sqlx`](mod@crate::sqlx), `migrate`, `enqueue`, `status` and `set_rate` over an sqlx
//!   `PgConnection` (an sqlx `Transaction` included), for applications on sqlx.
//! - `tls`: [`connect`] and [`tls`](mod@crate::tls), TLS to PostgreSQL with rustls (no
//!   OpenSSL), honouring the URL's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`,
//!   `verify-full`) and `sslrootcert`. Without it, connect with tokio-postgres and a connector
//!   of your choosing, as above.
//! - `metrics`: [`metrics`](mod@crate::metrics), the workers' decisions and attempt latencies
//!   and the intents-by-state gauges through the `metrics` facade (with `refund_core`'s
//!   `metrics` feature). Without it nothing is recorded and the facade is not compiled in.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod error;
mod intent;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod migrate;
mod pacing;
mod rows;
#[cfg(feature = "sqlx")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub mod sqlx;
mod status;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
mod worker;

pub use error::OutboxError;
pub use intent::{IntentId, IntentState, RefundIntent, enqueue};
pub use migrate::{SCHEMA_VERSION, migrate};
pub use pacing::{DEFAULT_PAUSE, set_rate};
pub use rows::{IntentRow, Standing, Tracked, find, report};
pub use status::{OutboxStatus, StuckIntent, status};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::connect;
/// The PostgreSQL client the outbox runs on, re-exported so applications name the same
/// version.
pub use tokio_postgres;
pub use worker::{Worked, Worker, WorkerConfig};
