//! The scenarios. Each is a public async fn over `(&dyn RefundProvider, &dyn Harness)` that
//! seeds its own payments and returns an [`Outcome`]; none depends on another.
//!
//! Amounts are written in minor units of the harness's currency (`10_000` is 100.00 TRY), so
//! the scenarios hold for any scale.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use refund_core::{
    Attempt, Currency, MerchantRef, Money, Operation, PaymentRef, Reconciler, Reconciliation,
    RefundError, RefundProvider, RefundReceipt, RefundRequest, RetryPolicy, Retrying,
    ValidationError, Verdict, VoidRequest, VoidSupport,
};

use super::{Fault, Harness, HarnessError, Outcome, capture_tracing};

/// A step of a scenario: `Err` ends the scenario with that outcome (failed, or skipped
/// because the provider's capabilities rule it out).
type Step<T = ()> = Result<T, Outcome>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        // Comparing amounts in different currencies is false, so a mismatch fails the check.
        let holds: bool = $cond;
        if !holds {
            return Err(Outcome::Failed(format!($($arg)+)));
        }
    };
}

fn finish(step: Step) -> Outcome {
    match step {
        Ok(()) => Outcome::Passed,
        Err(outcome) => outcome,
    }
}

fn fail(why: impl Into<String>) -> Outcome {
    Outcome::Failed(why.into())
}

fn harness_failed(doing: &str, e: &HarnessError) -> Outcome {
    match e {
        HarnessError::Unsupported(_) => fail(format!(
            "{e} (needed to {doing}); declare the scenario skipped with a reason if the \
             provider cannot be tested this way"
        )),
        HarnessError::Failed(_) => fail(format!("could not {doing}: {e}")),
    }
}

/// `units` minor units of the harness's currency.
fn money(h: &dyn Harness, units: i64) -> Step<Money> {
    Money::from_minor_units(units, h.currency()).map_err(|e| fail(format!("amount: {e}")))
}

async fn seed(h: &dyn Harness, amount: Money) -> Step<PaymentRef> {
    h.seed_payment(amount)
        .await
        .map_err(|e| harness_failed(&format!("seed a payment of {amount}"), &e))
}

async fn ledger(h: &dyn Harness, payment: &PaymentRef) -> Step<Money> {
    h.refunded_total(payment)
        .await
        .map_err(|e| harness_failed(&format!("read the ledger of {payment}"), &e))
}

async fn arm(h: &dyn Harness, fault: Fault) -> Step {
    h.arm_fault(fault)
        .await
        .map_err(|e| harness_failed(&format!("arm {fault}"), &e))
}

fn request(payment: &PaymentRef, amount: Money) -> Step<RefundRequest> {
    RefundRequest::builder(payment.clone(), amount)
        .build()
        .map_err(|e| fail(format!("building a refund of {amount}: {e}")))
}

fn request_with_reference(
    payment: &PaymentRef,
    amount: Money,
    reference: &str,
) -> Step<RefundRequest> {
    RefundRequest::builder(payment.clone(), amount)
        .reference(reference)
        .build()
        .map_err(|e| fail(format!("building a refund of {amount}: {e}")))
}

/// A reference unique to this process, so repeated suite runs against one fake never collide.
fn unique_reference(tag: &str) -> String {
    let generated = MerchantRef::generate();
    format!("cf-{tag}-{}", generated.as_str().trim_start_matches("rf-"))
}

fn describe(result: &Result<RefundReceipt, RefundError>) -> String {
    match result {
        Ok(r) => format!(
            "a receipt for {} ({:?}, {:?}, reconciled: {})",
            r.amount, r.operation, r.status, r.reconciled
        ),
        Err(e) => format!("{} error: {e}", variant(e)),
    }
}

fn variant(e: &RefundError) -> &'static str {
    match e {
        RefundError::InvalidRequest(_) => "InvalidRequest",
        RefundError::Declined { .. } => "Declined",
        RefundError::AuthenticationRejected { .. } => "AuthenticationRejected",
        RefundError::RateLimited { .. } => "RateLimited",
        RefundError::Unreachable { .. } => "Unreachable",
        RefundError::OutcomeUnknown { .. } => "OutcomeUnknown",
        RefundError::DuplicateReference { .. } => "DuplicateReference",
        RefundError::Unsupported { .. } => "Unsupported",
        RefundError::Configuration { .. } => "Configuration",
        _ => "other",
    }
}

/// Refunds `amount` of `payment` and checks the receipt matches the request.
async fn refund_ok(
    p: &dyn RefundProvider,
    payment: &PaymentRef,
    amount: Money,
    what: &str,
) -> Step<RefundReceipt> {
    let req = request(payment, amount)?;
    let result = p.refund(&req).await;
    let receipt = match result {
        Ok(r) => r,
        Err(e) => {
            return Err(fail(format!(
                "{what}: refunding {amount} of {payment} failed with {} error: {e}",
                variant(&e)
            )));
        }
    };
    check_receipt(p, &req, &receipt, what)?;
    Ok(receipt)
}

fn check_receipt(
    p: &dyn RefundProvider,
    req: &RefundRequest,
    receipt: &RefundReceipt,
    what: &str,
) -> Step {
    ensure!(
        receipt.amount == req.amount(),
        "{what}: the receipt says {} but {} was requested",
        receipt.amount,
        req.amount()
    );
    ensure!(
        receipt.reference == *req.reference(),
        "{what}: the receipt carries reference {} but the request had {}",
        receipt.reference,
        req.reference()
    );
    ensure!(
        receipt.payment == *req.payment(),
        "{what}: the receipt is for {} but the request was for {}",
        receipt.payment,
        req.payment()
    );
    ensure!(
        receipt.provider == p.name(),
        "{what}: the receipt names provider {:?}, the provider is {:?}",
        receipt.provider,
        p.name()
    );
    ensure!(
        !receipt.reconciled,
        "{what}: a receipt straight from a refund response is marked reconciled"
    );
    Ok(())
}

async fn ledger_is(h: &dyn Harness, payment: &PaymentRef, expected: Money, when: &str) -> Step {
    let total = ledger(h, payment).await?;
    ensure!(
        total == expected,
        "{when}: the fake's ledger shows {total} refunded of {payment}, expected {expected}"
    );
    Ok(())
}

