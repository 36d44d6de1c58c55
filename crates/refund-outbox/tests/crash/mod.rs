//! The crash test: two worker *processes* on one database, killed with SIGKILL at random
//! moments while they work through many intents against simulators that lose answers,
//! answer late and apply after the client gave up, and whose lookups lag. Every intent must
//! end refunded exactly once by the simulators' ledgers, none lost, none left claimed.
//!
//! The worker processes are this test binary run again with only [`worker_process`]
//! selected, told where the database and the simulators are through the environment.
//! `OUTBOX_CRASH_SEED` replays a run; `OUTBOX_CRASH_INTENTS` sets the intents per provider
//! (default 1,000: 2,000 intents in all).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use refund_core::AttemptPolicy;
use refund_outbox::tokio_postgres::Client;
use refund_outbox::{Worker, WorkerConfig};
use refund_testkit::sim::Fault;

use crate::common::{self, SETTLE, Sims};

const DB_ENV: &str = "OUTBOX_CRASH_DB";
const SIPAY_ENV: &str = "OUTBOX_CRASH_SIPAY";
const IYZICO_ENV: &str = "OUTBOX_CRASH_IYZICO";
const NAME_ENV: &str = "OUTBOX_CRASH_WORKER";

/// How many SIGKILLs, at most, while work remains.
const KILLS: usize = 8;

/// splitmix64: small, seedable, enough for picking faults and moments.
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

/// The random faults can make an unlucky intent go out three times without ever reaching the
/// provider's books, which the default policy leaves to a person (tested on its own in
/// `lifecycle`); here every intent must end refunded, so a few more sends are allowed.
fn worker_config(name: &str) -> WorkerConfig {
    WorkerConfig::new(name)
        .with_policy(AttemptPolicy::default().with_max_sends(6))
        .with_lease(Duration::from_secs(1))
        .with_recheck(Duration::from_millis(200))
        .with_retry_backoff(Duration::from_millis(200), Duration::from_secs(1))
        .with_concurrency(8)
        .with_idle_poll(Duration::from_millis(50))
}

/// The worker process. Does nothing (and passes) unless started by the crash test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_process() {
    let (Ok(url), Ok(sipay), Ok(iyzico), Ok(name)) = (
        std::env::var(DB_ENV),
        std::env::var(SIPAY_ENV),
        std::env::var(IYZICO_ENV),
        std::env::var(NAME_ENV),
    ) else {
        return;
    };
    let (client, connection) =
        refund_outbox::tokio_postgres::connect(&url, refund_outbox::tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let worker = Worker::new(
        client,
        common::registry(&sipay, &iyzico),
        worker_config(&name),
    )
    .await
    .unwrap();
    // Until killed.
    worker.run(std::future::pending()).await.unwrap();
}

struct Workers {
    url: String,
    sipay: String,
    iyzico: String,
    logs: PathBuf,
    spawned: usize,
    children: Vec<Child>,
}

