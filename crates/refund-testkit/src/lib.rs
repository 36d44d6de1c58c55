//! Test kit for the `refunds` workspace and for third-party provider crates.
//!
//! Always available, with no provider compiled in:
//! - [`sim`]: the simulator server any provider's fake can be built on ([`sim::Simulator`],
//!   [`sim::SimServer`]: loopback HTTP, request log, every fault, late application, lookup
//!   lag, admin API) and a small [`sim::Ledger`];
//! - [`mock`]: a scripted [`RefundProvider`](refund_core::RefundProvider) whose answers a
//!   test gives call by call (queued up front or live through a handle), backed by a small
//!   ledger so that lost answers are found by lookups;
//! - [`lifecycle`]: scripted scenarios of the attempt lifecycle that every driver (`Retrying`,
//!   the file journal, the outbox) must end the same way.
//! - [`conformance`]: the provider-neutral conformance suite, run against any
//!   [`RefundProvider`](refund_core::RefundProvider) through a small harness trait;
//! - [`fixtures`]: documented SiPay and iyzico responses, one file each;
//! - [`notifications`]: refund notifications (webhooks) for testing an application's handler:
//!   SiPay's signed form body (with `sipay`), and a POST to a loopback URL.
//!
//! Behind features:
//! - `sipay`, `iyzico`: stateful simulators of both providers (`sim::SipaySim`,
//!   `sim::IyzicoSim`) and their conformance harnesses; with both, `sandbox` starts them
//!   together;
//! - `wiremock`: `matchers` that check SiPay and iyzico authentication (with `sipay` /
//!   `iyzico`) and a catch-all, and `Fixture::response`/`mount`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod conformance;
pub mod fixtures;
pub mod lifecycle;
#[cfg(feature = "wiremock")]
pub mod matchers;
pub mod mock;
pub mod notifications;
#[cfg(all(feature = "sipay", feature = "iyzico"))]
pub mod sandbox;
pub mod sim;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
