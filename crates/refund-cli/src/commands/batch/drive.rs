//! The driving of one row through the attempt lifecycle, `refund_core::AttemptPolicy`.
//!
//! The policy decides what follows every send and every lookup; this module only does what
//! it says, in order: pace → journal `sending` (synced) → send → `after_send` → journal the
//! decision → act on its next step. A step due within [`HORIZON`] is waited for in this run;
//! a later one is left journaled (state, `not_before`) for a rerun. Lookups go through
//! `Reconciler::look_up`, which reads the clock before it asks.
//!
//! Before a row's first send to a provider that does not refuse a reused reference (iyzico),
//! the provider's ledger is checked, once per payment and run: a refund with the row's
//! reference already on record (an earlier run whose journal was lost, or an earlier
//! campaign with the same row) is journaled refunded and not sent again, and a lookup that
//! cannot tell leaves the row unknown, unsent, for a person.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use refund_core::{
    Attempt, Decision, MerchantRef, Next, PaymentRef, Reconciliation, RefundError, RefundRequest,
    RefundState, Verdict,
};
use tokio::sync::OnceCell;

use super::Row;
use super::plan::{Plan, attempt_of};
use super::validate::Orphan;
use super::work::Ctx;
use crate::journal::{self, Record, RowState};

/// A next step due within this is waited for in the run; a later one is left for a rerun.
pub(super) const HORIZON: Duration = Duration::from_secs(5);

/// A send the provider itself asked to wait for, after a refusal it processed (SiPay's
/// 30-second rule between two refunds of one invoice), is taken up again in this run when it
/// is due within this: the row leaves its worker and is resumed by the scheduler when due, so
/// the wait holds up nothing else. A rate limit's pause is not such a step (the pacer holds
/// every request then, and one longer than [`HORIZON`] leaves its rows for a rerun).
pub(super) const RESUME_WITHIN: Duration = Duration::from_secs(65);

/// Lookups of one row in one run at most: a refund the lookup does not show yet is left
/// `unknown` for a rerun rather than looked up again and again until it settles.
const LOOKUPS_PER_RUN: u32 = 1;

/// Payments whose ledger this run keeps at most (then it starts over; a payment is looked
/// up again at worst).
const LEDGER_CACHE: usize = 10_000;

/// A next step due within this is waited for by the row's own worker; a later one (within
/// [`HORIZON`]) is handed to the scheduler.
const INLINE: Duration = Duration::from_millis(250);

/// A row to take up again in this run: at `at`, with `plan`, and what this run knows of it.
#[derive(Debug, Clone)]
pub(super) struct Resume {
    pub(super) at: SystemTime,
    pub(super) plan: Plan,
    pub(super) so_far: SoFar,
}

/// What a run knows of a row it takes up again.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SoFar {
    /// Lookups made.
    lookups: u32,
    /// The first send of this journal was answered that the reference was used already.
    used_before: bool,
}

/// How a row (or an orphaned attempt) ended in this run.
#[derive(Debug, Clone)]
pub(super) struct Ended {
    pub(super) state: RowState,
    pub(super) note: String,
    /// `unknown`: when a rerun can decide more; `retry_later`: not before when.
    pub(super) after: Option<SystemTime>,
    /// `retry_later` after a refusal the provider asked to wait out, due within
    /// [`RESUME_WITHIN`]: the scheduler may take the row up again at that time with this plan
    /// (it is journaled, so a run that does not still leaves it right for a rerun).
    pub(super) resume: Option<Resume>,
}

impl Ended {
    fn new(state: RowState, note: impl Into<String>) -> Self {
        Ended {
            state,
            note: note.into(),
            after: None,
            resume: None,
        }
    }
}

/// What the provider's ledger says before a row's first send.
enum Ledger {
    /// Nothing under the reference is applied: send, counting `refusals` failed entries under
    /// it (an earlier run's refusals) as this attempt's predecessors.
    Clear { refusals: u32 },
    /// A refund under the reference is on record.
    Found(Option<String>),
    /// The lookup cannot tell (or failed): not sent.
    CannotTell(String),
}

/// A payment's ledger as this run first looked it up (or why the lookup failed).
type Looked = Arc<OnceCell<Result<RefundState, String>>>;

/// Each payment's ledger as this run first looked it up.
#[derive(Debug, Default)]
pub(super) struct Ledgers {
    seen: Mutex<HashMap<String, Looked>>,
}

