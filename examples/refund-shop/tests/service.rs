//! The service end to end, in-process: axum on a loopback port, outbox workers on a throwaway
//! PostgreSQL, SiPay and iyzico simulators that lose answers and lag their lookups, SiPay's
//! refund notifications posted back to the service's webhook.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use refund_core::{Currency, Decimal, Money, PaymentRef};
use refund_iyzico::IyzicoConfig;
use refund_outbox::IntentState;
use refund_outbox::testing::{TestPostgres, TestPostgresError};
use refund_shop::orders::{self, Order, Returned};
use refund_shop::{DatabaseUrl, Shop, ShopConfig};
use refund_sipay::SipayConfig;
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};

/// The clients' timeout: later answers are outcome-unknown.
const TIMEOUT: Duration = Duration::from_millis(300);
/// How long the simulators' lookups hide a fresh refund.
const LAG: Duration = Duration::from_millis(300);
/// The clients' settle time: longer than the lag, short enough for the test.
const SETTLE: Duration = Duration::from_millis(1500);
/// The webhook key the SiPay client sends with every refund.
const WEBHOOK_KEY: &str = "shop-refunds";

static SERVER: OnceLock<Result<TestPostgres, String>> = OnceLock::new();
static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The test binary's PostgreSQL, or `None` (the test says it is skipped) without PostgreSQL
/// binaries. Under CI (`CI` set) a missing PostgreSQL fails the test instead.
fn server() -> Option<&'static TestPostgres> {
    let started = SERVER.get_or_init(|| {
        let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        TestPostgres::start(base).map_err(|e| match e {
            TestPostgresError::NoBinaries => String::new(),
            other => other.to_string(),
        })
    });
    match started {
        Ok(server) => Some(server),
        Err(why) if why.is_empty() => {
            assert!(
                std::env::var_os("CI").is_none(),
                "no PostgreSQL binaries: CI must install them (apt-get install postgresql)"
            );
            eprintln!(
                "SKIPPED refund-shop service test: no PostgreSQL binaries; install them \
                 (Debian: apt-get install postgresql) or set REFUND_OUTBOX_PG_BIN to run it"
            );
            None
        }
        Err(why) => panic!("starting the test PostgreSQL server failed: {why}"),
    }
}

fn recorder() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| PrometheusBuilder::new().install_recorder().unwrap())
        .clone()
}

async fn config(database: &str, sipay: &SipaySim, iyzico: &IyzicoSim) -> ShopConfig {
    let server = server().unwrap();
    server.create_database(database).await.unwrap();
    let sipay = SipayConfig::new(
        SipaySim::APP_ID,
        SipaySim::APP_SECRET,
        SipaySim::MERCHANT_KEY,
    )
    .with_base_url(&sipay.base_url())
    .unwrap()
    .with_timeout(TIMEOUT)
    .with_settle_time(SETTLE)
    .with_refund_webhook_key(WEBHOOK_KEY);
    let iyzico = IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
        .with_base_url(&iyzico.base_url())
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_settle_time(SETTLE);
    let mut config = ShopConfig::new(DatabaseUrl::new(server.url(database)), sipay, iyzico);
    config.workers = 3;
    config.worker_concurrency = 4;
    config.idle_poll = Duration::from_millis(100);
    // Looked up 200 ms after a lost answer: before the lookups' 300 ms lag shows it.
    config.recheck = Duration::from_millis(200);
    config
}