/// Expects an outcome-known refusal that moved no money: a decline, or a local rejection.
fn expect_declined(result: &Result<RefundReceipt, RefundError>, what: &str) -> Step {
    match result {
        Err(e @ (RefundError::Declined { .. } | RefundError::InvalidRequest(_))) => {
            ensure!(
                e.is_outcome_known(),
                "{what}: the refusal must say its outcome is known"
            );
            Ok(())
        }
        other => Err(fail(format!(
            "{what}: expected a Declined error with the outcome known, got {}",
            describe(other)
        ))),
    }
}

/// Runs `future` and checks that no request of any kind reached the fake meanwhile.
async fn sends_nothing<T>(h: &dyn Harness, what: &str, future: impl Future<Output = T>) -> Step<T> {
    let before = h.requests_sent();
    let out = future.await;
    let sent = h.requests_sent().saturating_sub(before);
    ensure!(
        sent == 0,
        "{what}: {sent} request(s) reached the fake; it must be refused before anything is sent"
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------

/// A payment of 100.00 refunded in full: the receipt matches the request (amount, reference,
/// payment, provider), exactly one refund request is sent, and the fake's ledger shows the
/// full amount refunded.
pub async fn full_refund(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(full_refund_steps(p, h).await)
}

async fn full_refund_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let paid = money(h, 10_000)?;
    let payment = seed(h, paid).await?;
    let before = h.refund_requests_sent();
    let req = request_with_reference(&payment, paid, &unique_reference("full"))?;
    let result = p.refund(&req).await;
    let receipt = result.map_err(|e| {
        fail(format!(
            "refunding the whole {paid} failed with {} error: {e}",
            variant(&e)
        ))
    })?;
    // A same-day full refund may be processed as a void (SiPay); both are fine here.
    ensure!(
        matches!(receipt.operation, Operation::Refund | Operation::Void),
        "unexpected operation {:?}",
        receipt.operation
    );
    check_receipt(p, &req, &receipt, "full refund")?;
    let sent = h.refund_requests_sent().saturating_sub(before);
    ensure!(
        sent == 1,
        "one refund call sent {sent} refund requests, expected exactly 1"
    );
    ledger_is(h, &payment, paid, "after the full refund").await
}

/// A payment of 100.00 refunded 25.50: the receipt says 25.50 and so does the ledger.
/// Skipped when the capabilities declare no partial refunds.
pub async fn partial_refund(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(partial_refund_steps(p, h).await)
}

async fn partial_refund_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    if !p.capabilities().partial_refunds {
        return Err(Outcome::Skipped(
            "the capabilities declare no partial refunds (capabilities_match_behaviour checks \
             that one is refused)"
                .into(),
        ));
    }
    let payment = seed(h, money(h, 10_000)?).await?;
    let part = money(h, 2_550)?;
    refund_ok(p, &payment, part, "partial refund").await?;
    ledger_is(h, &payment, part, "after the partial refund").await
}

/// A payment of 100.00 refunded 30.00, 30.00 and 40.00: each succeeds, the ledger follows,
/// and a further 0.01 is declined with the outcome known and moves nothing. Skipped when the
/// capabilities declare no multiple partial refunds.
pub async fn repeated_partial_refunds(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(repeated_partial_refunds_steps(p, h).await)
}

async fn repeated_partial_refunds_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    if !p.capabilities().multiple_partial_refunds {
        return Err(Outcome::Skipped(
            "the capabilities declare no multiple partial refunds (capabilities_match_behaviour \
             checks that a second one is refused)"
                .into(),
        ));
    }
    let paid = money(h, 10_000)?;
    let payment = seed(h, paid).await?;
    let mut total = Money::zero(h.currency());
    for (i, units) in [3_000, 3_000, 4_000].into_iter().enumerate() {
        let part = money(h, units)?;
        refund_ok(p, &payment, part, &format!("partial refund #{}", i + 1)).await?;
        total = total.checked_add(&part).map_err(|e| fail(e.to_string()))?;
        ledger_is(
            h,
            &payment,
            total,
            &format!("after partial refund #{}", i + 1),
        )
        .await?;
    }
    let extra = request(&payment, money(h, 1)?)?;
    let result = p.refund(&extra).await;
    expect_declined(&result, "refunding 0.01 more than was paid")?;
    ledger_is(h, &payment, paid, "after the refused extra refund").await
}

/// A payment of 50.00: a refund of 50.01 is declined with the outcome known and moves
/// nothing; with partial refunds, after 20.00 is refunded, 30.01 is declined and 30.00 (when
/// multiple partial refunds are declared) still goes through.
pub async fn over_refund_declined(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(over_refund_declined_steps(p, h).await)
}

async fn over_refund_declined_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let caps = p.capabilities();
    let paid = money(h, 5_000)?;
    let payment = seed(h, paid).await?;
    let result = p.refund(&request(&payment, money(h, 5_001)?)?).await;
    expect_declined(&result, "refunding 50.01 of a 50.00 payment")?;
    let zero = Money::zero(h.currency());
    ledger_is(h, &payment, zero, "after the refused over-refund").await?;
    if !caps.partial_refunds {
        return Ok(());
    }
    let first = money(h, 2_000)?;
    refund_ok(p, &payment, first, "refunding 20.00 of 50.00").await?;
    let result = p.refund(&request(&payment, money(h, 3_001)?)?).await;
    expect_declined(&result, "refunding 30.01 after 20.00 of a 50.00 payment")?;
    ledger_is(
        h,
        &payment,
        first,
        "after the refused cumulative over-refund",
    )
    .await?;
    if caps.multiple_partial_refunds {
        refund_ok(
            p,
            &payment,
            money(h, 3_000)?,
            "refunding the remaining 30.00",
        )
        .await?;
        ledger_is(h, &payment, paid, "after refunding the remainder").await?;
    }
    Ok(())
}

/// A refund of a payment the provider has never seen is declined, not retryable, with the
/// outcome known.
pub async fn unknown_payment_declined(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(unknown_payment_declined_steps(p, h).await)
}

async fn unknown_payment_declined_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let payment = h.unknown_payment();
    let result = p.refund(&request(&payment, money(h, 1_000)?)?).await;
    match &result {
        Err(e @ RefundError::Declined { .. }) => {
            ensure!(
                !e.is_retryable(),
                "a refund of an unknown payment is declined as retryable; it will never succeed: {e}"
            );
            Ok(())
        }
        other => Err(fail(format!(
            "refunding unknown payment {payment}: expected a Declined error, got {}",
            describe(other)
        ))),
    }
}

