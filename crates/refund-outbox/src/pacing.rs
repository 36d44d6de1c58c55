//! The pace of each provider's requests, kept in the database so that every worker on every
//! machine shares it: a rate (requests evenly spaced, at most N per second in all) and the
//! pause a rate limit answer puts on every request to that provider.

use std::num::NonZeroU32;
use std::time::Duration;

use tokio_postgres::GenericClient;

use crate::error::OutboxError;

/// How long every worker waits after a rate limit answer that did not say how long.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// Reserves the next slot for a request to `provider` and returns how long to wait for it:
/// one round trip, whatever the rate. With no rate, only a running pause makes anyone wait.
pub(crate) const ACQUIRE: &str = "
    WITH reserved AS (
        UPDATE refund_outbox_pacing
        SET next_at = GREATEST(next_at, clock_timestamp(), paused_until)
                      + interval_us * interval '1 microsecond'
        WHERE provider = $1 AND interval_us > 0
        RETURNING next_at - interval_us * interval '1 microsecond' AS slot
    ), paused AS (
        SELECT paused_until AS slot FROM refund_outbox_pacing WHERE provider = $1
    )
    SELECT GREATEST(0, (EXTRACT(EPOCH FROM (
        GREATEST(COALESCE((SELECT slot FROM reserved), (SELECT slot FROM paused)),
                 clock_timestamp())
        - clock_timestamp())) * 1000000)::bigint)";

/// Pauses every request to `provider` for `$2` milliseconds from now (a longer pause already
/// running stays).
pub(crate) const PAUSE: &str = "
    UPDATE refund_outbox_pacing
    SET paused_until = GREATEST(paused_until, clock_timestamp() + $2::bigint * interval '1 millisecond')
    WHERE provider = $1";

/// Makes sure `provider` has a pacing row (unlimited until [`set_rate`] says otherwise).
pub(crate) const ENSURE: &str = "
    INSERT INTO refund_outbox_pacing (provider) VALUES ($1) ON CONFLICT (provider) DO NOTHING";

/// Sets the rate of requests (refunds and lookups) to `provider`, shared by every worker on
/// every machine: at most `rate` per second in all, evenly spaced; `None` removes the limit.
/// A rate limit answer (429) still pauses every worker for as long as the provider asks.
///
/// ```no_run
/// # async fn example(client: &tokio_postgres::Client) -> Result<(), refund_outbox::OutboxError> {
/// use std::num::NonZeroU32;
/// // SiPay: at most 5 requests per second from all workers together.
/// refund_outbox::set_rate(client, "sipay", NonZeroU32::new(5)).await?;
/// # Ok(()) }
/// ```
pub async fn set_rate<C: GenericClient>(
    db: &C,
    provider: &str,
    rate: Option<NonZeroU32>,
) -> Result<(), OutboxError> {
    db.execute(SET_RATE, &[&provider, &interval_us(rate)])
        .await?;
    Ok(())
}

/// Sets provider `$1`'s interval to `$2` µs (0: unlimited).
pub(crate) const SET_RATE: &str = "
    INSERT INTO refund_outbox_pacing (provider, interval_us) VALUES ($1, $2)
    ON CONFLICT (provider) DO UPDATE SET interval_us = EXCLUDED.interval_us";

/// The interval between requests at `rate` per second, in microseconds (0: unlimited).
pub(crate) fn interval_us(rate: Option<NonZeroU32>) -> i64 {
    rate.map_or(0, |r| 1_000_000 / i64::from(r.get()))
}

/// Microseconds as a duration (negative as zero).
pub(crate) fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// A duration in whole milliseconds, for SQL intervals.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
