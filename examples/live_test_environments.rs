//! Refunds against the providers' real test environments, with your own credentials.
//!
//! Nothing runs unless the variables are set; each provider is skipped (saying so) otherwise:
//!
//! ```sh
//! SIPAY_APP_ID=… SIPAY_APP_SECRET=… SIPAY_MERCHANT_KEY=… SIPAY_INVOICE_ID=… SIPAY_AMOUNT=1.00 \
//! IYZICO_API_KEY=… IYZICO_SECRET_KEY=… IYZICO_IP=<your server's public IP> IYZICO_PAYMENT_TRANSACTION_ID=… IYZICO_AMOUNT=1.0 \
//!     cargo run --example live_test_environments
//! ```
//!
//! `SIPAY_BASE_URL` / `IYZICO_BASE_URL` default to the test environments
//! (`https://provisioning.sipay.com.tr`, `https://sandbox-api.iyzipay.com`). The payment must
//! exist in that environment: make one through the provider's test checkout first.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;

use refund_core::{Currency, Money, PaymentRef, RefundProvider, RefundRequest};
use refund_iyzico::{Iyzico, IyzicoConfig};
use refund_sipay::{Sipay, SipayConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    match (
        std::env::var("SIPAY_INVOICE_ID"),
        std::env::var("SIPAY_AMOUNT"),
    ) {
        (Ok(invoice), Ok(amount)) => {
            let sipay: Arc<dyn RefundProvider> = Arc::new(Sipay::new(SipayConfig::from_env()?)?);
            refund(&*sipay, PaymentRef::payment(invoice), &amount).await?;
        }
        _ => println!(
            "sipay: skipped (set SIPAY_APP_ID, SIPAY_APP_SECRET, SIPAY_MERCHANT_KEY, SIPAY_INVOICE_ID, SIPAY_AMOUNT)"
        ),
    }
    match (
        std::env::var("IYZICO_PAYMENT_TRANSACTION_ID"),
        std::env::var("IYZICO_AMOUNT"),
    ) {
        (Ok(tx), Ok(amount)) => {
            let iyzico: Arc<dyn RefundProvider> = Arc::new(Iyzico::new(IyzicoConfig::from_env()?)?);
            refund(&*iyzico, PaymentRef::item(tx), &amount).await?;
        }
        _ => println!(
            "iyzico: skipped (set IYZICO_API_KEY, IYZICO_SECRET_KEY, IYZICO_IP, IYZICO_PAYMENT_TRANSACTION_ID, IYZICO_AMOUNT)"
        ),
    }
    Ok(())
}

async fn refund(
    provider: &dyn RefundProvider,
    payment: PaymentRef,
    amount: &str,
) -> Result<(), Box<dyn Error>> {
    let request = RefundRequest::builder(payment, Money::parse(amount, Currency::Try)?).build()?;
    println!(
        "{}: refunding {} of {}",
        provider.name(),
        request.amount(),
        request.payment()
    );
    match provider.refund(&request).await {
        Ok(receipt) => println!("{}", serde_json::to_string_pretty(&receipt)?),
        Err(e) if !e.is_outcome_known() => println!(
            "{}: {e}\n  do not resend; look up reference {} first",
            provider.name(),
            request.reference()
        ),
        Err(e) => println!("{}: {e}", provider.name()),
    }
    Ok(())
}
