//! The conformance harness for SiPay: [`refund_sipay::Sipay`] against [`SipaySim`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use refund_core::{Money, PaymentRef, RefundProvider};
use refund_sipay::{Sipay, SipayConfig};

use super::{Fault, Harness, HarnessError, Scenario, Skip, closed_port_url};
use crate::sim::SipaySim;

const REFUND_PATH: &str = "/ccpayment/api/refund";

/// Runs the conformance suite's SiPay side: a [`SipaySim`] on a free loopback port and a
/// [`Sipay`] client configured for it with a 2 s timeout.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use refund_testkit::conformance::{self, SipayHarness};
///
/// let harness = SipayHarness::start().await?;
/// conformance::run(&harness.provider(), &harness).await.assert_passed();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SipayHarness {
    sim: SipaySim,
    config: SipayConfig,
    provider: Sipay,
    seq: AtomicU64,
}

impl SipayHarness {
    /// How long the client waits for an answer: short, so the timeout scenario stays fast.
    pub const TIMEOUT: Duration = Duration::from_secs(2);

    /// Starts the simulator and builds the client.
    pub async fn start() -> Result<SipayHarness, HarnessError> {
        let sim = SipaySim::start().await.map_err(HarnessError::failed)?;
        let config = Self::config(&sim.base_url())?;
        let provider = Sipay::new(config.clone()).map_err(HarnessError::failed)?;
        Ok(SipayHarness {
            sim,
            config,
            provider,
            seq: AtomicU64::new(0),
        })
    }

    /// An app secret the simulator does not know, for the rejected-authentication scenario.
    const WRONG_APP_SECRET: &'static str = "sim-sipay-app-secret-WRONG0000001";

    fn config(base_url: &str) -> Result<SipayConfig, HarnessError> {
        Self::config_with(base_url, SipaySim::APP_SECRET)
    }

    fn config_with(base_url: &str, app_secret: &str) -> Result<SipayConfig, HarnessError> {
        Ok(
            SipayConfig::new(SipaySim::APP_ID, app_secret, SipaySim::MERCHANT_KEY)
                .with_base_url(base_url)
                .map_err(HarnessError::failed)?
                .with_timeout(Self::TIMEOUT),
        )
    }

    /// The client under test (a cheap clone).
    pub fn provider(&self) -> Sipay {
        self.provider.clone()
    }

    /// The simulator.
    pub fn sim(&self) -> &SipaySim {
        &self.sim
    }

    /// The configuration the client was built from.
    pub fn client_config(&self) -> &SipayConfig {
        &self.config
    }
}

#[async_trait]
impl Harness for SipayHarness {
    async fn seed_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError> {
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let invoice = format!("cf-inv-{n:06}");
        self.sim
            .add_payment(&invoice, amount.amount(), amount.currency());
        Ok(PaymentRef::payment(invoice))
    }

    async fn refunded_total(&self, payment: &PaymentRef) -> Result<Money, HarnessError> {
        let p = self.sim.payment(payment.id()).ok_or_else(|| {
            HarnessError::failed(format!("no invoice {payment} in the simulator"))
        })?;
        Money::new(p.refunded(), p.currency).map_err(HarnessError::failed)
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
            .filter(|r| r.path == REFUND_PATH)
            .count()
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            SipaySim::APP_SECRET.to_owned(),
            SipaySim::MERCHANT_KEY.to_owned(),
        ];
        // Bearer tokens the simulator issued, as the client sent them back.
        for request in self.sim.requests() {
            if let Some(token) = request
                .header("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
                && !secrets.iter().any(|s| s == token)
            {
                secrets.push(token.to_owned());
            }
        }
        secrets
    }

    fn unreachable_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        let config = Self::config(&closed_port_url()?).ok()?;
        Some(Arc::new(Sipay::new(config).ok()?))
    }

    fn wrong_credentials_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        let config = Self::config_with(&self.sim.base_url(), Self::WRONG_APP_SECRET).ok()?;
        Some(Arc::new(Sipay::new(config).ok()?))
    }

    fn unknown_payment(&self) -> PaymentRef {
        PaymentRef::payment("cf-no-such-invoice")
    }

    fn skips(&self) -> Vec<Skip> {
        vec![Skip::new(
            Scenario::AmountMismatchIsOutcomeUnknown,
            "SiPay's refund answer states no amount (seeds/sipay-refund-en.md: status_code, \
             status_description, order_no, invoice_id, ref_no, ref_number), so there is \
             nothing to compare with the request",
        )]
    }
}
