//! Both simulators started together, for the `refund sandbox` command and scripts.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use std::net::{IpAddr, Ipv4Addr};
//!
//! let sandbox = refund_testkit::sandbox::run(IpAddr::V4(Ipv4Addr::LOCALHOST), None, None).await?;
//! println!("SiPay  {}", sandbox.sipay.base_url());
//! println!("iyzico {}", sandbox.iyzico.base_url());
//! sandbox.seed_demo()?; // INV-1…INV-3 on SiPay, payments 25180001 and 25180004 on iyzico
//! // … wait for Ctrl-C; dropping `sandbox` stops both.
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{IpAddr, SocketAddr};

use refund_core::{Currency, Decimal};

use crate::sim::{IyzicoCredentials, IyzicoSim, SipayCredentials, SipaySim};

/// The demo payments [`Sandbox::seed_demo`] adds (what `refund sandbox` starts with, and what
/// the README's walk-through refunds). The iyzico ids are the ones a fresh simulator gives its
/// first two payments (it numbers payments and lines from one counter); `seed_demo` checks
/// that they came out so.
pub mod demo {
    /// SiPay: invoices `INV-1`, `INV-2` and `INV-3`, each paid 100.00 TRY.
    pub const SIPAY_INVOICES: [&str; 3] = ["INV-1", "INV-2", "INV-3"];
    /// SiPay: what each demo invoice was paid, in TRY.
    pub const SIPAY_AMOUNT: &str = "100.00";
    /// iyzico: the first payment (`paymentId`), 100.00 TRY in two basket lines.
    pub const IYZICO_PAYMENT: &str = "25180001";
    /// iyzico: the first payment's basket lines (`paymentTransactionId`), 60.00 and 40.00 TRY.
    pub const IYZICO_LINES: [&str; 2] = ["26120002", "26120003"];
    /// iyzico: the second payment, 50.00 TRY in one line, left for a cancel.
    pub const IYZICO_CANCEL_PAYMENT: &str = "25180004";
    /// iyzico: the second payment's one basket line.
    pub const IYZICO_CANCEL_LINE: &str = "26120005";
}

/// Both simulators, running. Dropping it stops them.
#[derive(Debug)]
pub struct Sandbox {
    /// The SiPay simulator.
    pub sipay: SipaySim,
    /// The iyzico simulator.
    pub iyzico: IyzicoSim,
}

impl Sandbox {
    /// SiPay's base URL and demo credentials.
    pub fn sipay_credentials(&self) -> SipayCredentials {
        self.sipay.credentials()
    }

    /// iyzico's base URL and demo key pair.
    pub fn iyzico_credentials(&self) -> IyzicoCredentials {
        self.iyzico.credentials()
    }

    /// Adds the [`demo`] payments: SiPay invoices `INV-1`…`INV-3` paid 100.00 TRY each, and
    /// two iyzico payments, [`demo::IYZICO_PAYMENT`] (lines [`demo::IYZICO_LINES`], 60.00 and
    /// 40.00 TRY) and [`demo::IYZICO_CANCEL_PAYMENT`] (one line of 50.00 TRY). Call it on a
    /// fresh sandbox: an error says when the iyzico simulator already had payments (its ids
    /// would then differ from the documented ones).
    pub fn seed_demo(&self) -> io::Result<()> {
        let hundred = Decimal::new(10_000, 2);
        for invoice in demo::SIPAY_INVOICES {
            self.sipay.add_payment(invoice, hundred, Currency::Try);
        }
        let first = self.iyzico.add_payment(
            Currency::Try,
            &[Decimal::new(6_000, 2), Decimal::new(4_000, 2)],
        );
        let second = self
            .iyzico
            .add_payment(Currency::Try, &[Decimal::new(5_000, 2)]);
        let lines = |p: &crate::sim::IyzicoPayment| -> Vec<String> {
            p.items
                .iter()
                .map(|i| i.payment_transaction_id.clone())
                .collect()
        };
        let expected = (
            demo::IYZICO_PAYMENT,
            demo::IYZICO_LINES.map(str::to_owned).to_vec(),
            demo::IYZICO_CANCEL_PAYMENT,
            vec![demo::IYZICO_CANCEL_LINE.to_owned()],
        );
        let got = (
            first.payment_id.as_str(),
            lines(&first),
            second.payment_id.as_str(),
            lines(&second),
        );
        if got != expected {
            return Err(io::Error::other(format!(
                "the iyzico demo payments got ids {got:?}, not the documented {expected:?}: \
                 seed a fresh sandbox"
            )));
        }
        Ok(())
    }
}

/// Starts a SiPay and an iyzico simulator on `listen`, on the given ports (`None`: a free
/// port each). Each serves its provider API and the admin API under `/__sandbox/`.
pub async fn run(
    listen: IpAddr,
    sipay_port: Option<u16>,
    iyzico_port: Option<u16>,
) -> io::Result<Sandbox> {
    let sipay = SipaySim::start_on(SocketAddr::new(listen, sipay_port.unwrap_or(0))).await?;
    let iyzico = IyzicoSim::start_on(SocketAddr::new(listen, iyzico_port.unwrap_or(0))).await?;
    Ok(Sandbox { sipay, iyzico })
}
