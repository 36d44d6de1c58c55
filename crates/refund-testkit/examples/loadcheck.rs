//! A rough throughput check of the simulators: keep-alive connections sending signed
//! requests over raw TCP (a lean client, so most of the CPU goes to the server).
//!
//! ```text
//! cargo run --release -p refund-testkit --example loadcheck [-- <connections> <seconds>]
//! ```
//! The client shares the machine, so the server alone is faster than what this prints.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use refund_core::Currency;
use refund_testkit::sim::{IyzicoSim, SipaySim};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn hammer(
    addr: std::net::SocketAddr,
    request: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    let mut body = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        write.write_all(&request).await.unwrap();
        let mut length = 0usize;
        let mut status_ok = false;
        loop {
            line.clear();
            read.read_line(&mut line).await.unwrap();
            if line.starts_with("HTTP/1.1 ") {
                status_ok = line.starts_with("HTTP/1.1 200");
            }
            if let Some(v) = line.strip_prefix("content-length: ") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        body.resize(length, 0);
        read.read_exact(&mut body).await.unwrap();
        assert!(status_ok, "{}", String::from_utf8_lossy(&body));
        done.fetch_add(1, Ordering::Relaxed);
    }
}

async fn run(
    name: &str,
    addr: std::net::SocketAddr,
    request: Vec<u8>,
    connections: usize,
    seconds: u64,
) {
    let request = Arc::new(request);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(hammer(
            addr,
            Arc::clone(&request),
            Arc::clone(&stop),
            Arc::clone(&done),
        )));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    let rate = u128::from(n) * 1000 / elapsed.as_millis().max(1);
    println!(
        "{name}: {n} requests in {} ms = {rate} req/s ({connections} connections)",
        elapsed.as_millis()
    );
}

fn http(path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);

    let iyzico = IyzicoSim::start().await.unwrap();
    let payment = iyzico.add_payment(Currency::Try, &["1000000000.0".parse().unwrap()]);
    let body = format!(
        r#"{{"locale":"tr","conversationId":"c","paymentTransactionId":"{}","price":"0.01","ip":"1.2.3.4","currency":"TRY"}}"#,
        payment.items[0].payment_transaction_id
    );
    let auth = refund_iyzico::signature::authorization_header(
        IyzicoSim::API_KEY,
        IyzicoSim::SECRET_KEY,
        "123",
        "/payment/refund",
        body.as_bytes(),
    );
    let request = http(
        "/payment/refund",
        &[("authorization", auth), ("x-iyzi-rnd", "123".into())],
        body.as_bytes(),
    );
    run(
        "iyzico /payment/refund (recording on)",
        iyzico.addr(),
        request.clone(),
        connections,
        seconds,
    )
    .await;
    iyzico.set_recording(false);
    run(
        "iyzico /payment/refund (recording off)",
        iyzico.addr(),
        request,
        connections,
        seconds,
    )
    .await;

    let sipay = SipaySim::start().await.unwrap();
    sipay.add_payment("INV-1", "100.00".parse().unwrap(), Currency::Try);
    let token = {
        let c = reqwest::Client::new();
        let reply: serde_json::Value = serde_json::from_slice(
            &c.post(format!("{}/ccpayment/api/token", sipay.base_url()))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"app_id":"{}","app_secret":"{}"}}"#,
                    SipaySim::APP_ID,
                    SipaySim::APP_SECRET
                ))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        reply["data"]["token"].as_str().unwrap().to_owned()
    };
    let hash =
        refund_sipay::hash_key::generate(SipaySim::APP_SECRET, &["INV-1", SipaySim::MERCHANT_KEY]);
    let body = serde_json::json!({"merchant_key": SipaySim::MERCHANT_KEY, "invoice_id": "INV-1",
        "include_pending_status": true, "hash_key": hash, "show_refund_info": "Y"})
    .to_string();
    let request = http(
        "/ccpayment/api/checkstatus",
        &[("authorization", format!("Bearer {token}"))],
        body.as_bytes(),
    );
    sipay.set_recording(false);
    run(
        "sipay /ccpayment/api/checkstatus (recording off)",
        sipay.addr(),
        request,
        connections,
        seconds,
    )
    .await;
}