impl Workers {
    fn spawn(&mut self) -> Child {
        self.spawned += 1;
        let name = format!("proc-{}", self.spawned);
        let log = std::fs::File::create(self.logs.join(format!("{name}.log"))).unwrap();
        Command::new(std::env::current_exe().unwrap())
            .args(["crash::worker_process", "--exact", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(DB_ENV, &self.url)
            .env(SIPAY_ENV, &self.sipay)
            .env(IYZICO_ENV, &self.iyzico)
            .env(NAME_ENV, &name)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// SIGKILL, and reap.
    fn kill(child: &mut Child) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            Workers::kill(child);
        }
    }
}

async fn count(db: &Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

fn fault(rng: &mut Rng) -> Fault {
    match rng.below(16) {
        0..=3 => Fault::Delay(Duration::from_millis(rng.below(750) + 50)),
        4..=6 => Fault::LostResponse,
        7 | 8 => Fault::Timeout,
        9 => Fault::Reset,
        10 => Fault::Http500,
        11 => Fault::Malformed,
        12 => Fault::Empty,
        13 => Fault::Html502,
        14 => Fault::Http503,
        _ => Fault::Http429,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_killed_with_sigkill_never_pay_twice() {
    if std::env::var_os(DB_ENV).is_some() {
        return; // inside a worker process
    }
    let Some((mut db, url)) = common::database("crash").await else {
        return;
    };
    let seed = std::env::var("OUTBOX_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let per_provider = std::env::var("OUTBOX_CRASH_INTENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000);
    eprintln!(
        "crash test: seed {seed} (OUTBOX_CRASH_SEED={seed} replays it), {per_provider} intents per provider"
    );
    let mut rng = Rng(seed);
    let sims = Arc::new(Sims::start().await);
    let seeded = common::seed_and_enqueue(&sims, &mut db, per_provider, "crash").await;

    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("outbox-crash-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut workers = Workers {
        url,
        sipay: sims.sipay.base_url(),
        iyzico: sims.iyzico.base_url(),
        logs,
        spawned: 0,
        children: Vec::new(),
    };
    let started = Instant::now();
    for _ in 0..2 {
        let child = workers.spawn();
        workers.children.push(child);
    }

    // Faults on the way, on both simulators, until the kills are over.
    let arming = Arc::new(AtomicBool::new(true));
    let faults = {
        let sims = Arc::clone(&sims);
        let arming = Arc::clone(&arming);
        let mut rng = Rng(seed ^ 0x5eed);
        tokio::spawn(async move {
            let mut armed = 0usize;
            while arming.load(Ordering::SeqCst) {
                let f = fault(&mut rng);
                if rng.below(2) == 0 {
                    sims.sipay.arm(f, 1);
                } else {
                    sims.iyzico.arm(f, 1);
                }
                armed += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            armed
        })
    };

    // SIGKILL a worker process at random moments while work remains, and start another.
    let mut kills = 0;
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(500))).await;
        let open = count(
            &db,
            "SELECT count(*) FROM refund_outbox_intents WHERE state = 'pending'",
        )
        .await;
        if open == 0 {
            break;
        }
        let victim = rng.below(2) as usize;
        Workers::kill(&mut workers.children[victim]);
        kills += 1;
        workers.children[victim] = workers.spawn();
        for s in &seeded {
            let applied = sims.applied(s.provider, &s.payment, &s.reference);
            assert!(
                applied <= 1,
                "seed {seed}: {} refunded {applied} times after kill {kills}",
                s.reference
            );
        }
    }
    arming.store(false, Ordering::SeqCst);
    let armed = faults.await.unwrap();
    sims.sipay.disarm();
    sims.iyzico.disarm();

    // Let the survivors finish: unknown intents settle within the settle time.
    let deadline = Instant::now() + SETTLE * 10 + Duration::from_secs(30);
    loop {
        let open = count(
            &db,
            "SELECT count(*) FROM refund_outbox_intents
             WHERE state NOT IN ('refunded', 'declined', 'failed') OR lease_owner IS NOT NULL",
        )
        .await;
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: {open} intents not finished: {}",
            common::states(&db).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    drop(workers);

    for s in &seeded {
        let applied = sims.applied(s.provider, &s.payment, &s.reference);
        let state = common::state_of(&db, &s.reference).await;
        assert_eq!(
            (applied, state.as_str()),
            (1, "refunded"),
            "seed {seed}: {} ({}) is on the books {applied} times, state {state}",
            s.reference,
            s.provider
        );
    }
    let cut_short = count(
        &db,
        "SELECT count(*) FROM refund_outbox_attempts WHERE kind = 'refund' AND outcome IS NULL",
    )
    .await;
    let unknown = count(
        &db,
        "SELECT count(*) FROM refund_outbox_attempts WHERE kind = 'refund' AND outcome = 'unknown'",
    )
    .await;
    let resent = count(
        &db,
        "SELECT count(*) FROM refund_outbox_attempts WHERE kind = 'lookup' AND outcome = 'safe_to_resend'",
    )
    .await;
    let found = count(
        &db,
        "SELECT count(*) FROM refund_outbox_attempts WHERE kind = 'lookup' AND outcome = 'applied'",
    )
    .await;
    eprintln!(
        "crash test: {} intents, {kills} SIGKILLs, {armed} faults armed, in {took:?}: \
         {cut_short} refund attempts cut short by a kill, {unknown} answered outcome-unknown, \
         {found} found applied by a lookup, {resent} resent after the settle time",
        seeded.len()
    );
    assert!(kills > 0, "seed {seed}: the work ended before any kill");
    assert!(
        cut_short > 0,
        "seed {seed}: no kill landed while a refund was out"
    );
}
