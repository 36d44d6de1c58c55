//! SiPay's refund notifications: the simulator POSTs them to a loopback URL when a refund
//! completes (at once, or later when it was answered 101), and they verify with
//! refund-sipay's verifier; the test kit's signer makes the same bodies.

use std::time::Duration;

use refund_core::{
    Currency, Money, NotificationStatus, PaymentRef, RefundNotification, RefundProvider,
    RefundRequest, RefundStatus,
};
use refund_sipay::notification::NotificationVerifier;
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::notifications::{SipayNotification, form_encode, post_form};
use refund_testkit::sim::{SimContext, SimRequest, SimResponse, SimServer, Simulator, SipaySim};
use serde_json::{Value, json};

use crate::support::*;

/// A webhook endpoint: answers 200 "OK" to anything and keeps every request (the server's
/// request log).
struct Hook;

impl Simulator for Hook {
    fn handle(&self, _: &SimRequest, _: &SimContext) -> SimResponse {
        SimResponse::text(200, "OK")
    }
    fn seed(&self, _: &Value) -> Result<Value, String> {
        Err("no payments here".into())
    }
    fn ledger(&self) -> Value {
        Value::Null
    }
    fn reset(&self) {}
}

async fn hook() -> (SimServer<Hook>, String) {
    let server = SimServer::start(Hook).await.unwrap();
    let url = format!("{}/hooks/sipay", server.base_url());
    (server, url)
}

