//! Scripted scenarios of the attempt lifecycle, for every driver: the same scripts run against
//! `Retrying` (in memory), `refund batch` on a journal file and the refund outbox on
//! PostgreSQL, and each must end in the same state with the same number of requests sent —
//! the provider's ledger (a [`ScriptedProvider`]'s) is the judge.
//!
//! Each [`Scenario`] gives a fresh provider with its script, the refund to make, and what must
//! be true at the end. Times are short (a settle time of [`SETTLE`], waits of a few hundred
//! milliseconds), so a driver that keeps working what is due within a few seconds settles each
//! scenario in one run.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use refund_core::{RefundProvider, RetryPolicy, Retrying};
//! use refund_testkit::lifecycle;
//!
//! let scenario = lifecycle::scenario("a lost answer the provider applied").unwrap();
//! let provider = scenario.provider();
//! let retrying = Retrying::new(provider.clone(), lifecycle::retry_policy());
//! let ended = lifecycle::Ended::of(&retrying.refund(&scenario.request().unwrap()).await);
//! scenario.check(ended, &provider).unwrap();
//! # }
//! ```

use std::time::Duration;

use refund_core::{
    AttemptPolicy, AttemptState, Currency, MerchantRef, Money, PaymentRef, RefundError,
    RefundReceipt, RefundRequest, RetryPolicy,
};

use crate::mock::{Answer, Lookup, ScriptedProvider};

/// The scripted providers' settle time.
pub const SETTLE: Duration = Duration::from_millis(300);

/// A wait the provider asks for in these scenarios (Retry-After, SiPay's spacing).
pub const WAIT: Duration = Duration::from_millis(200);

/// One scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// What it is, in words (also its name for [`scenario`]).
    pub name: &'static str,
    script: fn() -> ScriptedProvider,
    /// The state the driver must leave the refund in.
    pub state: AttemptState,
    /// How many refund requests must reach the provider.
    pub sends: usize,
    /// Whether the provider's ledger must show the refund applied at the end.
    pub applied: bool,
}

/// How a driver left the refund, as an [`AttemptState`] (for `Retrying`: [`Ended::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended(pub AttemptState);

impl Ended {
    /// The state `Retrying`'s answer stands for: a receipt is `refunded`; a decline
    /// `declined`; outcome unknown `unknown`; a retryable error `retry_later`; anything else
    /// `failed`.
    pub fn of(result: &Result<RefundReceipt, RefundError>) -> Ended {
        Ended(match result {
            Ok(_) => AttemptState::Refunded,
            Err(e) if !e.is_outcome_known() => AttemptState::Unknown,
            Err(e) if e.is_retryable() => AttemptState::RetryLater,
            Err(RefundError::Declined { .. }) => AttemptState::Declined,
            Err(_) => AttemptState::Failed,
        })
    }
}

impl Scenario {
    /// A fresh provider with this scenario's script (a clone shares its ledger and counts).
    pub fn provider(&self) -> ScriptedProvider {
        (self.script)()
    }

    /// The refund every driver makes: 10.00 TRY on payment [`PAYMENT`], reference
    /// `lc-<scenario number>`.
    pub fn request(&self) -> Result<RefundRequest, RefundError> {
        Ok(
            RefundRequest::builder(PaymentRef::payment(PAYMENT), amount())
                .reference(self.reference().as_str())
                .build()?,
        )
    }

    /// The reference the refund is sent with.
    pub fn reference(&self) -> MerchantRef {
        let n = SCENARIOS
            .iter()
            .position(|s| s.name == self.name)
            .unwrap_or(0);
        MerchantRef::new(format!("lc-{n}")).unwrap_or_else(|_| MerchantRef::generate())
    }

    /// Checks how the driver left the refund against the scenario and the provider's ledger.
    pub fn check(&self, ended: Ended, provider: &ScriptedProvider) -> Result<(), String> {
        let mut problems = Vec::new();
        if ended.0 != self.state {
            problems.push(format!("ended {} (expected {})", ended.0, self.state));
        }
        let sends = provider.refund_calls();
        if sends != self.sends {
            problems.push(format!(
                "{sends} refund requests reached the provider (expected {})",
                self.sends
            ));
        }
        let refunded = provider.refunded(&PaymentRef::payment(PAYMENT));
        let applied = !refunded.is_zero();
        if applied != self.applied {
            problems.push(format!(
                "the provider's ledger shows {refunded} refunded (expected {})",
                if self.applied {
                    "the refund"
                } else {
                    "nothing"
                }
            ));
        }
        if refunded > amount() {
            problems.push(format!(
                "PAID TWICE: {refunded} refunded for one 10.00 TRY refund"
            ));
        }
        if ended.0 == AttemptState::Refunded && !applied {
            problems.push("reported refunded, but the ledger shows nothing".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}", self.name, problems.join("; ")))
        }
    }
}

/// The lifecycle knobs the drivers use for these scenarios: the defaults, with no jitter and
/// short waits (so a run settles each scenario in well under a few seconds).
pub fn policy() -> AttemptPolicy {
    AttemptPolicy::default()
        .with_jitter(false)
        .with_backoff(Duration::from_millis(50), Duration::from_millis(400))
        .with_recheck(Duration::from_millis(50))
}

