//! The outbox as a driver of the attempt lifecycle (`refund_core::AttemptPolicy`), against a
//! scripted provider whose answers each test sets call by call: what the policy decides is
//! what the intent's row ends with.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use refund_core::{
    Capabilities, Currency, Decimal, MerchantRef, Money, Operation, PaymentRef, ProviderRegistry,
    RefundError, RefundProvider, RefundReceipt, RefundRecord, RefundRequest, RefundState,
    RefundStatus,
};
use refund_outbox::tokio_postgres::Client;
use refund_outbox::{IntentState, RefundIntent, Worker, WorkerConfig, enqueue, status};

use crate::common;
use crate::{config, drain};

/// A provider that answers refunds from a script (`Ok(())`: refunded, on its books) and
/// lookups from its books, each after `lookup_delay`.
#[derive(Debug)]
struct Scripted {
    settle: Duration,
    lookup_delay: Duration,
    answers: Mutex<VecDeque<Result<(), RefundError>>>,
    books: Mutex<Vec<RefundRecord>>,
    refunds: AtomicUsize,
    lookups: AtomicUsize,
}

impl Scripted {
    fn new(
        settle: Duration,
        answers: impl IntoIterator<Item = Result<(), RefundError>>,
    ) -> Arc<Scripted> {
        Arc::new(Scripted {
            settle,
            lookup_delay: Duration::ZERO,
            answers: Mutex::new(answers.into_iter().collect()),
            books: Mutex::new(Vec::new()),
            refunds: AtomicUsize::new(0),
            lookups: AtomicUsize::new(0),
        })
    }

    fn with_lookup_delay(self: Arc<Self>, delay: Duration) -> Arc<Scripted> {
        let mut s = Arc::try_unwrap(self).unwrap();
        s.lookup_delay = delay;
        Arc::new(s)
    }

    /// Puts a refund on the provider's books that no send of the test made.
    fn with_record(self: Arc<Self>, record: RefundRecord) -> Arc<Scripted> {
        self.books.lock().unwrap().push(record);
        self
    }

    fn registry(self: &Arc<Self>) -> ProviderRegistry {
        ProviderRegistry::new().with(Arc::clone(self) as Arc<dyn RefundProvider>)
    }

    fn refunds(&self) -> usize {
        self.refunds.load(Ordering::SeqCst)
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl RefundProvider for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(&[Currency::Try])
            .with_settle_time(self.settle)
            .with_refund_lookup(true)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        let n = self.refunds.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = self.answers.lock().unwrap().pop_front();
        match answer {
            Some(Ok(())) => {
                let id = format!("rf-{n}");
                self.books.lock().unwrap().push(
                    RefundRecord::new(request.amount())
                        .with_reference(request.reference().as_str())
                        .with_provider_reference(&id),
                );
                Ok(RefundReceipt::new(
                    "scripted",
                    Operation::Refund,
                    request.payment().clone(),
                    request.reference().clone(),
                    request.amount(),
                    RefundStatus::Completed,
                )
                .with_refund_id(id))
            }
            Some(Err(e)) => Err(e),
            None => Err(RefundError::configuration("scripted", "the script ran out")),
        }
    }

    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.lookup_delay).await;
        let books = self.books.lock().unwrap().clone();
        let mut refunded = Money::zero(Currency::Try);
        for r in &books {
            refunded = refunded.checked_add(&r.amount).unwrap();
        }
        Ok(books
            .into_iter()
            .fold(RefundState::new(payment.clone(), refunded), |s, r| {
                s.with_record(r)
            }))
    }
}

fn intent(reference: &str) -> RefundIntent {
    intent_on(&format!("inv-{reference}"), reference)
}

fn intent_on(invoice: &str, reference: &str) -> RefundIntent {
    RefundIntent::new(
        "scripted",
        PaymentRef::payment(invoice),
        Money::new(Decimal::new(1_000, 2), Currency::Try).unwrap(),
        MerchantRef::new(reference).unwrap(),
    )
    .unwrap()
}

