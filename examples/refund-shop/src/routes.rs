//! The HTTP routes (axum): returns, SiPay's refund webhook, `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use refund_core::RefundNotification;
use refund_outbox::sqlx::sqlx::PgPool;
use refund_sipay::notification::NotificationVerifier;
use serde_json::json;

use crate::orders::{self, Returned};

/// `shop_returns_total{result}`: `accepted`, `already_returned`, `not_found`, `conflict`, `error`.
pub const RETURNS: &str = "shop_returns_total";
/// `shop_sipay_notifications_total{result}`: `settled`, `unmatched`, `refused`, `error`.
pub const NOTIFICATIONS: &str = "shop_sipay_notifications_total";
/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) pool: PgPool,
    pub(crate) verifier: Arc<NotificationVerifier>,
    pub(crate) metrics: PrometheusHandle,
}

/// The service's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/orders/{id}/return", post(return_order))
        .route("/webhooks/sipay/refund", post(sipay_refund_notification))
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

fn count(name: &'static str, result: &'static str) {
    metrics::counter!(name, "result" => result).increment(1);
}

/// `POST /orders/{id}/return`: 202 with the intent's id when accepted; 200 when the order was
/// returned before (idempotent: nothing is written again); 404 for no such order; 409 when
/// an intent with the order's reference exists that no return of this service wrote.
async fn return_order(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    match orders::return_order(&state.pool, id).await {
        Ok(Returned::Accepted(intent)) => {
            count(RETURNS, "accepted");
            let body = json!({"order": id, "status": "returned", "intent": intent.0});
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Ok(Returned::AlreadyReturned { status }) => {
            count(RETURNS, "already_returned");
            let body = json!({"order": id, "status": status, "repeated": true});
            (StatusCode::OK, Json(body)).into_response()
        }
        Ok(Returned::NotFound) => {
            count(RETURNS, "not_found");
            StatusCode::NOT_FOUND.into_response()
        }
        Ok(Returned::Conflict) => {
            count(RETURNS, "conflict");
            tracing::warn!(
                order = id,
                "a refund intent with this order's reference exists already; nothing written"
            );
            StatusCode::CONFLICT.into_response()
        }
        Err(e) => {
            count(RETURNS, "error");
            tracing::error!(order = id, error = %e, "return failed; rolled back");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// `POST /webhooks/sipay/refund`: verifies the form-encoded notification with the app secret
/// and settles the order it is about. Every refusal is the same bare 400 (telling the sender
/// why helps a forger; the reason is logged, and names no secret or posted value). A verified
/// notification that settles nothing (a repeat) is still 200, so SiPay stops retrying.
async fn sipay_refund_notification(State(state): State<AppState>, body: Bytes) -> StatusCode {
    let verified = match state.verifier.verify_form(&body) {
        Ok(v) => v,
        Err(e) => {
            count(NOTIFICATIONS, "refused");
            tracing::warn!(error = %e, forged = e.is_forged(), "SiPay refund notification refused");
            return StatusCode::BAD_REQUEST;
        }
    };
    let notice = RefundNotification::from(verified);
    if !matches!(notice.verdict(), refund_core::Verdict::Applied(_)) {
        count(NOTIFICATIONS, "unmatched");
        tracing::warn!(status = ?notice.status, "SiPay refund notification with a status that settles nothing");
        return StatusCode::OK;
    }
    match orders::complete_sipay_refund(&state.pool, notice.payment.id(), notice.amount).await {
        Ok(Some(order)) => {
            count(NOTIFICATIONS, "settled");
            tracing::info!(order, "SiPay refund completed");
            StatusCode::OK
        }
        Ok(None) => {
            count(NOTIFICATIONS, "unmatched");
            tracing::info!("SiPay refund notification matched no returned order (a repeat?)");
            StatusCode::OK
        }
        // Not settled: 500 makes SiPay deliver it again.
        Err(e) => {
            count(NOTIFICATIONS, "error");
            tracing::error!(error = %e, "settling a SiPay refund failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// `GET /metrics`: the Prometheus text format. The outbox's gauges
/// (`refund_outbox::metrics::record_status`) are read from the database first (one status
/// query per scrape, stuck intents counted up to 1,000).
async fn render_metrics(State(state): State<AppState>) -> Response {
    if let Err(e) = refresh_outbox_gauges(&state.pool).await {
        tracing::warn!(error = %e, "reading the outbox status for /metrics failed");
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn refresh_outbox_gauges(pool: &PgPool) -> Result<(), crate::ShopError> {
    let mut conn = pool.acquire().await?;
    let status = refund_outbox::sqlx::status(&mut conn, Duration::from_secs(3600), 1000).await?;
    refund_outbox::metrics::record_status(&status);
    Ok(())
}
