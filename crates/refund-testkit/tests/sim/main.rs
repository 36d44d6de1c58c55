//! Simulator behaviour, over real HTTP with a plain reqwest client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod faults;
mod iyzico;
mod sipay;
mod support;
