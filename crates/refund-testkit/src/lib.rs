//! Test kit for the `refunds` workspace: documented provider responses as [`fixtures`],
//! wiremock [`matchers`] that check SiPay and iyzico authentication, and stateful in-process
//! simulators of both providers in [`sim`] with fault injection and an admin API
//! ([`sandbox`]).
#![warn(missing_docs)]

pub mod fixtures;
pub mod matchers;
