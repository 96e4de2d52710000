//! The HTTP API: axum routers over the engine and the store, bearer-token authentication,
//! JSON errors with stable codes, and the OpenAPI document.
//!
//! Handlers parse the request, call the engine or read the store, and map the result to a
//! status; they hold no state of their own, so any number of servers can share a database.

mod approvals;
pub mod auth;
mod billing;
pub mod error;
pub mod openapi;
mod paging;
mod policy;
mod records;
mod resources;
mod rules;
mod staffing;
mod webhooks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use steward_engine::Engine;
use steward_store::Store;

pub use error::ApiError;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub store: Arc<dyn Store>,
    /// Renders the Prometheus metrics, when a recorder is installed.
    pub metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    /// The webhook service; without it the webhook routes answer 503.
    pub webhooks: Option<Arc<steward_webhooks::Webhooks>>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>) -> AppState {
        AppState {
            store: Arc::clone(engine.store()),
            engine,
            metrics: None,
            webhooks: None,
        }
    }
}

/// Builds the whole application. Tests drive it without a socket.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi_document))
        .route("/events", get(resources::events).post(resources::emit))
        .route("/events/{id}", get(resources::event))
        .route("/rules", get(rules::list).post(rules::install))
        .route("/rules/check", post(rules::check))
        .route("/rules/simulate", post(rules::simulate))
        .route("/rules/{id}", get(rules::history).delete(rules::retire))
        .route("/runs", get(resources::runs))
        .route("/runs/{id}", get(resources::run))
        .route("/findings", get(resources::findings))
        .route("/findings/{id}", get(resources::finding))
        .route("/controls/run", post(resources::run_controls))
        .route("/dead-letters", get(resources::dead_letters))
        .route("/dead-letters/{id}", get(resources::dead_letter))
        .route("/dead-letters/{id}/replay", post(resources::replay))
        .route("/queue", get(resources::queue))
        .route(
            "/tokens",
            get(resources::tokens).post(resources::create_token),
        )
        .route(
            "/tokens/{id}",
            axum::routing::delete(resources::revoke_token),
        )
        .route("/approvals", get(approvals::list).post(approvals::open))
        .route("/approvals/metrics", get(approvals::metrics))
        .route("/approvals/policies", get(approvals::policies))
        .route("/approvals/{id}", get(approvals::get))
        .route("/approvals/{id}/cancel", post(approvals::cancel))
        .route(
            "/approvals/{id}/{decision}",
            get(approvals::decision).post(approvals::decision),
        )
        .route("/schemas/{collection}", get(resources::schema))
        .route("/{collection}", get(records::list).post(records::create))
        .route(
            "/{collection}/{id}",
            get(records::get).patch(records::update),
        )
        .route("/{collection}/{id}/transition", post(records::transition))
        .route("/{collection}/{id}/events", get(records::history))
        .route("/{collection}/{id}/runs", get(records::runs))
        .merge(webhooks::api_routes())
        .merge(billing::routes())
        .merge(staffing::routes())
        .fallback(not_found);

    Router::new()
        .merge(webhooks::receiver_routes())
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(middleware::from_fn(method_not_allowed))
        .layer(middleware::from_fn(log_request))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

impl FromRef<AppState> for Arc<Engine> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.engine)
    }
}

/// Answers a method a route does not have with a JSON error naming the path.
async fn method_not_allowed(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = response
            .headers()
            .get(axum::http::header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // A route nested under `/api/v1` may answer without an `Allow` header; the message
        // then points to the API description instead of naming no method.
        let message = if allowed.is_empty() {
            format!(
                "{path} does not take {method}; /api/v1/openapi.json lists the methods it takes"
            )
        } else {
            format!("{path} does not take {method}; it takes {allowed}")
        };
        let error = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        );
        let mut replaced = error.into_response();
        if !allowed.is_empty()
            && let Ok(value) = axum::http::HeaderValue::from_str(&allowed)
        {
            replaced
                .headers_mut()
                .insert(axum::http::header::ALLOW, value);
        }
        return replaced;
    }
    response
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no endpoint {} {}; see /api/v1/openapi.json",
        request.method(),
        request.uri().path()
    ))
}

async fn openapi_document() -> Json<serde_json::Value> {
    Json(openapi::document())
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers a read.
async fn ready(State(state): State<AppState>) -> Response {
    let now = state.engine.clock().now();
    match steward_store::read_async(state.store.clone(), move |tx| tx.queue_stats(now)).await {
        Ok(queue) => {
            Json(json!({"status": "ready", "store": state.store.backend(), "queue": queue}))
                .into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": error.to_string()})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let Some(render) = &state.metrics else {
        return ApiError::not_found("metrics are not enabled on this server").into_response();
    };
    let mut text = render();
    match stored_metrics(&state).await {
        Ok(stored) => text.push_str(&stored),
        Err(error) => tracing::warn!(%error, "could not read the stored counts for /metrics"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

/// Renders gauges counted from the database, so they hold across restarts and cover every
/// process writing to it: stored events, rule runs by rule and status, jobs by state and open
/// approval requests.
async fn stored_metrics(state: &AppState) -> Result<String, steward_store::StoreError> {
    use std::fmt::Write;
    let now = state.engine.clock().now();
    let (events, runs, queue, approvals) =
        steward_store::read_async(state.store.clone(), move |tx| {
            Ok((
                tx.count_events()?,
                tx.run_counts()?,
                tx.queue_stats(now)?,
                tx.count_records(steward_domain::Kind::ApprovalRequest, Some("pending"))?,
            ))
        })
        .await?;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP steward_events_stored Events in the log.");
    let _ = writeln!(out, "# TYPE steward_events_stored gauge");
    let _ = writeln!(out, "steward_events_stored {events}");
    let _ = writeln!(
        out,
        "# HELP steward_rule_runs_stored Stored rule runs by rule and status."
    );
    let _ = writeln!(out, "# TYPE steward_rule_runs_stored gauge");
    for (rule, status, count) in runs {
        let _ = writeln!(
            out,
            "steward_rule_runs_stored{{rule=\"{}\",status=\"{}\"}} {count}",
            label(&rule),
            label(&status)
        );
    }
    let _ = writeln!(
        out,
        "# HELP steward_jobs Jobs by state; succeeded jobs are not counted."
    );
    let _ = writeln!(out, "# TYPE steward_jobs gauge");
    for (name, count) in [
        ("pending", queue.pending),
        ("running", queue.running),
        ("waiting", queue.waiting),
        ("dead", queue.dead),
    ] {
        let _ = writeln!(out, "steward_jobs{{state=\"{name}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "# HELP steward_job_oldest_due_seconds Age of the oldest due pending job."
    );
    let _ = writeln!(out, "# TYPE steward_job_oldest_due_seconds gauge");
    let _ = writeln!(
        out,
        "steward_job_oldest_due_seconds {}",
        queue.oldest_due_seconds.unwrap_or(0.0)
    );
    let _ = writeln!(
        out,
        "# HELP steward_approvals_open Approval requests waiting for a decision."
    );
    let _ = writeln!(out, "# TYPE steward_approvals_open gauge");
    let _ = writeln!(out, "steward_approvals_open {approvals}");
    Ok(out)
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Logs every request once, with its status and duration; server errors are logged with
/// their message here and nowhere else.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        let message = response
            .extensions()
            .get::<ApiError>()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        tracing::error!(%method, %path, status = status.as_u16(), elapsed_ms, %message, "request failed");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), elapsed_ms, "request");
    }
    response
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
