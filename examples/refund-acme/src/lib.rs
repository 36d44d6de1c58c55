//! Refunds through **Acme Pay**, a fictional provider, written the way a third-party provider
//! crate should be: on `refund_core::http` (a hardened reqwest client, a size-capped reader,
//! the transport half of the error taxonomy), with the secret in a `secrecy::SecretString` and
//! requests signed with HMAC-SHA256. `docs/writing-a-provider.md` walks through it.
//!
//! The split every provider crate keeps: [`AcmeConfig`] (what the user sets), [`signature`]
//! (a pure function with a reference vector), `wire` (Acme's JSON, field for field) and
//! [`Acme`] (the [`RefundProvider`](refund_core::RefundProvider): validate → build → sign →
//! send → map). With feature `testing`, [`testing`] has a fake of Acme's API built on
//! `refund_testkit::sim` and the conformance harness that drives it.
//!
//! ```no_run
//! use refund_acme::{Acme, AcmeConfig};
//! use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let acme = Acme::new(AcmeConfig::new("merchant-1", "the secret key from the dashboard"))?;
//! let amount = Money::parse("25.00", Currency::Try)?;
//! let request = RefundRequest::builder(PaymentRef::payment("pay_000001"), amount)
//!     .reference("order-42-refund-1")
//!     .build()?;
//! let receipt = acme.refund(&request).await?;
//! assert_eq!(receipt.amount, amount);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod client;
mod config;
pub mod signature;
#[cfg(feature = "testing")]
pub mod testing;
mod wire;

pub use client::{Acme, CAPABILITIES, NAME};
pub use config::AcmeConfig;
/// The core crate this one implements, so users name the same version.
pub use refund_core;
