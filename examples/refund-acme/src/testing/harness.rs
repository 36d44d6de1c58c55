//! The conformance harness: how the suite drives [`FakeAcme`].

use std::sync::Arc;
use std::time::Duration;

use refund_core::{Money, PaymentRef, RefundProvider, async_trait};
use refund_testkit::conformance::{Fault, Harness, HarnessError, closed_port_url};
use refund_testkit::sim::SimServer;

use super::FakeAcme;
use crate::{Acme, AcmeConfig};

/// The conformance harness: [`FakeAcme`] on a loopback [`SimServer`], and an [`Acme`] client
/// for it with a 1 s timeout (so the timeout scenarios stay fast).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let harness = refund_acme::testing::AcmeHarness::start().await?;
/// refund_testkit::conformance::full_refund(&harness.provider(), &harness).await.assert_ok();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AcmeHarness {
    server: SimServer<FakeAcme>,
    provider: Acme,
}

impl AcmeHarness {
    /// The client's timeout.
    pub const TIMEOUT: Duration = Duration::from_secs(1);

    /// Starts the fake and builds the client.
    pub async fn start() -> Result<AcmeHarness, HarnessError> {
        let server = SimServer::start(FakeAcme::default()).await;
        let server = server.map_err(HarnessError::failed)?;
        let provider = client(&server.base_url(), FakeAcme::SECRET_KEY)?;
        Ok(AcmeHarness { server, provider })
    }

    /// The client under test (a cheap clone).
    pub fn provider(&self) -> Acme {
        self.provider.clone()
    }
}

fn client(base_url: &str, secret_key: &str) -> Result<Acme, HarnessError> {
    let config = AcmeConfig::new(FakeAcme::MERCHANT_ID, secret_key)
        .with_base_url(base_url)
        .with_timeout(AcmeHarness::TIMEOUT);
    Acme::new(config).map_err(HarnessError::failed)
}

#[async_trait]
impl Harness for AcmeHarness {
    async fn seed_payment(&self, amount: Money) -> Result<PaymentRef, HarnessError> {
        Ok(PaymentRef::payment(
            self.server.sim().ledger.add_payment(amount).id,
        ))
    }

    async fn refunded_total(&self, payment: &PaymentRef) -> Result<Money, HarnessError> {
        let refunded = self.server.sim().ledger.refunded(payment.id());
        refunded.ok_or_else(|| HarnessError::failed(format!("no payment {payment}")))
    }

    async fn arm_fault(&self, fault: Fault) -> Result<(), HarnessError> {
        self.server.arm(fault.to_sim(Self::TIMEOUT), 1);
        Ok(())
    }

    async fn set_lookup_lag(&self, lag: Duration) -> Result<(), HarnessError> {
        self.server.set_lookup_lag(lag);
        Ok(())
    }

    fn requests_sent(&self) -> usize {
        self.server.count_requests(|_| true)
    }

    fn refund_requests_sent(&self) -> usize {
        self.server.count_requests(|r| r.path == "/v1/refunds")
    }

    fn secrets(&self) -> Vec<String> {
        vec![FakeAcme::SECRET_KEY.to_owned()]
    }

    fn unreachable_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        Some(Arc::new(
            client(&closed_port_url()?, FakeAcme::SECRET_KEY).ok()?,
        ))
    }

    fn wrong_credentials_provider(&self) -> Option<Arc<dyn RefundProvider>> {
        let wrong = "acme-wrong-secret-key-000000000000";
        Some(Arc::new(client(&self.server.base_url(), wrong).ok()?))
    }
}
