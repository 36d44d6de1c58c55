//! What the outbox tests share: one throwaway PostgreSQL server per test binary (a database
//! per test), the SiPay and iyzico simulators with clients that time out fast and settle in
//! two seconds, and their ledgers.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use refund_core::{
    Currency, Decimal, MerchantRef, Money, PaymentRef, ProviderRegistry, RefundProvider,
};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_outbox::testing::{TestPostgres, TestPostgresError};
use refund_outbox::tokio_postgres::Client;
use refund_outbox::{RefundIntent, enqueue};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::{IyzicoSim, SipaySim};

/// The clients' timeout: answers later than this are outcome-unknown.
pub const TIMEOUT: Duration = Duration::from_millis(300);
/// How long the simulators' lookups hide a fresh refund.
pub const LAG: Duration = Duration::from_millis(300);
/// The clients' settle time: covers the longest late application the tests arm
/// (`Fault::Delay` up to 800 ms) plus the lag.
pub const SETTLE: Duration = Duration::from_secs(2);

static SERVER: OnceLock<Result<TestPostgres, String>> = OnceLock::new();
static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// The test binary's server, or `None` (the test is skipped, and says so) when no
/// PostgreSQL binaries are installed. Under CI (`CI` set) a missing server fails the test:
/// CI installs PostgreSQL, and its tests are never skipped there.
pub fn server() -> Option<&'static TestPostgres> {
    let started = SERVER.get_or_init(|| {
        let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let t = std::time::Instant::now();
        let started = TestPostgres::start(base).map_err(|e| match e {
            TestPostgresError::NoBinaries => String::new(),
            other => other.to_string(),
        });
        if let Ok(server) = &started {
            eprintln!(
                "outbox tests: PostgreSQL started on 127.0.0.1:{} in {:?}",
                server.port(),
                t.elapsed()
            );
        }
        started
    });
    match started {
        Ok(server) => Some(server),
        Err(why) if why.is_empty() => {
            assert!(
                std::env::var_os("CI").is_none(),
                "no PostgreSQL binaries: CI must install them (apt-get install postgresql)"
            );
            let n = SKIPPED.fetch_add(1, Ordering::SeqCst) + 1;
            eprintln!(
                "SKIPPED (outbox test {n} skipped so far): no PostgreSQL binaries; install them \
                 (Debian: apt-get install postgresql) or set REFUND_OUTBOX_PG_BIN to run it"
            );
            None
        }
        Err(why) => panic!("starting the test PostgreSQL server failed: {why}"),
    }
}

/// A fresh database named `name`, migrated.
pub async fn database(name: &str) -> Option<(Client, String)> {
    let server = server()?;
    let mut client = server.create_database(name).await.unwrap();
    refund_outbox::migrate(&mut client).await.unwrap();
    Some((client, server.url(name)))
}

/// Another connection to database `name`.
pub async fn connect(name: &str) -> Client {
    server().unwrap().connect(name).await.unwrap()
}

pub fn sipay_client(base_url: &str) -> Sipay {
    Sipay::new(
        SipayConfig::new(
            SipaySim::APP_ID,
            SipaySim::APP_SECRET,
            SipaySim::MERCHANT_KEY,
        )
        .with_base_url(base_url)
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_settle_time(SETTLE),
    )
    .unwrap()
}

pub fn iyzico_client(base_url: &str) -> Iyzico {
    Iyzico::new(
        IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
            .with_base_url(base_url)
            .unwrap()
            .with_timeout(TIMEOUT)
            .with_settle_time(SETTLE),
    )
    .unwrap()
}

/// Both simulators (lookups lagging [`LAG`]) and a registry of clients for them.
pub struct Sims {
    pub sipay: SipaySim,
    pub iyzico: IyzicoSim,
}

impl Sims {
    pub async fn start() -> Sims {
        let sipay = SipaySim::start().await.unwrap();
        sipay.set_lookup_lag(LAG);
        let iyzico = IyzicoSim::start().await.unwrap();
        iyzico.set_lookup_lag(LAG);
        Sims { sipay, iyzico }
    }