fn try_(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

/// Sums the samples of `name` whose labels include every `label="value"` in `with`.
fn sample(text: &str, name: &str, with: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && with
                    .iter()
                    .all(|(k, v)| labels.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// 60 orders over both providers returned concurrently (every fifth posted twice at once),
/// with lost answers and lagging lookups: every order refunded exactly once on the providers'
/// ledgers, no second intent for a repeated return, every SiPay order settled by its verified
/// notification, a tampered notification refused 400 without echoing anything, and the
/// metrics' counts agreeing with the ledgers; then a graceful shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_returns_with_lost_answers_are_refunded_exactly_once_and_metrics_agree() {
    if server().is_none() {
        return;
    }
    let started = Instant::now();
    let sipay = SipaySim::start().await.unwrap();
    sipay.set_lookup_lag(LAG);
    // SiPay answers 101 (pending) and completes 300 ms later, then posts the notification.
    sipay.set_pending_refunds(true);
    sipay.set_pending_completion(Some(Duration::from_millis(300)));
    let iyzico = IyzicoSim::start().await.unwrap();
    iyzico.set_lookup_lag(LAG);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    sipay
        .set_refund_webhook_url(Some(&format!("{base}/webhooks/sipay/refund")))
        .unwrap();

    let shop = Shop::new(config("shop_e2e", &sipay, &iyzico).await, recorder())
        .await
        .unwrap();
    let pool = shop.pool().clone();

    // 30 SiPay invoices and 30 iyzico basket lines, each an order of its whole amount.
    const ORDERS: i64 = 60;
    for id in 1..=ORDERS {
        let amount = Decimal::new(1_000 + id * 25, 2);
        let (provider, payment) = if id % 2 == 0 {
            let invoice = format!("shop-inv-{id}");
            sipay.add_payment(&invoice, amount, Currency::Try);
            ("sipay", PaymentRef::payment(invoice))
        } else {
            let p = iyzico.add_payment(Currency::Try, &[amount]);
            let item = p.items[0].payment_transaction_id.clone();
            ("iyzico", PaymentRef::item(item).in_payment(p.payment_id))
        };
        let order = Order {
            id,
            provider: provider.into(),
            payment,
            amount: Money::new(amount, Currency::Try).unwrap(),
            status: "paid".into(),
        };
        orders::insert(&pool, &order).await.unwrap();
    }
    // The first refund requests of each provider: 4 applied and never answered, 3 applied
    // only after the client gave up (600 ms, its timeout is 300 ms), 2 refused with a 503.
    let late = Fault::Delay(Duration::from_millis(600));
    sipay.arm(Fault::LostResponse, 4);
    sipay.arm(late, 3);
    sipay.arm(Fault::Http503, 2);
    iyzico.arm(Fault::LostResponse, 4);
    iyzico.arm(late, 3);
    iyzico.arm(Fault::Http503, 2);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(shop.serve(listener, async move {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let mut posts = tokio::task::JoinSet::new();
    for id in 1..=ORDERS {
        let times = if id % 5 == 0 { 2 } else { 1 };
        for _ in 0..times {
            let (http, url) = (http.clone(), format!("{base}/orders/{id}/return"));
            posts
                .spawn(async move { (id, http.post(url).send().await.unwrap().status().as_u16()) });
        }
    }
    let mut answers: HashMap<i64, Vec<u16>> = HashMap::new();
    while let Some(done) = posts.join_next().await {
        let (id, status) = done.unwrap();
        answers.entry(id).or_default().push(status);
    }
    for (id, mut got) in answers {
        got.sort_unstable();
        let want: &[u16] = if id % 5 == 0 { &[200, 202] } else { &[202] };
        assert_eq!(got, want, "order {id}: one 202 (accepted), a repeat 200");
    }
    // A return of an order that does not exist.
    let missing = http
        .post(format!("{base}/orders/9999/return"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // Wait until every intent is final and every SiPay order settled by its notification.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut conn = pool.acquire().await.unwrap();
    loop {
        let status = refund_outbox::sqlx::status(&mut conn, Duration::from_secs(3600), 10)
            .await
            .unwrap();
        let completed = orders::all(&pool)
            .await
            .unwrap()
            .iter()
            .filter(|o| o.status == "refund_completed")
            .count();
        let finals = status.count(IntentState::Refunded)
            + status.count(IntentState::Declined)
            + status.count(IntentState::Failed);
        if finals == status.total() && completed == 30 {
            assert_eq!(
                status.total(),
                60,
                "one intent per order, none for a repeat"
            );
            assert_eq!(status.count(IntentState::Refunded), 60, "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not final after 40 s: {status:?}, {completed} SiPay orders settled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(conn);

    // The ledgers: each order's payment refunded exactly once, under its reference, in full.
    let mut ledger_refunds = 0_usize;
    for order in orders::all(&pool).await.unwrap() {
        let reference = orders::return_reference(order.id).unwrap().to_string();
        let refunds: Vec<Decimal> = if order.provider == "sipay" {
            assert_eq!(order.status, "refund_completed", "order {}", order.id);
            let p = sipay.payment(order.payment.id()).unwrap();
            assert!(
                p.pending_refunds.is_empty(),
                "order {}: still pending",
                order.id
            );
            assert!(
                p.refunds
                    .iter()
                    .all(|r| r.refund_transaction_id.as_deref() == Some(reference.as_str()))
            );
            p.refunds.iter().map(|r| r.amount).collect()
        } else {
            assert_eq!(order.status, "returned", "order {}", order.id);
            let item = iyzico.ledger().item(order.payment.id()).unwrap().clone();
            assert!(
                item.refunds
                    .iter()
                    .all(|r| r.conversation_id.as_deref() == Some(reference.as_str()))
            );
            item.refunds.iter().map(|r| r.price).collect()
        };
        assert_eq!(
            refunds,
            [order.amount.amount()],
            "order {}: exactly one refund, in full",
            order.id
        );
        ledger_refunds += refunds.len();
    }
    assert_eq!(ledger_refunds, 60);

    // A tampered notification (a real one with its amount changed) is refused with a bare 400.
    let delivered = sipay.notifications();
    assert!(delivered.len() >= 30, "{} notifications", delivered.len());
    assert!(
        delivered.iter().all(|d| d.answer == Ok(200)),
        "{delivered:?}"
    );
    let tampered: String = delivered[0]
        .body
        .split('&')
        .map(|pair| {
            if pair.starts_with("amount=") {
                "amount=1.00".to_owned()
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    assert_ne!(tampered, delivered[0].body);
    let refused = http
        .post(format!("{base}/webhooks/sipay/refund"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let said = refused.text().await.unwrap();
    assert!(said.is_empty(), "a refusal says nothing: {said:?}");
    // A replayed genuine notification settles nothing more and is still acknowledged.
    let replay = http
        .post(format!("{base}/webhooks/sipay/refund"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(delivered[0].body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 200);

    // The metrics agree with the ledgers.
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let calls_ok = sample(
        &text,
        "refund_provider_calls_total",
        &[("operation", "refund"), ("outcome", "ok")],
    );
    let recovered = sample(
        &text,
        "refund_lookup_verdicts_total",
        &[("verdict", "applied")],
    );
    let lost = sample(
        &text,
        "refund_provider_calls_total",
        &[("operation", "refund"), ("outcome", "outcome_unknown")],
    );
    eprintln!(
        "refund-shop: {calls_ok} refunds answered, {lost} outcome-unknown, {recovered} recovered by lookup, \
         {} not yet known, {} safe to resend, {} lookups in all, in {:?}",
        sample(
            &text,
            "refund_lookup_verdicts_total",
            &[("verdict", "not_yet_known")]
        ),
        sample(
            &text,
            "refund_lookup_verdicts_total",
            &[("verdict", "safe_to_resend")]
        ),
        sample(&text, "refund_lookup_verdicts_total", &[]),
        started.elapsed()
    );
    assert!(
        recovered >= 8.0,
        "the lost answers were recovered by a lookup:\n{text}"
    );
    let too_early = sample(
        &text,
        "refund_lookup_verdicts_total",
        &[("verdict", "not_yet_known")],
    );
    assert!(
        too_early >= 1.0,
        "some lookups came before the lag or the late application:\n{text}"
    );
    #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
    let counted = calls_ok + recovered;
    #[allow(clippy::cast_precision_loss)]
    let on_ledgers = ledger_refunds as f64;
    assert_eq!(
        counted, on_ledgers,
        "answered + recovered == refunds on the ledgers:\n{text}"
    );
    assert_eq!(
        sample(&text, "shop_returns_total", &[("result", "accepted")]),
        60.0
    );
    assert_eq!(
        sample(
            &text,
            "shop_returns_total",
            &[("result", "already_returned")]
        ),
        12.0
    );
    assert_eq!(
        sample(
            &text,
            "shop_sipay_notifications_total",
            &[("result", "settled")]
        ),
        30.0
    );
    assert_eq!(
        sample(
            &text,
            "shop_sipay_notifications_total",
            &[("result", "refused")]
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "refund_outbox_intents", &[("state", "refunded")]),
        60.0
    );
    assert_eq!(sample(&text, "refund_outbox_stuck_intents", &[]), 0.0);
    assert_eq!(
        sample(
            &text,
            "refund_attempt_decisions_total",
            &[("state", "refunded")]
        ),
        60.0,
        "one decision per intent ends refunded:\n{text}"
    );
    assert!(!text.contains(SipaySim::APP_SECRET) && !text.contains(SipaySim::MERCHANT_KEY));

    // Graceful shutdown: the server and the workers stop.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the service stops within 10 s")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// A return whose enqueue is refused (an intent with the order's reference is already in the
/// outbox, written by someone else) rolls the order's change back with it: the order stays
/// `paid` and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_whose_enqueue_is_refused_leaves_the_order_paid() {
    if server().is_none() {
        return;
    }
    let sipay = SipaySim::start().await.unwrap();
    let iyzico = IyzicoSim::start().await.unwrap();
    let shop = Shop::new(config("shop_rollback", &sipay, &iyzico).await, recorder())
        .await
        .unwrap();
    let pool = shop.pool();
    sipay.add_payment("inv-7", Decimal::new(5_000, 2), Currency::Try);
    let order = Order {
        id: 7,
        provider: "sipay".into(),
        payment: PaymentRef::payment("inv-7"),
        amount: try_("50.00"),
        status: "paid".into(),
    };
    orders::insert(pool, &order).await.unwrap();
    let squatter = refund_outbox::RefundIntent::new(
        "sipay",
        PaymentRef::payment("inv-other"),
        try_("1.00"),
        orders::return_reference(7).unwrap(),
    )
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    refund_outbox::sqlx::enqueue(&mut conn, &squatter)
        .await
        .unwrap();
    drop(conn);

    assert_eq!(
        orders::return_order(pool, 7).await.unwrap(),
        Returned::Conflict
    );
    assert_eq!(orders::find(pool, 7).await.unwrap().unwrap().status, "paid");
    assert_eq!(
        orders::return_order(pool, 8).await.unwrap(),
        Returned::NotFound
    );
    let mut conn = pool.acquire().await.unwrap();
    let status = refund_outbox::sqlx::status(&mut conn, Duration::from_secs(3600), 10)
        .await
        .unwrap();
    assert_eq!(status.total(), 1, "only the squatter's intent");
}