impl Ledgers {
    async fn check(&self, ctx: &Ctx, payment: &PaymentRef, reference: &MerchantRef) -> Ledger {
        let cell = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.len() >= LEDGER_CACHE {
                seen.clear();
            }
            Arc::clone(seen.entry(payment.to_string()).or_default())
        };
        let state = cell
            .get_or_init(|| async {
                ctx.look
                    .refund_state(payment)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await;
        let state = match state {
            Ok(state) => state,
            Err(e) => return Ledger::CannotTell(format!("the lookup failed ({e})")),
        };
        match state.find(reference) {
            Reconciliation::Applied(record) => Ledger::Found(record.provider_reference.clone()),
            Reconciliation::Failed(_) | Reconciliation::NotFound => Ledger::Clear {
                refusals: u32::try_from(state.failed_count(reference)).unwrap_or(u32::MAX),
            },
            _ => Ledger::CannotTell(match &state.undetermined {
                Some(why) => format!("the lookup cannot say what was refunded: {why}"),
                None => format!(
                    "the lookup lists {} refunded without a reference for every refund",
                    state.refunded
                ),
            }),
        }
    }
}

/// The next step of a row in this run.
enum Step {
    /// Send: the first request (`after` none, with `refusals` on record), or again after
    /// `after`.
    Send {
        after: Option<Attempt>,
        refusals: u32,
    },
    /// Look `0` up.
    LookUp(Attempt),
}

/// Drives one row from its plan until its state is final or its next step is not due soon.
/// `Err` only when the journal cannot be written (then nothing more was sent).
///
/// `so_far`: what this run knows of the row already (one taken up again), else the default.
pub(super) async fn row(ctx: &Ctx, row: &Row, plan: Plan, so_far: SoFar) -> std::io::Result<Ended> {
    let (reference, mut step) = match plan {
        Plan::First {
            reference,
            refusals,
        } => {
            let mut refusals = refusals;
            if ctx.check_ledger {
                match ctx.ledgers.check(ctx, &row.payment, &reference).await {
                    Ledger::Clear {
                        refusals: on_record,
                    } => refusals = refusals.max(on_record),
                    Ledger::Found(id) => return refunded_before(ctx, row, &reference, id).await,
                    Ledger::CannotTell(why) => {
                        let note = format!(
                            "not sent: before the first send of reference {reference}, the \
                             provider's ledger was checked for an earlier refund under it (this \
                             provider does not refuse a reused reference) and {why}. A person \
                             checks the payment; a rerun checks again"
                        );
                        let record = Record {
                            note: Some(note.clone()),
                            ..Record::new(row.key.as_str(), reference.as_str(), RowState::Unknown)
                        };
                        ctx.journal.append(&record).await?;
                        return Ok(Ended::new(RowState::Unknown, note));
                    }
                }
            }
            (
                reference,
                Step::Send {
                    after: None,
                    refusals,
                },
            )
        }
        Plan::Resend(attempt) => (
            attempt.reference.clone(),
            Step::Send {
                refusals: attempt.refusals,
                after: Some(attempt),
            },
        ),
        Plan::LookUp(attempt) => (attempt.reference.clone(), Step::LookUp(attempt)),
        // Counted by the caller, never sent.
        Plan::Skip(state) => return Ok(Ended::new(state, "")),
        Plan::Wait(t) => {
            return Ok(Ended {
                after: Some(t),
                ..Ended::new(RowState::RetryLater, "")
            });
        }
        Plan::Stuck(why) | Plan::Blocked(why) | Plan::Invalid(why) => {
            return Ok(Ended::new(RowState::Unknown, why));
        }
    };

    let request = match RefundRequest::builder(row.payment.clone(), row.amount)
        .reference(reference.as_str())
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let note = format!("{e}; nothing was sent, and nothing is until a person decides");
            let record = Record {
                note: Some(note.clone()),
                ..Record::new(row.key.as_str(), reference.as_str(), RowState::Failed)
            };
            ctx.journal.append(&record).await?;
            return Ok(Ended::new(RowState::Failed, note));
        }
    };
    let SoFar {
        mut lookups,
        mut used_before,
    } = so_far;
    loop {
        let (decision, settles_at) = match step {
            Step::Send { after, refusals } => {
                // Within the rate and after any rate-limit pause; then journaled (with its
                // time) and synced before the request can leave. A pause too long for this run
                // leaves the row to a later one, nothing sent.
                if let Err(left) = ctx.pacer.ready(HORIZON).await {
                    let not_before = SystemTime::now() + left;
                    let note = format!(
                        "the provider asked to pause every request until {}: not sent in this \
                         run; to be sent with reference {reference} after that",
                        journal::utc(not_before)
                    );
                    let record = Record {
                        note: Some(note.clone()),
                        not_before: Some(journal::to_millis(not_before)),
                        ..Record::new(row.key.as_str(), reference.as_str(), RowState::RetryLater)
                    };
                    ctx.journal.append(&record).await?;
                    return Ok(Ended {
                        after: Some(not_before),
                        ..Ended::new(RowState::RetryLater, note)
                    });
                }
                ctx.journal
                    .append(&Record::new(
                        row.key.as_str(),
                        reference.as_str(),
                        RowState::Sending,
                    ))
                    .await?;
                // Dated as it leaves: later than the journaled time, so the more cautious of
                // the two for this run's own lookups.
                let at = SystemTime::now();
                let first = after.is_none();
                let attempt = match after {
                    Some(earlier) => earlier.resent(at),
                    None => Attempt::new(reference.clone(), at, 1, refusals),
                };
                let result = ctx.send.refund(&request).await;
                if let Err(e) = &result {
                    ctx.pacer.observe(e);
                    used_before |= first && matches!(e, RefundError::DuplicateReference { .. });
                }
                let decision = ctx
                    .policy
                    .after_send(&attempt, result.as_ref(), SystemTime::now());
                (decision, None)
            }
            Step::LookUp(attempt) => {
                lookups += 1;
                let judged = ctx
                    .reconciler
                    .look_up(&*ctx.look, &row.payment, &attempt, SystemTime::now)
                    .await;
                let decision =
                    ctx.policy
                        .after_lookup(&attempt, judged.as_ref(), SystemTime::now());
                let settles_at = judged
                    .as_ref()
                    .map_or(ctx.reconciler.settles_at(attempt.attempted_at), |j| {
                        j.settles_at
                    });
                (decision, Some(settles_at))
            }
        };
        let before = used_before.then_some(row.reference.is_none());
        let mut ended = store(ctx, &row.key, &decision, settles_at, before).await?;
        let now = SystemTime::now();
        // A step due at once is taken here; one due within the horizon (or a wait the provider
        // asked for, within RESUME_WITHIN) is handed back to the scheduler, which takes the row
        // up again when it is due, so the wait holds no worker; a later one is left for a rerun.
        let (at, next) = match decision.next {
            Next::Send { at } => (at, Plan::Resend(decision.attempt)),
            Next::LookUp { at } if lookups < LOOKUPS_PER_RUN => {
                (at, Plan::LookUp(decision.attempt))
            }
            _ => (now + RESUME_WITHIN + HORIZON, Plan::Skip(ended.state)),
        };
        let resumable = matches!(next, Plan::Resend(_) | Plan::LookUp(_))
            && (at <= now + HORIZON || (decision.refused && at <= now + RESUME_WITHIN));
        if resumable && at <= now + INLINE {
            sleep_until(at).await;
        }
        step = match next {
            Plan::Resend(attempt) if at <= now + INLINE => Step::Send {
                refusals: attempt.refusals,
                after: Some(attempt),
            },
            Plan::LookUp(attempt) if at <= now + INLINE => Step::LookUp(attempt),
            next if resumable => {
                ended.resume = Some(Resume {
                    at,
                    plan: next,
                    so_far: SoFar {
                        lookups,
                        used_before,
                    },
                });
                return Ok(ended);
            }
            _ => {
                if ended.state == RowState::Unknown && ended.after.is_none() {
                    ended.after = settles_at;
                }
                return Ok(ended);
            }
        };
    }
}

