//! `/api/v1/<collection>`: every record kind, listed, created, read, changed and moved
//! through its states.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value};
use steward_domain::schema::FieldType;
use steward_domain::{Command, CommandContext, Kind, Record, RecordRef};
use steward_engine::Outcome;
use steward_store::{EventQuery, Page, RecordQuery, RunQuery};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, json_body, parameter_error};
use crate::paging::Paging;

pub fn kind_of(collection: &str) -> Result<Kind, ApiError> {
    Kind::from_plural(collection).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.plural()).collect();
        ApiError::not_found(format!(
            "`{collection}` is not a collection; collections are {}",
            known.join(", ")
        ))
    })
}

fn body(body: Result<Json<Value>, JsonRejection>) -> Result<Map<String, Value>, ApiError> {
    let Json(value) = body?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::invalid(format!(
            "the body must be a JSON object of fields, not {}",
            steward_domain::value::type_name(&other)
        ))),
    }
}

/// Splits a body into fields and the reserved parts.
struct Parts {
    fields: Map<String, Value>,
    id: Option<String>,
    state: Option<String>,
    version: Option<i64>,
    attributes: Map<String, Value>,
}

fn split(mut map: Map<String, Value>) -> Result<Parts, ApiError> {
    let text = |value: Value, name: &str| match value {
        Value::String(s) => Ok(s),
        other => Err(parameter_error(name, &other.to_string(), "must be text")),
    };
    let id = map.remove("id").map(|v| text(v, "id")).transpose()?;
    let state = map.remove("state").map(|v| text(v, "state")).transpose()?;
    let version = match map.remove("version") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
        Some(other) => {
            return Err(parameter_error(
                "version",
                &other.to_string(),
                "must be a whole number",
            ));
        }
    };
    let attributes = match map.remove("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a,
        Some(other) => {
            return Err(parameter_error(
                "attributes",
                &other.to_string(),
                "must be an object",
            ));
        }
    };
    for key in ["kind", "created_at", "updated_at"] {
        map.remove(key);
    }
    Ok(Parts {
        fields: map,
        id,
        state,
        version,
        attributes,
    })
}

fn context(principal: &Principal, headers: &HeaderMap) -> CommandContext {
    let mut context = CommandContext::new(principal.actor());
    context.correlation = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map(str::to_string);
    context
}

fn outcome_headers(outcome: &Outcome) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(event) = &outcome.event
        && let Ok(value) = HeaderValue::from_str(&event.id)
    {
        headers.insert("x-steward-event", value);
    }
    headers
}

pub async fn list(
    State(state): State<AppState>,
    _principal: Principal,
    Path(collection): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Page<Record>>, ApiError> {
    let kind = kind_of(&collection)?;
    let paging = Paging::from_params(&params)?;
    let mut query = RecordQuery {
        kind: Some(kind),
        after: paging.cursor,
        limit: paging.limit,
        ..Default::default()
    };
    for (name, value) in &params {
        match name.as_str() {
            "cursor" | "limit" => {}
            "state" => {
                if !kind.schema().has_state(value) {
                    return Err(parameter_error(
                        "state",
                        value,
                        format!(
                            "is not a state of {kind}; states are {}",
                            kind.schema().states.join(", ")
                        ),
                    ));
                }
                query.state = Some(value.clone());
            }
            field => query
                .fields
                .push((field.to_string(), filter_value(kind, field, value)?)),
        }
    }
    let page = steward_store::read_async(state.store.clone(), move |tx| tx.records(&query)).await?;
    Ok(Json(page))
}

/// Converts a query-string filter to the stored JSON form of its field.
fn filter_value(kind: Kind, field: &str, value: &str) -> Result<Value, ApiError> {
    let Some(def) = kind.schema().field(field) else {
        return Err(parameter_error(
            field,
            value,
            format!(
                "is not a field of {kind}; filter by state or by one of {}",
                kind.schema().field_names().join(", ")
            ),
        ));
    };
    if value == "null" {
        return Ok(Value::Null);
    }
    let raw = match def.ty {
        FieldType::Bool => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(parameter_error(field, value, "must be true, false or null")),
        },
        FieldType::Integer => match value.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => return Err(parameter_error(field, value, "must be a whole number")),
        },
        // Amounts are stored at their currency's scale, which the filter cannot know.
        FieldType::Money { .. } => return Ok(Value::String(value.to_string())),
        FieldType::Json | FieldType::RefList(_) | FieldType::TextList => {
            return Err(parameter_error(
                field,
                value,
                "lists and structured fields cannot be filtered",
            ));
        }
        _ => Value::String(value.to_string()),
    };
    steward_domain::value::normalize(def, &raw, None)
        .map_err(|message| parameter_error(field, value, message))
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(collection): Path<String>,
    headers: HeaderMap,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, HeaderMap, Json<Record>), ApiError> {
    principal.require_writer()?;
    let kind = kind_of(&collection)?;
    let mut parts = split(body(payload)?)?;
    if parts.version.is_some() {
        return Err(parameter_error(
            "version",
            "",
            "is set by the server; leave it out on create",
        ));
    }
    crate::policy::check_write(
        &principal,
        kind,
        None,
        &parts.fields,
        parts.state.as_deref(),
    )?;
    crate::policy::stamp(&principal, kind, parts.state.as_deref(), &mut parts.fields);
    let command = Command::Create {
        kind,
        id: parts.id,
        state: parts.state,
        fields: parts.fields,
        attributes: parts.attributes,
    };
    let outcome = state
        .engine
        .execute(command, context(&principal, &headers))
        .await?;
    let mut response_headers = outcome_headers(&outcome);
    let record = outcome.record.ok_or_else(ApiError::internal)?;
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/{}/{}", kind.plural(), record.id))
    {
        response_headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, response_headers, Json(record)))
}

