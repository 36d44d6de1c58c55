//! The attempt lifecycle: what to do after each send and each lookup, written once.
//!
//! A refund is sent under one [`MerchantRef`]; everything that happens to it afterwards — a
//! receipt, a decline, a rate limit, a lost answer, a lookup that finds it, misses it or cannot
//! tell — is decided here, by pure functions of the [`Attempt`] (what is on record about the
//! sends so far), the result, and the time. Nothing here does I/O: the drivers — the in-memory
//! [`Retrying`](crate::Retrying), the file journal of `refund batch` and the PostgreSQL
//! outbox — store the [`Decision`] and act on its [`Next`] step, each with its own mechanism
//! (a sleep, a journal record, a row's `not_before`). The style is `tower::retry::Policy`'s:
//! the decision is a value, the driver is elsewhere.
//!
//! | after | result | state | next |
//! |---|---|---|---|
//! | a send | a receipt | `refunded` | done |
//! | a send | a final decline | `declined` | done |
//! | a send | a temporary decline, rate limit, unreachable | `retry_later` | send again at `now + retry_after` (or the backoff) |
//! | a send | the `max_refusals`-th refusal | `declined` | done |
//! | a send | rejected credentials, invalid request, unsupported, configuration | `failed` | done (a person decides) |
//! | a send | outcome unknown (timeout, lost answer, duplicate reference) | `unknown` | look up at `now + recheck` |
//! | a send | a duplicate reference after only refusals of that reference | `failed` | done: the refusals used the reference up, nothing was refunded under it |
//! | a lookup | [`Verdict::Applied`] | `refunded` | done |
//! | a lookup | [`Verdict::NotApplied`] | `declined` | done |
//! | a lookup | [`Verdict::NotYetKnown`] | `unknown` | look up at `min(now + recheck, settles_at)` |
//! | a lookup | [`Verdict::SafeToResend`] | `retry_later` | send again now, **same reference** |
//! | a lookup | [`Verdict::SafeToResend`] after `max_sends` sends | `unknown` | stuck: a person decides |
//! | a lookup | [`Verdict::Undetermined`] | `unknown` | look up at `max(now + recheck, settles_at)`; a person decides if it persists |
//! | a lookup | the lookup failed | `unknown` | look up at `now + recheck` |
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use refund_core::{Attempt, AttemptPolicy, AttemptState, MerchantRef, Next, RefundError};
//!
//! let policy = AttemptPolicy::default().with_jitter(false);
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
//! let attempt = Attempt::first(MerchantRef::new("order-42-r1")?, now);
//!
//! // A lost answer is never a decline and never a fresh send: look it up first.
//! let lost = RefundError::outcome_unknown("sipay", "timed out waiting for the response");
//! let decision = policy.after_send(&attempt, Err(&lost), now);
//! assert_eq!(decision.state, AttemptState::Unknown);
//! assert!(matches!(decision.next, Next::LookUp { .. }));
//!
//! // SiPay's "wait 30 s" is a temporary decline with a retry-after: sent again after it.
//! let wait = RefundError::declined_retry_after("sipay", "49", "Refund Failed", Duration::from_secs(30));
//! let decision = policy.after_send(&attempt, Err(&wait), now);
//! assert_eq!(decision.state, AttemptState::RetryLater);
//! assert_eq!(decision.next, Next::Send { at: now + Duration::from_secs(30) });
//! assert_eq!(decision.attempt.refusals, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::RefundError;
use crate::money::Money;
use crate::receipt::RefundReceipt;
use crate::reconcile::{Judged, Verdict};
use crate::reference::MerchantRef;

