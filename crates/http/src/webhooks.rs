//! Webhook endpoints: the management API under `/api/v1/webhooks` and the receivers that
//! other systems post to.

use axum::Router;

use crate::AppState;

/// Routes under `/api/v1` that manage webhook endpoints and deliveries.
pub fn api_routes() -> Router<AppState> {
    Router::new()
}

/// Routes outside `/api/v1` that receive inbound webhooks; they authenticate by signature,
/// not by bearer token.
pub fn receiver_routes() -> Router<AppState> {
    Router::new()
}

/// OpenAPI paths of the routes above, merged into the document.
pub fn openapi_paths() -> serde_json::Map<String, serde_json::Value> {
    serde_json::Map::new()
}
