//! Root integration tests of the iyzico client with the test kit: every iyzico fixture
//! (documented and sourced responses, real error codes) mapped to the right outcome, and the
//! test kit's `IyzicoAuth` matcher recomputing our IYZWSv2 headers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod fixtures;
mod simulator;

use refund_iyzico::{Iyzico, IyzicoConfig};
use wiremock::MockServer;

/// The key pair the fixtures' response signatures were made with.
pub(crate) const API_KEY: &str = "apiKey";
pub(crate) const SECRET_KEY: &str = "secretKey";

pub(crate) fn client(server: &MockServer, secret_key: &str) -> Iyzico {
    let config = IyzicoConfig::new(API_KEY, secret_key)
        .with_base_url(&server.uri())
        .expect("loopback base URL")
        .with_random_key(|| "123456789".into());
    Iyzico::new(config).expect("client")
}