/// Where a refund attempt stands: the one state set every driver stores (the journal's rows,
/// the outbox's intents).
///
/// | state | means | a driver |
/// |---|---|---|
/// | `pending` | never sent | sends it |
/// | `sending` | a request is (or was) on its way, no answer recorded | looks it up before anything is resent |
/// | `unknown` | a request may have reached the provider and no trustworthy answer came | looks it up (after its time) and resends only on [`Verdict::SafeToResend`] |
/// | `retry_later` | refused for now, rate limited, not reached, or proven absent | sends it again, same reference, after its time |
/// | `refunded` | final: the provider refunded it | — |
/// | `declined` | final: the provider refused it, or a lookup found it failed | — |
/// | `failed` | final: nothing was refunded and nothing more is sent (credentials, invalid request, a used-up reference) | — (a person decides) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptState {
    /// Never sent.
    Pending,
    /// A request is on its way (written before it leaves); nothing recorded after it.
    Sending,
    /// A request may have reached the provider; reconciled before anything is resent.
    Unknown,
    /// Sent again, with the same reference, after its not-before time.
    RetryLater,
    /// Refunded (final).
    Refunded,
    /// Declined (final).
    Declined,
    /// Not refunded, and not sent again without a person (final).
    Failed,
}

impl AttemptState {
    /// Every state.
    pub const ALL: [AttemptState; 7] = [
        AttemptState::Pending,
        AttemptState::Sending,
        AttemptState::Unknown,
        AttemptState::RetryLater,
        AttemptState::Refunded,
        AttemptState::Declined,
        AttemptState::Failed,
    ];

    /// The stored name: `pending`, `sending`, `unknown`, `retry_later`, `refunded`,
    /// `declined`, `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptState::Pending => "pending",
            AttemptState::Sending => "sending",
            AttemptState::Unknown => "unknown",
            AttemptState::RetryLater => "retry_later",
            AttemptState::Refunded => "refunded",
            AttemptState::Declined => "declined",
            AttemptState::Failed => "failed",
        }
    }

    /// Whether drivers are done with it (`refunded`, `declined`, `failed`).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            AttemptState::Refunded | AttemptState::Declined | AttemptState::Failed
        )
    }

    /// Whether a request under the attempt's reference may have reached the provider without
    /// a trustworthy answer (`sending`, `unknown`): nothing may be decided about it, by a driver
    /// or a person, before a lookup settles it.
    pub const fn may_be_in_flight(self) -> bool {
        matches!(self, AttemptState::Sending | AttemptState::Unknown)
    }
}

