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
//! // … wait for Ctrl-C; dropping `sandbox` stops both.
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::sim::{IyzicoCredentials, IyzicoSim, SipayCredentials, SipaySim};

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
