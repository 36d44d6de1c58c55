//! The outbox's metrics through the [`metrics`] facade (feature `metrics`, which
//! also turns on `refund_core`'s): the application installs the exporter it likes
//! (Prometheus, OpenTelemetry) and sees these, beside `refund_core::metrics`'s.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `refund_outbox_attempt_duration_seconds` | histogram | `kind` (`refund`, `lookup`) | how long each provider call of a worker took (the request, not the pacing wait nor the database), answer or error |
//! | `refund_outbox_intents` | gauge | `state` (`pending`, `unknown`, `retry_later`, `refunded`, `declined`, `failed`) | intents by state, as of the latest [`record_status`] |
//! | `refund_outbox_stuck_intents` | gauge | none | the stuck intents [`status`](crate::status) listed (at most the limit it was given: ask for more than your alert threshold) |
//! | `refund_outbox_claimed_intents` | gauge | none | intents under a live lease (a worker on them now) |
//! | `refund_outbox_expired_leases` | gauge | none | intents whose lease ran out (a worker died mid-refund; the next one looks them up) |
//! | `refund_attempt_decisions_total` | counter | `outcome`, `state` | from `refund_core::metrics::decision`: the worker reports every decision it stores, after a send and after a lookup |
//!
//! The worker records the histogram and the decisions itself. The gauges come from
//! [`status`](crate::status), a query the application runs when it likes (every 15 to 60
//! seconds is plenty; one process of the fleet is enough): hand its result to
//! [`record_status`]. Wrap the providers in `refund_core::metrics::Metered` for the provider
//! calls, 429s and lookup verdicts by provider.
//!
//! No label carries a payment id, a reference, an amount, a worker name or any other value
//! from a request: every label takes a fixed, small set of values.
//!
//! ```no_run
//! # async fn example(client: tokio_postgres::Client) -> Result<(), refund_outbox::OutboxError> {
//! use std::time::Duration;
//! refund_outbox::metrics::describe();
//! let mut every = tokio::time::interval(Duration::from_secs(30));
//! loop {
//!     every.tick().await;
//!     let status = refund_outbox::status(&client, Duration::from_secs(3600), 1000).await?;
//!     refund_outbox::metrics::record_status(&status);
//! }
//! # }
//! ```

use std::time::Duration;

use refund_core::Decision;

use crate::{IntentState, OutboxStatus};

/// `refund_outbox_attempt_duration_seconds`.
pub const ATTEMPT_DURATION: &str = "refund_outbox_attempt_duration_seconds";
/// `refund_outbox_intents`.
pub const INTENTS: &str = "refund_outbox_intents";
/// `refund_outbox_stuck_intents`.
pub const STUCK_INTENTS: &str = "refund_outbox_stuck_intents";
/// `refund_outbox_claimed_intents`.
pub const CLAIMED_INTENTS: &str = "refund_outbox_claimed_intents";
/// `refund_outbox_expired_leases`.
pub const EXPIRED_LEASES: &str = "refund_outbox_expired_leases";

/// The states `refund_outbox_intents` has a series for (every state the outbox stores).
pub const STATES: [IntentState; 6] = [
    IntentState::Pending,
    IntentState::Unknown,
    IntentState::RetryLater,
    IntentState::Refunded,
    IntentState::Declined,
    IntentState::Failed,
];

/// Describes this module's metrics and `refund_core::metrics`'s to the installed recorder
/// (units and help texts). Optional; call it once after installing the recorder.
pub fn describe() {
    refund_core::metrics::describe();
    ::metrics::describe_histogram!(
        ATTEMPT_DURATION,
        ::metrics::Unit::Seconds,
        "How long the outbox workers' provider calls took, by kind (refund, lookup)"
    );
    ::metrics::describe_gauge!(
        INTENTS,
        ::metrics::Unit::Count,
        "Refund intents in the outbox by state"
    );
    ::metrics::describe_gauge!(
        STUCK_INTENTS,
        ::metrics::Unit::Count,
        "Refund intents that need a person (failed, or not final long after they were enqueued)"
    );
    ::metrics::describe_gauge!(
        CLAIMED_INTENTS,
        ::metrics::Unit::Count,
        "Refund intents a worker holds a live lease on"
    );
    ::metrics::describe_gauge!(
        EXPIRED_LEASES,
        ::metrics::Unit::Count,
        "Refund intents whose worker's lease ran out"
    );
}

/// Sets the gauges from a [`status`](crate::status): `refund_outbox_intents{state}` for
/// every stored state (zeros included, so a state that empties reads 0),
/// `refund_outbox_stuck_intents`, `refund_outbox_claimed_intents`,
/// `refund_outbox_expired_leases`.
pub fn record_status(status: &OutboxStatus) {
    for state in STATES {
        ::metrics::gauge!(INTENTS, "state" => state.as_str()).set(count(status.count(state)));
    }
    ::metrics::gauge!(STUCK_INTENTS).set(count(status.stuck.len()));
    ::metrics::gauge!(CLAIMED_INTENTS).set(count(status.claimed));
    ::metrics::gauge!(EXPIRED_LEASES).set(count(status.expired_leases));
}

/// A count of rows as a gauge value: exact up to `u32::MAX` (the facade takes no wider integer
/// losslessly), saturating beyond; no float is computed here.
fn count(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// A stored decision (`refund_attempt_decisions_total`).
pub(crate) fn decision(decision: &Decision) {
    refund_core::metrics::decision(decision);
}

/// One provider call of a worker: `kind` is `refund` or `lookup`.
pub(crate) fn attempt(kind: &'static str, took: Duration) {
    ::metrics::histogram!(ATTEMPT_DURATION, "kind" => kind).record(took);
}