pub async fn get(
    State(state): State<AppState>,
    _principal: Principal,
    Path((collection, id)): Path<(String, String)>,
) -> Result<(HeaderMap, Json<Record>), ApiError> {
    let kind = kind_of(&collection)?;
    let record = load(&state, kind, &id).await?;
    Ok((etag(&record), Json(record)))
}

/// The version of a record as an entity tag, which `If-Match` can send back.
fn etag(record: &Record) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", record.version)) {
        headers.insert(header::ETAG, value);
    }
    headers
}

/// The version an `If-Match` header names, when present.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("W/");
    text.trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            parameter_error(
                "If-Match",
                text,
                "must be the ETag this API returned, such as \"3\"",
            )
        })
}

async fn load(state: &AppState, kind: Kind, id: &str) -> Result<Record, ApiError> {
    let lookup = id.to_string();
    let record =
        steward_store::read_async(state.store.clone(), move |tx| tx.record(kind, &lookup)).await?;
    record.ok_or_else(|| ApiError::not_found(format!("{kind} {id} not found")))
}

/// Applies a change from PATCH or a transition after checking who may make it.
async fn change(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    kind: Kind,
    id: String,
    mut parts: Parts,
) -> Result<(HeaderMap, Json<Record>), ApiError> {
    principal.require_writer()?;
    let current = load(state, kind, &id).await?;
    crate::policy::check_write(
        principal,
        kind,
        Some(&current),
        &parts.fields,
        parts.state.as_deref(),
    )?;
    if parts.state.as_deref() != Some(current.state.as_str()) {
        crate::policy::stamp(principal, kind, parts.state.as_deref(), &mut parts.fields);
    }
    let expected_version = match (parts.version, if_match(headers)?) {
        (Some(body), Some(header)) if body != header => {
            return Err(parameter_error(
                "version",
                &body.to_string(),
                "differs from the If-Match header",
            ));
        }
        (body, header) => body.or(header),
    };
    let command = Command::Update {
        kind,
        id,
        expected_version,
        state: parts.state,
        fields: parts.fields,
        attributes: parts.attributes,
    };
    let outcome = state
        .engine
        .execute(command, context(principal, headers))
        .await?;
    let mut response_headers = outcome_headers(&outcome);
    let record = outcome.record.ok_or_else(ApiError::internal)?;
    response_headers.extend(etag(&record));
    Ok((response_headers, Json(record)))
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path((collection, id)): Path<(String, String)>,
    headers: HeaderMap,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<(HeaderMap, Json<Record>), ApiError> {
    let kind = kind_of(&collection)?;
    let parts = split(body(payload)?)?;
    if parts.id.as_deref().is_some_and(|given| given != id) {
        return Err(parameter_error(
            "id",
            parts.id.as_deref().unwrap_or_default(),
            "differs from the id in the path",
        ));
    }
    change(&state, &principal, &headers, kind, id, parts).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// The state to move to.
    pub state: String,
    /// The version the caller last read; the move fails if the record changed since.
    pub version: Option<i64>,
}

pub async fn transition(
    State(state): State<AppState>,
    principal: Principal,
    Path((collection, id)): Path<(String, String)>,
    headers: HeaderMap,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<(HeaderMap, Json<Record>), ApiError> {
    let kind = kind_of(&collection)?;
    let request: TransitionRequest = json_body(payload, r#"{"state": "submitted"}"#)?;
    let parts = Parts {
        fields: Map::new(),
        id: None,
        state: Some(request.state),
        version: request.version,
        attributes: Map::new(),
    };
    change(&state, &principal, &headers, kind, id, parts).await
}

pub async fn history(
    State(state): State<AppState>,
    _principal: Principal,
    Path((collection, id)): Path<(String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Page<steward_domain::Event>>, ApiError> {
    let kind = kind_of(&collection)?;
    let paging = Paging::by_sequence(&params)?;
    let after_seq = paging.cursor.and_then(|c| c.parse::<i64>().ok());
    let query = EventQuery {
        after_seq,
        limit: paging.limit,
        record: Some(RecordRef::new(kind, id)),
        ..Default::default()
    };
    Ok(Json(
        steward_store::read_async(state.store.clone(), move |tx| tx.events(&query)).await?,
    ))
}

pub async fn runs(
    State(state): State<AppState>,
    _principal: Principal,
    Path((collection, id)): Path<(String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Page<steward_store::Run>>, ApiError> {
    let kind = kind_of(&collection)?;
    let paging = Paging::from_params(&params)?;
    let query = RunQuery {
        after: paging.cursor,
        limit: paging.limit,
        record: Some(RecordRef::new(kind, id)),
        ..Default::default()
    };
    Ok(Json(
        steward_store::read_async(state.store.clone(), move |tx| tx.runs(&query)).await?,
    ))
}
