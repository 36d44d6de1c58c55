//! Token caching, expiry, single-flight refresh and refresh-once on 401.

use std::sync::Arc;
use std::time::Duration;

use refund_core::{RefundError, RefundProvider};
use refund_sipay::{Sipay, paths};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::*;

async fn mount_success(server: &MockServer, invoice: &str) {
    mount_refund(
        server,
        ResponseTemplate::new(200).set_body_json(success(invoice)),
    )
    .await;
}

#[tokio::test]
async fn one_token_serves_many_refunds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(token_response(TOKEN))
        .expect(1)
        .mount(&server)
        .await;
    mount_success(&server, "INV-1").await;
    let sipay = client(&server);
    for i in 0..5 {
        sipay
            .refund(&refund("INV-1", "1", &format!("r-{i}")))
            .await
            .unwrap();
    }
    // Clones share the token.
    sipay
        .clone()
        .refund(&refund("INV-1", "1", "r-c"))
        .await
        .unwrap();
    assert_eq!(sipay.token_requests(), 1);
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_refunds_on_a_cold_client_make_exactly_one_token_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(token_response(TOKEN).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&server)
        .await;
    mount_success(&server, "INV-1").await;
    let sipay = Sipay::new(config(&server).with_timeout(Duration::from_secs(60))).unwrap();
    let sipay = Arc::new(sipay);
    let mut tasks = Vec::with_capacity(1000);
    for i in 0..1000 {
        let sipay = sipay.clone();
        tasks.push(tokio::spawn(async move {
            sipay.refund(&refund("INV-1", "1", &format!("r-{i}"))).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(count(&server, paths::TOKEN).await, 1);
    assert_eq!(count(&server, paths::REFUND).await, 1000);
    assert_eq!(sipay.token_requests(), 1);
    server.verify().await;
}

#[tokio::test]
async fn an_expired_token_is_fetched_again() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    mount_success(&server, "INV-1").await;
    let sipay =
        Sipay::new(config(&server).with_token_lifetime(Duration::from_millis(300))).unwrap();
    sipay.refund(&refund("INV-1", "1", "r-1")).await.unwrap();
    sipay.refund(&refund("INV-1", "1", "r-2")).await.unwrap();
    assert_eq!(count(&server, paths::TOKEN).await, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    sipay.refund(&refund("INV-1", "1", "r-3")).await.unwrap();
    assert_eq!(count(&server, paths::TOKEN).await, 2);
}

#[test]
fn the_default_lifetime_is_shorter_than_the_documented_two_hours() {
    assert!(refund_sipay::DEFAULT_TOKEN_LIFETIME < refund_sipay::DOCUMENTED_TOKEN_LIFETIME);
    let too_long = refund_sipay::SipayConfig::new("a", "b", "c")
        .with_token_lifetime(refund_sipay::DOCUMENTED_TOKEN_LIFETIME);
    assert!(matches!(
        Sipay::new(too_long),
        Err(RefundError::Configuration { .. })
    ));
}

/// First token "old", then "new"; the refund endpoint refuses "old" with Laravel's 401.
async fn rotating_tokens(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(token_response("old-token"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(token_response(TOKEN))
        .with_priority(2)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(paths::REFUND))
        .and(header("authorization", "Bearer old-token"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthenticated."})),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_401_is_answered_by_one_refresh_and_one_resend() {
    let server = MockServer::start().await;
    rotating_tokens(&server).await;
    Mock::given(RefundShape::new("INV-1", "5.00", "r-401"))
        .respond_with(ResponseTemplate::new(200).set_body_json(success("INV-1")))
        .mount(&server)
        .await;
    let sipay = client(&server);
    let receipt = sipay.refund(&refund("INV-1", "5", "r-401")).await.unwrap();
    assert_eq!(receipt.reference.as_str(), "r-401");
    assert_eq!(count(&server, paths::TOKEN).await, 2);
    assert_eq!(count(&server, paths::REFUND).await, 2);
    // The new token is cached: the next refund needs no token request and no resend.
    sipay.refund(&refund("INV-1", "5", "r-401")).await.unwrap();
    assert_eq!(count(&server, paths::TOKEN).await, 2);
    assert_eq!(count(&server, paths::REFUND).await, 3);
}

#[tokio::test]
async fn a_second_401_is_an_authentication_error_and_nothing_more_is_sent() {
    let server = MockServer::start().await;
    mount_token(&server, TOKEN).await;
    mount_refund(
        &server,
        ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthenticated."})),
    )
    .await;
    let e = client(&server)
        .refund(&refund("INV-1", "1", "r-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, RefundError::AuthenticationRejected { .. }),
        "{e}"
    );
    assert!(e.is_outcome_known() && !e.is_retryable());
    assert_eq!(count(&server, paths::TOKEN).await, 2);
    assert_eq!(count(&server, paths::REFUND).await, 2);
}

#[tokio::test]
async fn invalid_credentials_on_the_token_endpoint_send_no_refund() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status_code": 30, "status_description": "Invalid Credentials", "data": null}),
        ))
        .mount(&server)
        .await;
    let e = client(&server)
        .refund(&refund("INV-1", "1", "r-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, RefundError::AuthenticationRejected { .. }),
        "{e}"
    );
    assert_eq!(e.provider_code(), Some("30"));
    assert_eq!(count(&server, paths::REFUND).await, 0);
}

#[tokio::test]
async fn a_broken_token_endpoint_means_the_refund_was_not_sent_and_may_be_retried() {
    for response in [
        ResponseTemplate::new(500).set_body_string("<html>oops</html>"),
        ResponseTemplate::new(200).set_body_string("not json"),
        ResponseTemplate::new(200).set_body_json(json!({"status_code": 100, "data": {}})),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(paths::TOKEN))
            .respond_with(response)
            .mount(&server)
            .await;
        let e = client(&server)
            .refund(&refund("INV-1", "1", "r-1"))
            .await
            .unwrap_err();
        assert!(matches!(e, RefundError::Unreachable { .. }), "{e}");
        assert!(e.is_retryable() && e.is_outcome_known());
        assert_eq!(count(&server, paths::REFUND).await, 0);
    }
}

#[tokio::test]
async fn a_failed_token_fetch_is_not_cached() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(paths::TOKEN))
        .respond_with(token_response(TOKEN))
        .with_priority(2)
        .mount(&server)
        .await;
    mount_success(&server, "INV-1").await;
    let sipay = client(&server);
    assert!(sipay.refund(&refund("INV-1", "1", "r-1")).await.is_err());
    sipay.refund(&refund("INV-1", "1", "r-1")).await.unwrap();
}

/// Issue 12, failure #7: callers waiting on one token fetch that fails all get that fetch's
/// error. Before, each waiter fetched again in turn: N requests, N × timeout, and N tries of
/// bad credentials (a lockout risk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refunds_share_one_failing_token_fetch() {
    let refused = ResponseTemplate::new(200)
        .set_body_json(
            json!({"status_code": 30, "status_description": "Invalid Credentials", "data": null}),
        )
        .set_delay(Duration::from_millis(300));
    let broken = ResponseTemplate::new(503)
        .set_body_string("<html>503</html>")
        .set_delay(Duration::from_millis(300));
    for (response, kind) in [
        (refused, "authentication_rejected"),
        (broken, "unreachable"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(paths::TOKEN))
            .respond_with(response)
            .mount(&server)
            .await;
        let sipay = Arc::new(client(&server));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let sipay = sipay.clone();
            tasks.push(tokio::spawn(async move {
                sipay.refund(&refund("INV-1", "1", &format!("r-{i}"))).await
            }));
        }
        for t in tasks {
            let e = t.await.unwrap().unwrap_err();
            assert_eq!(e.kind(), kind, "{e}");
        }
        assert_eq!(count(&server, paths::TOKEN).await, 1, "{kind}");
        assert_eq!(sipay.token_requests(), 1);
        assert_eq!(count(&server, paths::REFUND).await, 0);
        // A later call tries again: a failure is shared by its waiters, never cached.
        let _ = sipay.refund(&refund("INV-1", "1", "later")).await;
        assert_eq!(count(&server, paths::TOKEN).await, 2, "{kind}");
    }
}