/// Amounts that must never reach the provider: zero, negative and over-precise amounts
/// cannot even be built, and a refund in a currency the capabilities do not list is refused
/// by the provider as an invalid request with no request of any kind sent.
pub async fn invalid_amounts_rejected_locally(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(invalid_amounts_steps(p, h).await)
}

async fn invalid_amounts_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let currency = h.currency();
    let payment = h.unknown_payment();
    ensure!(
        Money::parse("-1", currency).is_err(),
        "a negative amount was accepted"
    );
    ensure!(
        Money::parse("1.001", currency).is_err(),
        "an amount finer than the currency's minor unit was accepted"
    );
    ensure!(
        RefundRequest::builder(payment.clone(), Money::zero(currency))
            .build()
            .is_err(),
        "a zero refund was accepted"
    );
    let caps = p.capabilities();
    ensure!(
        caps.supports_currency(currency),
        "the harness seeds payments in {currency}, which the capabilities do not list"
    );
    for &other in Currency::ALL
        .iter()
        .filter(|c| !caps.supports_currency(**c))
    {
        let amount = Money::from_minor_units(1_000, other).map_err(|e| fail(e.to_string()))?;
        let req = request(&payment, amount)?;
        let what = format!("a refund in {other}, which the capabilities do not list");
        let result = sends_nothing(h, &what, p.refund(&req)).await?;
        match &result {
            Err(RefundError::InvalidRequest(ValidationError::UnsupportedCurrency {
                currency: c,
                ..
            })) if *c == other => {}
            Err(RefundError::InvalidRequest(_) | RefundError::Unsupported { .. }) => {}
            other_result => {
                return Err(fail(format!(
                    "{what}: expected InvalidRequest (unsupported currency), got {}",
                    describe(other_result)
                )));
            }
        }
    }
    Ok(())
}

/// Amounts travel at exactly the currency's scale: refunds of 0.01, 0.10, 10.05, 10.50 and
/// 1234.56 (each on its own payment) come back on the receipt and land in the fake's ledger
/// as exactly that amount — no `10.5` read as `10.05`, no minor units read as major ones.
pub async fn currency_scale_enforced(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(currency_scale_steps(p, h).await)
}

async fn currency_scale_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let partial = p.capabilities().partial_refunds;
    for units in [1, 10, 1_005, 1_050, 123_456] {
        let amount = money(h, units)?;
        // With partial refunds, refund the amount out of a larger payment, so a provider
        // that silently refunds "everything" is caught too.
        let paid = if partial {
            money(h, units + 10_000)?
        } else {
            amount
        };
        let payment = seed(h, paid).await?;
        refund_ok(p, &payment, amount, &format!("refunding {amount}")).await?;
        ledger_is(h, &payment, amount, &format!("after refunding {amount}")).await?;
    }
    Ok(())
}

/// What the capabilities declare, the provider does; what they do not, it refuses without
/// sending anything (`Unsupported` or `InvalidRequest`): voids, lookups, item-level refunds,
/// partial and repeated partial refunds.
pub async fn capabilities_match_behaviour(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(capabilities_steps(p, h).await)
}

async fn capabilities_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let caps = p.capabilities();
    let name = p.name();
    ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
        "the provider's name {name:?} should be short, stable and lower case"
    );

    // Voids.
    let void_payment = seed(h, money(h, 4_000)?).await?;
    let void_req = VoidRequest::builder(void_payment.clone())
        .reference(unique_reference("void"))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    if caps.void == VoidSupport::Cancel {
        let receipt = p.void(&void_req).await.map_err(|e| {
            fail(format!(
                "the capabilities declare voids, but voiding a fresh payment failed with {} \
                 error: {e}",
                variant(&e)
            ))
        })?;
        ensure!(
            receipt.operation == Operation::Void,
            "a void returned a receipt for {:?}",
            receipt.operation
        );
        ensure!(
            receipt.payment == void_payment,
            "the void receipt is for {}, not {void_payment}",
            receipt.payment
        );
    } else {
        let result = sends_nothing(
            h,
            "a void the capabilities do not declare",
            p.void(&void_req),
        )
        .await?;
        ensure!(
            matches!(result, Err(RefundError::Unsupported { .. })),
            "the capabilities declare {:?} voids, but void() answered {}",
            caps.void,
            describe(&result)
        );
    }

    // Lookups.
    let payment = seed(h, money(h, 10_000)?).await?;
    if caps.refund_lookup {
        let first = if caps.partial_refunds {
            money(h, 1_234)?
        } else {
            money(h, 10_000)?
        };
        let req = request_with_reference(&payment, first, &unique_reference("lookup"))?;
        let receipt = p.refund(&req).await.map_err(|e| {
            fail(format!(
                "refunding {first} before a lookup failed with {} error: {e}",
                variant(&e)
            ))
        })?;
        check_receipt(p, &req, &receipt, "refund before a lookup")?;
        let state = p.refund_state(&payment).await.map_err(|e| {
            fail(format!(
                "the capabilities declare lookups, but refund_state failed with {} error: {e}",
                variant(&e)
            ))
        })?;
        ensure!(
            state.refunded == first,
            "after refunding {first}, refund_state says {} refunded",
            state.refunded
        );
        ensure!(
            !matches!(state.find(req.reference()), Reconciliation::NotFound),
            "refund_state lists every refund with its reference but not {} — a reconciliation \
             would conclude the refund never happened",
            req.reference()
        );
    } else {
        let result = sends_nothing(
            h,
            "a lookup the capabilities do not declare",
            p.refund_state(&payment),
        )
        .await?;
        ensure!(
            matches!(result, Err(RefundError::Unsupported { .. })),
            "the capabilities declare no lookups, but refund_state answered {}",
            match &result {
                Ok(s) => format!("a state with {} refunded", s.refunded),
                Err(e) => format!("{} error: {e}", variant(e)),
            }
        );
    }

    // Item-level refunds.
    if caps.item_refunds {
        let paid = money(h, 3_000)?;
        let item = h
            .seed_item_payment(paid)
            .await
            .map_err(|e| harness_failed("seed an item-level payment", &e))?;
        let part = if caps.partial_refunds {
            money(h, 1_000)?
        } else {
            paid
        };
        refund_ok(p, &item, part, "an item-level refund").await?;
        ledger_is(h, &item, part, "after the item-level refund").await?;
    } else {
        let item = PaymentRef::item("conformance-item-1").in_payment(payment.id());
        let req = request(&item, money(h, 100)?)?;
        let result = sends_nothing(
            h,
            "an item-level refund the capabilities do not declare",
            p.refund(&req),
        )
        .await?;
        ensure!(
            matches!(
                result,
                Err(RefundError::Unsupported { .. } | RefundError::InvalidRequest(_))
            ),
            "the capabilities declare no item refunds, but an item refund answered {}",
            describe(&result)
        );
    }

    // Partial refunds.
    if !caps.partial_refunds {
        let payment = seed(h, money(h, 10_000)?).await?;
        let result = p.refund(&request(&payment, money(h, 1_000)?)?).await;
        ensure!(
            matches!(&result, Err(e) if e.is_outcome_known()),
            "the capabilities declare no partial refunds, but a partial refund answered {}",
            describe(&result)
        );
        ledger_is(
            h,
            &payment,
            Money::zero(h.currency()),
            "after the refused partial refund",
        )
        .await?;
    } else if !caps.multiple_partial_refunds {
        let payment = seed(h, money(h, 10_000)?).await?;
        let first = money(h, 1_000)?;
        refund_ok(p, &payment, first, "the one partial refund declared").await?;
        let result = p.refund(&request(&payment, money(h, 1_000)?)?).await;
        ensure!(
            matches!(&result, Err(e) if e.is_outcome_known()),
            "the capabilities declare one partial refund per payment, but a second answered {}",
            describe(&result)
        );
        ledger_is(
            h,
            &payment,
            first,
            "after the refused second partial refund",
        )
        .await?;
    }
    Ok(())
}