/// Waits up to 5 s for `n` requests at the hook.
async fn received(hook: &SimServer<Hook>, n: usize) -> Vec<SimRequest> {
    for _ in 0..500 {
        let requests = hook.requests();
        if requests.len() >= n {
            return requests;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} notifications arrived, not {n}", hook.requests().len());
}

fn sipay(sim: &SipaySim, webhook_key: Option<&str>) -> Sipay {
    let mut config = SipayConfig::new(
        SipaySim::APP_ID,
        SipaySim::APP_SECRET,
        SipaySim::MERCHANT_KEY,
    )
    .with_base_url(&sim.base_url())
    .unwrap()
    .with_timeout(Duration::from_secs(5));
    if let Some(key) = webhook_key {
        config = config.with_refund_webhook_key(key);
    }
    Sipay::new(config).unwrap()
}

fn request(invoice: &str, amount: &str, reference: &str) -> RefundRequest {
    RefundRequest::builder(
        PaymentRef::payment(invoice),
        Money::parse(amount, Currency::Try).unwrap(),
    )
    .reference(reference)
    .build()
    .unwrap()
}

fn verify(body: &[u8]) -> refund_sipay::notification::SipayRefundNotification {
    NotificationVerifier::new(SipaySim::APP_SECRET)
        .verify_form(body)
        .unwrap()
}

async fn admin_post(sim: &SipaySim, path: &str, body: &Value) -> (u16, Value) {
    let (status, text) = post_json(
        &client(),
        &format!("{}{path}", sim.base_url()),
        &[],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    (status, json(&text))
}

async fn admin_get(sim: &SipaySim, path: &str) -> Value {
    let reply = client()
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    json(&reply.text().await.unwrap())
}

#[tokio::test]
async fn a_completed_refund_with_a_webhook_key_is_posted_form_encoded_and_verifies() {
    let sim = SipaySim::start().await.unwrap();
    let (hook, url) = hook().await;
    let order_no = sim
        .add_payment("INV-1", dec("100.00"), Currency::Try)
        .order_no;
    sim.set_refund_webhook_url(Some(&url)).unwrap();

    let receipt = sipay(&sim, Some("sandbox-hook"))
        .refund(&request("INV-1", "10.5", "r-1"))
        .await
        .unwrap();
    assert_eq!(receipt.status, RefundStatus::Completed);

    let requests = received(&hook, 1).await;
    let posted = &requests[0];
    assert_eq!(posted.method, "POST");
    assert_eq!(posted.path, "/hooks/sipay");
    assert_eq!(
        posted.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let notice = verify(&posted.body);
    assert_eq!(notice.invoice_id, "INV-1");
    assert_eq!(notice.order_id, order_no);
    assert_eq!(notice.amount, Money::parse("10.50", Currency::Try).unwrap());
    assert_eq!(notice.status, NotificationStatus::Completed);
    let body = std::str::from_utf8(&posted.body).unwrap();
    assert!(
        body.contains("amount=10.50&status=Completed&hash_key="),
        "{body}"
    );

    // The simulator's own record of the delivery, once the answer is in.
    for _ in 0..100 {
        if !sim.notifications().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deliveries = sim.notifications();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].url, url);
    assert_eq!(deliveries[0].answer, Ok(200));
    assert_eq!(deliveries[0].body.as_bytes(), &posted.body[..]);
}

#[tokio::test]
async fn a_refund_without_a_webhook_key_or_without_a_url_notifies_nothing() {
    let sim = SipaySim::start().await.unwrap();
    let (hook, url) = hook().await;
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    // A key but no URL yet.
    let keyed = sipay(&sim, Some("sandbox-hook"));
    keyed.refund(&request("INV-1", "1", "r-1")).await.unwrap();
    // A URL but no key.
    sim.set_refund_webhook_url(Some(&url)).unwrap();
    sipay(&sim, None)
        .refund(&request("INV-1", "1", "r-2"))
        .await
        .unwrap();
    // A key and a URL: only this one is notified.
    keyed.refund(&request("INV-1", "3", "r-3")).await.unwrap();
    let requests = received(&hook, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hook.requests().len(), 1);
    assert_eq!(verify(&requests[0].body).amount.to_string(), "3.00 TRY");
}

#[tokio::test]
async fn paybulls_spelling_of_the_webhook_key_is_notified_too() {
    let sim = SipaySim::start().await.unwrap();
    let (hook, url) = hook().await;
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    sim.set_refund_webhook_url(Some(&url)).unwrap();
    let client = client();
    let token = sipay_token(&sim, &client).await;
    let mut body: Value =
        serde_json::from_slice(&sipay_refund_body("INV-1", "5.00", "r-1")).unwrap();
    body["refund_webhook_key"] = json!("paybull-hook");
    let (status, text) = post_json(
        &client,
        &format!("{}/ccpayment/api/refund", sim.base_url()),
        &[("authorization", &format!("Bearer {token}"))],
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(json(&text)["status_code"], 100);
    let requests = received(&hook, 1).await;
    assert_eq!(verify(&requests[0].body).amount.to_string(), "5.00 TRY");
}

#[tokio::test]
async fn a_pending_refund_is_answered_101_and_notified_when_the_admin_api_completes_it() {
    let sim = SipaySim::start().await.unwrap();
    let (hook, url) = hook().await;
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    let (status, _) = admin_post(
        &sim,
        "/__sandbox/behaviour",
        &json!({"pending_refunds": true, "refund_webhook_url": url}),
    )
    .await;
    assert_eq!(status, 200);

    let provider = sipay(&sim, Some("sandbox-hook"));
    let receipt = provider
        .refund(&request("INV-1", "25.00", "r-1"))
        .await
        .unwrap();
    assert_eq!(receipt.status, RefundStatus::Pending);
    let payment = sim.payment("INV-1").unwrap();
    assert_eq!(payment.pending(), dec("25.00"));
    assert_eq!(payment.refunded(), dec("0"));
    assert_eq!(payment.remaining(), dec("75.00"));
    // The lookup shows it pending.
    let state = provider
        .refund_state(&PaymentRef::payment("INV-1"))
        .await
        .unwrap();
    assert_eq!(state.refunds.len(), 1, "{state:?}");
    assert_eq!(state.refunds[0].status, RefundStatus::Pending);
    // Nothing is notified while it is pending.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(hook.requests().is_empty());

    let (status, answer) = admin_post(&sim, "/__sandbox/complete_pending", &json!({})).await;
    assert_eq!((status, answer), (200, json!({"completed": 1})));
    let requests = received(&hook, 1).await;
    let notice = RefundNotification::from(verify(&requests[0].body));
    assert_eq!(notice.settles(&receipt), Some(RefundStatus::Completed));
    let payment = sim.payment("INV-1").unwrap();
    assert_eq!(payment.refunded(), dec("25.00"));
    assert!(payment.pending_refunds.is_empty());
    let state = provider
        .refund_state(&PaymentRef::payment("INV-1"))
        .await
        .unwrap();
    assert_eq!(state.refunds[0].status, RefundStatus::Completed);
    let (_, again) = admin_post(&sim, "/__sandbox/complete_pending", &json!({})).await;
    assert_eq!(again, json!({"completed": 0}));
}

#[tokio::test]
async fn a_pending_refund_completes_on_its_own_after_the_configured_delay() {
    let sim = SipaySim::start().await.unwrap();
    let (hook, url) = hook().await;
    sim.add_payment("INV-1", dec("100.00"), Currency::Try);
    sim.set_refund_webhook_url(Some(&url)).unwrap();
    sim.set_pending_refunds(true);
    sim.set_pending_completion(Some(Duration::from_millis(150)));
    let receipt = sipay(&sim, Some("k"))
        .refund(&request("INV-1", "10", "r-1"))
        .await
        .unwrap();
    assert_eq!(receipt.status, RefundStatus::Pending);
    assert_eq!(sim.payment("INV-1").unwrap().pending_refunds.len(), 1);
    let requests = received(&hook, 1).await;
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("10.00"));
    let notice = RefundNotification::from(verify(&requests[0].body));
    assert_eq!(notice.settles(&receipt), Some(RefundStatus::Completed));
    assert_eq!(sim.complete_pending_refunds(), 0);
}

#[tokio::test]
async fn pending_amounts_are_reserved_and_a_reset_forgets_them_and_the_webhook() {
    let sim = SipaySim::start().await.unwrap();
    let (hook, url) = hook().await;
    sim.add_payment("INV-1", dec("30.00"), Currency::Try);
    sim.set_refund_webhook_url(Some(&url)).unwrap();
    sim.set_pending_refunds(true);
    sim.set_pending_completion(Some(Duration::from_millis(200)));
    let provider = sipay(&sim, Some("k"));
    provider
        .refund(&request("INV-1", "20", "r-1"))
        .await
        .unwrap();
    let over = provider
        .refund(&request("INV-1", "20", "r-2"))
        .await
        .unwrap_err();
    assert_eq!(over.kind(), "declined", "{over}");

    sim.reset();
    assert_eq!(sim.refund_webhook_url(), None);
    assert!(sim.ledger().payments.is_empty());
    // The timer of the forgotten pending refund fires into an empty ledger: nothing is sent.
    sim.add_payment("INV-1", dec("30.00"), Currency::Try);
    sim.set_refund_webhook_url(Some(&url)).unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(hook.requests().is_empty());
    assert!(sim.notifications().is_empty());
    assert_eq!(sim.payment("INV-1").unwrap().refunded(), dec("0"));
}

#[tokio::test]
async fn only_loopback_webhook_urls_are_accepted() {
    let sim = SipaySim::start().await.unwrap();
    for url in [
        "https://127.0.0.1:1/",
        "http://hooks.example.com/",
        "http://10.0.0.1:80/",
        "ftp://127.0.0.1:1/",
    ] {
        assert!(sim.set_refund_webhook_url(Some(url)).is_err(), "{url}");
        let (status, answer) = admin_post(
            &sim,
            "/__sandbox/behaviour",
            &json!({"refund_webhook_url": url}),
        )
        .await;
        assert_eq!(status, 400, "{url}: {answer}");
    }
    let (status, answer) = admin_post(
        &sim,
        "/__sandbox/behaviour",
        &json!({"refund_webhook_url": "http://127.0.0.1:9/x", "pending_refunds": "yes"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    // Nothing of a refused body is applied.
    assert_eq!(sim.refund_webhook_url(), None);
    let (status, _) = admin_post(
        &sim,
        "/__sandbox/behaviour",
        &json!({"refund_webhook_url": "http://localhost:9/x", "pending_completion_ms": 5}),
    )
    .await;
    assert_eq!(status, 200);
    let ledger = admin_get(&sim, "/__sandbox/ledger").await;
    assert_eq!(ledger["refund_webhook_url"], "http://localhost:9/x");
    assert_eq!(ledger["pending_completion_ms"], 5);
    assert_eq!(ledger["pending_refunds"], false);
}

#[tokio::test]
async fn a_delivery_nobody_answers_is_recorded_with_its_error() {
    let sim = SipaySim::start().await.unwrap();
    // A port with nothing listening: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    sim.add_payment("INV-1", dec("10.00"), Currency::Try);
    sim.set_refund_webhook_url(Some(&url)).unwrap();
    sipay(&sim, Some("k"))
        .refund(&request("INV-1", "1", "r-1"))
        .await
        .unwrap();
    for _ in 0..300 {
        if !sim.notifications().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deliveries = sim.notifications();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].answer.is_err(), "{:?}", deliveries[0].answer);
    let listed = admin_get(&sim, "/__sandbox/notifications").await;
    assert_eq!(listed["notifications"][0]["url"], url.as_str());
    assert!(listed["notifications"][0]["error"].is_string());
}

#[tokio::test]
async fn the_signer_makes_notifications_the_verifier_accepts_and_delivers_them() {
    let (hook, url) = hook().await;
    let n = SipayNotification::completed("INV 1/ç", "VP&1", "7.5");
    let fields = n.fields("secret");
    let verified = NotificationVerifier::new("secret")
        .verify_fields(fields.iter().map(|(k, v)| (*k, v.as_str())))
        .unwrap();
    assert_eq!(verified.invoice_id, "INV 1/ç");
    assert_eq!(verified.order_id, "VP&1");
    assert_eq!(verified.amount.to_string(), "7.50 TRY");
    let odd = n.clone().with_status("Processing");
    let verified = NotificationVerifier::new("secret")
        .verify_form(odd.form_body("secret").as_bytes())
        .unwrap();
    assert_eq!(
        verified.status,
        NotificationStatus::Unrecognised("Processing".into())
    );
    assert!(
        NotificationVerifier::new("other")
            .verify_form(n.form_body("secret").as_bytes())
            .is_err()
    );

    assert_eq!(n.deliver(&url, "secret").await.unwrap(), 200);
    let requests = received(&hook, 1).await;
    assert_eq!(verify_with("secret", &requests[0].body).order_id, "VP&1");
    // post_form refuses anything but loopback, before connecting.
    assert!(
        post_form("http://example.com/", &form_encode([("a", "b")]))
            .await
            .is_err()
    );
}

fn verify_with(secret: &str, body: &[u8]) -> refund_sipay::notification::SipayRefundNotification {
    NotificationVerifier::new(secret).verify_form(body).unwrap()
}
