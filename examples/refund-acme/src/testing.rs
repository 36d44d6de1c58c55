//! A fake Acme Pay API and the conformance harness that drives it (feature `testing`).
//! [`FakeAcme`] checks the signature and answers from a [`Ledger`]; the loopback server, the
//! request log, every fault, late application, lookup lag and the admin API are
//! `refund_testkit::sim::SimServer`'s.

mod harness;

use refund_core::Money;
use refund_testkit::sim::{Ledger, LedgerError, LedgerRefund};
use refund_testkit::sim::{SimContext, SimRequest, SimResponse, Simulator};
use serde_json::{Value, json};

pub use harness::AcmeHarness;

use crate::signature::{MERCHANT_HEADER, SIGNATURE_HEADER, sign};
use crate::wire;

/// Acme Pay's API, faked: serve it with
/// [`SimServer::start`](refund_testkit::sim::SimServer::start).
#[derive(Debug, Default)]
pub struct FakeAcme {
    /// Its books: seed payments here, read the ground truth here.
    pub ledger: Ledger,
}

impl FakeAcme {
    /// The merchant the fake knows.
    pub const MERCHANT_ID: &'static str = "merchant-4711";
    /// That merchant's secret key.
    pub const SECRET_KEY: &'static str = "acme-demo-secret-key-5f0c2e9b71d4";

    fn refund(&self, req: &SimRequest, ctx: &SimContext) -> SimResponse {
        let Ok(body) = serde_json::from_slice::<wire::RefundBody>(&req.body) else {
            return error(400, "invalid_request");
        };
        let currency = body.currency.parse().ok();
        let Some(amount) = currency.and_then(|c| Money::parse(&body.amount, c).ok()) else {
            return error(400, "invalid_request");
        };
        let key = Some(body.idempotency_key.as_str());
        match self.ledger.refund(ctx, &body.payment_id, key, amount) {
            Err(e) => error(status(e), e.code()),
            Ok(refund) => SimResponse::json(
                200,
                &wire::Refund {
                    id: refund.id,
                    // The amount applied — or another one, under `Fault::WrongAmount`.
                    amount: ctx.amount_to_answer(amount).amount().to_string(),
                    currency: body.currency,
                    idempotency_key: Some(body.idempotency_key),
                    status: "succeeded".to_owned(),
                },
            ),
        }
    }

    fn lookup(&self, req: &SimRequest, ctx: &SimContext) -> SimResponse {
        let Ok(body) = serde_json::from_slice::<wire::LookupBody>(&req.body) else {
            return error(400, "invalid_request");
        };
        // What a lagging lookup shows: entries younger than the lag are left out.
        let Some(payment) = self.ledger.lookup(ctx, &body.payment_id) else {
            return error(404, "unknown_payment");
        };
        let currency = payment.paid.currency().code();
        let entry = |r: &LedgerRefund, status: &str| wire::Refund {
            id: r.id.clone(),
            amount: r.amount.amount().to_string(),
            currency: currency.to_owned(),
            idempotency_key: r.reference.clone(),
            status: status.to_owned(),
        };
        let refunds = payment.refunds.iter().map(|r| entry(r, "succeeded"));
        let failed = payment.failed.iter().map(|r| entry(r, "failed"));
        SimResponse::json(
            200,
            &wire::Lookup {
                amount: payment.paid.amount().to_string(),
                currency: currency.to_owned(),
                refunds: refunds.chain(failed).collect(),
            },
        )
    }
}

impl Simulator for FakeAcme {
    fn handle(&self, req: &SimRequest, ctx: &SimContext) -> SimResponse {
        let expected = sign(Self::SECRET_KEY, req.method.as_str(), &req.path, &req.body);
        if req.header(MERCHANT_HEADER) != Some(Self::MERCHANT_ID)
            || req.header(SIGNATURE_HEADER) != Some(expected.as_str())
        {
            return error(401, "invalid_signature");
        }
        match req.path.as_str() {
            "/v1/refunds" => self.refund(req, ctx),
            "/v1/refunds/lookup" => self.lookup(req, ctx),
            _ => error(404, "not_found"),
        }
    }

    fn seed(&self, body: &Value) -> Result<Value, String> {
        self.ledger.seed(body)
    }

    fn ledger(&self) -> Value {
        self.ledger.to_json()
    }

    fn reset(&self) {
        self.ledger.reset();
    }
}

fn status(e: LedgerError) -> u16 {
    match e {
        LedgerError::UnknownPayment => 404,
        LedgerError::ReusedReference => 409,
        LedgerError::Refused => 402,
        _ => 422,
    }
}

fn error(status: u16, code: &str) -> SimResponse {
    let message = code.replace('_', " ");
    SimResponse::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}