    pub fn registry(&self) -> ProviderRegistry {
        registry(&self.sipay.base_url(), &self.iyzico.base_url())
    }

    /// Seeds a payment of 100.00 TRY with `provider` and returns it.
    pub fn seed(&self, provider: &str, n: usize) -> PaymentRef {
        match provider {
            "sipay" => {
                let invoice = format!("inv-{n}");
                self.sipay
                    .add_payment(&invoice, Decimal::new(10_000, 2), Currency::Try);
                PaymentRef::payment(invoice)
            }
            _ => {
                let p = self
                    .iyzico
                    .add_payment(Currency::Try, &[Decimal::new(10_000, 2)]);
                PaymentRef::item(p.items[0].payment_transaction_id.clone()).in_payment(p.payment_id)
            }
        }
    }

    /// Refunds with `reference` applied to `payment` on the simulator's books.
    pub fn applied(&self, provider: &str, payment: &PaymentRef, reference: &str) -> usize {
        match provider {
            "sipay" => self.sipay.payment(payment.id()).map_or(0, |p| {
                p.refunds
                    .iter()
                    .filter(|r| r.refund_transaction_id.as_deref() == Some(reference))
                    .count()
            }),
            _ => payment
                .parent()
                .and_then(|parent| self.iyzico.payment(parent))
                .map_or(0, |p| {
                    p.refunds()
                        .filter(|(_, r)| r.conversation_id.as_deref() == Some(reference))
                        .count()
                }),
        }
    }
}

pub fn registry(sipay_url: &str, iyzico_url: &str) -> ProviderRegistry {
    ProviderRegistry::new()
        .with(Arc::new(sipay_client(sipay_url)) as Arc<dyn RefundProvider>)
        .with(Arc::new(iyzico_client(iyzico_url)) as Arc<dyn RefundProvider>)
}

/// One intent of the tests: 10.00 TRY of a seeded payment.
#[derive(Clone, Debug)]
pub struct Seeded {
    pub provider: &'static str,
    pub payment: PaymentRef,
    pub reference: String,
}

impl Seeded {
    pub fn intent(&self) -> RefundIntent {
        RefundIntent::new(
            self.provider,
            self.payment.clone(),
            Money::new(Decimal::new(1_000, 2), Currency::Try).unwrap(),
            MerchantRef::new(self.reference.clone()).unwrap(),
        )
        .unwrap()
    }
}

/// Seeds `n` payments per provider and enqueues one intent for each (committed).
pub async fn seed_and_enqueue(sims: &Sims, db: &mut Client, n: usize, tag: &str) -> Vec<Seeded> {
    let mut seeded = Vec::new();
    let tx = db.transaction().await.unwrap();
    for i in 0..n {
        for provider in ["sipay", "iyzico"] {
            let s = Seeded {
                provider,
                payment: sims.seed(provider, seeded.len()),
                reference: format!("{tag}-{provider}-{i}"),
            };
            enqueue(&tx, &s.intent()).await.unwrap();
            seeded.push(s);
        }
    }
    tx.commit().await.unwrap();
    seeded
}

/// `state` of the intent with `reference`.
pub async fn state_of(db: &Client, reference: &str) -> String {
    db.query_one(
        "SELECT state FROM refund_outbox_intents WHERE reference = $1",
        &[&reference],
    )
    .await
    .unwrap()
    .get(0)
}

/// The refund attempts of the intent with `reference`: (outcome, error_kind), oldest first.
pub async fn refund_attempts(
    db: &Client,
    reference: &str,
) -> Vec<(Option<String>, Option<String>)> {
    db.query(
        "SELECT a.outcome, a.error_kind FROM refund_outbox_attempts a
         JOIN refund_outbox_intents i ON i.id = a.intent_id
         WHERE i.reference = $1 AND a.kind = 'refund' ORDER BY a.id",
        &[&reference],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Counts of intents by state, as `state=n` sorted, for assertion messages.
pub async fn states(db: &Client) -> String {
    db.query(
        "SELECT state || '=' || count(*) FROM refund_outbox_intents GROUP BY state ORDER BY state",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect::<Vec<_>>()
    .join(" ")
}
