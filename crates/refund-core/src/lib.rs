//! The provider-neutral core of the `refunds` workspace: the [`RefundProvider`] trait every
//! provider crate implements, exact money ([`Money`] on `rust_decimal`), validated requests,
//! receipts, one error taxonomy ([`RefundError`]), a [`ProviderRegistry`] and a [`Retrying`]
//! wrapper that retries only what is safe.
//!
//! Applications depend on a provider crate (`refund-sipay`, `refund-iyzico`, or a third
//! party's), which re-exports this crate, and hold providers as `Arc<dyn RefundProvider>`.
//!
//! ```
//! use refund_core::{Currency, Money, PaymentRef, RefundRequest};
//!
//! let request = RefundRequest::builder(
//!     PaymentRef::payment("INV-2026-0001"),
//!     Money::parse("10.50", Currency::Try)?,
//! )
//! .build()?;
//! // provider.refund(&request).await?
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! - `http`: [`http`], the shared reqwest plumbing for provider crates, with no TLS stack.
//! - `rustls` (rustls with the webpki roots), `rustls-native-roots` (rustls with the operating
//!   system's roots), `native-tls` (the platform's TLS; OpenSSL on Linux): `http` with that TLS
//!   stack. The provider crates forward these, with `rustls` as their default.
//! - `metrics`: [`metrics`], counters and histograms through the `metrics`
//!   facade (the [`Metered`](crate::metrics::Metered) wrapper, lookup verdicts, lifecycle
//!   decisions).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod amount_format;
mod attempt;
mod currency;
mod error;
#[cfg(feature = "http")]
pub mod http;
pub mod json;
#[cfg(feature = "metrics")]
pub mod metrics;
mod money;
mod notification;
mod pace;
mod provider;
mod raw_response;
mod receipt;
mod reconcile;
pub mod redact;
mod reference;
mod registry;
mod request;
mod retry;
mod state;

pub use amount_format::{AmountFormat, DecimalAtScale, MinorUnits};
pub use attempt::{Attempt, AttemptPolicy, AttemptState, Decision, Next, UnknownState};
pub use currency::Currency;
pub use error::{BoxError, RefundError};
pub use money::{Money, MoneyError};
pub use notification::{NotificationStatus, RefundNotification};
pub use pace::{Paced, Pacer};
pub use provider::{Capabilities, RefundProvider, VoidSupport};
pub use raw_response::RawResponse;
pub use receipt::{Operation, RefundReceipt, RefundStatus};
pub use reconcile::{Judged, Reconciler, Verdict};
pub use reference::{MerchantRef, PaymentRef, PaymentScope};
pub use registry::ProviderRegistry;
pub use request::{
    RefundReason, RefundRequest, RefundRequestBuilder, ValidationError, VoidRequest,
    VoidRequestBuilder,
};
pub use retry::{RetryPolicy, Retrying};
pub use rust_decimal::Decimal;
pub use state::{Reconciliation, RefundRecord, RefundState};

/// Re-exported so provider crates and their users name the same trait macro version.
pub use async_trait::async_trait;

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
