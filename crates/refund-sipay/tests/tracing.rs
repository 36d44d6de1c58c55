//! Tracing output of the SiPay client: spans name the call, and no secret appears. In its own
//! test binary, so no other test's callsites share the subscriber's interest cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest};
use refund_sipay::{Sipay, SipayConfig, paths};
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const APP_ID: &str = "6d4a7e9374a76c15260fcc75e315b0b9";
const APP_SECRET: &str = "b46a67571aa1e7ef5641dc3fa6f1712a";
const MERCHANT_KEY: &str = "$2y$10$HmRgYosneqcwHj.UH7upGuyCZqpQ1ITgSMj9Vvxn.t6f.Vdf2SQFO";
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.sipay-test-token.signature";

fn assert_clean(text: &str) {
    for s in [
        APP_SECRET,
        MERCHANT_KEY,
        TOKEN,
        "HmRgYosneqcwHj",
        "b46a67571aa1e7ef",
    ] {
        assert!(!text.contains(s), "secret leaked in: {text}");
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_output_names_the_call_and_never_a_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_env_filter("refund_sipay=trace,refund_core=trace")
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(path(paths::TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status_code": 100, "status_description": "Successfully Generated token",
            "data": {"token": TOKEN, "is_3d": 1, "expires_at": "2025-01-14 22:53:53"}
        })))
        .mount(&server)
        .await;
    Mock::given(path(paths::REFUND))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthenticated."})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(paths::REFUND))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status_code": 100, "status_description": "Refund completed successfully",
            "order_no": "VP1", "invoice_id": "INV-TRACE", "ref_no": "6028"
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(path(paths::CHECK_STATUS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status_code": 100, "invoice_id": "INV-TRACE", "total_refunded_amount": "12.50",
            "transaction_amount": "100.00", "currency_code": "TRY",
            "refund_info": [{"refund_transaction_id": "ref-trace", "amount": "12.50"}]
        })))
        .mount(&server)
        .await;
    let sipay = Sipay::new(
        SipayConfig::new(APP_ID, APP_SECRET, MERCHANT_KEY)
            .with_base_url(&server.uri())
            .unwrap(),
    )
    .unwrap();
    let request = RefundRequest::builder(
        PaymentRef::payment("INV-TRACE"),
        Money::parse("12.5", Currency::Try).unwrap(),
    )
    .reference("ref-trace")
    .build()
    .unwrap();
    sipay.refund(&request).await.unwrap();
    sipay
        .refund_state(&PaymentRef::payment("INV-TRACE"))
        .await
        .unwrap();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("sipay.refund"), "{text}");
    assert!(text.contains("sipay.token"), "{text}");
    assert!(text.contains("sipay.lookup"), "{text}");
    assert!(text.contains("invoice_id=INV-TRACE"), "{text}");
    assert!(text.contains("reference=ref-trace"), "{text}");
    assert!(text.contains("outcome=\"completed\""), "{text}");
    assert!(text.contains("outcome=\"found\""), "{text}");
    assert!(text.contains("outcome=\"token\""), "{text}");
    assert!(text.contains("amount=12.50 TRY"), "{text}");
    assert_clean(&text);
}
