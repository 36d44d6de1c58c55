//! Acme Pay's JSON, field for field, and nothing else. Amounts are decimal strings at the
//! currency's scale (`"25.00"`); every call is a signed `POST`.

use serde::{Deserialize, Serialize};

/// `POST /v1/refunds`. Acme refuses a second refund with a used `idempotency_key` (409).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RefundBody {
    pub(crate) payment_id: String,
    pub(crate) amount: String,
    pub(crate) currency: String,
    pub(crate) idempotency_key: String,
}

/// A refund: the answer to `/v1/refunds` (HTTP 200), and each entry of a lookup. `status` is
/// `succeeded` or `failed` (the bank refused it).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Refund {
    pub(crate) id: String,
    pub(crate) amount: String,
    pub(crate) currency: String,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) status: String,
}

/// `POST /v1/refunds/lookup`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LookupBody {
    pub(crate) payment_id: String,
}

/// The answer to a lookup (HTTP 200): what was paid and every refund, failed ones too.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Lookup {
    pub(crate) amount: String,
    pub(crate) currency: String,
    pub(crate) refunds: Vec<Refund>,
}

/// Every error answer (HTTP 4xx): `{"error": {"code": "over_refund", "message": "…"}}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ApiError,
}

/// The error's code and message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ApiError {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
}
