//! The sqlx path (feature `sqlx`) against the same throwaway PostgreSQL: the schema, the
//! intent inside the application's own sqlx transaction, the shared rate and the status, read
//! back by the tokio-postgres path and worked by a tokio-postgres worker.

use std::num::NonZeroU32;
use std::time::Duration;

use refund_outbox::sqlx::sqlx::{self, Connection, PgConnection};
use refund_outbox::{IntentState, OutboxError};

use crate::common::{self, Seeded, Sims};
use crate::{config, drain};

async fn sqlx_connection(name: &str) -> PgConnection {
    PgConnection::connect(&common::server().unwrap().url(name))
        .await
        .unwrap()
}

/// An intent enqueued through sqlx commits and rolls back with the application's own row in
/// the same sqlx transaction, a second one with its reference is refused without spoiling
/// the transaction, and a worker refunds the committed one once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_enqueued_through_sqlx_commits_and_rolls_back_with_the_application_row() {
    let Some(server) = common::server() else {
        return;
    };
    let db = server.create_database("sqlx_tx").await.unwrap();
    let mut conn = sqlx_connection("sqlx_tx").await;
    // The schema through sqlx, once.
    assert_eq!(refund_outbox::sqlx::migrate(&mut conn).await.unwrap(), [1]);
    assert!(
        refund_outbox::sqlx::migrate(&mut conn)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        refund_outbox::migrate(&mut common::connect("sqlx_tx").await)
            .await
            .unwrap()
            .is_empty()
    );
    sqlx::raw_sql("CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    let sims = Sims::start().await;
    let rolled_back = Seeded {
        provider: "sipay",
        payment: sims.seed("sipay", 1),
        reference: "sqlx-order-1".into(),
    };
    let committed = Seeded {
        provider: "iyzico",
        payment: sims.seed("iyzico", 2),
        reference: "sqlx-order-2".into(),
    };

    let mut tx = conn.begin().await.unwrap();
    sqlx::query("INSERT INTO orders VALUES (1, 'cancelled')")
        .execute(&mut *tx)
        .await
        .unwrap();
    refund_outbox::sqlx::enqueue(&mut tx, &rolled_back.intent())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        refund_outbox::find(&db, "sqlx-order-1").await.unwrap(),
        None
    );

    let mut tx = conn.begin().await.unwrap();
    sqlx::query("INSERT INTO orders VALUES (2, 'cancelled')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let id = refund_outbox::sqlx::enqueue(&mut tx, &committed.intent())
        .await
        .unwrap();
    // Not visible to others before the commit.
    assert_eq!(
        refund_outbox::find(&db, "sqlx-order-2").await.unwrap(),
        None
    );
    match refund_outbox::sqlx::enqueue(&mut tx, &committed.intent()).await {
        Err(OutboxError::AlreadyEnqueued { existing, .. }) => assert_eq!(existing, Some(id)),
        other => panic!("expected AlreadyEnqueued, got {other:?}"),
    }
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();

    let stored = refund_outbox::find(&db, "sqlx-order-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.state, IntentState::Pending);
    assert_eq!(stored.amount, committed.intent().amount());
    assert_eq!(&stored.payment, committed.intent().payment());
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(orders, 1);

    let worker = refund_outbox::Worker::new(
        common::connect("sqlx_tx").await,
        sims.registry(),
        config("w"),
    )
    .await
    .unwrap();
    drain(&worker, &db, Duration::from_secs(10)).await;
    assert_eq!(common::states(&db).await, "refunded=1");
    assert_eq!(
        sims.applied("iyzico", &committed.payment, &committed.reference),
        1
    );
    assert_eq!(
        sims.applied("sipay", &rolled_back.payment, &rolled_back.reference),
        0
    );
}

/// `set_rate` and `status` through sqlx write and read what the tokio-postgres path does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_and_status_through_sqlx_match_the_tokio_postgres_path() {
    let Some((db, _)) = common::database("sqlx_status").await else {
        return;
    };
    let mut conn = sqlx_connection("sqlx_status").await;
    refund_outbox::sqlx::set_rate(&mut conn, "sipay", NonZeroU32::new(5))
        .await
        .unwrap();
    let interval: i64 = db
        .query_one(
            "SELECT interval_us FROM refund_outbox_pacing WHERE provider = 'sipay'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(interval, 200_000);
    let sims = Sims::start().await;
    for n in 0..3 {
        let s = Seeded {
            provider: "sipay",
            payment: sims.seed("sipay", n),
            reference: format!("sqlx-status-{n}"),
        };
        refund_outbox::sqlx::enqueue(&mut conn, &s.intent())
            .await
            .unwrap();
    }
    db.execute(
        "UPDATE refund_outbox_intents SET state = 'failed', note = 'by hand'
         WHERE reference = 'sqlx-status-1'",
        &[],
    )
    .await
    .unwrap();
    let by_sqlx = refund_outbox::sqlx::status(&mut conn, Duration::ZERO, 10)
        .await
        .unwrap();
    let by_tokio = refund_outbox::status(&db, Duration::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(by_sqlx, by_tokio);
    assert_eq!((by_sqlx.pending, by_sqlx.failed), (2, 1), "{by_sqlx:?}");
    assert_eq!(by_sqlx.stuck.len(), 3, "{by_sqlx:?}");
}
