//! Test kit for the `refunds` workspace: documented provider responses as [`fixtures`],
//! wiremock [`matchers`] that check SiPay and iyzico authentication, stateful in-process
//! simulators of both providers with fault injection in [`sim`], and both simulators started
//! together with their admin API in [`sandbox`].
#![warn(missing_docs)]

pub mod conformance;
pub mod fixtures;
pub mod matchers;
pub mod sandbox;
pub mod sim;