/// What a refund sent with a fault armed left behind.
struct FaultRun {
    payment: PaymentRef,
    request: RefundRequest,
}

/// Sends one refund of 10.00 (of 100.00) with `fault` armed, and expects
/// [`RefundError::OutcomeUnknown`]: not retryable, outcome not known, exactly one refund
/// request sent, and no more than 10.00 on the fake's books.
async fn fault_steps(
    p: &dyn RefundProvider,
    h: &dyn Harness,
    fault: Fault,
    tag: &str,
) -> Step<FaultRun> {
    let paid = money(h, 10_000)?;
    let payment = seed(h, paid).await?;
    arm(h, fault).await?;
    let before = h.refund_requests_sent();
    let req = request_with_reference(&payment, money(h, 1_000)?, &unique_reference(tag))?;
    let result = p.refund(&req).await;
    let sent = h.refund_requests_sent().saturating_sub(before);
    let error = match result {
        Err(e @ RefundError::OutcomeUnknown { .. }) => e,
        other => {
            return Err(fail(format!(
                "after {fault}, expected an OutcomeUnknown error, got {}",
                describe(&other)
            )));
        }
    };
    ensure!(
        !error.is_retryable(),
        "after {fault}, the outcome-unknown error says it is retryable: {error}"
    );
    ensure!(
        !error.is_outcome_known(),
        "after {fault}, the error says the outcome is known: {error}"
    );
    ensure!(
        sent == 1,
        "after {fault}, {sent} refund requests reached the fake: a request that may have been \
         applied must never be resent silently (expected exactly 1)"
    );
    let total = ledger(h, &payment).await?;
    ensure!(
        total <= req.amount(),
        "after {fault} on one refund of {}, the ledger shows {total} refunded",
        req.amount()
    );
    Ok(FaultRun {
        payment,
        request: req,
    })
}

/// [`fault_steps`] for a fault under which the fake applied the refund, then checks the
/// ledger shows exactly the refund asked for: the money moved, and only an outcome-unknown
/// answer (then reconciliation) tells the caller the truth.
async fn applied_fault_steps(
    p: &dyn RefundProvider,
    h: &dyn Harness,
    fault: Fault,
    tag: &str,
) -> Step {
    let run = fault_steps(p, h, fault, tag).await?;
    ledger_is(
        h,
        &run.payment,
        run.request.amount(),
        &format!("after {fault} (the fake applied the refund)"),
    )
    .await
}

/// A refund whose answer comes later than the client's timeout is
/// [`RefundError::OutcomeUnknown`], not retryable, and reached the fake exactly once: it was
/// not silently retried.
pub async fn timeout_is_outcome_unknown(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(fault_steps(p, h, Fault::Timeout, "timeout").await.map(drop))
}

/// A refund answered with a server error is [`RefundError::OutcomeUnknown`], not retryable,
/// and reached the fake exactly once.
pub async fn server_error_is_outcome_unknown(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(
        fault_steps(p, h, Fault::ServerError, "server-error")
            .await
            .map(drop),
    )
}

/// The fake applies a refund of 10.00 and answers success — but states 11.00
/// ([`Fault::AmountMismatch`]). Proves the provider compares the answer's amount with the
/// request's and never issues a receipt for money it cannot vouch for: the answer is
/// [`RefundError::OutcomeUnknown`], not retryable, sent once, and the ledger shows the 10.00
/// that moved. A provider whose success answer states no amount cannot check this and
/// declares the scenario skipped, with that reason.
pub async fn amount_mismatch_is_outcome_unknown(
    p: &dyn RefundProvider,
    h: &dyn Harness,
) -> Outcome {
    finish(applied_fault_steps(p, h, Fault::AmountMismatch, "amount").await)
}

/// The fake applies a refund and answers HTTP 200 with the body cut in half
/// ([`Fault::MalformedAnswer`]). Proves an unreadable success is
/// [`RefundError::OutcomeUnknown`] — never a decline (the money moved) and never retried —
/// with one request sent and the refund on the fake's books.
pub async fn malformed_answer_is_outcome_unknown(
    p: &dyn RefundProvider,
    h: &dyn Harness,
) -> Outcome {
    finish(applied_fault_steps(p, h, Fault::MalformedAnswer, "malformed").await)
}

/// The fake applies a refund and answers HTTP 200 with an empty body
/// ([`Fault::EmptyAnswer`]). Proves an empty success is [`RefundError::OutcomeUnknown`],
/// never a decline or a receipt, with one request sent and the refund on the fake's books.
pub async fn empty_answer_is_outcome_unknown(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(applied_fault_steps(p, h, Fault::EmptyAnswer, "empty").await)
}