/// The intent's attempts, oldest first: (kind, outcome).
async fn attempts(db: &Client, reference: &str) -> Vec<(String, Option<String>)> {
    db.query(
        "SELECT a.kind, a.outcome FROM refund_outbox_attempts a
         JOIN refund_outbox_intents i ON i.id = a.intent_id
         WHERE i.reference = $1 ORDER BY a.id",
        &[&reference],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn pair(kind: &str, outcome: &str) -> (String, Option<String>) {
    (kind.to_owned(), Some(outcome.to_owned()))
}

async fn worker(name: &str, provider: &Arc<Scripted>, config: WorkerConfig) -> Worker {
    Worker::new(common::connect(name).await, provider.registry(), config)
        .await
        .unwrap()
}

/// SiPay's 104 (a reference it has seen) right after its own refusal of the same reference:
/// the refusal left the reference used up and nothing refunded, so the intent ends `failed`
/// for a person, with no lookup and no third send, instead of looping 104 → lookup → "safe to
/// resend" → 104.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_104_after_the_intents_own_refusal_ends_failed_not_in_a_loop() {
    let Some((db, _)) = common::database("used_up_104").await else {
        return;
    };
    let provider = Scripted::new(
        Duration::from_millis(300),
        [
            Err(RefundError::declined_retryable(
                "scripted",
                "49",
                "Refund Failed",
            )),
            Err(RefundError::duplicate_reference(
                "scripted",
                "104",
                "refund_transaction_id already used",
            )),
        ],
    );
    enqueue(&db, &intent("used-up")).await.unwrap();
    let w = worker(
        "used_up_104",
        &provider,
        config("w").with_retry_backoff(Duration::from_millis(100), Duration::from_secs(1)),
    )
    .await;
    drain(&w, &db, Duration::from_secs(10)).await;

    assert_eq!(common::state_of(&db, "used-up").await, "failed");
    assert_eq!(
        attempts(&db, "used-up").await,
        [pair("refund", "retry_later"), pair("refund", "used_up")]
    );
    assert_eq!((provider.refunds(), provider.lookups()), (2, 0));
    let (refusals, note): (i32, String) = db
        .query_one(
            "SELECT refusals, note FROM refund_outbox_intents WHERE reference = 'used-up'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(refusals, 1);
    assert!(note.contains("a person decides"), "{note}");
    // A person is asked: `status` lists it.
    let now = status(&db, Duration::from_secs(3600), 10).await.unwrap();
    assert_eq!(now.failed, 1);
    assert_eq!(now.stuck.len(), 1, "{now:?}");
}

/// A temporary decline that says how long to wait (SiPay's 30 seconds between refunds of one
/// invoice, `RefundError::declined_retry_after`) is sent again after that wait, not after the
/// worker's backoff: with a 100 ms backoff, the 30-second one is not claimable for 30 s, and a
/// 1.2-second one is resent only once 1.2 s have passed, then refunded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_decline_with_a_retry_after_waits_that_long_not_the_backoff() {
    let Some((db, _)) = common::database("retry_after_wait").await else {
        return;
    };
    let wait = |secs: f64| {
        Err(RefundError::declined_retry_after(
            "scripted",
            "49",
            "Refund Failed",
            Duration::from_secs_f64(secs),
        ))
    };
    let provider = Scripted::new(Duration::from_millis(300), [wait(30.0), wait(1.2), Ok(())]);
    let w = worker(
        "retry_after_wait",
        &provider,
        config("w").with_retry_backoff(Duration::from_millis(100), Duration::from_millis(200)),
    )
    .await;
    let waited = |reference: &'static str| {
        let db = &db;
        async move {
            db.query_one(
                "SELECT EXTRACT(EPOCH FROM not_before - last_sent_at)::float8
                 FROM refund_outbox_intents WHERE reference = $1",
                &[&reference],
            )
            .await
            .unwrap()
            .get::<_, f64>(0)
        }
    };

    enqueue(&db, &intent("thirty")).await.unwrap();
    let first = w.run_once().await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].state, IntentState::RetryLater);
    let thirty = waited("thirty").await;
    assert!((29.9..30.5).contains(&thirty), "waits {thirty} s");

    enqueue(&db, &intent("short")).await.unwrap();
    let started = Instant::now();
    assert_eq!(
        w.run_once().await.unwrap()[0].state,
        IntentState::RetryLater
    );
    let short = waited("short").await;
    assert!((1.15..1.5).contains(&short), "waits {short} s");
    // Well past the backoff, neither is due.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.run_once().await.unwrap().is_empty());
    // The short one goes out again after its wait and is refunded; the 30-second one waits on.
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::state_of(&db, "short").await != "refunded" {
        assert!(Instant::now() < deadline, "{}", common::states(&db).await);
        w.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(1_150));
    assert_eq!(
        attempts(&db, "short").await,
        [pair("refund", "retry_later"), pair("refund", "refunded")]
    );
    assert_eq!(common::state_of(&db, "thirty").await, "retry_later");
    assert_eq!(provider.refunds(), 3);
    let refunded: Option<String> = db
        .query_one(
            "SELECT provider_reference FROM refund_outbox_intents WHERE reference = 'short'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(refunded.as_deref(), Some("rf-3"), "the receipt's refund id");
}

