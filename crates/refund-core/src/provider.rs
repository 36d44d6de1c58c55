//! The `RefundProvider` trait and what a provider declares it can do.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::currency::Currency;
use crate::error::RefundError;
use crate::receipt::RefundReceipt;
use crate::reference::{PaymentRef, PaymentScope};
use crate::request::{RefundRequest, ValidationError, VoidRequest};
use crate::state::RefundState;

/// How a provider voids (cancels) a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VoidSupport {
    /// No void: only refunds.
    None,
    /// No separate void call: a same-day refund of the full amount is processed as a void by
    /// the provider (SiPay). [`RefundProvider::void`] answers unsupported.
    ThroughRefund,
    /// A separate cancel operation: [`RefundProvider::void`] (iyzico's `/payment/cancel`).
    Cancel,
}

/// What a provider can do. Its behaviour must agree; the test kit's conformance suite checks.
///
/// ```
/// use refund_core::{Capabilities, Currency, VoidSupport};
///
/// const CAPS: Capabilities = Capabilities::new(&[Currency::Try])
///     .with_partial_refunds(true)
///     .with_void(VoidSupport::ThroughRefund)
///     .with_refund_lookup(true);
/// assert!(CAPS.supports_currency(Currency::Try));
/// assert!(!CAPS.supports_currency(Currency::Usd));
/// assert!(CAPS.multiple_partial_refunds);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Refunds of less than the paid amount.
    pub partial_refunds: bool,
    /// More than one partial refund of the same payment, up to the paid amount.
    pub multiple_partial_refunds: bool,
    /// How voids work.
    pub void: VoidSupport,
    /// [`RefundProvider::refund_state`] works, so outcome-unknown refunds can be reconciled.
    pub refund_lookup: bool,
    /// Refunds of one basket line ([`PaymentRef::item`]).
    pub item_refunds: bool,
    /// The currencies the provider refunds in.
    pub currencies: &'static [Currency],
    /// The provider itself refuses a second refund with a reference it has already seen
    /// (SiPay's `refund_transaction_id`, answered with code 104), so a resend with the same
    /// reference cannot pay twice. Providers without it (iyzico) rely on the settle time alone.
    pub deduplicates_references: bool,
    /// How long after an attempt the provider's lookup may still not show it: lookup lag plus
    /// late application of requests the client gave up on. Until an attempt is this old, a
    /// lookup that does not find it proves nothing (see [`Reconciler`](crate::Reconciler)).
    pub settle_time: Duration,
}

impl Capabilities {
    /// The settle time a provider gets unless it declares its own: 15 minutes. No provider
    /// documents how long its lookups lag; the only figure on record is a SiPay white-label
    /// sibling's advice to poll a pending transaction every 15 minutes.
    pub const DEFAULT_SETTLE_TIME: Duration = Duration::from_secs(15 * 60);

    /// Full refunds only, in `currencies`, no reference deduplication, the
    /// [default settle time](Self::DEFAULT_SETTLE_TIME).
    pub const fn new(currencies: &'static [Currency]) -> Self {
        Capabilities {
            partial_refunds: false,
            multiple_partial_refunds: false,
            void: VoidSupport::None,
            refund_lookup: false,
            item_refunds: false,
            currencies,
            deduplicates_references: false,
            settle_time: Self::DEFAULT_SETTLE_TIME,
        }
    }

    /// Sets whether the provider refuses a reused reference.
    pub const fn with_reference_dedup(mut self, dedup: bool) -> Self {
        self.deduplicates_references = dedup;
        self
    }

    /// Sets how long the provider's lookups may lag behind an attempt.
    pub const fn with_settle_time(mut self, settle_time: Duration) -> Self {
        self.settle_time = settle_time;
        self
    }

    /// Partial refunds; `multiple` when a payment may be partially refunded more than once.
    pub const fn with_partial_refunds(mut self, multiple: bool) -> Self {
        self.partial_refunds = true;
        self.multiple_partial_refunds = multiple;
        self
    }

    /// Sets how voids work.
    pub const fn with_void(mut self, void: VoidSupport) -> Self {
        self.void = void;
        self
    }

    /// Sets whether refund lookups work.
    pub const fn with_refund_lookup(mut self, lookup: bool) -> Self {
        self.refund_lookup = lookup;
        self
    }

    /// Sets whether item-level refunds work.
    pub const fn with_item_refunds(mut self, items: bool) -> Self {
        self.item_refunds = items;
        self
    }

    /// Whether `currency` is accepted.
    pub fn supports_currency(&self, currency: Currency) -> bool {
        self.currencies.contains(&currency)
    }

