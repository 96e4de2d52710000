//! A loopback server that serves Odoo 17's JSON-RPC external API (`POST /jsonrpc`) from a
//! captured session: the records of every `MODEL__search_read__pageNN.json` file, the
//! `fields_get` results, and the captured error payloads as the shape of every error.
//!
//! It supports `common.version`, `common.authenticate` and `common.login`, `db.list`, and
//! `object.execute_kw` (or `execute`) with `search_read`, `search_count`, `search`, `read` and
//! `fields_get`. Domains are evaluated over the captured rows. A top-level term equal to a term
//! of the model's captured base domain matches every row, because the capture read exactly the
//! rows that domain matched. Every response is HTTP 200 with a JSON-RPC 2.0 body carrying the
//! request's `id`, as Odoo sends it, unless a test injected a [`Fault`].
//!
//! It also answers `/web/hook/<uuid>` as Odoo's "On webhook" automation trigger does, for the
//! rules the capture created (see [`WebhookTrigger`]).
//!
//! The server reads the capture from the folder it is given and keeps it in memory; it never
//! writes to it. Archived records were not captured, so `active_test: false` adds none.

mod dataset;
mod domain;
mod pyrepr;
mod rpc;
mod webhook;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::dataset::Dataset;
pub use crate::rpc::Reply;
pub use crate::webhook::WebhookTrigger;

/// Maximum number of requests [`Replay::requests`] keeps. The oldest are dropped first.
const MAX_LOGGED_REQUESTS: usize = 10_000;

/// A broken response injected for tests, sent instead of the real one.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// An HTTP response with this status and body, which need not be JSON.
    Http { status: u16, body: String },
    /// A JSON-RPC response whose `result` is this value.
    Result(Value),
    /// A JSON-RPC response whose `error` is this object.
    Error(Value),
}

/// The replay server's state: the captured data, injected faults and the request log.
/// Clones share the same state.
#[derive(Clone)]
pub struct Replay {
    data: Arc<RwLock<Dataset>>,
    /// Faults by target: a model name for `object` calls, or `common.<method>`.
    faults: Arc<Mutex<HashMap<String, Fault>>>,
    requests: Arc<Mutex<Vec<Value>>>,
    /// The captured "On webhook" automation rules served at `/web/hook/<uuid>`.
    hooks: Arc<Vec<WebhookTrigger>>,
}

/// Serves the capture in `data_dir` on `listener` until the listener fails.
pub async fn serve(data_dir: &Path, listener: TcpListener) -> anyhow::Result<()> {
    Replay::load(data_dir)?.serve(listener).await
}

impl Replay {
    /// Reads the capture in `data_dir`; fails naming the first missing or invalid file.
    pub fn load(data_dir: &Path) -> anyhow::Result<Replay> {
        let data = Dataset::load(data_dir)?;
        let hooks = webhook::load_triggers(data_dir)?;
        tracing::info!(
            folder = %data_dir.display(),
            models = data.models.len(),
            records = data.models.values().map(|m| m.rows.len()).sum::<usize>(),
            "loaded the Odoo capture"
        );
        Ok(Replay {
            data: Arc::new(RwLock::new(data)),
            faults: Arc::new(Mutex::new(HashMap::new())),
            requests: Arc::new(Mutex::new(Vec::new())),
            hooks: Arc::new(hooks),
        })
    }

