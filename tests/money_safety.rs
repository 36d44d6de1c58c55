//! The randomized money-safety test, through `Retrying` (the batch side is
//! `crates/refund-cli/tests/batch_safety.rs`).
//!
//! Hundreds of refunds per provider go through `Retrying` at once against simulators that
//! behave like payment systems under load: answers come late (and are applied after the
//! client gave up), answers are lost after the refund was applied, the bank refuses and the
//! refusal is lost, servers fail, rate limits hit, and lookups show refunds only after a lag.
//! Every payment is paid far more than its one refund, so a double refund would be accepted
//! and visible. Invariants, checked against the simulators' ledgers:
//!
//! - never more than one applied refund per row, at any check;
//! - a receipt means exactly one applied refund; an outcome-known error means none;
//! - once the settle time has passed, reconciliation agrees with the ledger for every row
//!   whose outcome was unknown (applied ⇔ on the books; "safe to resend" only when nothing is
//!   on the books), and a resend then leaves exactly one.
//!
//! The run is seeded: set `MONEY_SAFETY_SEED` to replay one; every assertion names the seed.
//! `MONEY_SAFETY_ROWS` sets the rows per provider (default 1,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stdout, clippy::cast_possible_truncation)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use refund_core::{
    Currency, Decimal, Money, PaymentRef, Reconciler, RefundProvider, RefundRequest, RetryPolicy,
    Retrying, Verdict,
};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::{Sipay, SipayConfig};
use refund_testkit::sim::{Fault, IyzicoSim, SipaySim};
use tokio::sync::Semaphore;

/// The client's timeout: answers later than this are outcome-unknown.
const TIMEOUT: Duration = Duration::from_millis(300);
/// How long the simulators' lookups hide a fresh refund.
const LAG: Duration = Duration::from_millis(400);
/// The longest a simulator holds a request before applying it (`Fault::Delay`).
const MAX_DELAY_MS: u64 = 900;
/// The clients' declared settle time: it must cover the longest late application plus the lag.
const SETTLE: Duration = Duration::from_secs(3);
const IN_FLIGHT: usize = 48;

/// splitmix64: small, seedable, and enough for picking faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("MONEY_SAFETY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

