//! The schema, as versioned migrations the outbox applies itself.

use tokio_postgres::Client;

use crate::error::OutboxError;

/// A schema change: applied once, in order, and recorded in `refund_outbox_migrations`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: i32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Every migration, oldest first. Released ones are never edited: a change is a new one.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "outbox",
    sql: include_str!("../migrations/0001_outbox.sql"),
}];

/// Any fixed key for `pg_advisory_xact_lock`, so that workers starting together migrate one
/// at a time ("refundob" in ASCII).
pub(crate) const MIGRATION_LOCK: i64 = 0x7265_6675_6e64_6f62;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 1;

/// Brings the database's outbox schema up to this build's [`SCHEMA_VERSION`]: creates the
/// `refund_outbox_migrations` table when missing, then applies each migration not yet
/// recorded there, all in one transaction under an advisory lock (workers on several machines
/// may call it at once; one applies, the others find it done). Idempotent: on an up-to-date
/// database it changes nothing. Returns the versions it applied.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let (mut client, connection) =
///     tokio_postgres::connect("postgres://app@127.0.0.1/shop", tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// let applied = refund_outbox::migrate(&mut client).await?;
/// println!("applied {applied:?}");
/// # Ok(()) }
/// ```
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, OutboxError> {
    let tx = client.transaction().await?;
    tx.execute(LOCK, &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(CREATE_MIGRATIONS).await?;
    let current: i32 = tx.query_one(CURRENT, &[]).await?.try_get(0)?;
    let mut applied = Vec::new();
    for m in missing(current)? {
        let failed = |source| OutboxError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        tx.batch_execute(m.sql).await.map_err(failed)?;
        tx.execute(RECORD, &[&m.version, &m.name])
            .await
            .map_err(failed)?;
        applied.push(m.version);
    }
    tx.commit().await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "refund outbox schema migrated");
    }
    Ok(applied)
}

/// Takes the migration lock (`$1`: [`MIGRATION_LOCK`]) for the transaction.
pub(crate) const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";

/// Creates the table of applied migrations when missing.
pub(crate) const CREATE_MIGRATIONS: &str = "
    CREATE TABLE IF NOT EXISTS refund_outbox_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )";

/// The latest version applied (0: none).
pub(crate) const CURRENT: &str = "SELECT COALESCE(max(version), 0) FROM refund_outbox_migrations";

/// Records migration `$1` named `$2` as applied.
pub(crate) const RECORD: &str =
    "INSERT INTO refund_outbox_migrations (version, name) VALUES ($1, $2)";

/// The migrations a database at `current` lacks, oldest first; a database newer than this
/// build is refused.
pub(crate) fn missing(
    current: i32,
) -> Result<impl Iterator<Item = &'static Migration>, OutboxError> {
    if current > SCHEMA_VERSION {
        return Err(OutboxError::SchemaTooNew {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    Ok(MIGRATIONS.iter().filter(move |m| m.version > current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i32::try_from(i + 1).unwrap_or(0), "{}", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
