//! SiPay refunds for the `refunds` workspace: a [`refund_core::RefundProvider`] over SiPay's
//! `/ccpayment/api` (token, refund, check status), with the AES `hash_key` SiPay requires.
#![warn(missing_docs)]

pub mod hash_key;
