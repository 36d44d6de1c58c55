//! The conformance harness for iyzico: [`refund_iyzico::Iyzico`] against [`IyzicoSim`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use refund_core::{Money, PaymentRef, PaymentScope, RefundProvider};
use refund_iyzico::{Iyzico, IyzicoConfig};

use super::{Fault, Harness, HarnessError, closed_port_url};
use crate::sim::IyzicoSim;

/// The money-moving paths: item refund, payment refund, cancel.
const MONEY_PATHS: &[&str] = &["/payment/refund", "/v2/payment/refund", "/payment/cancel"];

/// Runs the conformance suite's iyzico side: an [`IyzicoSim`] on a free loopback port and an
/// [`Iyzico`] client configured for it with a 2 s timeout. Payments are seeded with one
/// basket line; [`Harness::seed_payment`] returns the payment (`/v2/payment/refund`),
/// [`Harness::seed_item_payment`] the line (`/payment/refund`).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use refund_testkit::conformance::{self, IyzicoHarness};
///
/// let harness = IyzicoHarness::start().await?;
/// conformance::run(&harness.provider(), &harness).await.assert_passed();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct IyzicoHarness {
    sim: IyzicoSim,
    config: IyzicoConfig,
    provider: Iyzico,
}

impl IyzicoHarness {
    /// How long the client waits for an answer: short, so the timeout scenario stays fast.
    pub const TIMEOUT: Duration = Duration::from_secs(2);

    /// Starts the simulator and builds the client.
    pub async fn start() -> Result<IyzicoHarness, HarnessError> {
        let sim = IyzicoSim::start().await.map_err(HarnessError::failed)?;
        let config = Self::config(&sim.base_url())?;
        let provider = Iyzico::new(config.clone()).map_err(HarnessError::failed)?;
        Ok(IyzicoHarness {
            sim,
            config,
            provider,
        })
    }

    /// A secret key the simulator does not know, for the rejected-authentication scenario.
    const WRONG_SECRET_KEY: &'static str = "sandbox-sim-secret-key-WRONG0000001";

    fn config(base_url: &str) -> Result<IyzicoConfig, HarnessError> {
        Self::config_with(base_url, IyzicoSim::SECRET_KEY)
    }

    fn config_with(base_url: &str, secret_key: &str) -> Result<IyzicoConfig, HarnessError> {
        Ok(IyzicoConfig::new(IyzicoSim::API_KEY, secret_key)
            .with_base_url(base_url)
            .map_err(HarnessError::failed)?
            .with_timeout(Self::TIMEOUT))
    }

    /// The client under test (a cheap clone).
    pub fn provider(&self) -> Iyzico {
        self.provider.clone()
    }

    /// The simulator.
    pub fn sim(&self) -> &IyzicoSim {
        &self.sim
    }

    /// The configuration the client was built from.
    pub fn client_config(&self) -> &IyzicoConfig {
        &self.config
    }
}

#[async_trait]
impl Harness for IyzicoHarness {
    async fn seed_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError> {
        let payment = self.sim.add_payment(amount.currency(), &[amount.amount()]);
        Ok(PaymentRef::payment(payment.payment_id))
    }

    async fn seed_item_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError> {
        let payment = self.sim.add_payment(amount.currency(), &[amount.amount()]);
        let item = payment
            .items
            .first()
            .ok_or_else(|| HarnessError::failed("the simulator made a payment without lines"))?;
        Ok(PaymentRef::item(item.payment_transaction_id.clone()).in_payment(payment.payment_id))
    }

    async fn refunded_total(&self, payment: &PaymentRef) -> Result<Money, HarnessError> {
        let ledger = self.sim.ledger();
        let missing = || HarnessError::failed(format!("no {payment} in the simulator"));
        let (refunded, currency) = if payment.scope() == PaymentScope::Item {
            let p = ledger
                .payments
                .iter()
                .find(|p| {
                    p.items
                        .iter()
                        .any(|i| i.payment_transaction_id == payment.id())
                })
                .ok_or_else(missing)?;
            let item = ledger.item(payment.id()).ok_or_else(missing)?;
            (item.refunded(), p.currency)
        } else {
            let p = ledger.payment(payment.id()).ok_or_else(missing)?;
            let cancelled = p.cancel.as_ref().map(|c| c.price).unwrap_or_default();
            (p.refunded() + cancelled, p.currency)
        };
        Money::new(refunded, currency).map_err(HarnessError::failed)
    }

    async fn arm_fault(&self, fault: Fault) -> Result<(), HarnessError> {
        self.sim.arm(fault.to_sim(Self::TIMEOUT), 1);
        Ok(())
    }

    async fn set_lookup_lag(&self, lag: Duration) -> Result<(), HarnessError> {
        self.sim.set_lookup_lag(lag);
        Ok(())
    }

    fn requests_sent(&self) -> usize {
        self.sim.requests().len()
    }

    fn refund_requests_sent(&self) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| MONEY_PATHS.contains(&r.path.as_str()))
            .count()
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            IyzicoSim::API_KEY.to_owned(),
            IyzicoSim::SECRET_KEY.to_owned(),
        ]
    }

    fn unreachable_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        let config = Self::config(&closed_port_url()?).ok()?;
        Some(Arc::new(Iyzico::new(config).ok()?))
    }

    fn wrong_credentials_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        let config = Self::config_with(&self.sim.base_url(), Self::WRONG_SECRET_KEY).ok()?;
        Some(Arc::new(Iyzico::new(config).ok()?))
    }

    fn unknown_payment(&self) -> PaymentRef {
        PaymentRef::payment("99999999")
    }
}
