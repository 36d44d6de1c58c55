//! Providers by name, for applications that choose the provider per payment.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::provider::RefundProvider;

/// A set of providers keyed by name, each held as `Arc<dyn RefundProvider>`.
///
/// Cheap to clone; build it once at start-up and share it.
///
/// ```
/// # use std::sync::Arc;
/// # use async_trait::async_trait;
/// # use refund_core::*;
/// # #[derive(Debug)] struct Fake(&'static str);
/// # #[async_trait] impl RefundProvider for Fake {
/// #     fn name(&self) -> &'static str { self.0 }
/// #     fn capabilities(&self) -> Capabilities { Capabilities::new(&[Currency::Try]) }
/// #     async fn refund(&self, _: &RefundRequest) -> Result<RefundReceipt, RefundError> { unimplemented!() }
/// # }
/// let registry = ProviderRegistry::new()
///     .with(Arc::new(Fake("sipay")))
///     .with(Arc::new(Fake("iyzico")));
///
/// assert!(registry.get("sipay").is_some());
/// assert!(registry.get("paytr").is_none());
/// assert_eq!(registry.names().collect::<Vec<_>>(), ["iyzico", "sipay"]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<String, Arc<dyn RefundProvider>>,
}

impl ProviderRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `provider` under its own [`name`](RefundProvider::name).
    #[must_use]
    pub fn with(mut self, provider: Arc<dyn RefundProvider>) -> Self {
        self.insert(provider.name(), provider);
        self
    }

    /// Adds `provider` under `key` (say, one SiPay client per merchant account), returning
    /// the provider it replaced.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        provider: Arc<dyn RefundProvider>,
    ) -> Option<Arc<dyn RefundProvider>> {
        self.providers.insert(key.into(), provider)
    }

    /// The provider under `key`.
    pub fn get(&self, key: &str) -> Option<Arc<dyn RefundProvider>> {
        self.providers.get(key).cloned()
    }

    /// The keys, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// How many providers are registered.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// Whether no provider is registered.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}
