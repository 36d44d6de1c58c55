//! The lifecycle's shared scripted scenarios (`refund_testkit::lifecycle`) through the file
//! journal driver: each scenario is one row, run as `refund batch` runs it — plan from the
//! journal, drive, journal every decision — and run again (a rerun, the journal reopened) until
//! its state is final or the scenario's time is up. They must end as through `Retrying`
//! (tests/lifecycle_drivers.rs) and the outbox (crates/refund-outbox/tests/scenarios).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use refund_core::{MerchantRef, Paced, Pacer, PaymentRef, Reconciler, RefundProvider, Retrying};
use refund_testkit::lifecycle::{self, Ended};

use super::drive::{self, Ledgers, SoFar};
use super::plan::{Plan, plan};
use super::validate::Checks;
use super::work::Ctx;
use super::{Provider, Row};
use crate::journal::{self, Journal, OpenError};

/// Opens the journal, waiting for the previous run's writer thread to let go of its lock.
fn open(path: &std::path::Path) -> Journal {
    let started = Instant::now();
    loop {
        match Journal::open(path) {
            Ok(journal) => return journal,
            Err(OpenError::Busy) if started.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(OpenError::Busy) => panic!("the journal stayed locked"),
            Err(OpenError::Io(e)) => panic!("{e}"),
        }
    }
}

fn row(reference: &MerchantRef) -> Row {
    let payment = PaymentRef::payment(lifecycle::PAYMENT);
    let amount = "10.00 TRY".parse().unwrap();
    let content = journal::row_content("sipay", &payment, &amount, Some(reference.as_str()));
    Row {
        line: 2,
        provider: Provider::Sipay,
        payment,
        amount,
        reference: Some(reference.clone()),
        key: journal::row_key(&content, 1),
        content,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lifecycle_scenario_ends_as_the_lifecycle_says_through_the_file_journal() {
    let dir = std::env::temp_dir().join(format!("refund-batch-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (n, scenario) in lifecycle::scenarios().iter().enumerate() {
        let path = dir.join(format!("scenario-{n}.journal"));
        let _ = std::fs::remove_file(&path);
        let provider = scenario.provider();
        let send: Arc<dyn RefundProvider> = Arc::new(provider.clone());
        let row = row(&scenario.reference());
        let started = Instant::now();
        let state = loop {
            // One run of `refund batch` over this one row.
            let (index, appender) = open(&path).into_appender().unwrap();
            let now = SystemTime::now();
            let planned = plan(&row, &index, &Checks::default(), now).unwrap();
            let wait_until = match planned {
                Plan::Skip(state) => break state,
                Plan::Wait(t) => Some(t),
                other => {
                    let pacer = Arc::new(Pacer::new(None));
                    let look: Arc<dyn RefundProvider> = Arc::new(Retrying::new(
                        Paced::new(Arc::clone(&send), Arc::clone(&pacer)),
                        lifecycle::retry_policy(),
                    ));
                    let ctx = Ctx {
                        reconciler: Reconciler::for_provider(&*send),
                        // As with --input-never-run-before: the scenario's scripted lookups are
                        // for the driver's reconciling, not for a ledger check.
                        check_ledger: false,
                        send: Arc::clone(&send),
                        look,
                        pacer,
                        policy: lifecycle::policy(),
                        journal: appender.clone(),
                        ledgers: Ledgers::default(),
                    };
                    let ended = drive::row(&ctx, &row, other, SoFar::default())
                        .await
                        .unwrap();
                    if ended.state.is_final() {
                        break ended.state;
                    }
                    ended.resume.map(|r| r.at).or(ended.after)
                }
            };
            drop(appender);
            drop(index);
            if started.elapsed() > Duration::from_secs(3) {
                // A lookup that cannot tell never ends by itself: as a person finds it.
                let (index, _) = open(&path).into_appender().unwrap();
                break index.get(&row.key).unwrap().state;
            }
            // The next run: when the journal says the row is due, as an operator's rerun
            // after the note's time (a rerun at once would only look up again).
            let wait = wait_until
                .and_then(|t| t.duration_since(SystemTime::now()).ok())
                .unwrap_or_default();
            tokio::time::sleep(wait.clamp(Duration::from_millis(50), Duration::from_millis(500)))
                .await;
        };
        let state: refund_core::AttemptState = state.name().parse().unwrap();
        if let Err(e) = scenario.check(Ended(state), &provider) {
            let journal = std::fs::read_to_string(&path).unwrap_or_default();
            failures.push(format!("{e}\n  journal:\n{journal}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
