//! Simulator behaviour, over real HTTP with a plain reqwest client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod any_provider;
mod faults;
mod iyzico;
mod iyzico_switches;
mod sipay;
mod sipay_switches;
mod sipay_webhook;
mod support;