/// The fake answers its rate-limit refusal, HTTP 429 with `Retry-After: 1`
/// ([`Fault::RateLimited`]), without processing the refund. Proves the provider answers
/// [`RefundError::RateLimited`] with the pause it was given: retryable, outcome known, sent
/// once (no retry inside the provider: retries belong to `Retrying`), nothing on the books;
/// and that sending the same request again after the pause refunds it exactly once.
pub async fn rate_limit_is_retryable(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(rate_limit_steps(p, h).await)
}

async fn rate_limit_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let payment = seed(h, money(h, 10_000)?).await?;
    let req = request_with_reference(&payment, money(h, 1_000)?, &unique_reference("rate"))?;
    arm(h, Fault::RateLimited).await?;
    let before = h.refund_requests_sent();
    let result = p.refund(&req).await;
    let sent = h.refund_requests_sent().saturating_sub(before);
    let pause = match &result {
        Err(e @ RefundError::RateLimited { retry_after, .. }) => {
            ensure!(e.is_retryable(), "RateLimited must be retryable: {e}");
            ensure!(
                e.is_outcome_known(),
                "RateLimited must be outcome-known: {e}"
            );
            let Some(pause) = *retry_after else {
                return Err(fail(format!(
                    "the fake said Retry-After: 1, but the error carries no retry_after: {e}"
                )));
            };
            pause
        }
        other => {
            return Err(fail(format!(
                "after {}, expected a RateLimited error, got {}",
                Fault::RateLimited,
                describe(other)
            )));
        }
    };
    ensure!(
        sent == 1,
        "after {}, {sent} refund requests reached the fake (expected exactly 1: retrying is \
         the caller's decision, after the pause)",
        Fault::RateLimited
    );
    let zero = Money::zero(h.currency());
    ledger_is(h, &payment, zero, "after the rate-limit answer").await?;
    tokio::time::sleep(pause.min(Duration::from_secs(2))).await;
    let again = p.refund(&req).await;
    let receipt = again.map_err(|e| {
        fail(format!(
            "the same refund, sent again after the pause, failed with {} error: {e}",
            variant(&e)
        ))
    })?;
    check_receipt(p, &req, &receipt, "the refund sent again after the pause")?;
    ledger_is(h, &payment, req.amount(), "after the resend").await
}

/// A provider configured with a wrong secret ([`Harness::wrong_credentials_provider`]) asks
/// for a refund of 10.00. Proves the rejection is
/// [`RefundError::AuthenticationRejected`]: not retryable, outcome known, at most one refund
/// request sent, nothing on the books, no secret in the error; and, with lookups declared,
/// that its lookup is rejected too rather than answering a state (an authentication failure
/// read as "nothing refunded" would invite a resend).
pub async fn rejected_authentication_is_reported(
    p: &dyn RefundProvider,
    h: &dyn Harness,
) -> Outcome {
    finish(rejected_authentication_steps(p, h).await)
}

async fn rejected_authentication_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let Some(wrong) = h.wrong_credentials_provider() else {
        return Err(fail(
            "the harness has no wrong_credentials_provider(); declare the scenario skipped \
             with a reason if the provider cannot be tested this way",
        ));
    };
    ensure!(
        wrong.name() == p.name(),
        "the wrong-credentials provider is {:?}, not {:?}",
        wrong.name(),
        p.name()
    );
    let payment = seed(h, money(h, 10_000)?).await?;
    let req = request_with_reference(&payment, money(h, 1_000)?, &unique_reference("auth"))?;
    let before = h.refund_requests_sent();
    let result = wrong.refund(&req).await;
    let sent = h.refund_requests_sent().saturating_sub(before);
    let expect_rejected = |what: &str, e: &RefundError| -> Step {
        ensure!(
            matches!(e, RefundError::AuthenticationRejected { .. }),
            "{what} with a wrong secret: expected AuthenticationRejected, got {} error: {e}",
            variant(e)
        );
        ensure!(
            !e.is_retryable(),
            "{what}: a rejected credential is not retryable: {e}"
        );
        ensure!(
            e.is_outcome_known(),
            "{what}: a rejected credential moved no money: {e}"
        );
        for secret in h.secrets() {
            let texts = error_texts(what, e);
            ensure!(
                !texts.iter().any(|(_, text)| text.contains(secret.as_str())),
                "{what}: the error carries secret {}",
                mask(&secret)
            );
        }
        Ok(())
    };
    match &result {
        Err(e) => expect_rejected("a refund", e)?,
        Ok(_) => {
            return Err(fail(format!(
                "a refund with a wrong secret answered {}",
                describe(&result)
            )));
        }
    }
    ensure!(
        sent <= 1,
        "a refund with a wrong secret sent {sent} refund requests: a rejected credential is \
         not retried"
    );
    let zero = Money::zero(h.currency());
    ledger_is(h, &payment, zero, "after the rejected refund").await?;
    if p.capabilities().refund_lookup {
        match wrong.refund_state(&payment).await {
            Err(e) => expect_rejected("a lookup", &e)?,
            Ok(state) => {
                return Err(fail(format!(
                    "a lookup with a wrong secret answered a state ({} refunded): an \
                     authentication failure must never read as a lookup result",
                    state.refunded
                )));
            }
        }
    }
    Ok(())
}

/// A provider pointed at a closed port answers [`RefundError::Unreachable`]: retryable,
/// outcome known (nothing was sent).
pub async fn connect_refused_is_retryable(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(connect_refused_steps(p, h).await)
}

async fn connect_refused_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let Some(unreachable) = h.unreachable_provider() else {
        return Err(fail(
            "the harness has no unreachable_provider(); declare the scenario skipped with a \
             reason if the provider cannot be tested this way",
        ));
    };
    ensure!(
        unreachable.name() == p.name(),
        "the unreachable provider is {:?}, not {:?}",
        unreachable.name(),
        p.name()
    );
    let payment = PaymentRef::payment("conformance-unreachable");
    let req = request(&payment, money(h, 1_000)?)?;
    let result = unreachable.refund(&req).await;
    match &result {
        Err(e @ RefundError::Unreachable { .. }) => {
            ensure!(e.is_retryable(), "Unreachable must be retryable: {e}");
            ensure!(
                e.is_outcome_known(),
                "Unreachable must be outcome-known: {e}"
            );
            Ok(())
        }
        other => Err(fail(format!(
            "refunding through a closed port: expected an Unreachable error, got {}",
            describe(other)
        ))),
    }
}

