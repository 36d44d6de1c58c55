//! SiPay refunds for the `refunds` workspace: a [`refund_core::RefundProvider`] over SiPay's
//! `/ccpayment/api` (token, refund, check status), with the AES `hash_key` SiPay requires.
//!
//! The same API is served under other brands (QNBpay, Halkode, Vepara, Paybull, Platformode):
//! see [`Environment`] for the presets, and `docs/providers/sipay.md` for what was tested
//! against what, the status-code mapping and where SiPay's documents disagree.
//!
//! - [`hash_key`]: the documented AES-256-CBC scheme, checked against openssl-made vectors;
//! - [`SipayConfig`] / [`Environment`]: credentials (secrets never printed), base URLs, timeouts;
//! - [`Sipay`]: the provider. One bearer token shared by all calls, refreshed single-flight,
//!   one refresh and resend on HTTP 401; refunds by `invoice_id` with the request's reference
//!   as `refund_transaction_id`; lookups through check status for reconciliation.
//!
//! ```
//! use refund_core::RefundProvider;
//! use refund_sipay::{Environment, Sipay, SipayConfig};
//!
//! let sipay = Sipay::new(
//!     SipayConfig::new("app-id", "app-secret", "merchant-key").with_environment(Environment::Test),
//! )?;
//! assert_eq!(sipay.name(), "sipay");
//! assert!(sipay.capabilities().partial_refunds);
//! # Ok::<(), refund_core::RefundError>(())
//! ```
#![warn(missing_docs)]

mod client;
mod config;
pub mod hash_key;
pub mod status_code;
mod token;
mod wire;

pub use client::{CAPABILITIES, Sipay};
pub use config::{DEFAULT_TOKEN_LIFETIME, DOCUMENTED_TOKEN_LIFETIME, Environment, SipayConfig};

/// The provider name, as [`refund_core::RefundProvider::name`] returns it.
pub const PROVIDER: &str = "sipay";

/// The API paths, relative to the base URL (for simulators and tests).
pub mod paths {
    /// `POST`: a bearer token from `app_id` and `app_secret`.
    pub const TOKEN: &str = crate::client::TOKEN_PATH;
    /// `POST`: a full or partial refund (same-day: a void).
    pub const REFUND: &str = crate::client::REFUND_PATH;
    /// `POST`: a payment's status, with `show_refund_info` its refunds.
    pub const CHECK_STATUS: &str = crate::client::CHECK_STATUS_PATH;
}
