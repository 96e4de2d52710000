//! Odoo 17's "On webhook" automation trigger, `POST /web/hook/<uuid>` (and `GET` with query
//! parameters), with the responses of the captured server:
//!
//! - a known uuid and a payload whose `_model` and `_id` name a captured record: the rule's
//!   `object_write` action runs on the record and the response is `200 {"status": "ok"}`;
//! - an unknown uuid: `404 {"status": "error"}`;
//! - a payload without `_model` and `_id`, or naming no captured record: `500 {"status":
//!   "error"}`.
//!
//! Every response has `Content-Type: application/json; charset=utf-8`. The rules come from the
//! capture's `base.automation__read__*.json` files with `trigger: on_webhook`, each with the
//! action of its `base.automation__create__*.request.json` file.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::Replay;

/// One captured automation rule with the `on_webhook` trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookTrigger {
    pub uuid: String,
    /// The model the rule is on, such as `project.task`.
    pub model: String,
    /// The field and value of the rule's `object_write` action, when it has one.
    pub write: Option<(String, Value)>,
}

/// Reads the webhook triggers of the capture in `dir`; a capture without any has none.
pub(crate) fn load_triggers(dir: &Path) -> anyhow::Result<Vec<WebhookTrigger>> {
    let mut triggers = Vec::new();
    let entries =
        fs::read_dir(dir).with_context(|| format!("cannot list the folder {}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let Some(stem) = name
            .strip_prefix("base.automation__read__")
            .and_then(|rest| rest.strip_suffix(".json"))
        else {
            continue;
        };
        if stem.ends_with(".request") {
            continue;
        }
        let read = read_json(&dir.join(&name))?;
        let Some(rules) = read.get("result").and_then(Value::as_array) else {
            continue;
        };
        for rule in rules {
            if rule.get("trigger").and_then(Value::as_str) != Some("on_webhook") {
                continue;
            }
            let uuid = rule.get("webhook_uuid").and_then(Value::as_str);
            let model = rule.get("model_name").and_then(Value::as_str);
            let (Some(uuid), Some(model)) = (uuid, model) else {
                anyhow::bail!("{name} has an on_webhook rule without webhook_uuid or model_name");
            };
            let create = dir.join(format!("base.automation__create__{stem}.request.json"));
            let write = if create.is_file() {
                object_write(&read_json(&create)?)
            } else {
                None
            };
            triggers.push(WebhookTrigger {
                uuid: uuid.to_string(),
                model: model.to_string(),
                write,
            });
        }
    }
    Ok(triggers)
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read {}; check the capture folder", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Returns the `update_path` and `value` of the first `object_write` action created with the
/// rule.
fn object_write(request: &Value) -> Option<(String, Value)> {
    let values = request.pointer("/params/args/5/0")?;
    let actions = values.get("action_server_ids")?.as_array()?;
    actions.iter().find_map(|command| {
        let action = command.get(2)?;
        if action.get("state")?.as_str()? != "object_write" {
            return None;
        }
        let field = action.get("update_path")?.as_str()?;
        Some((field.to_string(), action.get("value")?.clone()))
    })
}

fn respond(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Odoo's response bodies, byte for byte.
const OK: &str = r#"{"status": "ok"}"#;
const ERROR: &str = r#"{"status": "error"}"#;

pub(crate) async fn post(
    State(replay): State<Replay>,
    UrlPath(uuid): UrlPath<String>,
    body: Bytes,
) -> Response {
    let payload = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    run(&replay, &uuid, &payload)
}

pub(crate) async fn get(
    State(replay): State<Replay>,
    UrlPath(uuid): UrlPath<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let payload: Map<String, Value> = params
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    run(&replay, &uuid, &Value::Object(payload))
}

fn run(replay: &Replay, uuid: &str, payload: &Value) -> Response {
    let Some(trigger) = replay.hooks.iter().find(|t| t.uuid == uuid) else {
        tracing::debug!(uuid, "webhook for an unknown uuid");
        return respond(StatusCode::NOT_FOUND, ERROR);
    };
    // Odoo's default record getter:
    // `model.env[payload.get('_model')].browse(int(payload.get('_id')))`.
    let model = payload.get("_model").and_then(Value::as_str);
    let id = match payload.get("_id") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let (Some(model), Some(id)) = (model, id) else {
        tracing::debug!(uuid, "webhook payload without _model and _id");
        return respond(StatusCode::INTERNAL_SERVER_ERROR, ERROR);
    };
    if model != trigger.model {
        tracing::debug!(
            uuid,
            model,
            "webhook payload for another model than the rule's"
        );
        return respond(StatusCode::INTERNAL_SERVER_ERROR, ERROR);
    }
    let exists = replay
        .read_data()
        .models
        .get(model)
        .is_some_and(|m| m.rows.contains_key(&id));
    if !exists {
        tracing::debug!(uuid, model, id, "webhook for a record that does not exist");
        return respond(StatusCode::INTERNAL_SERVER_ERROR, ERROR);
    }
    if let Some((field, value)) = &trigger.write {
        let mut changes = Map::new();
        changes.insert(field.clone(), value.clone());
        let written = odoo_now();
        let has_write_date = replay
            .read_data()
            .models
            .get(model)
            .and_then(|m| m.rows.get(&id))
            .is_some_and(|row| row.contains_key("write_date"));
        if has_write_date {
            changes.insert("write_date".into(), Value::String(written));
        }
        if let Err(error) = replay.update_record(model, id, changes) {
            tracing::warn!(uuid, model, id, %error, "the webhook action failed");
            return respond(StatusCode::INTERNAL_SERVER_ERROR, ERROR);
        }
    }
    respond(StatusCode::OK, OK)
}

/// Formats the current UTC time as Odoo writes `write_date`: `YYYY-MM-DD HH:MM:SS`.
fn odoo_now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}
