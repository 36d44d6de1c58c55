//! iyzico refunds for the `refunds` workspace.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
#![warn(missing_docs)]

pub mod price;
pub mod signature;
