//! No secret in Debug, Display, errors or tracing output.

use std::time::Duration;

use refund_core::{RefundError, RefundProvider};
use refund_sipay::{Sipay, SipayConfig};
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use crate::*;

const SECRETS: [&str; 3] = [APP_SECRET, MERCHANT_KEY, TOKEN];

fn assert_clean(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret leaked in: {text}");
    }
    // Parts of the merchant key and the sha1 password derived from the app_secret.
    assert!(!text.contains("HmRgYosneqcwHj"), "{text}");
    assert!(!text.contains("b46a67571aa1e7ef"), "{text}");
}

fn error_text(e: &RefundError) -> String {
    let mut text = format!("{e} | {e:?}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(" | {s} | {s:?}"));
        source = s.source();
    }
    text
}

#[tokio::test]
async fn config_and_client_debug_show_no_secret() {
    let server = MockServer::start().await;
    let config = config(&server);
    assert_clean(&format!("{config:?} {config:#?}"));
    let sipay = client(&server);
    mount_token(&server, TOKEN).await;
    mount_refund(
        &server,
        ResponseTemplate::new(200).set_body_json(success("INV-1")),
    )
    .await;
    sipay.refund(&refund("INV-1", "1", "r")).await.unwrap();
    assert_clean(&format!("{sipay:?} {sipay:#?}"));
}

#[tokio::test]
async fn errors_never_carry_secrets_even_when_the_server_echoes_them() {
    let echo = format!(
        "<html>app_secret={APP_SECRET} merchant_key={MERCHANT_KEY} Authorization: Bearer {TOKEN}</html>"
    );
    let responses = vec![
        ResponseTemplate::new(502).set_body_raw(echo.clone(), "text/html"),
        ResponseTemplate::new(200).set_body_raw(echo.clone(), "text/html"),
        ResponseTemplate::new(200)
            .set_body_json(json!({"status_code": 49, "status_description": echo})),
        ResponseTemplate::new(200)
            .set_body_json(json!({"status_code": 777, "status_description": echo})),
        ResponseTemplate::new(401).set_body_raw(echo.clone(), "text/html"),
        ResponseTemplate::new(200).set_body_json(json!({"status_code": 100, "invoice_id": echo})),
        ResponseTemplate::new(200).set_body_json(json!({"status_code": 104})),
        ResponseTemplate::new(500),
        ResponseTemplate::new(200)
            .set_body_json(success("INV-1"))
            .set_delay(Duration::from_secs(2)),
    ];
    for response in responses {
        let server = MockServer::start().await;
        mount_token(&server, TOKEN).await;
        mount_refund(&server, response).await;
        let sipay = Sipay::new(config(&server).with_timeout(Duration::from_millis(500))).unwrap();
        let e = sipay
            .refund(&refund("INV-1", "1", "r-1"))
            .await
            .unwrap_err();
        assert_clean(&error_text(&e));
    }
    // Token-side failures too.
    let server = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path(refund_sipay::paths::TOKEN))
        .respond_with(ResponseTemplate::new(500).set_body_string(echo))
        .mount(&server)
        .await;
    let e = client(&server)
        .refund(&refund("INV-1", "1", "r-1"))
        .await
        .unwrap_err();
    assert_clean(&error_text(&e));
    // Configuration errors.
    for config in [
        SipayConfig::new(APP_ID, APP_SECRET, format!("{MERCHANT_KEY}|x")),
        SipayConfig::new(APP_ID, format!("{APP_SECRET}\n"), MERCHANT_KEY),
    ] {
        assert_clean(&error_text(&Sipay::new(config).unwrap_err()));
    }
}
