//! Metrics through the [`metrics`] facade (feature `metrics`): the application installs the
//! exporter it likes (Prometheus, OpenTelemetry, StatsD) and these are what it sees.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `refund_provider_calls_total` | counter | `provider`, `operation` (`refund`, `void`, `lookup`), `outcome` (`ok` or [`RefundError::kind`]) | every call through a [`Metered`] provider |
//! | `refund_provider_call_duration_seconds` | histogram | `provider`, `operation` | how long each such call took, answer or error |
//! | `refund_rate_limited_total` | counter | `provider` | 429 answers (`RefundError::RateLimited`) seen by a [`Metered`] provider |
//! | `refund_lookup_verdicts_total` | counter | `provider`, `verdict` ([`Verdict::kind`](crate::Verdict::kind) or `lookup_failed`) | every [`Reconciler::look_up`](crate::Reconciler::look_up) |
//! | `refund_attempt_decisions_total` | counter | `outcome` ([`Decision::outcome`]), `state` ([`AttemptState`](crate::AttemptState)) | every lifecycle decision a driver reports with [`decision`] |
//!
//! Names and units follow the Prometheus conventions (`_total` for counters, base units in
//! the name). No label ever carries a payment id, a reference, an amount or any other value
//! from a request: every label takes a fixed, small set of values.
//!
//! ```
//! use std::sync::Arc;
//! use refund_core::metrics::Metered;
//! use refund_core::RefundProvider;
//! # fn provider() -> Arc<dyn RefundProvider> { unimplemented!() }
//! # fn demo() {
//! let sipay: Arc<dyn RefundProvider> = Arc::new(Metered::new(provider()));
//! # }
//! ```

use std::time::Instant;

use async_trait::async_trait;

use crate::attempt::Decision;
use crate::error::RefundError;
use crate::provider::{Capabilities, RefundProvider};
use crate::receipt::RefundReceipt;
use crate::reference::PaymentRef;
use crate::request::{RefundRequest, VoidRequest};
use crate::state::RefundState;

/// `refund_provider_calls_total`.
pub const PROVIDER_CALLS: &str = "refund_provider_calls_total";
/// `refund_provider_call_duration_seconds`.
pub const PROVIDER_CALL_DURATION: &str = "refund_provider_call_duration_seconds";
/// `refund_rate_limited_total`.
pub const RATE_LIMITED: &str = "refund_rate_limited_total";
/// `refund_lookup_verdicts_total`.
pub const LOOKUP_VERDICTS: &str = "refund_lookup_verdicts_total";
/// `refund_attempt_decisions_total`.
pub const ATTEMPT_DECISIONS: &str = "refund_attempt_decisions_total";

/// Describes every metric of this module to the installed recorder (units and help texts), for
/// exporters that show them. Optional; call it once after installing the recorder.
pub fn describe() {
    metrics::describe_counter!(
        PROVIDER_CALLS,
        metrics::Unit::Count,
        "Provider calls by provider, operation and outcome kind"
    );
    metrics::describe_histogram!(
        PROVIDER_CALL_DURATION,
        metrics::Unit::Seconds,
        "How long provider calls took, answer or error"
    );
    metrics::describe_counter!(
        RATE_LIMITED,
        metrics::Unit::Count,
        "Rate-limit answers (HTTP 429) by provider"
    );
    metrics::describe_counter!(
        LOOKUP_VERDICTS,
        metrics::Unit::Count,
        "Reconciling lookups by provider and verdict"
    );
    metrics::describe_counter!(
        ATTEMPT_DECISIONS,
        metrics::Unit::Count,
        "Refund attempt lifecycle decisions by outcome and state"
    );
}

/// Records one lifecycle decision (`refund_attempt_decisions_total`). The drivers in this
/// workspace call it for every decision they store; a driver of your own can too.
pub fn decision(decision: &Decision) {
    metrics::counter!(
        ATTEMPT_DECISIONS,
        "outcome" => decision.outcome,
        "state" => decision.state.as_str(),
    )
    .increment(1);
}

pub(crate) fn lookup(provider: &'static str, verdict: &'static str) {
    metrics::counter!(LOOKUP_VERDICTS, "provider" => provider, "verdict" => verdict).increment(1);
}

/// A provider wrapper that records every call: is itself a [`RefundProvider`].
#[derive(Debug, Clone)]
pub struct Metered<P> {
    inner: P,
}

impl<P: RefundProvider> Metered<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        Metered { inner }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn record<T>(
        &self,
        operation: &'static str,
        started: Instant,
        result: &Result<T, RefundError>,
    ) {
        let provider = self.inner.name();
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        metrics::counter!(
            PROVIDER_CALLS,
            "provider" => provider,
            "operation" => operation,
            "outcome" => outcome,
        )
        .increment(1);
        metrics::histogram!(PROVIDER_CALL_DURATION, "provider" => provider, "operation" => operation)
            .record(started.elapsed());
        if let Err(RefundError::RateLimited { .. }) = result {
            metrics::counter!(RATE_LIMITED, "provider" => provider).increment(1);
        }
    }
}

#[async_trait]
impl<P: RefundProvider> RefundProvider for Metered<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn validate(&self, request: &RefundRequest) -> Result<(), RefundError> {
        self.inner.validate(request)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
        let started = Instant::now();
        let result = self.inner.refund(request).await;
        self.record("refund", started, &result);
        result
    }

    async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        let started = Instant::now();
        let result = self.inner.void(request).await;
        self.record("void", started, &result);
        result
    }

    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        let started = Instant::now();
        let result = self.inner.refund_state(payment).await;
        self.record("lookup", started, &result);
        result
    }
}