/// Journals `decision` for `key` (with "settles at" on an unknown one that a lookup judged)
/// and returns how the row stands. `used_before`: the first send of this journal was answered
/// that the reference was used already (`Some(true)` when the reference is derived from the
/// row's content).
async fn store(
    ctx: &Ctx,
    key: &str,
    decision: &Decision,
    settles_at: Option<SystemTime>,
    used_before: Option<bool>,
) -> std::io::Result<Ended> {
    let state = RowState::of(decision.state);
    let reference = &decision.attempt.reference;
    let mut note = decision.note.clone();
    match used_before {
        Some(derived) if state == RowState::Refunded => note.push_str(&if derived {
            format!(
                "; refunded before: the provider answered that reference {reference} (derived \
                 from this row's content) was used already, and its ledger shows the refund, \
                 from an earlier run of this input or an earlier campaign with the same row; \
                 nothing more was paid. To refund this payment and amount again, give the row \
                 its own reference"
            )
        } else {
            format!(
                "; refunded before: the provider answered that reference {reference} was used \
                 already, and its ledger shows the refund (an earlier run of this input, with \
                 another journal?); nothing more was paid"
            )
        }),
        _ => {}
    }
    if state == RowState::Unknown
        && let Some(at) = settles_at
    {
        note.push_str(&format!("; settles at {}", journal::utc(at)));
    }
    let not_before = decision.not_before();
    let record = Record {
        note: Some(note.clone()),
        not_before: not_before.map(journal::to_millis),
        refused: decision.refused,
        provider_reference: decision.refund_id.clone(),
        ..Record::new(key, reference.as_str(), state)
    };
    ctx.journal.append(&record).await?;
    Ok(Ended {
        state,
        note,
        after: match state {
            RowState::RetryLater => not_before,
            RowState::Unknown => settles_at.or(not_before),
            _ => None,
        },
        resume: None,
    })
}