    /// Returns the axum router: `POST /jsonrpc`, and `/web/hook/<uuid>` for the captured
    /// "On webhook" automation rules.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/jsonrpc", post(handle))
            .route("/web/hook/{uuid}", post(webhook::post).get(webhook::get))
            .with_state(self.clone())
    }

    /// Serves requests on `listener` until it fails.
    pub async fn serve(self, listener: TcpListener) -> anyhow::Result<()> {
        match listener.local_addr() {
            Ok(address) => tracing::info!(%address, "Odoo replay server listening"),
            Err(error) => {
                tracing::warn!(%error, "Odoo replay server listening on an unknown address")
            }
        }
        axum::serve(listener, self.router())
            .await
            .context("the Odoo replay server stopped")
    }

    /// Returns the captured "On webhook" automation rules.
    pub fn webhook_triggers(&self) -> &[WebhookTrigger] {
        &self.hooks
    }

    /// Returns the database, login and password the capture accepts, and the user id they give.
    pub fn credentials(&self) -> (String, String, String, i64) {
        let data = self.read_data();
        let login = &data.login;
        (
            login.db.clone(),
            login.login.clone(),
            login.password.clone(),
            login.uid,
        )
    }

    /// Returns the reply to one JSON-RPC request body, as the server sends it, without HTTP.
    pub fn respond(&self, request: &Value) -> Reply {
        let params = request.get("params").cloned().unwrap_or(Value::Null);
        let data = self.read_data();
        if let Some(fault) = self.fault_for(&data, &params) {
            return match fault {
                Fault::Http { status, body } => Reply::Http { status, body },
                Fault::Result(value) => Reply::Result(value),
                Fault::Error(value) => Reply::Error(value),
            };
        }
        data.dispatch(&params)
    }

    /// Test hook: merges `changes` into the captured row `id` of `model`, for example a new
    /// `write_date`, so the next read returns the changed row.
    pub fn update_record(
        &self,
        model: &str,
        id: i64,
        changes: Map<String, Value>,
    ) -> anyhow::Result<()> {
        let mut data = self.data.write().unwrap_or_else(|p| p.into_inner());
        let rows = &mut data
            .models
            .get_mut(model)
            .with_context(|| format!("the capture has no model `{model}`"))?
            .rows;
        let row = rows
            .get_mut(&id)
            .with_context(|| format!("the capture has no {model} record with id {id}"))?;
        for (field, value) in changes {
            if field == "id" {
                anyhow::bail!("the id of {model} {id} cannot be changed");
            }
            if !row.contains_key(&field) {
                anyhow::bail!("{model} has no captured field `{field}`");
            }
            row.insert(field, value);
        }
        Ok(())
    }

    /// Test hook: replies to every later call on `target` with `fault`. The target is a model
    /// name for `object` calls (checked after the login, as Odoo checks it first) or
    /// `common.<method>`.
    pub fn inject_fault(&self, target: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(target.to_string(), fault);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Returns the bodies of the requests received so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets the logged requests.
    pub fn clear_requests(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn read_data(&self) -> std::sync::RwLockReadGuard<'_, Dataset> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    fn fault_for(&self, data: &Dataset, params: &Value) -> Option<Fault> {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if faults.is_empty() {
            return None;
        }
        let service = params.get("service").and_then(Value::as_str)?;
        let method = params.get("method").and_then(Value::as_str)?;
        if service == "object" {
            let args = params.get("args").and_then(Value::as_array)?;
            data.check_login(args).ok()?;
            let model = args.get(3).and_then(Value::as_str)?;
            faults.get(model).cloned()
        } else {
            faults.get(&format!("{service}.{method}")).cloned()
        }
    }

    fn log_request(&self, request: &Value) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if requests.len() >= MAX_LOGGED_REQUESTS {
            requests.remove(0);
        }
        requests.push(request.clone());
    }
}

/// Odoo's reply to a body that is not JSON: a JSON-RPC error without an id.
fn bad_request(data: &Dataset) -> Value {
    rpc::error_named(
        &data.errors.unknown_model,
        "werkzeug.exceptions.BadRequest",
        "400 Bad Request: The browser (or proxy) sent a request that this server could not \
         understand."
            .into(),
    )
}

fn json_response(id: Value, key: &str, value: Value) -> Response {
    let mut body = Map::new();
    body.insert("jsonrpc".into(), json!("2.0"));
    body.insert("id".into(), id);
    body.insert(key.into(), value);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Value::Object(body).to_string(),
    )
        .into_response()
}

async fn handle(State(replay): State<Replay>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            tracing::debug!(bytes = body.len(), "request body is not a JSON object");
            let error = bad_request(&replay.read_data());
            return json_response(Value::Null, "error", error);
        }
    };
    replay.log_request(&request);
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let text = |pointer: &str| {
        request
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    tracing::debug!(
        service = text("/params/service"),
        method = text("/params/method"),
        model = text("/params/args/3"),
        "JSON-RPC request"
    );
    match replay.respond(&request) {
        Reply::Result(value) => json_response(id, "result", value),
        Reply::Error(error) => {
            tracing::debug!(
                error = error
                    .pointer("/data/name")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default(),
                message = error
                    .pointer("/data/message")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default(),
                "replying with an Odoo error"
            );
            json_response(id, "error", error)
        }
        Reply::Http { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                body,
            )
                .into_response()
        }
    }
}