impl fmt::Display for AttemptState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attempt state name that is not one of [`AttemptState::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown attempt state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for AttemptState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AttemptState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// What a store knows about the sends under one reference: the input of every decision.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// The reference every send of this refund carries.
    pub reference: MerchantRef,
    /// When the latest request left, as the store dated it (before it left).
    pub attempted_at: SystemTime,
    /// Requests sent under the reference so far, the latest included.
    pub sends: u32,
    /// Of those, the ones the provider processed and refused (each may have left a failed
    /// record under the reference that says nothing about a later send).
    pub refusals: u32,
    /// The amount every send asked for, when the driver knows it: a lookup that lists an
    /// applied refund of this amount under a reference that is not one of ours cannot prove
    /// that this attempt is absent (the provider may have relabelled it).
    pub amount: Option<Money>,
    /// The other references the driver itself sent refunds of the same payment under (other
    /// rows of a campaign, other intents): records carrying them are explained.
    pub known_references: Vec<MerchantRef>,
}

impl Attempt {
    /// The first send under `reference`, dated `at`.
    pub fn first(reference: MerchantRef, at: SystemTime) -> Self {
        Attempt {
            reference,
            attempted_at: at,
            sends: 1,
            refusals: 0,
            amount: None,
            known_references: Vec::new(),
        }
    }

    /// An attempt as a store recorded it.
    pub fn new(
        reference: MerchantRef,
        attempted_at: SystemTime,
        sends: u32,
        refusals: u32,
    ) -> Self {
        Attempt {
            reference,
            attempted_at,
            sends: sends.max(1),
            refusals,
            amount: None,
            known_references: Vec::new(),
        }
    }

    /// Sets the amount every send asked for (see [`amount`](Self::amount)).
    #[must_use]
    pub fn with_amount(mut self, amount: Money) -> Self {
        self.amount = Some(amount);
        self
    }

    /// Sets the other references the driver sent refunds of the same payment under (see
    /// [`known_references`](Self::known_references)).
    #[must_use]
    pub fn with_known_references(
        mut self,
        references: impl IntoIterator<Item = MerchantRef>,
    ) -> Self {
        self.known_references = references.into_iter().collect();
        self
    }

    /// Whether a record's reference is this attempt's or one the driver knows as its own.
    pub(crate) fn explains(&self, reference: &str) -> bool {
        self.reference.as_str() == reference
            || self
                .known_references
                .iter()
                .any(|r| r.as_str() == reference)
    }

    /// The attempt once one more request is sent under the same reference, dated `at`.
    #[must_use]
    pub fn resent(&self, at: SystemTime) -> Self {
        Attempt {
            attempted_at: at,
            sends: self.sends.saturating_add(1),
            ..self.clone()
        }
    }
}

/// What a driver does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Next {
    /// Nothing more: the state is final.
    Done,
    /// Send again, with the same reference, not before `at`.
    Send {
        /// Not before this time.
        at: SystemTime,
    },
    /// Look the refund up, not before `at`; never resend before the lookup says so.
    LookUp {
        /// Not before this time.
        at: SystemTime,
    },
    /// Nothing automatic is safe: a person decides (the note says why). The state stays
    /// `unknown`; a driver may still look it up now and then, since a lookup that finds the
    /// refund settles it.
    Person,
}

/// A decision: what to store and what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// The state to store.
    pub state: AttemptState,
    /// What the driver does next.
    pub next: Next,
    /// The attempt as it now stands (refusals counted).
    pub attempt: Attempt,
    /// A short, stable name for what happened: `refunded`, `declined`, `retry_later`,
    /// `failed`, `unknown`, `used_up`, and for lookups the [`Verdict::kind`] or
    /// `lookup_failed`.
    pub outcome: &'static str,
    /// Whether the result was a refusal the provider processed (counted in
    /// [`Attempt::refusals`]).
    pub refused: bool,
    /// `refunded`: the provider's id of the refund, when it gave one.
    pub refund_id: Option<String>,
    /// Why, in words for the journal, the report and the person reading them.
    pub note: String,
}

impl Decision {
    fn new(
        state: AttemptState,
        next: Next,
        attempt: &Attempt,
        outcome: &'static str,
        note: String,
    ) -> Self {
        Decision {
            state,
            next,
            attempt: attempt.clone(),
            outcome,
            refused: false,
            refund_id: None,
            note,
        }
    }

    /// When the driver acts next, when it does by itself.
    pub fn not_before(&self) -> Option<SystemTime> {
        match self.next {
            Next::Send { at } | Next::LookUp { at } => Some(at),
            Next::Done | Next::Person => None,
        }
    }
}

/// The knobs of the lifecycle, with one default for every driver.
///
/// ```
/// use std::time::Duration;
/// use refund_core::AttemptPolicy;
///
/// let policy = AttemptPolicy::default()
///     .with_backoff(Duration::from_secs(1), Duration::from_secs(60))
///     .with_jitter(false);
/// assert_eq!(policy.backoff(1), Duration::from_secs(1));
/// assert_eq!(policy.backoff(3), Duration::from_secs(4));
/// assert_eq!(policy.backoff(10), Duration::from_secs(60));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptPolicy {
    first_backoff: Duration,
    max_backoff: Duration,
    jitter: bool,
    max_refusals: u32,
    max_sends: u32,
    recheck: Duration,
    failed_is_final: bool,
}

impl Default for AttemptPolicy {
    /// Temporary refusals and rate limits without a `Retry-After` wait 2 s doubling up to
    /// 10 minutes (with jitter); the 3rd refusal is final; an unknown outcome is first looked
    /// up after 5 s; at most 3 sends under one reference before a person decides; `failed` is
    /// final.
    fn default() -> Self {
        AttemptPolicy {
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
            jitter: true,
            max_refusals: 3,
            max_sends: 3,
            recheck: Duration::from_secs(5),
            failed_is_final: true,
        }
    }
}

impl AttemptPolicy {
    /// The wait after the first retryable failure without advice, and the cap; it doubles in
    /// between.
    #[must_use]
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// Whether backoffs are randomised to between half and all of their value, so clients that
    /// failed together do not retry together.
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// After this many refusals under one reference the attempt is declined (at least 1).
    #[must_use]
    pub fn with_max_refusals(mut self, max: u32) -> Self {
        self.max_refusals = max.max(1);
        self
    }

    /// At most this many requests under one reference (at least 1): a lookup that would
    /// allow another one after that leaves the attempt to a person instead.
    #[must_use]
    pub fn with_max_sends(mut self, max: u32) -> Self {
        self.max_sends = max.max(1);
        self
    }

