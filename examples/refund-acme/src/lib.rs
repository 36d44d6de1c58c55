//! Refunds through **Acme Pay**, a fictional provider, in the crate a third party would write:
//! on `refund_core::http`, with the secret in a `secrecy::SecretString` and every request
//! signed with HMAC-SHA256. `docs/writing-a-provider.md` walks through it file by file:
//! [`AcmeConfig`] (what the user sets), [`signature`] (a pure function with a reference
//! vector), `wire` (Acme's JSON, field for field), [`Acme`] (the
//! [`RefundProvider`](refund_core::RefundProvider): validate → build → sign → send → map),
//! and, with feature `testing`, [`testing`]: a fake of Acme's API on
//! `refund_testkit::sim::SimServer` and the conformance harness that drives it.
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

/// `docs/writing-a-provider.md`, whose Rust blocks run as this crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/writing-a-provider.md")]
pub struct WritingAProvider;
