//! `refunds`: refunds through Turkish payment providers behind one trait.
//!
//! This facade is the workspace's own root package: it owns the top-level `examples/` and
//! `tests/` and is **not published**. Applications depend on a provider crate
//! (`refund-sipay`, `refund-iyzico`), which re-exports `refund-core`. Inside the workspace it
//! re-exports the crates:
//!
//! | module | crate | feature |
//! |---|---|---|
//! | [`core`] | `refund-core`: the `RefundProvider` trait, money, errors, registry, retries | always |
//! | `sipay` | `refund-sipay`: SiPay and its white-label platforms | `sipay` (default) |
//! | `iyzico` | `refund-iyzico`: iyzico | `iyzico` (default) |
//! | `testkit` | `refund-testkit`: fixtures, simulators, conformance suite (with the simulators of the providers enabled above) | `testkit` |
//!
//! Libraries that implement a provider should depend on `refund-core` directly.
//!
//! ```
//! use refunds::core::{Currency, Money, PaymentRef, RefundRequest};
//!
//! let request = RefundRequest::builder(PaymentRef::payment("INV-1"), Money::parse("10.50", Currency::Try)?)
//!     .build()?;
//! assert_eq!(request.amount().to_string(), "10.50 TRY");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub use refund_core as core;
#[cfg(feature = "iyzico")]
pub use refund_iyzico as iyzico;
#[cfg(feature = "sipay")]
pub use refund_sipay as sipay;
#[cfg(feature = "testkit")]
pub use refund_testkit as testkit;

/// The README's Rust snippets, compiled (and the runnable ones run) as doc tests, so the
/// README's code cannot drift from the crates' API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