    /// How long after an unknown outcome the first lookup is made (earlier than the settle
    /// time: a lookup that finds the refund settles it at once), and how often an
    /// undetermined one is repeated.
    #[must_use]
    pub fn with_recheck(mut self, recheck: Duration) -> Self {
        self.recheck = recheck;
        self
    }

    /// Whether `failed` (rejected credentials, an invalid request, a configuration error) is
    /// final, for a person to decide (the default), or sent again after the backoff.
    #[must_use]
    pub fn with_failed_final(mut self, is_final: bool) -> Self {
        self.failed_is_final = is_final;
        self
    }

    /// Whether backoffs are jittered.
    pub fn jitter(&self) -> bool {
        self.jitter
    }

    /// The recheck interval.
    pub fn recheck(&self) -> Duration {
        self.recheck
    }

    /// The refusal limit.
    pub fn max_refusals(&self) -> u32 {
        self.max_refusals
    }

    /// The send limit.
    pub fn max_sends(&self) -> u32 {
        self.max_sends
    }

    /// The wait before send `sends + 1` after a retryable failure without advice.
    pub fn backoff(&self, sends: u32) -> Duration {
        let doublings = sends.saturating_sub(1).min(31);
        let delay = self
            .first_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff);
        if self.jitter { jittered(delay) } else { delay }
    }

    /// Decides what follows the send of `attempt` (its latest request, counted in
    /// [`Attempt::sends`]) that ended in `result`, at `now`.
    pub fn after_send(
        &self,
        attempt: &Attempt,
        result: Result<&RefundReceipt, &RefundError>,
        now: SystemTime,
    ) -> Decision {
        let reference = &attempt.reference;
        let error = match result {
            Ok(receipt) => {
                let mut d = Decision::new(
                    AttemptState::Refunded,
                    Next::Done,
                    attempt,
                    "refunded",
                    receipt_note(receipt),
                );
                d.refund_id = receipt.refund_id.clone();
                return d;
            }
            Err(error) => error,
        };
        if let RefundError::DuplicateReference { .. } = error
            && attempt.refusals > 0
            && attempt.refusals.saturating_add(1) >= attempt.sends
        {
            // Every earlier request under this reference was refused, with a known outcome:
            // nothing under it can have been applied, and the provider will not take it again
            // (whether a refusal uses a reference up is documented nowhere; this is the case
            // where it did). Never "look it up and resend" forever.
            return Decision::new(
                AttemptState::Failed,
                Next::Done,
                attempt,
                "used_up",
                format!(
                    "{error}; every earlier request with reference {reference} was refused, so \
                     nothing was refunded under it and the provider will not take it again: a \
                     person decides (a new reference sends it again)"
                ),
            );
        }
        if !error.is_outcome_known() {
            let at = now + self.recheck;
            return Decision::new(
                AttemptState::Unknown,
                Next::LookUp { at },
                attempt,
                "unknown",
                format!("{error}; to be looked up before anything is resent"),
            );
        }
        if error.is_retryable() {
            let refused = error.is_refusal();
            let mut counted = attempt.clone();
            counted.refusals = counted.refusals.saturating_add(u32::from(refused));
            if refused && counted.refusals >= self.max_refusals {
                let mut d = Decision::new(
                    AttemptState::Declined,
                    Next::Done,
                    &counted,
                    "declined",
                    format!(
                        "{error}; refused {} times with reference {reference}, not sent again",
                        counted.refusals
                    ),
                );
                d.refused = true;
                return d;
            }
            let wait = error
                .retry_after()
                .unwrap_or_else(|| self.backoff(attempt.sends));
            let mut d = Decision::new(
                AttemptState::RetryLater,
                Next::Send { at: now + wait },
                &counted,
                "retry_later",
                format!(
                    "{error}; to be sent again with reference {reference} after {} s",
                    wait.as_secs_f64().ceil()
                ),
            );
            d.refused = refused;
            return d;
        }
        if error.is_refusal() {
            let mut counted = attempt.clone();
            counted.refusals = counted.refusals.saturating_add(1);
            let mut d = Decision::new(
                AttemptState::Declined,
                Next::Done,
                &counted,
                "declined",
                error.to_string(),
            );
            d.refused = true;
            return d;
        }
        let next = if self.failed_is_final {
            Next::Done
        } else {
            Next::Send {
                at: now + self.backoff(attempt.sends),
            }
        };
        let mut note = error.to_string();
        if self.failed_is_final {
            note.push_str(
                "; nothing was refunded and nothing is sent again until a person decides",
            );
        }
        Decision::new(AttemptState::Failed, next, attempt, "failed", note)
    }

    /// Decides what follows a lookup of `attempt` that answered `looked` (the judged verdict,
    /// or the lookup's own error), at `now`.
    pub fn after_lookup(
        &self,
        attempt: &Attempt,
        looked: Result<&Judged, &RefundError>,
        now: SystemTime,
    ) -> Decision {
        let reference = &attempt.reference;
        let judged = match looked {
            Ok(judged) => judged,
            Err(e) => {
                return Decision::new(
                    AttemptState::Unknown,
                    Next::LookUp {
                        at: (now + self.recheck).max(now),
                    },
                    attempt,
                    "lookup_failed",
                    format!(
                        "the lookup failed ({e}); reference {reference} left unknown, nothing resent"
                    ),
                );
            }
        };
        let outcome = judged.verdict.kind();
        match &judged.verdict {
            Verdict::Applied(record) => {
                let mut d = Decision::new(
                    AttemptState::Refunded,
                    Next::Done,
                    attempt,
                    outcome,
                    match &record.provider_reference {
                        Some(id) => format!(
                            "reconciled: reference {reference} was applied (refund id {id})"
                        ),
                        None => format!("reconciled: reference {reference} was applied"),
                    },
                );
                d.refund_id = record.provider_reference.clone();
                d
            }
            Verdict::NotApplied(_) => Decision::new(
                AttemptState::Declined,
                Next::Done,
                attempt,
                outcome,
                format!(
                    "reconciled: reference {reference} is on record as failed; nothing was refunded"
                ),
            ),
            Verdict::NotYetKnown { .. } => Decision::new(
                AttemptState::Unknown,
                Next::LookUp {
                    // Again soon (a late refund shows up), and once more right as it settles.
                    at: (now + self.recheck).min(judged.settles_at.max(now)),
                },
                attempt,
                outcome,
                format!(
                    "no refund with reference {reference} on record yet, and the provider's lookup \
                     may lag: nothing resent before the attempt settles"
                ),
            ),
            Verdict::SafeToResend if attempt.sends >= self.max_sends => Decision::new(
                AttemptState::Unknown,
                Next::Person,
                attempt,
                "stuck",
                format!(
                    "reference {reference} was sent {} times and the provider's lookup never lists \
                     it: not sent again; a person checks the payment with the provider and \
                     records what they find",
                    attempt.sends
                ),
            ),
            Verdict::SafeToResend => Decision::new(
                AttemptState::RetryLater,
                Next::Send { at: now },
                attempt,
                outcome,
                format!(
                    "nothing with reference {reference} on record after the settle time: sent \
                     again with the same reference"
                ),
            ),
            Verdict::Undetermined(why) => Decision::new(
                AttemptState::Unknown,
                Next::LookUp {
                    at: (now + self.recheck).max(judged.settles_at),
                },
                attempt,
                outcome,
                format!(
                    "the lookup cannot tell whether reference {reference} was applied ({why}); \
                     nothing resent; check it with the provider if it stays unknown"
                ),
            ),
        }
    }
}

/// The receipt's provider identifiers, `name=value` separated by spaces.
fn receipt_note(receipt: &RefundReceipt) -> String {
    receipt
        .provider_references
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn jittered(delay: Duration) -> Duration {
    let half = delay / 2;
    let mut b = [0u8; 4];
    let frac = match getrandom::fill(&mut b) {
        Ok(()) => u32::from_le_bytes(b),
        Err(_) => u32::MAX / 2,
    };
    // half + half * frac / 2^32, in integer nanoseconds.
    let extra = (u128::from(frac) * half.as_nanos()) >> 32;
    half + Duration::from_nanos(u64::try_from(extra).unwrap_or(u64::MAX))
}