/// Journals a row whose reference the provider's ledger already shows refunded: never sent.
async fn refunded_before(
    ctx: &Ctx,
    row: &Row,
    reference: &MerchantRef,
    id: Option<String>,
) -> std::io::Result<Ended> {
    let shown = id
        .as_deref()
        .map(|id| format!(" (refund id {id})"))
        .unwrap_or_default();
    let note = match &row.reference {
        Some(_) => format!(
            "refunded before: a refund with reference {reference}{shown} is already on the \
             provider's ledger (an earlier run of this input, with another journal?); not sent"
        ),
        None => format!(
            "refunded before: a refund with reference {reference}{shown}, the one derived from \
             this row's content, is already on the provider's ledger, from an earlier run of \
             this input or an earlier campaign with the same row; not sent. To refund this \
             payment and amount again, give the row its own reference"
        ),
    };
    let record = Record {
        note: Some(note.clone()),
        provider_reference: id,
        ..Record::new(row.key.as_str(), reference.as_str(), RowState::Refunded)
    };
    ctx.journal.append(&record).await?;
    Ok(Ended::new(RowState::Refunded, note))
}

/// Looks up an orphaned attempt (its row is no longer in the input) and journals what the
/// lookup settles. It is never resent: once the settle time has passed with nothing on
/// record, it is journaled `failed` (not applied), and the edited row may go.
pub(super) async fn orphan(ctx: &Ctx, orphan: &Orphan) -> std::io::Result<Ended> {
    let (Ok(reference), Some(payment)) = (
        MerchantRef::new(orphan.reference.clone()),
        orphan.payment_ref(),
    ) else {
        return Ok(Ended::new(
            RowState::Unknown,
            format!(
                "its reference {:?} or payment {:?} cannot be looked up: check it with the \
                 provider",
                orphan.reference, orphan.payment
            ),
        ));
    };
    let failed = |note: String| Record {
        note: Some(note),
        ..Record::new(orphan.key.as_str(), reference.as_str(), RowState::Failed)
    };
    if orphan.view.sends() == 0 {
        let note = format!(
            "never sent (reference {reference}), and its row is no longer in the input: not sent"
        );
        ctx.journal.append(&failed(note.clone())).await?;
        return Ok(Ended::new(RowState::Failed, note));
    }
    let attempt = attempt_of(&orphan.view, reference.clone());
    let judged = ctx
        .reconciler
        .look_up(&*ctx.look, &payment, &attempt, SystemTime::now)
        .await;
    if let Ok(judged) = &judged
        && matches!(judged.verdict, Verdict::SafeToResend)
    {
        let note = format!(
            "reconciled: nothing with reference {reference} is on record after the settle \
             time, so it did not take effect; its row is no longer in the input, so it is not \
             resent"
        );
        ctx.journal.append(&failed(note.clone())).await?;
        return Ok(Ended::new(RowState::Failed, note));
    }
    let decision = ctx
        .policy
        .after_lookup(&attempt, judged.as_ref(), SystemTime::now());
    let settles_at = judged.as_ref().map_or_else(
        |_| ctx.reconciler.settles_at(attempt.attempted_at),
        |j| j.settles_at,
    );
    store(ctx, &orphan.key, &decision, Some(settles_at), None).await
}

async fn sleep_until(at: SystemTime) {
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
}