/// [`policy`] as `Retrying` takes it, with a reconcile window that covers every scenario.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .lifecycle(policy())
        .max_attempts(policy().max_sends())
        .reconcile_window(Duration::from_secs(3))
}

/// Every scenario.
pub fn scenarios() -> &'static [Scenario] {
    SCENARIOS
}

/// The scenario called `name`.
pub fn scenario(name: &str) -> Option<Scenario> {
    SCENARIOS.iter().find(|s| s.name == name).copied()
}

/// The payment every scenario refunds (paid 100.00 TRY; the refund is 10.00 TRY).
pub const PAYMENT: &str = "INV-LC-1";

fn amount() -> Money {
    Money::new(refund_core::Decimal::new(1_000, 2), Currency::Try)
        .unwrap_or_else(|_| Money::zero(Currency::Try))
}

fn base() -> ScriptedProvider {
    ScriptedProvider::new("scripted").settle_time(SETTLE).paid(
        PaymentRef::payment(PAYMENT),
        Money::new(refund_core::Decimal::new(10_000, 2), Currency::Try)
            .unwrap_or_else(|_| Money::zero(Currency::Try)),
    )
}

fn undetermined_forever() -> Vec<Lookup> {
    (0..400)
        .map(|_| Lookup::undetermined("no refund figures in the answer (scripted)"))
        .collect()
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "a receipt",
        script: || base().refund_answers([Answer::refunded()]),
        state: AttemptState::Refunded,
        sends: 1,
        applied: true,
    },
    Scenario {
        name: "a lost answer the provider applied",
        script: || base().refund_answers([Answer::lost_but_applied()]),
        state: AttemptState::Refunded,
        sends: 1,
        applied: true,
    },
    Scenario {
        name: "a lost answer the lookup shows only after a lag",
        // The lookup hides the refund for a while, less than the settle time (the assumption
        // every driver rests on: a lag longer than the settle time could pay twice).
        script: || {
            base()
                .lookup_lag(SETTLE / 3)
                .refund_answers([Answer::lost_but_applied()])
        },
        state: AttemptState::Refunded,
        sends: 1,
        applied: true,
    },
    Scenario {
        name: "a lost request, absent after the settle time, resent with the same reference",
        script: || base().refund_answers([Answer::outcome_unknown("timeout"), Answer::refunded()]),
        state: AttemptState::Refunded,
        sends: 2,
        applied: true,
    },
    Scenario {
        name: "a temporary refusal, then a receipt",
        script: || {
            base().refund_answers([
                Answer::declined_retryable("10246", "bank busy").and_failed_record(),
                Answer::refunded(),
            ])
        },
        state: AttemptState::Refunded,
        sends: 2,
        applied: true,
    },
    Scenario {
        name: "three temporary refusals are a decline",
        script: || {
            base().refund_answers([
                Answer::declined_retryable("10246", "bank busy"),
                Answer::declined_retryable("10246", "bank busy"),
                Answer::declined_retryable("10246", "bank busy"),
            ])
        },
        state: AttemptState::Declined,
        sends: 3,
        applied: false,
    },
    Scenario {
        name: "a 429 with Retry-After, then a receipt",
        script: || base().refund_answers([Answer::rate_limited(Some(WAIT)), Answer::refunded()]),
        state: AttemptState::Refunded,
        sends: 2,
        applied: true,
    },
    Scenario {
        name: "a 429 asking for an hour is left for later, never waited out or given up",
        script: || base().refund_answers([Answer::rate_limited(Some(Duration::from_secs(3600)))]),
        state: AttemptState::RetryLater,
        sends: 1,
        applied: false,
    },
    Scenario {
        name: "the 30-second rule: a decline with a retry-after, then a receipt",
        script: || {
            base().refund_answers([
                Answer::declined_retry_after("49", "Refund Failed", WAIT),
                Answer::refunded(),
            ])
        },
        state: AttemptState::Refunded,
        sends: 2,
        applied: true,
    },
    Scenario {
        name: "a final decline",
        script: || base().refund_answers([Answer::declined("51", "insufficient balance")]),
        state: AttemptState::Declined,
        sends: 1,
        applied: false,
    },
    Scenario {
        name: "rejected credentials are failed, for a person",
        script: || {
            base().refund_answers([Answer::error(RefundError::authentication(
                "scripted",
                "30",
                "Invalid Credentials",
            ))])
        },
        state: AttemptState::Failed,
        sends: 1,
        applied: false,
    },
    Scenario {
        name: "a refusal that used the reference up: 104 on the resend is failed, not a loop",
        script: || {
            base().deduplicates_references(true).refund_answers([
                Answer::declined_retryable("69", "try again later").and_failed_record(),
                Answer::duplicate_reference(),
            ])
        },
        state: AttemptState::Failed,
        sends: 2,
        applied: false,
    },
    Scenario {
        name: "a lookup that cannot tell leaves the refund unknown, never resent",
        script: || {
            base()
                .refund_answers([Answer::outcome_unknown("timeout")])
                .lookup_answers(undetermined_forever())
        },
        state: AttemptState::Unknown,
        sends: 1,
        applied: false,
    },
];