/// The lost response: the fake applies a refund of 25.00 and the response never arrives.
/// Through [`Retrying`], the refund is sent exactly once; with lookups declared, the wrapper's
/// reconciliation finds it and returns a receipt marked `reconciled`; without, the caller
/// gets `OutcomeUnknown`. Either way the ledger shows exactly 25.00.
pub async fn lost_response_is_reconciled(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(lost_response_steps(p, h).await)
}

async fn lost_response_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let paid = money(h, 10_000)?;
    let payment = seed(h, paid).await?;
    let amount = money(h, 2_500)?;
    let req = request_with_reference(&payment, amount, &unique_reference("lost"))?;
    arm(h, Fault::LostResponse).await?;
    let policy = RetryPolicy::default()
        .max_attempts(3)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .reconcile(true, Duration::from_millis(100));
    let retrying = Retrying::new(p, policy);
    let before = h.refund_requests_sent();
    let result = retrying.refund(&req).await;
    let sent = h.refund_requests_sent().saturating_sub(before);
    ensure!(
        sent == 1,
        "{sent} refund requests reached the fake for one refund whose response was lost \
         (expected exactly 1: it must never be sent again)"
    );
    if p.capabilities().refund_lookup {
        let receipt = result.map_err(|e| {
            fail(format!(
                "the refund was applied but its response lost; reconciliation through \
                 refund_state should have found it by reference {}, got {} error: {e}",
                req.reference(),
                variant(&e)
            ))
        })?;
        ensure!(
            receipt.reconciled,
            "the receipt after a lost response is not marked reconciled"
        );
        ensure!(
            receipt.amount == amount,
            "the reconciled receipt says {}, the refund was {amount}",
            receipt.amount
        );
        ensure!(
            receipt.reference == *req.reference(),
            "the reconciled receipt carries {}, the refund was {}",
            receipt.reference,
            req.reference()
        );
    } else {
        ensure!(
            matches!(result, Err(RefundError::OutcomeUnknown { .. })),
            "without lookups, a lost response must be OutcomeUnknown, got {}",
            describe(&result)
        );
    }
    ledger_is(h, &payment, amount, "after the lost response").await
}

/// How long the late-application and lag scenarios wait for the fake to catch up.
const CATCH_UP: Duration = Duration::from_secs(15);

