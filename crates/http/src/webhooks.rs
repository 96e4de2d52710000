//! Webhook endpoints: the management API under `/api/v1/webhooks`, integration health, and
//! the receivers at `/hooks/<id>` that other systems post to.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use steward_store::Page;
use steward_store::webhooks::{
    Delivery, DeliveryQuery, DeliveryState, InboundRejection, OutboundEndpoint, RejectionQuery,
};
use steward_webhooks::inbound::{InboundCreated, InboundView};
use steward_webhooks::outbound::{DeliveryView, OutboundCreated, Resent};
use steward_webhooks::{
    Delivered, IntegrationHealth, OutboundChange, OutboundRequest, WebhookError, Webhooks,
};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, json_body, parameter_error};
use crate::paging::{Paging, reject_unknown};

/// Roles that may create, change, delete and resend.
const MANAGERS: &[&str] = &["admin", "operations"];
/// Roles that may read endpoints, deliveries and rejections.
const READERS: &[&str] = &["admin", "operations", "auditor"];

/// Routes under `/api/v1` that manage webhook endpoints and deliveries.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/webhooks/outbound",
            get(list_outbound).post(create_outbound),
        )
        .route(
            "/webhooks/outbound/{id}",
            get(get_outbound)
                .patch(update_outbound)
                .delete(delete_outbound),
        )
        .route(
            "/webhooks/outbound/{id}/rotate-secret",
            post(rotate_outbound),
        )
        .route("/webhooks/outbound/{id}/health", get(outbound_health))
        .route("/webhooks/deliveries", get(list_deliveries))
        .route("/webhooks/deliveries/{id}", get(get_delivery))
        .route("/webhooks/deliveries/{id}/resend", post(resend))
        .route("/webhooks/inbound", get(list_inbound).post(create_inbound))
        .route(
            "/webhooks/inbound/{id}",
            get(get_inbound)
                .patch(update_inbound)
                .delete(delete_inbound),
        )
        .route("/webhooks/inbound/{id}/rotate-secret", post(rotate_inbound))
        .route("/webhooks/inbound/{id}/rejections", get(rejections))
        .route("/integrations/health", get(integrations_health))
}

/// Routes outside `/api/v1` that receive inbound webhooks; they authenticate by signature,
/// not by bearer token.
pub fn receiver_routes() -> Router<AppState> {
    Router::new()
        .route("/hooks/{endpoint}", post(receive))
        .route("/hooks/{endpoint}/{token}", post(receive_with_token))
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Invalid { message, details } => ApiError::validation(message, details),
            WebhookError::NotFound(message) => ApiError::not_found(message),
            WebhookError::Conflict(message) => ApiError::conflict(message),
            WebhookError::Secret(message) => {
                tracing::error!(%message, "webhook secret error");
                ApiError::internal()
            }
            WebhookError::Store(error) => error.into(),
            WebhookError::Engine(error) => error.into(),
        }
    }
}

fn service(state: &AppState) -> Result<Arc<Webhooks>, ApiError> {
    state.webhooks.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "webhooks are not set up on this server",
        )
    })
}

