//! iyzico refunds behind [`refund_core::RefundProvider`].
//!
//! - [`Iyzico`] refunds one basket line (`PaymentRef::item(paymentTransactionId)`, through
//!   `POST /payment/refund`) or a whole payment (`PaymentRef::payment(paymentId)`, through
//!   `POST /v2/payment/refund`), voids same-day payments (`POST /payment/cancel`) and looks
//!   refunds up for reconciliation (`GET /v2/reporting/payment/details`).
//! - [`signature`] is the IYZWSv2 scheme, byte-for-byte the official SDKs'
//!   (proven against vectors made with the iyzipay npm package), plus response signatures.
//! - [`price`] writes amounts as the SDKs do (`10.50` → `"10.5"`), from the `Decimal`.
//!
//! The request's [`MerchantRef`](refund_core::MerchantRef) is sent as `conversationId`; an
//! answer that does not echo it, whose refunded price differs from the request, or whose
//! response signature is wrong is [`OutcomeUnknown`](refund_core::RefundError::OutcomeUnknown),
//! never a success. Request extra `"ip"` sets the client IP (default from the config).
//!
//! ```
//! use refund_core::RefundProvider;
//! use refund_iyzico::{Iyzico, IyzicoConfig};
//!
//! let iyzico = Iyzico::new(IyzicoConfig::new("sandbox-api-key", "sandbox-secret-key"))?;
//! assert_eq!(iyzico.name(), "iyzico");
//! assert!(iyzico.capabilities().item_refunds);
//! # Ok::<(), refund_core::RefundError>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

/// `refund-core`, re-exported so that one dependency line is enough: `refund_core::…` types
/// are also reachable as `refund_iyzico::refund_core::…`.
pub use refund_core;

mod client;
mod config;
mod lookup;
pub mod price;
pub mod signature;
mod wire;

pub use client::{AUTH_ERROR_CODES, CAPABILITIES, Iyzico, REFUND_DECLINE_CODE};
pub use config::{Clock, Environment, IyzicoConfig, Locale, RandomKeySource};

/// The provider name, as [`RefundProvider::name`](refund_core::RefundProvider::name) returns it.
pub const NAME: &str = "iyzico";

/// The API paths, relative to the base URL (for simulators and tests).
pub mod paths {
    /// `POST`: an item-level refund (`paymentTransactionId`).
    pub const REFUND: &str = "/payment/refund";
    /// `POST`: a payment-level refund (`paymentId`).
    pub const REFUND_V2: &str = "/v2/payment/refund";
    /// `POST`: a cancel (void) of a whole payment.
    pub const CANCEL: &str = "/payment/cancel";
    /// `GET`: the reporting lookup of a payment's refunds and cancels.
    pub const PAYMENT_DETAILS: &str = "/v2/reporting/payment/details";
}

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
