//! SiPay's refund webhook, end to end, with no credentials and no network: a refund comes back
//! pending (101), SiPay later POSTs a refund notification to the application's webhook, the
//! application verifies it and settles the pending refund.
//!
//! The SiPay simulator stands in for SiPay: it answers refunds 101 and completes them 300 ms
//! later, then POSTs the notification (form-encoded, `hash_key` signed with the app secret) to
//! the URL registered for the webhook key, here a loopback listener of this program.
//!
//! ```sh
//! cargo run --example sipay_webhook
//! ```
//!
//! In an application the listener is a route of its web framework; only `on_notification` is
//! the part to copy. See docs/providers/sipay.md ("Refund notifications") for what a verified
//! notification proves and what it does not.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::time::Duration;

use refund_core::{
    Currency, Money, PaymentRef, RefundNotification, RefundProvider, RefundReceipt, RefundRequest,
    RefundStatus,
};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::SipaySim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // SiPay's side: a simulator with a paid invoice, answering refunds "101, pending" and
    // completing them 300 ms later.
    let sim = SipaySim::start().await?;
    sim.add_payment("INV-2026-0042", "100.00".parse()?, Currency::Try);
    sim.set_pending_refunds(true);
    sim.set_pending_completion(Some(Duration::from_millis(300)));

    // The application's webhook endpoint, registered in SiPay's panel under the key "refunds"
    // (with the simulator: its admin API or this call).
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let webhook_url = format!("http://{}/webhooks/sipay/refunds", listener.local_addr()?);
    sim.set_refund_webhook_url(Some(&webhook_url))?;
    println!("webhook listening at {webhook_url}");

    // The client sends the webhook key's name with every refund.
    let creds = sim.credentials();
    let sipay = Sipay::new(
        SipayConfig::new(creds.app_id, creds.app_secret, creds.merchant_key)
            .with_base_url(&creds.base_url)?
            .with_refund_webhook_key("refunds"),
    )?;

    let request = RefundRequest::builder(
        PaymentRef::payment("INV-2026-0042"),
        Money::parse("25.00", Currency::Try)?,
    )
    .reference("order-42-refund-1")
    .build()?;
    let receipt = sipay.refund(&request).await?;
    println!(
        "refund {} of {}: {:?}",
        receipt.reference, receipt.amount, receipt.status
    );
    if receipt.status != RefundStatus::Pending {
        return Err("expected SiPay to answer 101 (pending)".into());
    }
    // What the application keeps until the outcome is known (its database, in real life).
    let mut pending: Vec<RefundReceipt> = vec![receipt];

    // Wait for SiPay's POST, and answer it.
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .map_err(|_| "no notification within 10 s")??;
    let body = read_request_body(&mut stream).await?;
    let reply: &[u8] = match on_notification(&sipay, &body, &mut pending) {
        Ok(()) => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
        // Every refusal gets the same answer: telling the sender why helps a forger.
        Err(why) => {
            println!("notification refused: {why}");
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        }
    };
    stream.write_all(reply).await?;
    stream.shutdown().await?;

    let settled = &pending[0];
    if settled.status != RefundStatus::Completed {
        return Err(format!("the refund is still {:?}", settled.status).into());
    }
    // For money that matters, check status confirms what the notification said.
    let state = sipay.refund_state(&settled.payment).await?;
    let paid = state.paid.map_or_else(|| "?".to_owned(), |p| p.to_string());
    println!("check status: {} refunded of {paid}", state.refunded);
    Ok(())
}

/// The webhook handler: verify, then settle the pending refund it is about. An unknown status
/// or a notification that matches no pending refund settles nothing.
fn on_notification(
    sipay: &Sipay,
    body: &[u8],
    pending: &mut [RefundReceipt],
) -> Result<(), Box<dyn Error>> {
    let verified = sipay.verify_refund_notification(body)?;
    println!(
        "notification: invoice {} order {} amount {} status {:?}",
        verified.invoice_id, verified.order_id, verified.amount, verified.status
    );
    let notice = RefundNotification::from(verified);
    let Some((receipt, status)) = pending
        .iter_mut()
        .find_map(|r| notice.settles(r).map(|status| (r, status)))
    else {
        println!("no pending refund to settle (a repeat, or a status nobody recognises)");
        return Ok(());
    };
    receipt.status = status;
    println!("refund {} settled: {status:?}", receipt.reference);
    Ok(())
}

/// Reads one HTTP/1.1 request and returns its body (by `Content-Length`, at most 64 KiB).
async fn read_request_body(stream: &mut TcpStream) -> Result<Vec<u8>, Box<dyn Error>> {
    const MAX: usize = 64 * 1024;
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 || data.len() > MAX {
            return Err("the request ended before its headers did".into());
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no Content-Length")?;
    if length > MAX {
        return Err("the body is too large".into());
    }
    while data.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("the request ended before its body did".into());
        }
        data.extend_from_slice(&chunk[..n]);
    }
    Ok(data[head_end..head_end + length].to_vec())
}