/// Polls the fake's ledger until it shows `expected` for `payment`, for up to [`CATCH_UP`].
async fn ledger_reaches(h: &dyn Harness, payment: &PaymentRef, expected: Money) -> Step<bool> {
    let started = std::time::Instant::now();
    loop {
        if ledger(h, payment).await? == expected {
            return Ok(true);
        }
        if started.elapsed() > CATCH_UP {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends one refund of 10.00 straight through the provider (no wrapper) with `fault` armed,
/// and expects an error whose outcome is not known, with exactly one refund request sent.
async fn unknown_once(
    p: &dyn RefundProvider,
    h: &dyn Harness,
    fault: Fault,
    tag: &str,
) -> Step<(PaymentRef, RefundRequest, SystemTime)> {
    let payment = seed(h, money(h, 10_000)?).await?;
    let req = request_with_reference(&payment, money(h, 1_000)?, &unique_reference(tag))?;
    arm(h, fault).await?;
    let before = h.refund_requests_sent();
    let attempted_at = SystemTime::now();
    let result = p.refund(&req).await;
    let sent = h.refund_requests_sent().saturating_sub(before);
    ensure!(
        matches!(&result, Err(e) if !e.is_outcome_known() && !e.is_retryable()),
        "after {fault}, expected an error whose outcome is unknown and that is not retryable, got {}",
        describe(&result)
    );
    ensure!(
        sent == 1,
        "after {fault}, {sent} refund requests reached the fake (expected exactly 1)"
    );
    Ok((payment, req, attempted_at))
}

async fn verdict(
    p: &dyn RefundProvider,
    req: &RefundRequest,
    attempted_at: SystemTime,
) -> Step<Verdict> {
    let attempt = Attempt::first(req.reference().clone(), attempted_at);
    Reconciler::for_provider(p)
        .look_up(p, req.payment(), &attempt, SystemTime::now)
        .await
        .map(|judged| judged.verdict)
        .map_err(|e| {
            fail(format!(
                "looking up {}: {} error: {e}",
                req.payment(),
                variant(&e)
            ))
        })
}

/// A refund the fake applies a few seconds *after* the client timed out: the client answers
/// an outcome-unknown error and sends it once; the fake's ledger then shows it applied once;
/// with lookups declared, reconciliation through the provider's lookup finds it
/// ([`Verdict::Applied`]). Proves the client neither resends nor calls a late refund failed.
pub async fn late_application_is_not_resent(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(late_application_steps(p, h).await)
}

async fn late_application_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let (payment, req, attempted_at) =
        unknown_once(p, h, Fault::AppliedAfterTimeout, "late").await?;
    ensure!(
        ledger_reaches(h, &payment, req.amount()).await?,
        "the fake never applied the refund after the client's timeout: the harness must apply \
         it late, as a real provider does"
    );
    if p.capabilities().refund_lookup {
        let seen = verdict(p, &req, attempted_at).await?;
        ensure!(
            matches!(seen, Verdict::Applied(_)),
            "the refund applied late is on the fake's books, but reconciliation answered {seen:?}"
        );
    }
    ledger_is(h, &payment, req.amount(), "after the late application").await
}

/// Lookups that lag: a refund whose answer was lost is applied, but the fake's lookup hides
/// it for 1.5 s. Looked up at once, the verdict must not be [`Verdict::SafeToResend`] or
/// [`Verdict::NotApplied`] (the provider's settle time must cover its lookups' lag); after
/// the lag, the lookup finds it ([`Verdict::Applied`]). Skipped in effect for providers
/// without lookups (nothing to reconcile).
pub async fn lagging_lookup_is_not_proof(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    if !p.capabilities().refund_lookup {
        return Outcome::Passed;
    }
    const LAG: Duration = Duration::from_millis(1_500);
    if let Err(e) = h.set_lookup_lag(LAG).await {
        return harness_failed("make the fake's lookups lag", &e);
    }
    let outcome = finish(lagging_lookup_steps(p, h, LAG).await);
    if let Err(e) = h.set_lookup_lag(Duration::ZERO).await {
        return harness_failed("turn the lookup lag off", &e);
    }
    outcome
}

async fn lagging_lookup_steps(p: &dyn RefundProvider, h: &dyn Harness, lag: Duration) -> Step {
    let (payment, req, attempted_at) = unknown_once(p, h, Fault::LostResponse, "lag").await?;
    ledger_is(h, &payment, req.amount(), "after the lost response").await?;
    let early = verdict(p, &req, attempted_at).await?;
    ensure!(
        !matches!(early, Verdict::SafeToResend | Verdict::NotApplied(_)),
        "right after the attempt, with the refund applied but not yet visible to lookups, \
         reconciliation answered {early:?}: acting on it pays twice (settle time declared: {} s)",
        p.capabilities().settle_time.as_secs()
    );
    tokio::time::sleep(lag + Duration::from_millis(300)).await;
    let late = verdict(p, &req, attempted_at).await?;
    ensure!(
        matches!(late, Verdict::Applied(_)),
        "after the lag, the refund should be found by reference {}, got {late:?}",
        req.reference()
    );
    Ok(())
}

/// A refund the bank refused, whose answer was lost: the client answers an outcome-unknown
/// error, the fake's ledger shows nothing refunded, and reconciliation never calls it applied
/// (a provider that lists failed refunds answers [`Verdict::NotApplied`]).
pub async fn failed_entry_is_not_refunded(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(failed_entry_steps(p, h).await)
}

async fn failed_entry_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let (payment, req, attempted_at) =
        unknown_once(p, h, Fault::FailedResponseLost, "failed").await?;
    let zero = Money::zero(h.currency());
    ledger_is(h, &payment, zero, "after a failed refund").await?;
    if p.capabilities().refund_lookup {
        let seen = verdict(p, &req, attempted_at).await?;
        ensure!(
            !matches!(seen, Verdict::Applied(_)),
            "the fake has the refund only as failed, but reconciliation answered {seen:?}"
        );
        if let Ok(state) = p.refund_state(&payment).await {
            ensure!(
                !state.is_determined() || state.refunded == zero,
                "the lookup counts {} refunded of {payment}, the fake's ledger shows nothing",
                state.refunded
            );
        }
    }
    Ok(())
}

/// A refund sent twice with the same reference. A provider that declares reference
/// deduplication must not pay twice: the ledger shows one refund and the second call answers
/// a receipt for the first (reconciled) or an error whose outcome is not known (for SiPay, a
/// duplicate reference) — never a decline, which would claim the money did not move. A
/// provider without deduplication pays whatever its fake pays, and the receipts must agree
/// with the ledger.
pub async fn reused_reference_is_not_paid_twice(
    p: &dyn RefundProvider,
    h: &dyn Harness,
) -> Outcome {
    finish(reused_reference_steps(p, h).await)
}

async fn reused_reference_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let payment = seed(h, money(h, 10_000)?).await?;
    let amount = money(h, 1_000)?;
    let req = request_with_reference(&payment, amount, &unique_reference("reuse"))?;
    let first = p.refund(&req).await;
    ensure!(
        first.is_ok(),
        "the first refund failed: {}",
        describe(&first)
    );
    let second = p.refund(&req).await;
    let total = ledger(h, &payment).await?;
    if p.capabilities().deduplicates_references {
        ensure!(
            total == amount,
            "the capabilities declare reference deduplication, but after two refunds with one \
             reference the ledger shows {total} refunded (one refund is {amount})"
        );
        match &second {
            Ok(receipt) => {
                ensure!(
                    receipt.reconciled,
                    "the second refund with a reused reference answered a fresh receipt: {}",
                    describe(&second)
                );
            }
            Err(e) => {
                ensure!(
                    !e.is_outcome_known(),
                    "the second refund with a reused reference answered {}: a duplicate says \
                     the first reached the provider, so its outcome is not known from this answer",
                    describe(&second)
                );
            }
        }
    } else {
        let expected = match &second {
            Ok(_) => amount
                .checked_add(&amount)
                .map_err(|e| fail(e.to_string()))?,
            Err(_) => amount,
        };
        ensure!(
            total == expected || second.as_ref().is_err_and(|e| !e.is_outcome_known()),
            "after a reused reference answered {}, the ledger shows {total}",
            describe(&second)
        );
    }
    Ok(())
}

/// Secrets never appear in `Debug` of the provider, receipts or errors, in error messages
/// and sources, or in anything logged through `tracing` at TRACE level, across a success, a
/// decline, an unknown payment, an unreachable provider, a lookup and a void.
pub async fn secrets_never_leak(p: &dyn RefundProvider, h: &dyn Harness) -> Outcome {
    finish(Box::pin(secrets_steps(p, h)).await)
}

async fn secrets_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    let paid = money(h, 10_000)?;
    let payment = seed(h, paid).await?;
    let unknown = h.unknown_payment();
    let unreachable = h.unreachable_provider();
    let over = money(h, 10_001)?;
    let success_req = request(
        &payment,
        if p.capabilities().partial_refunds {
            money(h, 1_000)?
        } else {
            paid
        },
    )?;
    let decline_req = request(&payment, over)?;
    let unknown_req = request(&unknown, money(h, 1_000)?)?;
    let void_req = VoidRequest::builder(unknown.clone())
        .build()
        .map_err(|e| fail(e.to_string()))?;

    let (texts, log) = capture_tracing(async {
        let mut texts: Vec<(String, String)> = Vec::new();
        let success = p.refund(&success_req).await;
        record_result(&mut texts, "success", &success);
        let decline = p.refund(&decline_req).await;
        record_result(&mut texts, "decline", &decline);
        let unknown = p.refund(&unknown_req).await;
        record_result(&mut texts, "unknown-payment", &unknown);
        let void = p.void(&void_req).await;
        record_result(&mut texts, "void", &void);
        match p.refund_state(&payment).await {
            Ok(state) => texts.push(("Debug of the refund state".into(), format!("{state:?}"))),
            Err(e) => texts.extend(error_texts("lookup", &e)),
        }
        if let Some(u) = &unreachable {
            let r = u.refund(&unknown_req).await;
            record_result(&mut texts, "unreachable", &r);
            texts.push(("Debug of the unreachable provider".into(), format!("{u:?}")));
        }
        texts.push(("Debug of the provider".into(), format!("{p:?}")));
        texts.push(("Debug of the provider (pretty)".into(), format!("{p:#?}")));
        texts
    })
    .await;

    let secrets = h.secrets();
    ensure!(
        !secrets.is_empty(),
        "the harness lists no secrets; list every credential the provider was configured with \
         (or declare the scenario skipped if it has none)"
    );
    for secret in &secrets {
        ensure!(
            secret.chars().count() >= 8,
            "a secret of {} characters is too short to search for; configure the fake with \
             longer secrets",
            secret.chars().count()
        );
    }
    for secret in &secrets {
        let shown = mask(secret);
        for (label, text) in &texts {
            ensure!(
                !text.contains(secret.as_str()),
                "secret {shown} appears in {label}: {}",
                excerpt(text, secret, &secrets)
            );
        }
        ensure!(
            !log.contains(secret),
            "secret {shown} appears in the tracing output: {}",
            excerpt(&log.text, secret, &secrets)
        );
    }
    Ok(())
}

