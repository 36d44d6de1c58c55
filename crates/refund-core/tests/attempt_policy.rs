//! The attempt lifecycle as tables: (attempt, result, now) → (state, next). Every driver —
//! `Retrying`, the file journal of `refund batch`, the PostgreSQL outbox — acts on these
//! decisions, so these rows are the one behaviour they share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use refund_core::{
    Attempt, AttemptPolicy, AttemptState, Currency, Judged, MerchantRef, Money, Next, Operation,
    PaymentRef, Reconciler, RefundError, RefundReceipt, RefundRecord, RefundState, RefundStatus,
    Verdict,
};

const SETTLE: Duration = Duration::from_secs(900);

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn tl(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

fn policy() -> AttemptPolicy {
    AttemptPolicy::default().with_jitter(false)
}

fn reference() -> MerchantRef {
    MerchantRef::new("r-1").unwrap()
}

fn attempt(sends: u32, refusals: u32) -> Attempt {
    Attempt::new(reference(), t(0), sends, refusals)
}

fn receipt() -> RefundReceipt {
    RefundReceipt::new(
        "p",
        Operation::Refund,
        PaymentRef::payment("INV-1"),
        reference(),
        tl("10"),
        RefundStatus::Completed,
    )
    .with_refund_id("rf-1")
}

#[test]
fn after_a_send() {
    let now = t(10);
    let s = Duration::from_secs;
    // (what the send answered, sends, refusals) → (state, next, refusals after)
    let rows: Vec<(&str, RefundError, u32, u32, AttemptState, Next, u32)> = vec![
        (
            "a final decline is final",
            RefundError::declined("p", "51", "insufficient"),
            1,
            0,
            AttemptState::Declined,
            Next::Done,
            1,
        ),
        (
            "a temporary decline waits the backoff (2 s after the first send)",
            RefundError::declined_retryable("p", "10246", "bank"),
            1,
            0,
            AttemptState::RetryLater,
            Next::Send { at: now + s(2) },
            1,
        ),
        (
            "the backoff doubles with the sends",
            RefundError::declined_retryable("p", "10246", "bank"),
            2,
            1,
            AttemptState::RetryLater,
            Next::Send { at: now + s(4) },
            2,
        ),
        (
            "the third refusal is final",
            RefundError::declined_retryable("p", "10246", "bank"),
            3,
            2,
            AttemptState::Declined,
            Next::Done,
            3,
        ),
        (
            "SiPay's 30-second rule: a decline that says how long to wait",
            RefundError::declined_retry_after("sipay", "49", "Refund Failed", s(31)),
            1,
            0,
            AttemptState::RetryLater,
            Next::Send { at: now + s(31) },
            1,
        ),
        (
            "a 429 with Retry-After is honoured however long",
            RefundError::rate_limited("p", Some(s(3600))),
            1,
            0,
            AttemptState::RetryLater,
            Next::Send { at: now + s(3600) },
            0,
        ),
        (
            "a 429 without Retry-After waits the backoff, and is no refusal",
            RefundError::rate_limited("p", None),
            1,
            0,
            AttemptState::RetryLater,
            Next::Send { at: now + s(2) },
            0,
        ),
        (
            "unreachable: nothing was sent",
            RefundError::unreachable("p", "connection refused"),
            1,
            0,
            AttemptState::RetryLater,
            Next::Send { at: now + s(2) },
            0,
        ),
        (
            "a lost answer is looked up, never resent",
            RefundError::outcome_unknown("p", "timeout"),
            1,
            0,
            AttemptState::Unknown,
            Next::LookUp { at: now + s(5) },
            0,
        ),
        (
            "a duplicate reference on a first send is looked up",
            RefundError::duplicate_reference("sipay", "104", "not unique"),
            1,
            0,
            AttemptState::Unknown,
            Next::LookUp { at: now + s(5) },
            0,
        ),
        (
            "a duplicate reference after only refusals: the refusal used the reference up",
            RefundError::duplicate_reference("sipay", "104", "not unique"),
            2,
            1,
            AttemptState::Failed,
            Next::Done,
            1,
        ),
        (
            "a duplicate reference after a resend that was proven absent is looked up",
            RefundError::duplicate_reference("sipay", "104", "not unique"),
            2,
            0,
            AttemptState::Unknown,
            Next::LookUp { at: now + s(5) },
            0,
        ),
        (
            "rejected credentials are final: a person decides",
            RefundError::authentication("p", "30", "Invalid Credentials"),
            1,
            0,
            AttemptState::Failed,
            Next::Done,
            0,
        ),
        (
            "a configuration error is final",
            RefundError::configuration("p", "no base URL"),
            1,
            0,
            AttemptState::Failed,
            Next::Done,
            0,
        ),
    ];
    for (what, error, sends, refusals, state, next, refusals_after) in rows {
        let d = policy().after_send(&attempt(sends, refusals), Err(&error), now);
        assert_eq!((d.state, d.next), (state, next), "{what}: {}", d.note);
        assert_eq!(d.attempt.refusals, refusals_after, "{what}");
        assert_eq!(
            d.refused,
            error.is_refusal() && d.outcome != "used_up",
            "{what}"
        );
        assert!(!d.note.is_empty(), "{what}");
    }
}

#[test]
fn a_receipt_is_refunded_with_the_providers_refund_id() {
    let d = policy().after_send(&attempt(1, 0), Ok(&receipt()), t(1));
    assert_eq!((d.state, d.next), (AttemptState::Refunded, Next::Done));
    assert_eq!(d.refund_id.as_deref(), Some("rf-1"));
}

#[test]
fn failed_can_be_made_not_final() {
    let error = RefundError::authentication("p", "30", "Invalid Credentials");
    let d = policy()
        .with_failed_final(false)
        .after_send(&attempt(1, 0), Err(&error), t(10));
    assert_eq!(d.state, AttemptState::Failed);
    assert_eq!(
        d.next,
        Next::Send {
            at: t(10) + Duration::from_secs(2)
        }
    );
}

fn judged(verdict: Verdict) -> Judged {
    Judged::new(
        verdict,
        RefundState::new(PaymentRef::payment("INV-1"), tl("0")),
        t(20),
        t(0) + SETTLE,
    )
}

#[test]
fn after_a_lookup() {
    let now = t(20);
    let s = Duration::from_secs;
    let applied = RefundRecord::new(tl("10"))
        .with_reference("r-1")
        .with_provider_reference("rf-9");
    let failed = RefundRecord::new(tl("10"))
        .with_reference("r-1")
        .with_status(RefundStatus::Failed);
    let rows: Vec<(&str, Verdict, u32, AttemptState, Next)> = vec![
        (
            "applied is refunded",
            Verdict::Applied(applied),
            1,
            AttemptState::Refunded,
            Next::Done,
        ),
        (
            "failed on record is declined",
            Verdict::NotApplied(failed),
            1,
            AttemptState::Declined,
            Next::Done,
        ),
        (
            "not yet known: look again soon, never resend",
            Verdict::NotYetKnown { settles_in: s(880) },
            1,
            AttemptState::Unknown,
            Next::LookUp { at: now + s(5) },
        ),
        (
            "absent after the settle time: resend now, same reference",
            Verdict::SafeToResend,
            1,
            AttemptState::RetryLater,
            Next::Send { at: now },
        ),
        (
            "absent after max_sends sends: a person decides",
            Verdict::SafeToResend,
            3,
            AttemptState::Unknown,
            Next::Person,
        ),
        (
            "undetermined: look again, not before the attempt settles",
            Verdict::Undetermined("no figures".into()),
            1,
            AttemptState::Unknown,
            Next::LookUp { at: t(0) + SETTLE },
        ),
    ];
    for (what, verdict, sends, state, next) in rows {
        let d = policy().after_lookup(&attempt(sends, 0), Ok(&judged(verdict)), now);
        assert_eq!((d.state, d.next), (state, next), "{what}: {}", d.note);
    }
    let d = policy().after_lookup(
        &attempt(1, 0),
        Err(&RefundError::outcome_unknown("p", "timeout")),
        now,
    );
    assert_eq!(
        (d.state, d.next, d.outcome),
        (
            AttemptState::Unknown,
            Next::LookUp { at: now + s(5) },
            "lookup_failed"
        )
    );
}

#[test]
fn an_applied_lookup_carries_the_refund_id() {
    let applied = RefundRecord::new(tl("10"))
        .with_reference("r-1")
        .with_provider_reference("rf-9");
    let d = policy().after_lookup(
        &attempt(1, 0),
        Ok(&judged(Verdict::Applied(applied))),
        t(20),
    );
    assert_eq!(d.refund_id.as_deref(), Some("rf-9"));
}

/// The 104 loop of issue 21: a refusal, a resend with the same reference answered 104, a
/// lookup that finds nothing. Without the rule it would be 104 → safe to resend → 104 forever.
#[test]
fn a_refusal_then_104_ends_failed_instead_of_looping() {
    let policy = policy();
    let first = Attempt::first(reference(), t(0));
    let refused = policy.after_send(
        &first,
        Err(&RefundError::declined_retryable("sipay", "69", "try later")),
        t(1),
    );
    assert_eq!(refused.state, AttemptState::RetryLater);
    let Next::Send { at } = refused.next else {
        panic!("{:?}", refused.next)
    };
    let resent = refused.attempt.resent(at);
    let dup = policy.after_send(
        &resent,
        Err(&RefundError::duplicate_reference(
            "sipay",
            "104",
            "not unique",
        )),
        at,
    );
    assert_eq!((dup.state, dup.next), (AttemptState::Failed, Next::Done));
    assert!(dup.note.contains("refused"), "{}", dup.note);
}

/// Every loop through lookups and resends ends: sends are bounded, then a person decides.
#[test]
fn resends_after_proven_absence_are_bounded() {
    let policy = policy();
    let reconciler = Reconciler::new(Duration::from_secs(60));
    let nothing = RefundState::new(PaymentRef::payment("INV-1"), tl("0"));
    let mut a = Attempt::first(reference(), t(0));
    let mut now = t(0);
    let mut sends = 1;
    for _ in 0..20 {
        let d = policy.after_send(&a, Err(&RefundError::outcome_unknown("p", "lost")), now);
        now += Duration::from_secs(120);
        let verdict = reconciler.judge_attempt(&nothing, &d.attempt, now);
        let d = policy.after_lookup(
            &d.attempt,
            Ok(&Judged::new(
                verdict,
                nothing.clone(),
                now,
                reconciler.settles_at(a.attempted_at),
            )),
            now,
        );
        match d.next {
            Next::Send { .. } => {
                a = d.attempt.resent(now);
                sends += 1;
            }
            Next::Person => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sends, policy.max_sends());
}

#[test]
fn states_round_trip_through_their_names() {
    for state in AttemptState::ALL {
        assert_eq!(state.as_str().parse::<AttemptState>(), Ok(state));
        assert_eq!(
            serde_json::to_value(state).unwrap(),
            serde_json::Value::String(state.as_str().into())
        );
    }
    assert!("paid".parse::<AttemptState>().is_err());
    assert!(AttemptState::Sending.may_be_in_flight() && AttemptState::Unknown.may_be_in_flight());
    assert!(!AttemptState::RetryLater.may_be_in_flight());
}