    /// Checks a refund request against these capabilities: currency and payment scope.
    /// Provider crates call it before building anything, so an unsupported request is a
    /// validation error with nothing sent.
    pub fn check(
        &self,
        provider: &'static str,
        request: &RefundRequest,
    ) -> Result<(), RefundError> {
        let currency = request.amount().currency();
        if !self.supports_currency(currency) {
            return Err(ValidationError::UnsupportedCurrency { provider, currency }.into());
        }
        self.check_scope(provider, request.payment())
    }

    /// Checks that the payment reference's scope is one this provider refunds.
    pub fn check_scope(
        &self,
        provider: &'static str,
        payment: &PaymentRef,
    ) -> Result<(), RefundError> {
        if payment.scope() == PaymentScope::Item && !self.item_refunds {
            return Err(RefundError::unsupported(provider, "item-level refunds"));
        }
        Ok(())
    }
}

/// A payment provider that can refund: the one trait every provider crate implements.
///
/// Object safe and `Send + Sync`, so applications hold providers as
/// `Arc<dyn RefundProvider>` and pick one per payment (see [`ProviderRegistry`](crate::ProviderRegistry)).
/// `void` and `refund_state` default to [`RefundError::Unsupported`]; a provider that
/// implements them says so in its [`Capabilities`].
///
/// Implementations must:
/// - validate everything they can before sending, returning [`RefundError::InvalidRequest`];
/// - send the request's [`reference`](RefundRequest::reference) to the provider when it has a
///   field for it, so the refund can be found again;
/// - classify every failure honestly: a request that may have reached the provider without a
///   trustworthy answer is [`RefundError::OutcomeUnknown`], never retryable;
/// - keep secrets out of `Debug`, errors and tracing fields.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use refund_core::*;
///
/// #[derive(Debug)]
/// struct AlwaysRefunds;
///
/// #[async_trait]
/// impl RefundProvider for AlwaysRefunds {
///     fn name(&self) -> &'static str { "always" }
///     fn capabilities(&self) -> Capabilities {
///         Capabilities::new(&[Currency::Try]).with_partial_refunds(true)
///     }
///     async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
///         self.capabilities().check(self.name(), request)?;
///         Ok(RefundReceipt::new(self.name(), Operation::Refund, request.payment().clone(),
///             request.reference().clone(), request.amount(), RefundStatus::Completed))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let provider: Arc<dyn RefundProvider> = Arc::new(AlwaysRefunds);
/// let request = RefundRequest::builder(PaymentRef::payment("INV-1"), "5.00 TRY".parse()?).build()?;
/// let receipt = provider.refund(&request).await?;
/// assert_eq!(receipt.amount.to_string(), "5.00 TRY");
/// assert!(provider.void(&VoidRequest::builder(PaymentRef::payment("INV-1")).build()?).await.is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait RefundProvider: Send + Sync + fmt::Debug {
    /// A short, stable, lower-case name: `sipay`, `iyzico`.
    fn name(&self) -> &'static str;

    /// What this provider can do.
    fn capabilities(&self) -> Capabilities;

    /// Checks `request` as [`refund`](Self::refund) would before sending anything, without
    /// sending anything: what a campaign's validation pass asks of every row before the first
    /// request leaves. The default checks the [`Capabilities`] (currency, payment scope); a
    /// provider with rules of its own (characters its signature cannot carry, configuration a
    /// request needs) adds them, and its `refund` calls this first.
    fn validate(&self, request: &RefundRequest) -> Result<(), RefundError> {
        self.capabilities().check(self.name(), request)
    }

    /// Refunds `request.amount()` of `request.payment()`: a full, partial or further partial
    /// refund. On SiPay-style providers a same-day full refund is processed as a void.
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError>;

    /// Voids (cancels) a whole payment, typically only on the day it was taken.
    async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
        let _ = request;
        Err(RefundError::unsupported(self.name(), "void"))
    }

    /// Looks up how much of a payment has been refunded, and by which refunds: what
    /// reconciliation of an outcome-unknown refund needs.
    async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
        let _ = payment;
        Err(RefundError::unsupported(self.name(), "refund lookup"))
    }
}

macro_rules! forward_provider {
    ($ty:ty) => {
        #[async_trait]
        impl<T: RefundProvider + ?Sized> RefundProvider for $ty {
            fn name(&self) -> &'static str {
                (**self).name()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            fn validate(&self, request: &RefundRequest) -> Result<(), RefundError> {
                (**self).validate(request)
            }
            async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, RefundError> {
                (**self).refund(request).await
            }
            async fn void(&self, request: &VoidRequest) -> Result<RefundReceipt, RefundError> {
                (**self).void(request).await
            }
            async fn refund_state(&self, payment: &PaymentRef) -> Result<RefundState, RefundError> {
                (**self).refund_state(payment).await
            }
        }
    };
}

forward_provider!(Arc<T>);
forward_provider!(Box<T>);
forward_provider!(&T);