/// A lookup is judged by the database's clock as read *before* it is asked: asked 0.25 s
/// after a lost answer and answered (empty) after the 1-second settle time, it proves nothing
/// yet (`not_yet_known`, nothing resent); only the next lookup, asked after the settle time,
/// allows the resend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_is_judged_by_the_clock_read_before_it_is_asked() {
    let Some((db, _)) = common::database("clock_before").await else {
        return;
    };
    let settle = Duration::from_secs(1);
    let provider = Scripted::new(
        settle,
        [
            Err(RefundError::outcome_unknown(
                "scripted",
                "the answer was lost",
            )),
            Ok(()),
        ],
    )
    .with_lookup_delay(Duration::from_millis(1_500));
    enqueue(&db, &intent("slow-lookup")).await.unwrap();
    let w = worker(
        "clock_before",
        &provider,
        config("w").with_lease(Duration::from_secs(10)),
    )
    .await;
    let first = w.run_once().await.unwrap();
    assert_eq!(first[0].state, IntentState::Unknown);
    tokio::time::sleep(Duration::from_millis(250)).await;

    let looked = w.run_once().await.unwrap();
    assert_eq!(looked.len(), 1);
    assert!(looked[0].looked_up && !looked[0].sent, "{looked:?}");
    assert_eq!(looked[0].state, IntentState::Unknown);
    assert_eq!(
        provider.refunds(),
        1,
        "nothing resent on a lookup asked too early"
    );
    // The lookup row: asked before the settle time, answered after it.
    let (asked, answered): (f64, f64) = db
        .query_one(
            "SELECT EXTRACT(EPOCH FROM l.started_at - r.started_at)::float8,
                    EXTRACT(EPOCH FROM l.finished_at - r.started_at)::float8
             FROM refund_outbox_attempts l, refund_outbox_attempts r
             WHERE l.kind = 'lookup' AND r.kind = 'refund'
             ORDER BY l.id, r.id LIMIT 1",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert!(
        asked < settle.as_secs_f64() && answered > settle.as_secs_f64(),
        "asked {asked} s, answered {answered} s after the send"
    );

    drain(&w, &db, Duration::from_secs(10)).await;
    assert_eq!(common::state_of(&db, "slow-lookup").await, "refunded");
    assert_eq!(
        attempts(&db, "slow-lookup").await,
        [
            pair("refund", "unknown"),
            pair("lookup", "not_yet_known"),
            pair("lookup", "safe_to_resend"),
            pair("refund", "refunded"),
        ]
    );
    assert_eq!(provider.refunds(), 2);
}

