//! SiPay refunds for the `refunds` workspace: a [`refund_core::RefundProvider`] over SiPay's
//! `/ccpayment/api` (token, refund, check status), with the AES `hash_key` SiPay requires.
//!
//! The same API is served under other brands (QNBpay, Halkode, Vepara, Paybull, Platformode):
//! see [`Environment`] for the presets, and `docs/providers/sipay.md` for what was tested
//! against what, the status-code mapping and where SiPay's documents disagree.
//!
//! - [`hash_key`]: the documented AES-256-CBC scheme, checked against openssl-made vectors;
//! - [`SipayConfig`] / [`Environment`]: credentials (secrets never printed), base URLs, timeouts;
//! - [`Sipay`]: the provider. One bearer token shared by all calls, refreshed single-flight
//!   (a failed fetch is shared by every caller that waited on it), one refresh and resend on
//!   HTTP 401; refunds by `invoice_id` with the request's reference as
//!   `refund_transaction_id` (SiPay refuses a reused one with 104, reported as
//!   `RefundError::DuplicateReference`); lookups through check status that never guess
//!   (`RefundState::undetermined` when the answer cannot say what was refunded);
//! - [`notification`]: the refund webhook SiPay posts when a refund is approved (sent with
//!   [`SipayConfig::with_refund_webhook_key`]), verified into a provider-neutral
//!   [`refund_core::RefundNotification`] that settles a pending (101) refund;
//! - [`status_code`]: SiPay's whole status-code table (the official PHP SDK's 67 codes) and
//!   what each means on a refund; a code outside it is an unknown outcome.
//!
//! ```
//! use refund_core::RefundProvider;
//! use refund_sipay::{Environment, Sipay, SipayConfig};
//!
//! let config = SipayConfig::new("app-id", "app-secret", "merchant-key")
//!     .with_environment(Environment::Sandbox);
//! let sipay = Sipay::new(config)?;
//! assert_eq!(sipay.name(), "sipay");
//! assert!(sipay.capabilities().partial_refunds);
//! # Ok::<(), refund_core::RefundError>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

/// `refund-core`, re-exported so that one dependency line is enough: `refund_core::…` types
/// are also reachable as `refund_sipay::refund_core::…`.
pub use refund_core;

mod client;
mod config;
pub mod hash_key;
mod lookup;
pub mod notification;
mod spacing;
pub mod status_code;
mod token;
mod wire;

pub use client::{CAPABILITIES, Sipay};
pub use config::{DEFAULT_TOKEN_LIFETIME, DOCUMENTED_TOKEN_LIFETIME, Environment, SipayConfig};

/// The provider name, as [`refund_core::RefundProvider::name`] returns it.
pub const NAME: &str = "sipay";

/// The API paths, relative to the base URL (for simulators and tests).
pub mod paths {
    /// `POST`: a bearer token from `app_id` and `app_secret`.
    pub const TOKEN: &str = "/ccpayment/api/token";
    /// `POST`: a full or partial refund (same-day: a void).
    pub const REFUND: &str = "/ccpayment/api/refund";
    /// `POST`: a payment's status, with `show_refund_info` its refunds.
    pub const CHECK_STATUS: &str = "/ccpayment/api/checkstatus";
}

/// The README's examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