fn rows() -> usize {
    std::env::var("MONEY_SAFETY_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000)
}

/// A fault for one refund, or none (about a third of the rows are faulted).
fn pick_fault(rng: &mut Rng) -> Option<Fault> {
    Some(match rng.below(30) {
        0 | 1 => Fault::Delay(Duration::from_millis(rng.below(MAX_DELAY_MS) + 1)),
        2 | 3 => Fault::LostResponse,
        4 => Fault::Timeout,
        5 => Fault::Reset,
        6 => Fault::Http500,
        7 => Fault::Malformed,
        8 => Fault::Empty,
        9 => Fault::Fail,
        10 => Fault::FailLostResponse,
        11 => Fault::Http429,
        _ => return None,
    })
}

/// One provider under test: its client and a view of its simulator's books.
trait Books: Send + Sync {
    fn provider(&self) -> Arc<dyn RefundProvider>;
    /// Seeds a payment of 100.00 and returns the reference to refund.
    fn seed(&self, row: usize) -> PaymentRef;
    /// Applied refunds carrying `reference` on the simulator's books.
    fn applied(&self, payment: &PaymentRef, reference: &str) -> usize;
    fn arm(&self, fault: Fault);
    fn disarm(&self);
}

struct SipayBooks {
    sim: SipaySim,
    client: Arc<dyn RefundProvider>,
}

impl Books for SipayBooks {
    fn provider(&self) -> Arc<dyn RefundProvider> {
        Arc::clone(&self.client)
    }
    fn seed(&self, row: usize) -> PaymentRef {
        let invoice = format!("ms-inv-{row}");
        self.sim
            .add_payment(&invoice, Decimal::new(10_000, 2), Currency::Try);
        PaymentRef::payment(invoice)
    }
    fn applied(&self, payment: &PaymentRef, reference: &str) -> usize {
        self.sim.payment(payment.id()).map_or(0, |p| {
            p.refunds
                .iter()
                .filter(|r| r.refund_transaction_id.as_deref() == Some(reference))
                .count()
        })
    }
    fn arm(&self, fault: Fault) {
        self.sim.arm(fault, 1);
    }
    fn disarm(&self) {
        self.sim.disarm();
    }
}

struct IyzicoBooks {
    sim: IyzicoSim,
    client: Arc<dyn RefundProvider>,
}

impl Books for IyzicoBooks {
    fn provider(&self) -> Arc<dyn RefundProvider> {
        Arc::clone(&self.client)
    }
    fn seed(&self, _row: usize) -> PaymentRef {
        let payment = self
            .sim
            .add_payment(Currency::Try, &[Decimal::new(10_000, 2)]);
        PaymentRef::item(payment.items[0].payment_transaction_id.clone())
            .in_payment(payment.payment_id)
    }
    fn applied(&self, payment: &PaymentRef, reference: &str) -> usize {
        let Some(parent) = payment.parent() else {
            return 0;
        };
        self.sim.payment(parent).map_or(0, |p| {
            p.refunds()
                .filter(|(_, r)| r.conversation_id.as_deref() == Some(reference))
                .count()
        })
    }
    fn arm(&self, fault: Fault) {
        self.sim.arm(fault, 1);
    }
    fn disarm(&self) {
        self.sim.disarm();
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(3)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .reconcile(true, Duration::from_millis(100))
        .reconcile_window(Duration::from_secs(6))
}

#[derive(Debug)]
enum Ended {
    /// A receipt; `true` when `Retrying` recovered it by a lookup after an unknown outcome.
    Refunded(bool),
    NotRefunded,
    Unknown(String),
}

async fn run(books: Arc<dyn Books>, seed: u64, rows: usize) -> (usize, usize, usize) {
    let name = books.provider().name();
    let mut rng = Rng(seed ^ name.len() as u64);
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for row in 0..rows {
        let payment = books.seed(row);
        let amount = Money::new(
            Decimal::new(rng.below(4_900) as i64 + 100, 2),
            Currency::Try,
        )
        .unwrap();
        let reference = format!("ms-{name}-{seed}-{row}");
        let fault = pick_fault(&mut rng);
        let books = Arc::clone(&books);
        let gate = Arc::clone(&gate);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            if let Some(fault) = fault {
                books.arm(fault);
            }
            let request = RefundRequest::builder(payment.clone(), amount)
                .reference(reference.as_str())
                .build()
                .unwrap();
            let retrying = Retrying::new(books.provider(), policy());
            let result = retrying.refund(&request).await;
            let applied = books.applied(&payment, &reference);
            assert!(
                applied <= 1,
                "seed {seed}: {name} row {row} ({reference}) is on the books {applied} times after {result:?}"
            );
            let ended = match &result {
                Ok(receipt) => {
                    assert_eq!(
                        applied, 1,
                        "seed {seed}: {name} row {row} ({reference}) has a receipt but the books show {applied} refunds"
                    );
                    Ended::Refunded(receipt.reconciled)
                }
                Err(e) if e.is_outcome_known() => {
                    assert_eq!(
                        applied, 0,
                        "seed {seed}: {name} row {row} ({reference}) answered {e} (outcome known) but the books show the refund"
                    );
                    Ended::NotRefunded
                }
                Err(e) => Ended::Unknown(e.to_string()),
            };
            (row, payment, request, ended)
        });
    }
    let mut finished = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        finished.push(joined.unwrap());
    }

    // Reconcile every row left unknown, once the settle time has passed for all of them.
    books.disarm();
    tokio::time::sleep(SETTLE + Duration::from_millis(200)).await;
    let provider = books.provider();
    let reconciler = Reconciler::for_provider(&*provider);
    let attempted_long_ago = SystemTime::now() - SETTLE - Duration::from_millis(100);
    let (mut refunded, mut not_refunded, mut reconciled) = (0, 0, 0);
    let mut recovered_by_retrying = 0;
    for (row, payment, request, ended) in finished {
        let reference = request.reference().as_str().to_owned();
        match ended {
            Ended::Refunded(recovered) => {
                refunded += 1;
                recovered_by_retrying += usize::from(recovered);
            }
            Ended::NotRefunded => not_refunded += 1,
            Ended::Unknown(why) => {
                reconciled += 1;
                let verdict = reconciler
                    .look_up(
                        &*provider,
                        &payment,
                        &refund_core::Attempt::first(
                            request.reference().clone(),
                            attempted_long_ago,
                        ),
                        std::time::SystemTime::now,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed}: {name} row {row}: lookup failed: {e}"))
                    .verdict;
                let applied = books.applied(&payment, &reference);
                match verdict {
                    Verdict::Applied(_) => {
                        assert_eq!(
                            applied, 1,
                            "seed {seed}: {name} row {row} ({reference}) reconciled as applied, books show {applied} (was: {why})"
                        );
                        refunded += 1;
                    }
                    Verdict::NotApplied(_) => {
                        assert_eq!(
                            applied, 0,
                            "seed {seed}: {name} row {row} ({reference}) reconciled as failed, books show {applied} (was: {why})"
                        );
                        not_refunded += 1;
                    }
                    Verdict::SafeToResend => {
                        assert_eq!(
                            applied, 0,
                            "seed {seed}: {name} row {row} ({reference}) judged safe to resend while on the books: a resend pays twice (was: {why})"
                        );
                        let receipt = Retrying::new(Arc::clone(&provider), policy())
                            .refund(&request)
                            .await;
                        let applied = books.applied(&payment, &reference);
                        assert!(
                            receipt.is_ok() && applied == 1,
                            "seed {seed}: {name} row {row} ({reference}): the resend answered {receipt:?}, books show {applied}"
                        );
                        refunded += 1;
                    }
                    other => panic!(
                        "seed {seed}: {name} row {row} ({reference}): after the settle time the lookup still answers {other:?} (was: {why})"
                    ),
                }
            }
        }
        let applied = books.applied(&payment, &reference);
        assert!(
            applied <= 1,
            "seed {seed}: {name} row {row} ({reference}) is on the books {applied} times in the end"
        );
    }
    (refunded, not_refunded, reconciled + recovered_by_retrying)
}

