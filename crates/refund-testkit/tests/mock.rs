//! The scripted provider (`refund_testkit::mock`): each scripted scenario of issue 21 — lost
//! answers, lag, refusals, 429, 104, the 30-second rule, lookups that cannot tell — driven
//! through `Retrying`, the in-memory driver of the attempt lifecycle, and checked against the
//! provider's ledger and call counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use refund_core::{
    Currency, Money, PaymentRef, RefundError, RefundProvider, RefundReceipt, RefundRecord,
    RefundRequest, RefundState, RefundStatus, RetryPolicy, Retrying, VoidRequest,
};
use refund_testkit::mock::{Answer, Lookup, ScriptedProvider};

fn tl(s: &str) -> Money {
    Money::parse(s, Currency::Try).unwrap()
}

fn request(reference: &str) -> RefundRequest {
    RefundRequest::builder(PaymentRef::payment("INV-1"), tl("25.00"))
        .reference(reference)
        .build()
        .unwrap()
}

fn retrying(provider: &ScriptedProvider) -> Retrying<ScriptedProvider> {
    Retrying::new(
        provider.clone(),
        RetryPolicy::default()
            .jitter(false)
            .reconcile(true, Duration::from_secs(1)),
    )
}

fn references(provider: &ScriptedProvider) -> Vec<String> {
    provider
        .refunds_seen()
        .iter()
        .map(|r| r.reference().as_str().to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_that_was_applied_is_found_by_the_lookup_and_never_resent() {
    let provider = ScriptedProvider::new("scripted").refund_answers([Answer::lost_but_applied()]);
    let receipt = retrying(&provider)
        .refund(&request("r-lost"))
        .await
        .unwrap();
    assert!(receipt.reconciled);
    assert_eq!(receipt.amount, tl("25.00"));
    assert_eq!(provider.refund_calls(), 1);
    assert_eq!(provider.lookup_calls(), 1);
    assert_eq!(
        provider.refunded(&PaymentRef::payment("INV-1")),
        tl("25.00")
    );
}

#[tokio::test(start_paused = true)]
async fn a_refund_that_never_arrived_is_resent_with_the_same_reference_after_the_settle_time() {
    // Outcome unknown, nothing on record: the lookup keeps saying "not yet" until the settle
    // time has passed, then the lifecycle resends under the same reference.
    let provider = ScriptedProvider::new("scripted")
        .settle_time(Duration::from_secs(5))
        .refund_answers([Answer::outcome_unknown("timed out"), Answer::refunded()]);
    let receipt = retrying(&provider).refund(&request("r-lag")).await.unwrap();
    assert!(!receipt.reconciled, "the resend's own receipt");
    assert_eq!(references(&provider), ["r-lag", "r-lag"]);
    assert!(
        provider.lookup_calls() >= 2,
        "looked up before the settle time and after"
    );
    assert_eq!(
        provider.refunded(&PaymentRef::payment("INV-1")),
        tl("25.00")
    );
}

#[tokio::test(start_paused = true)]
async fn a_lagging_lookup_that_shows_the_refund_later_settles_it_without_a_resend() {
    let provider = ScriptedProvider::new("scripted")
        .refund_answers([Answer::lost_but_applied()])
        .lookup_answers([Lookup::nothing(), Lookup::nothing(), Lookup::ledger()]);
    let receipt = retrying(&provider)
        .refund(&request("r-lag2"))
        .await
        .unwrap();
    assert!(receipt.reconciled);
    assert_eq!(provider.refund_calls(), 1);
    assert_eq!(provider.lookup_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_is_waited_out_and_sent_again() {
    let provider = ScriptedProvider::new("scripted").refund_answers([
        Answer::rate_limited(Some(Duration::from_secs(2))),
        Answer::refunded(),
    ]);
    let started = tokio::time::Instant::now();
    let receipt = retrying(&provider).refund(&request("r-429")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(receipt.refund_id.as_deref(), Some("scripted-refund-2"));
    assert_eq!(references(&provider), ["r-429", "r-429"]);
    assert_eq!(provider.lookup_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_thirty_second_rule_waits_thirty_seconds_and_sends_the_same_reference_again() {
    let provider = ScriptedProvider::new("sipay-like").refund_answers([
        Answer::declined_retry_after("49", "Refund Failed", Duration::from_secs(30)),
        Answer::refunded(),
    ]);
    let started = tokio::time::Instant::now();
    let receipt = retrying(&provider).refund(&request("r-30s")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert_eq!(receipt.provider, "sipay-like");
    assert_eq!(references(&provider), ["r-30s", "r-30s"]);
}

#[tokio::test(start_paused = true)]
async fn a_104_after_our_own_refusal_is_a_used_up_reference_not_an_endless_lookup() {
    let provider = ScriptedProvider::new("scripted")
        .deduplicates_references(true)
        .refund_answers([
            Answer::declined_retryable("69", "try again later"),
            Answer::duplicate_reference(),
        ]);
    let error = retrying(&provider)
        .refund(&request("r-used"))
        .await
        .unwrap_err();
    // Known and final (the class is the lifecycle's to choose), never "look it up".
    assert!(error.is_outcome_known(), "{error}");
    assert!(!error.is_retryable(), "{error}");
    assert_ne!(error.kind(), "duplicate_reference", "{error}");
    assert_eq!(provider.refund_calls(), 2);
    assert_eq!(
        provider.lookup_calls(),
        0,
        "nothing to look up: both were refused"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lookup_that_cannot_tell_never_leads_to_a_resend() {
    let provider = ScriptedProvider::new("scripted")
        .settle_time(Duration::from_secs(1))
        .refund_answers([Answer::outcome_unknown("reset")])
        .lookup_answers((0..100).map(|_| Lookup::undetermined("no refund figures")));
    let error = retrying(&provider)
        .refund(&request("r-undetermined"))
        .await
        .unwrap_err();
    assert!(!error.is_outcome_known(), "{error}");
    assert_eq!(
        provider.refund_calls(),
        1,
        "never resent on an undetermined lookup"
    );
    assert!(provider.lookup_calls() >= 1);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_on_record_with_a_lost_answer_is_declined_never_refunded() {
    let provider = ScriptedProvider::new("scripted").refund_answers([Answer::lost_refused()]);
    let error = retrying(&provider)
        .refund(&request("r-failed"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "declined", "{error}");
    assert_eq!(error.provider_code(), Some("failed_on_record"));
    let state = provider.ledger_state(&PaymentRef::payment("INV-1"));
    assert_eq!(state.refunded, tl("0"));
    assert_eq!(state.refunds[0].status, RefundStatus::Failed);
}

#[tokio::test]
async fn by_ledger_answers_104_for_a_reference_already_on_record_when_the_provider_deduplicates() {
    let provider = ScriptedProvider::new("scripted")
        .deduplicates_references(true)
        .refund_answers([Answer::lost_but_applied(), Answer::by_ledger()]);
    let first = provider.refund(&request("r-dup")).await.unwrap_err();
    assert_eq!(first.kind(), "outcome_unknown");
    let second = provider.refund(&request("r-dup")).await.unwrap_err();
    assert_eq!(second.kind(), "duplicate_reference");
    assert_eq!(second.provider_code(), Some("104"));
    assert_eq!(
        provider.refunded(&PaymentRef::payment("INV-1")),
        tl("25.00")
    );
}

#[tokio::test]
async fn by_ledger_refunds_again_when_the_provider_does_not_deduplicate() {
    let provider = ScriptedProvider::new("scripted")
        .refund_answers([Answer::lost_but_applied(), Answer::by_ledger()]);
    provider.refund(&request("r-twice")).await.unwrap_err();
    provider.refund(&request("r-twice")).await.unwrap();
    assert_eq!(
        provider.refunded(&PaymentRef::payment("INV-1")),
        tl("50.00"),
        "a provider without dedup pays twice: why unknown outcomes are looked up"
    );
}

#[tokio::test]
async fn calls_are_answered_live_through_the_handle_once_the_script_runs_out() {
    let (provider, mut handle) = ScriptedProvider::pair("live");
    let provider = provider.refund_answers([Answer::refunded()]);
    // The queued answer first, without the handle.
    provider.refund(&request("r-1")).await.unwrap();
    let caller = provider.clone();
    let call = tokio::spawn(async move { caller.refund(&request("r-2")).await });
    let (seen, responder) = handle.next_refund().await.unwrap();
    assert_eq!(seen.reference().as_str(), "r-2");
    responder.send(RefundError::declined("live", "49", "Refund Failed"));
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.provider_code(), Some("49"));
    // Lookups too.
    let caller = provider.clone();
    let lookup =
        tokio::spawn(async move { caller.refund_state(&PaymentRef::payment("INV-1")).await });
    let (payment, responder) = handle.next_lookup().await.unwrap();
    assert_eq!(payment.id(), "INV-1");
    responder.send(
        RefundState::new(payment, tl("25.00"))
            .with_record(RefundRecord::new(tl("25.00")).with_reference("r-1")),
    );
    assert_eq!(lookup.await.unwrap().unwrap().refunded, tl("25.00"));
    assert_eq!(provider.refund_calls(), 2);
    assert_eq!(provider.lookup_calls(), 1);
}

#[tokio::test]
async fn a_responder_dropped_unanswered_is_a_lost_answer() {
    let (provider, mut handle) = ScriptedProvider::pair("live");
    let caller = provider.clone();
    let call = tokio::spawn(async move { caller.refund(&request("r-drop")).await });
    let (_, responder) = handle.next_refund().await.unwrap();
    drop(responder);
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.kind(), "outcome_unknown");
}

#[tokio::test]
async fn an_exhausted_script_is_a_typed_error_not_a_panic() {
    let provider = ScriptedProvider::new("scripted");
    let error = provider.refund(&request("r-none")).await.unwrap_err();
    assert_eq!(error.kind(), "configuration");
    assert!(
        error.to_string().contains("no refund answer left"),
        "{error}"
    );
    // A lookup without a script shows the (empty) ledger.
    let state = provider
        .refund_state(&PaymentRef::payment("INV-1"))
        .await
        .unwrap();
    assert!(state.refunded.is_zero() && state.refunds.is_empty());
}

#[tokio::test]
async fn scripted_receipts_errors_and_voids_come_back_as_given() {
    let receipt = RefundReceipt::new(
        "own",
        refund_core::Operation::Refund,
        PaymentRef::payment("INV-1"),
        refund_core::MerchantRef::new("r-own").unwrap(),
        tl("1.00"),
        RefundStatus::Pending,
    );
    let provider = ScriptedProvider::new("scripted")
        .paid(PaymentRef::payment("INV-1"), tl("100.00"))
        .refund_answers([
            Answer::receipt(receipt.clone()),
            Answer::pending(),
            Answer::unreachable(),
        ])
        .void_answers([Answer::refunded()]);
    assert_eq!(provider.refund(&request("a")).await.unwrap(), receipt);
    let pending = provider.refund(&request("b")).await.unwrap();
    assert_eq!(pending.status, RefundStatus::Pending);
    let error = provider.refund(&request("c")).await.unwrap_err();
    assert_eq!(error.kind(), "unreachable");
    assert_eq!(error.provider(), Some("scripted"));
    let void = VoidRequest::builder(PaymentRef::payment("INV-1"))
        .reference("v-1")
        .build()
        .unwrap();
    let voided = provider.void(&void).await.unwrap();
    assert_eq!(voided.amount, tl("100.00"));
    assert_eq!(provider.void_calls(), 1);
    let state = provider.ledger_state(&PaymentRef::payment("INV-1"));
    assert_eq!(state.paid, Some(tl("100.00")));
    // The pending refund and the void are on record; the test's own receipt is not.
    assert_eq!(state.refunded, tl("125.00"));
}

#[tokio::test(start_paused = true)]
async fn a_delayed_answer_takes_its_time() {
    let provider = ScriptedProvider::new("scripted")
        .refund_answers([Answer::refunded().after(Duration::from_secs(3))]);
    let started = tokio::time::Instant::now();
    provider.refund(&request("slow")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_lagging_ledger_shows_a_lost_answer_only_once_the_lag_has_passed() {
    // The provider applied the refund; its lookup shows it 3 s later. The lifecycle keeps
    // looking (never resends inside the settle time) until the ledger shows it.
    let provider = ScriptedProvider::new("scripted")
        .lookup_lag(Duration::from_secs(3))
        .settle_time(Duration::from_secs(60))
        .refund_answers([Answer::lost_but_applied()]);
    let receipt = retrying(&provider)
        .refund(&request("r-lagged"))
        .await
        .unwrap();
    assert!(receipt.reconciled);
    assert_eq!(provider.refund_calls(), 1);
    assert!(
        provider.lookup_calls() >= 3,
        "{} lookups",
        provider.lookup_calls()
    );
}