/// Sent as often as the policy allows (3) and never on the provider's books: the intent stays
/// `unknown`, is left to a person (`status` lists it and says so), and is not looked up again
/// for the stuck recheck (an hour by default), rather than every few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_sent_the_most_times_and_never_on_record_is_left_to_a_person() {
    let Some((db, _)) = common::database("left_to_person").await else {
        return;
    };
    let lost = || Err(RefundError::outcome_unknown("scripted", "timed out"));
    let provider = Scripted::new(Duration::from_millis(300), [lost(), lost(), lost()]);
    enqueue(&db, &intent("never-there")).await.unwrap();
    let w = worker(
        "left_to_person",
        &provider,
        config("w").with_recheck(Duration::from_millis(100)),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stuck = status(&db, Duration::from_secs(3600), 10).await.unwrap();
        if !stuck.stuck.is_empty() {
            assert_eq!(stuck.stuck[0].state, IntentState::Unknown);
            assert!(stuck.stuck[0].why.contains("person"), "{stuck:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{}", common::states(&db).await);
        w.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(provider.refunds(), 3);
    let last = attempts(&db, "never-there").await.pop();
    assert_eq!(last, Some(pair("lookup", "stuck")));
    let (state, wait): (String, f64) = db
        .query_one(
            "SELECT state, EXTRACT(EPOCH FROM not_before - updated_at)::float8
             FROM refund_outbox_intents WHERE reference = 'never-there'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(state, "unknown");
    assert!(wait > 3_500.0, "looked up again after {wait} s");
    let lookups = provider.lookups();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(w.run_once().await.unwrap().is_empty());
    assert_eq!(provider.lookups(), lookups);
}

/// A lost answer, then nothing under the intent's reference after the settle time, but an
/// applied refund of the same amount under a reference the outbox never used: it may be this
/// attempt relabelled by the provider, so the lookup is undetermined and nothing is resent.
/// The same record under the reference of the outbox's own other intent on that payment is
/// explained, and the resend goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_under_a_stranger_reference_blocks_the_resend_and_our_own_other_intent_does_not() {
    let Some((db, _)) = common::database("stranger_reference").await else {
        return;
    };
    let ten = Money::new(Decimal::new(1_000, 2), Currency::Try).unwrap();
    let lost = || Err(RefundError::outcome_unknown("scripted", "timed out"));
    let stranger = Scripted::new(Duration::from_millis(300), [lost(), Ok(())])
        .with_record(RefundRecord::new(ten).with_reference("relabelled-7"));
    enqueue(&db, &intent_on("inv-s", "ours-1")).await.unwrap();
    let w = worker(
        "stranger_reference",
        &stranger,
        config("w").with_recheck(Duration::from_millis(100)),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !attempts(&db, "ours-1")
        .await
        .contains(&pair("lookup", "undetermined"))
    {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            attempts(&db, "ours-1").await
        );
        w.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(common::state_of(&db, "ours-1").await, "unknown");
    assert_eq!(stranger.refunds(), 1, "nothing resent");
    drop(w);

    // On another outbox: the other record is our own intent's.
    let Some((db, _)) = common::database("own_other_intent").await else {
        return;
    };
    let own = Scripted::new(Duration::from_millis(300), [Ok(()), lost(), Ok(())]);
    let w = worker(
        "own_other_intent",
        &own,
        config("w").with_recheck(Duration::from_millis(100)),
    )
    .await;
    enqueue(&db, &intent_on("inv-o", "ours-a")).await.unwrap();
    drain(&w, &db, Duration::from_secs(5)).await;
    enqueue(&db, &intent_on("inv-o", "ours-b")).await.unwrap();
    drain(&w, &db, Duration::from_secs(10)).await;
    assert_eq!(common::states(&db).await, "refunded=2");
    assert_eq!(
        attempts(&db, "ours-b").await.last(),
        Some(&pair("refund", "refunded"))
    );
    assert!(
        attempts(&db, "ours-b")
            .await
            .contains(&pair("lookup", "safe_to_resend"))
    );
    assert_eq!(own.refunds(), 3);
}