async fn sipay_books() -> Arc<dyn Books> {
    let sim = SipaySim::start().await.unwrap();
    sim.set_lookup_lag(LAG);
    let client = Sipay::new(
        SipayConfig::new(
            SipaySim::APP_ID,
            SipaySim::APP_SECRET,
            SipaySim::MERCHANT_KEY,
        )
        .with_base_url(&sim.base_url())
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_settle_time(SETTLE),
    )
    .unwrap();
    Arc::new(SipayBooks {
        sim,
        client: Arc::new(client),
    })
}

async fn iyzico_books() -> Arc<dyn Books> {
    let sim = IyzicoSim::start().await.unwrap();
    sim.set_lookup_lag(LAG);
    let client = Iyzico::new(
        IyzicoConfig::new(IyzicoSim::API_KEY, IyzicoSim::SECRET_KEY)
            .with_base_url(&sim.base_url())
            .unwrap()
            .with_timeout(TIMEOUT)
            .with_settle_time(SETTLE),
    )
    .unwrap();
    Arc::new(IyzicoBooks {
        sim,
        client: Arc::new(client),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_refunds_through_retrying_never_pay_twice_and_agree_with_the_ledger() {
    let seed = seed();
    let rows = rows();
    println!(
        "money_safety seed {seed} ({rows} rows per provider; replay with MONEY_SAFETY_SEED={seed})"
    );
    let started = std::time::Instant::now();
    let (sipay, iyzico) = tokio::join!(
        async { run(sipay_books().await, seed, rows).await },
        async { run(iyzico_books().await, seed, rows).await },
    );
    for (name, (refunded, not_refunded, reconciled)) in [("sipay", sipay), ("iyzico", iyzico)] {
        println!(
            "{name}: {refunded} refunded, {not_refunded} not refunded, {reconciled} recovered by a lookup after an unknown outcome"
        );
        assert_eq!(
            refunded + not_refunded,
            rows,
            "seed {seed}: {name} rows unaccounted for"
        );
        assert!(
            reconciled > 0,
            "seed {seed}: {name}: no row needed reconciling; the faults did not bite"
        );
    }
    println!("took {:.1} s", started.elapsed().as_secs_f64());
}
