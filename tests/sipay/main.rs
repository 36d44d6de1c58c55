//! SiPay through the test kit: every SiPay fixture mapped to the right outcome (with the
//! test kit's `SipayAuth` matcher checking each request), and reconciliation scenarios against
//! the SiPay simulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixtures;
mod simulator;