fn record_result(
    texts: &mut Vec<(String, String)>,
    label: &str,
    result: &Result<RefundReceipt, RefundError>,
) {
    match result {
        Ok(receipt) => {
            texts.push((
                format!("Debug of the {label} receipt"),
                format!("{receipt:?}"),
            ));
            texts.push((
                format!("JSON of the {label} receipt"),
                serde_json::to_string(receipt).unwrap_or_default(),
            ));
        }
        Err(e) => texts.extend(error_texts(label, e)),
    }
}

fn error_texts(label: &str, e: &RefundError) -> Vec<(String, String)> {
    let mut out = vec![
        (format!("Debug of the {label} error"), format!("{e:?}")),
        (format!("Display of the {label} error"), e.to_string()),
    ];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push((
            format!("a source of the {label} error"),
            format!("{s} / {s:?}"),
        ));
        source = s.source();
    }
    out
}

/// The first and last two characters of a secret, so a failure message does not leak it
/// further.
fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let head: String = chars.iter().take(2).collect();
    let tail: String = chars.iter().skip(chars.len().saturating_sub(2)).collect();
    format!("{head}…{tail} ({} chars)", chars.len())
}

/// A little context around the first occurrence, with every secret masked.
fn excerpt(text: &str, secret: &str, secrets: &[String]) -> String {
    let Some(at) = text.find(secret) else {
        return String::new();
    };
    let mut start = at.saturating_sub(60);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + secret.len() + 60).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let mut shown = text[start..end].replace(secret, "<SECRET>");
    for other in secrets {
        shown = shown.replace(other.as_str(), "<SECRET>");
    }
    format!("“…{}…”", shown.replace('\n', " "))
}

/// 100 concurrent refunds of 1.50 on one payment of 100.00: the successful receipts add up
/// to at most 100.00, the ledger shows at most 100.00, and the ledger equals the sum of the
/// successful receipts (plus, at most, refunds whose outcome the client reported unknown).
/// No refund request is sent more than once.
pub async fn concurrent_refunds_never_exceed_paid(
    p: &dyn RefundProvider,
    h: &dyn Harness,
) -> Outcome {
    finish(concurrent_steps(p, h).await)
}

async fn concurrent_steps(p: &dyn RefundProvider, h: &dyn Harness) -> Step {
    const CALLS: usize = 100;
    let paid = money(h, 10_000)?;
    let each = money(h, 150)?;
    if !p.capabilities().multiple_partial_refunds {
        return Err(Outcome::Skipped(
            "the capabilities declare no multiple partial refunds".into(),
        ));
    }
    let payment = seed(h, paid).await?;
    let requests = (0..CALLS)
        .map(|_| request(&payment, each))
        .collect::<Step<Vec<_>>>()?;
    let before = h.refund_requests_sent();
    let results = join_all(requests.iter().map(|r| p.refund(r))).await;
    let sent = h.refund_requests_sent().saturating_sub(before);

    let zero = Money::zero(h.currency());
    let mut succeeded = zero;
    let (mut ok, mut unknown, mut declined, mut other) = (0usize, 0i64, 0usize, Vec::new());
    for (req, result) in requests.iter().zip(&results) {
        match result {
            Ok(receipt) => {
                ensure!(
                    receipt.amount == each,
                    "a concurrent refund of {each} came back as {}",
                    receipt.amount
                );
                ensure!(
                    receipt.reference == *req.reference(),
                    "a concurrent refund's receipt carries {} instead of {}: receipts are mixed up",
                    receipt.reference,
                    req.reference()
                );
                ok += 1;
                succeeded = succeeded
                    .checked_add(&receipt.amount)
                    .map_err(|e| fail(e.to_string()))?;
            }
            Err(RefundError::OutcomeUnknown { .. }) => unknown += 1,
            Err(RefundError::Declined { .. }) => declined += 1,
            Err(e) => other.push(format!("{}: {e}", variant(e))),
        }
    }
    let summary = format!(
        "{ok} succeeded ({succeeded}), {declined} declined, {unknown} outcome unknown, {} other{}",
        other.len(),
        other
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    ensure!(
        sent <= CALLS,
        "{CALLS} refund calls sent {sent} refund requests: some were resent; {summary}"
    );
    ensure!(
        succeeded <= paid,
        "successful receipts add up to {succeeded}, more than the {paid} paid; {summary}"
    );
    let total = ledger(h, &payment).await?;
    ensure!(
        total <= paid,
        "the fake's ledger shows {total} refunded of a {paid} payment; {summary}"
    );
    let unknown_money =
        Money::from_minor_units(unknown * 150, h.currency()).map_err(|e| fail(e.to_string()))?;
    let ceiling = succeeded
        .checked_add(&unknown_money)
        .map_err(|e| fail(e.to_string()))?;
    ensure!(
        total >= succeeded && total <= ceiling,
        "the fake's ledger shows {total} refunded but the successful receipts add up to \
         {succeeded} (with {unknown} outcome-unknown refunds of {each} that may have landed); \
         {summary}"
    );
    ensure!(
        ok > 0,
        "none of {CALLS} concurrent refunds succeeded: {summary}"
    );
    Ok(())
}

/// Polls every future until all are done: concurrency without spawning, so borrowed
/// providers and requests work.
async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut all_done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(outputs.drain(..).flatten().collect())
        } else {
            Poll::Pending
        }
    })
    .await
}