async fn list_outbound(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Page<OutboundEndpoint>>, ApiError> {
    principal.require(READERS, "read webhook endpoints")?;
    let items =
        steward_store::read_async(state.store.clone(), |tx| tx.webhooks().outbound_endpoints())
            .await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

async fn create_outbound(
    State(state): State<AppState>,
    principal: Principal,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<OutboundCreated>), ApiError> {
    principal.require(MANAGERS, "create webhook endpoints")?;
    let request: OutboundRequest = json_body(
        payload,
        r#"{"id": "billing", "url": "https://example.com/hook", "events": ["invoice.sent"]}"#,
    )?;
    let created = service(&state)?
        .create_outbound(&state.engine, request)
        .await?;
    tracing::info!(endpoint = %created.endpoint.id, by = %principal.name, "outbound endpoint created through the API");
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_outbound(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<OutboundEndpoint>, ApiError> {
    principal.require(READERS, "read webhook endpoints")?;
    let lookup = id.clone();
    steward_store::read_async(state.store.clone(), move |tx| {
        tx.webhooks().outbound_endpoint(&lookup)
    })
    .await?
    .map(Json)
    .ok_or_else(|| ApiError::not_found(format!("no outbound webhook endpoint `{id}` exists")))
}

async fn update_outbound(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<Json<OutboundEndpoint>, ApiError> {
    principal.require(MANAGERS, "change webhook endpoints")?;
    let change: OutboundChange = json_body(payload, r#"{"enabled": false}"#)?;
    let endpoint = service(&state)?
        .update_outbound(&state.engine, &id, change)
        .await?;
    Ok(Json(endpoint))
}

async fn delete_outbound(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(MANAGERS, "delete webhook endpoints")?;
    service(&state)?.delete_outbound(&state.engine, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_outbound(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<OutboundCreated>, ApiError> {
    principal.require(MANAGERS, "rotate webhook secrets")?;
    let rotated = service(&state)?
        .rotate_outbound_secret(&state.engine, &id)
        .await?;
    Ok(Json(rotated))
}

async fn outbound_health(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<IntegrationHealth>, ApiError> {
    principal.require(READERS, "read webhook health")?;
    Ok(Json(
        service(&state)?.outbound_health(&state.engine, &id).await?,
    ))
}

async fn list_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Page<Delivery>>, ApiError> {
    principal.require(READERS, "read webhook deliveries")?;
    reject_unknown(&params, &["endpoint", "state"])?;
    let paging = Paging::from_params(&params)?;
    let delivery_state = params
        .get("state")
        .map(|s| {
            DeliveryState::parse(s).ok_or_else(|| {
                parameter_error("state", s, "must be succeeded, retrying, dead or skipped")
            })
        })
        .transpose()?;
    let query = DeliveryQuery {
        before: paging.cursor,
        limit: paging.limit,
        endpoint: params.get("endpoint").cloned(),
        state: delivery_state,
    };
    Ok(Json(
        steward_store::read_async(state.store.clone(), move |tx| {
            tx.webhooks().deliveries(&query)
        })
        .await?,
    ))
}

async fn get_delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    principal.require(READERS, "read webhook deliveries")?;
    Ok(Json(service(&state)?.delivery(&state.engine, &id).await?))
}

async fn resend(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Resent>), ApiError> {
    principal.require(MANAGERS, "resend webhook deliveries")?;
    let resent = service(&state)?.resend(&state.engine, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(resent)))
}

async fn list_inbound(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Page<InboundView>>, ApiError> {
    principal.require(READERS, "read webhook endpoints")?;
    let endpoints =
        steward_store::read_async(state.store.clone(), |tx| tx.webhooks().inbound_endpoints())
            .await?;
    Ok(Json(Page {
        items: endpoints.iter().map(InboundView::of).collect(),
        next_cursor: None,
    }))
}

async fn create_inbound(
    State(state): State<AppState>,
    principal: Principal,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<InboundCreated>), ApiError> {
    principal.require(MANAGERS, "create webhook endpoints")?;
    let Json(request) = payload?;
    let created = service(&state)?
        .create_inbound(&state.engine, request)
        .await?;
    tracing::info!(endpoint = %created.endpoint.id, by = %principal.name, "inbound endpoint created through the API");
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_inbound(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<InboundView>, ApiError> {
    principal.require(READERS, "read webhook endpoints")?;
    let lookup = id.clone();
    steward_store::read_async(state.store.clone(), move |tx| {
        tx.webhooks().inbound_endpoint(&lookup)
    })
    .await?
    .map(|endpoint| Json(InboundView::of(&endpoint)))
    .ok_or_else(|| ApiError::not_found(format!("no inbound webhook endpoint `{id}` exists")))
}

async fn update_inbound(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<Json<InboundView>, ApiError> {
    principal.require(MANAGERS, "change webhook endpoints")?;
    let Json(change) = payload?;
    Ok(Json(
        service(&state)?
            .update_inbound(&state.engine, &id, change)
            .await?,
    ))
}

async fn delete_inbound(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(MANAGERS, "delete webhook endpoints")?;
    service(&state)?.delete_inbound(&state.engine, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_inbound(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<InboundCreated>, ApiError> {
    principal.require(MANAGERS, "rotate webhook secrets")?;
    Ok(Json(
        service(&state)?
            .rotate_inbound_secret(&state.engine, &id)
            .await?,
    ))
}

async fn rejections(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Page<InboundRejection>>, ApiError> {
    principal.require(READERS, "read webhook rejections")?;
    reject_unknown(&params, &[])?;
    let paging = Paging::from_params(&params)?;
    let query = RejectionQuery {
        before: paging.cursor,
        limit: paging.limit,
        endpoint: Some(id),
    };
    Ok(Json(
        steward_store::read_async(state.store.clone(), move |tx| {
            tx.webhooks().inbound_rejections(&query)
        })
        .await?,
    ))
}

async fn integrations_health(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Page<IntegrationHealth>>, ApiError> {
    principal.require(READERS, "read integration health")?;
    let items = service(&state)?.integrations_health(&state.engine).await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

async fn receive(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    deliver(state, endpoint, None, headers, body).await
}

async fn receive_with_token(
    State(state): State<AppState>,
    Path((endpoint, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    deliver(state, endpoint, Some(token), headers, body).await
}

/// Hands one delivery to the webhook service and turns its outcome into an HTTP response.
async fn deliver(
    state: AppState,
    endpoint: String,
    token: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let webhooks = match service(&state) {
        Ok(webhooks) => webhooks,
        Err(error) => return error.into_response(),
    };
    let body = match body {
        Ok(body) => body,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
            )
            .into_response();
        }
    };
    // The first value of each header, by lower-case name; values that are not text are left
    // out, so a signature in them does not verify.
    let mut header_values = BTreeMap::new();
    for (name, value) in &headers {
        if let Ok(text) = value.to_str() {
            header_values
                .entry(name.as_str().to_string())
                .or_insert_with(|| text.to_string());
        }
    }
    let delivered = Delivered {
        endpoint: &endpoint,
        token: token.as_deref(),
        headers: &header_values,
        body: &body,
    };
    match webhooks.receive(&state.engine, delivered).await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
            let mut response = (status, Json(answer.body)).into_response();
            if answer.replayed {
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            response
        }
        Err(rejection) => {
            let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
            let body = json!({"error": {"code": rejection.reason, "message": rejection.message}});
            (status, Json(body)).into_response()
        }
    }
}

fn error_responses(codes: &[(&str, &str)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (status, meaning) in codes {
        map.insert(
            status.to_string(),
            json!({"description": meaning, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    map
}

fn operation(
    summary: &str,
    status: &str,
    response: Value,
    body: Option<Value>,
    errors: &[(&str, &str)],
    parameters: &[&str],
) -> Value {
    let mut responses = error_responses(errors);
    responses.insert(
        "401".into(),
        json!({"description": "`unauthorized`: No valid bearer token was sent."}),
    );
    responses.insert(
        status.to_string(),
        if response.is_null() {
            json!({"description": "done"})
        } else {
            json!({"description": "success", "content": {"application/json": {"schema": response}}})
        },
    );
    let parameters: Vec<Value> = parameters
        .iter()
        .map(|name| {
            let location = if ["cursor", "limit", "endpoint", "state"].contains(name) {
                "query"
            } else {
                "path"
            };
            json!({"name": name, "in": location, "required": location == "path", "schema": {"type": "string"}})
        })
        .collect();
    let mut op = json!({"summary": summary, "parameters": parameters, "responses": responses, "security": [{"bearer": []}], "tags": ["webhooks"]});
    if let Some(body) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": body}}});
    }
    op
}

/// OpenAPI paths of the routes above, merged into the document.
pub fn openapi_paths() -> Map<String, Value> {
    let outbound = json!({"type": "object", "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
        "url": {"type": "string", "format": "uri"},
        "enabled": {"type": "boolean"},
        "events": {"type": ["array", "null"], "items": {"type": "string"}, "description": "event names the endpoint accepts; every event when null"},
        "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 60000},
        "description": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"}}});
    let outbound_request = json!({"type": "object", "required": ["id", "url"], "properties": {
        "id": {"type": "string"}, "url": {"type": "string"}, "enabled": {"type": "boolean"},
        "events": {"type": "array", "items": {"type": "string"}}, "timeout_ms": {"type": "integer"},
        "description": {"type": "string"}}});
    let with_secret = |schema: &Value| json!({"allOf": [schema, {"type": "object", "properties": {"secret": {"type": "string", "description": "shown only in this answer"}}}]});
    let inbound = json!({"type": "object", "description": "An inbound endpoint: its configuration keys and `path`", "properties": {
        "id": {"type": "string"}, "enabled": {"type": "boolean"}, "path": {"type": "string"},
        "verification": {"type": "string", "enum": ["standard", "hmac", "token"]},
        "signature_header": {"type": "string"}, "signature_prefix": {"type": "string"},
        "signature_encoding": {"type": "string", "enum": ["hex", "base64"]},
        "idempotency": {"description": "\"body\" (default), \"none\", {\"header\": name} or {\"fields\": [paths]}"},
        "key_horizon_hours": {"type": "integer", "minimum": 1, "maximum": 2160, "default": 168},
        "mapping": {"type": "object", "description": "{\"emit\": name, \"data\": {...}} or {\"upsert\": {\"record\", \"external\": {\"system\", \"model\", \"id\"}, \"state\", \"fields\", \"references\", \"source_version\"}}; values starting with `=` are expressions over `payload`"},
        "synchronous": {"type": "boolean", "description": "answer with the `respond` action of a rule that ran on the event"}}});
    let health = json!({"type": "object", "properties": {
        "integration": {"type": "string", "enum": ["webhook_out", "webhook_in"]}, "id": {"type": "string"},
        "status": {"type": "string", "enum": ["healthy", "failing", "rejecting", "idle", "disabled"]},
        "enabled": {"type": "boolean"}, "window_hours": {"type": "integer"},
        "deliveries": {"type": "integer"}, "attempts": {"type": "integer"}, "failed_attempts": {"type": "integer"},
        "consecutive_failures": {"type": "integer"}, "last_success_at": {"type": ["string", "null"]},
        "last_failure_at": {"type": ["string", "null"]}, "last_error": {"type": ["string", "null"]},
        "median_latency_ms": {"type": ["number", "null"]},
        "accepted": {"type": "integer"}, "rejected": {"type": "integer"}}});
    let delivery = json!({"type": "object", "properties": {
        "id": {"type": "string", "description": "the webhook-id header of every attempt"}, "endpoint": {"type": "string"},
        "event": {"type": "string"}, "job": {"type": "string"},
        "state": {"type": "string", "enum": ["pending", "succeeded", "retrying", "dead", "skipped"]},
        "attempts": {}, "last_status": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
        "resent_from": {"type": ["string", "null"]}}});
    let rejection = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "endpoint": {"type": "string"},
        "reason": {"type": "string", "enum": ["unknown_endpoint", "disabled_endpoint", "bad_signature", "stale_timestamp", "bad_token", "not_json", "missing_idempotency_key", "mapping_failed", "command_failed"]},
        "message": {"type": "string"}, "status": {"type": "integer"}, "body_sha256": {"type": "string"},
        "body_bytes": {"type": "integer"}, "received_at": {"type": "string", "format": "date-time"}}});
    let page = |item: &Value| json!({"type": "object", "properties": {"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}}});
    let forbidden = ("403", "`forbidden`: The token's role may not do this.");
    let not_found = ("404", "`not_found`: No such resource.");
    let invalid = (
        "422",
        "`validation_failed`: One or more values are invalid; `details` lists each.",
    );
    let conflict = (
        "409",
        "`conflict`: The resource exists already, or the state does not allow this.",
    );
    let bad_request = ("400", "`invalid_request`: A bad parameter or a bad cursor.");

    let mut paths = Map::new();
    paths.insert("/api/v1/webhooks/outbound".into(), json!({
        "get": operation("List outbound webhook endpoints", "200", page(&outbound), None, &[forbidden], &[]),
        "post": operation("Create an outbound webhook endpoint; its signing secret is shown once", "201", with_secret(&outbound), Some(outbound_request.clone()), &[forbidden, invalid, conflict], &[]),
    }));
    paths.insert("/api/v1/webhooks/outbound/{id}".into(), json!({
        "get": operation("Read an outbound webhook endpoint", "200", outbound.clone(), None, &[forbidden, not_found], &["id"]),
        "patch": operation("Change an outbound webhook endpoint", "200", outbound.clone(), Some(json!({"type": "object"})), &[forbidden, not_found, invalid], &["id"]),
        "delete": operation("Delete an outbound webhook endpoint", "204", Value::Null, None, &[forbidden, not_found], &["id"]),
    }));
    paths.insert("/api/v1/webhooks/outbound/{id}/rotate-secret".into(), json!({
        "post": operation("Replace the signing secret; the new one is shown once", "200", with_secret(&outbound), None, &[forbidden, not_found], &["id"]),
    }));
    paths.insert("/api/v1/webhooks/outbound/{id}/health".into(), json!({
        "get": operation("Deliveries, failures, consecutive failures, last success and failure, and median latency over 24 hours", "200", health.clone(), None, &[forbidden, not_found], &["id"]),
    }));
    paths.insert("/api/v1/webhooks/deliveries".into(), json!({
        "get": operation("List outbound deliveries, newest first", "200", page(&delivery), None, &[forbidden, bad_request], &["endpoint", "state", "cursor", "limit"]),
    }));
    paths.insert("/api/v1/webhooks/deliveries/{id}".into(), json!({
        "get": operation("Read a delivery with its attempts", "200", delivery.clone(), None, &[forbidden, not_found], &["id"]),
    }));
    paths.insert("/api/v1/webhooks/deliveries/{id}/resend".into(), json!({
        "post": operation("Queue the delivery again as a new delivery with a new id", "202", json!({"type": "object", "properties": {"delivery": {"type": "string"}, "resent_from": {"type": "string"}, "job": {"type": "string"}}}), None, &[forbidden, not_found, conflict], &["id"]),
    }));
    paths.insert("/api/v1/webhooks/inbound".into(), json!({
        "get": operation("List inbound webhook endpoints", "200", page(&inbound), None, &[forbidden], &[]),
        "post": operation("Create an inbound webhook endpoint; its secret is shown once", "201", with_secret(&inbound), Some(inbound.clone()), &[forbidden, invalid, conflict], &[]),
    }));
    paths.insert("/api/v1/webhooks/inbound/{id}".into(), json!({
        "get": operation("Read an inbound webhook endpoint", "200", inbound.clone(), None, &[forbidden, not_found], &["id"]),
        "patch": operation("Change an inbound endpoint; given keys replace the stored ones", "200", inbound.clone(), Some(json!({"type": "object"})), &[forbidden, not_found, invalid], &["id"]),
        "delete": operation("Delete an inbound endpoint and its idempotency keys", "204", Value::Null, None, &[forbidden, not_found], &["id"]),
    }));
    paths.insert("/api/v1/webhooks/inbound/{id}/rotate-secret".into(), json!({
        "post": operation("Replace the secret or URL token; the new one is shown once", "200", with_secret(&inbound), None, &[forbidden, not_found], &["id"]),
    }));
    paths.insert("/api/v1/webhooks/inbound/{id}/rejections".into(), json!({
        "get": operation("List rejected deliveries with their reasons, newest first", "200", page(&rejection), None, &[forbidden, bad_request], &["id", "cursor", "limit"]),
    }));
    paths.insert("/api/v1/integrations/health".into(), json!({
        "get": operation("Health of every webhook endpoint over 24 hours", "200", page(&health), None, &[forbidden], &[]),
    }));
    let receiver = json!({
        "summary": "Receive a webhook: verified, deduplicated by idempotency key, mapped to a command and applied before the answer",
        "parameters": [{"name": "endpoint", "in": "path", "required": true, "schema": {"type": "string"}}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {}}}},
        "responses": {
            "202": {"description": "accepted: `{\"accepted\": <event id or null>}`; a repeat carries `Idempotent-Replayed: true`"},
            "2XX": {"description": "for a synchronous endpoint, the status and body of a rule's `respond` action"},
            "400": {"description": "`not_json` or `missing_idempotency_key`"},
            "401": {"description": "`bad_signature`, `stale_timestamp` or `bad_token`"},
            "404": {"description": "`unknown_endpoint`"},
            "422": {"description": "`mapping_failed` or `command_failed`"},
            "503": {"description": "`disabled_endpoint` or `unavailable`; retry later"},
        },
        "security": [],
        "tags": ["webhooks"],
    });
    let mut with_token = receiver.clone();
    with_token["parameters"]
        .as_array_mut()
        .expect("parameters are a list")
        .push(json!({"name": "token", "in": "path", "required": true, "schema": {"type": "string"}, "description": "the endpoint's secret token, for `verification: token`"}));
    paths.insert("/hooks/{endpoint}".into(), json!({"post": receiver}));
    paths.insert(
        "/hooks/{endpoint}/{token}".into(),
        json!({"post": with_token}),
    );
    paths
}
