//! Starts both simulators and prints one JSON line with their base URLs and demo
//! credentials, then serves until Ctrl-C. Used by `sdk-check/iyzipay-node.sh`.
//!
//! ```text
//! cargo run -p refund-testkit --example sandbox [-- <sipay-port> <iyzico-port>]
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::{IpAddr, Ipv4Addr};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u16>().ok());
    let sipay_port = args.next().flatten();
    let iyzico_port = args.next().flatten();
    let sandbox =
        refund_testkit::sandbox::run(IpAddr::V4(Ipv4Addr::LOCALHOST), sipay_port, iyzico_port)
            .await?;
    let sipay = sandbox.sipay_credentials();
    let iyzico = sandbox.iyzico_credentials();
    let line = serde_json::json!({
        "sipay": {
            "base_url": sipay.base_url,
            "app_id": sipay.app_id,
            "app_secret": sipay.app_secret,
            "merchant_key": sipay.merchant_key,
        },
        "iyzico": {
            "base_url": iyzico.base_url,
            "api_key": iyzico.api_key,
            "secret_key": iyzico.secret_key,
        },
    });
    println!("{line}");
    tokio::signal::ctrl_c().await?;
    eprintln!("sandbox stopped");
    Ok(())
}
