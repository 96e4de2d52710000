//! Events, rule runs, findings, dead letters, controls and tokens.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_domain::{Command, CommandContext, Event, Finding, Kind, RecordRef, Severity};
use steward_store::{
    EventQuery, FindingQuery, Job, JobQuery, JobState, Page, Run, RunQuery, RunStatus, StoreError,
    Token,
};

use crate::AppState;
use crate::auth::{Principal, new_secret, token_row};
use crate::error::{ApiError, json_body, parameter_error};
use crate::paging::{Paging, reject_unknown};
use crate::records::kind_of;

/// Reads `kind:id` or a kind and an id given as `record_kind` and `record_id`.
fn record_filter(params: &BTreeMap<String, String>) -> Result<Option<RecordRef>, ApiError> {
    match (params.get("record_kind"), params.get("record_id")) {
        (None, None) => Ok(None),
        (Some(kind), Some(id)) => {
            let kind = Kind::parse(kind)
                .ok_or_else(|| parameter_error("record_kind", kind, "is not a record kind"))?;
            Ok(Some(RecordRef::new(kind, id.clone())))
        }
        _ => Err(ApiError::invalid(
            "filter by a record with both `record_kind` and `record_id`",
        )),
    }
}

pub async fn events(
    State(state): State<AppState>,
    _principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Page<Event>>, ApiError> {
    reject_unknown(
        &params,
        &["name", "record_kind", "record_id", "correlation", "since"],
    )?;
    let paging = Paging::by_sequence(&params)?;
    let after_seq = paging.cursor.and_then(|c| c.parse::<i64>().ok());
    let since = params
        .get("since")
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    parameter_error(
                        "since",
                        s,
                        "must be an RFC 3339 instant such as 2026-12-01T00:00:00Z",
                    )
                })
        })
        .transpose()?;
    let query = EventQuery {
        after_seq,
        limit: paging.limit,
        record: record_filter(&params)?,
        name: params.get("name").cloned(),
        correlation: params.get("correlation").cloned(),
        since,
    };
    Ok(Json(
        steward_store::read_async(state.store.clone(), move |tx| tx.events(&query)).await?,
    ))
}

pub async fn event(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Event>, ApiError> {
    let lookup = id.clone();
    let event = steward_store::read_async(state.store.clone(), move |tx| tx.event(&lookup)).await?;
    event
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("event {id} not found")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitRequest {
    /// Dotted lower-case name such as `invoice.overdue`.
    pub name: String,
    pub record_kind: Option<String>,
    pub record_id: Option<String>,
    #[serde(default)]
    pub data: Value,
}

/// Appends a business event, which rules with an `event` trigger react to.
pub async fn emit(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Event>), ApiError> {
    principal.require_writer()?;
    if principal.role == "employee" {
        return Err(ApiError::forbidden(
            "the role `employee` may not emit business events",
        ));
    }
    let request: EmitRequest = json_body(
        payload,
        r#"{"name": "invoice.disputed", "record_kind": "invoice", "record_id": "<id>", "data": {}}"#,
    )?;
    if let Some(prefix) = crate::policy::RESERVED_EVENT_PREFIXES
        .iter()
        .find(|p| request.name.starts_with(**p))
    {
        return Err(parameter_error(
            "name",
            &request.name,
            format!("events starting with `{prefix}` come only from Steward itself"),
        ));
    }
    let record = match (request.record_kind, request.record_id) {
        (None, None) => None,
        (Some(kind), Some(id)) => {
            let kind = Kind::parse(&kind)
                .ok_or_else(|| parameter_error("record_kind", &kind, "is not a record kind"))?;
            Some(RecordRef::new(kind, id))
        }
        _ => {
            return Err(ApiError::invalid(
                "name a record with both `record_kind` and `record_id`",
            ));
        }
    };
    let mut context = CommandContext::new(principal.actor());
    context.correlation = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let outcome = state
        .engine
        .execute(
            Command::Emit {
                name: request.name,
                record,
                data: request.data,
            },
            context,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(outcome.event.ok_or_else(ApiError::internal)?),
    ))
}

pub async fn runs(
    State(state): State<AppState>,
    _principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Page<Run>>, ApiError> {
    reject_unknown(
        &params,
        &["rule", "event", "status", "record_kind", "record_id"],
    )?;
    let paging = Paging::from_params(&params)?;
    let status = params
        .get("status")
        .map(|s| {
            RunStatus::parse(s).ok_or_else(|| {
                parameter_error(
                    "status",
                    s,
                    "is not a run status such as succeeded, skipped, dead",
                )
            })
        })
        .transpose()?;
    let query = RunQuery {
        after: paging.cursor,
        limit: paging.limit,
        rule_id: params.get("rule").cloned(),
        event_id: params.get("event").cloned(),
        record: record_filter(&params)?,
        status,
    };
    Ok(Json(
        steward_store::read_async(state.store.clone(), move |tx| tx.runs(&query)).await?,
    ))
}

pub async fn run(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let lookup = id.clone();
    let run = steward_store::read_async(state.store.clone(), move |tx| tx.run(&lookup)).await?;
    run.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("run {id} not found")))
}

pub async fn findings(
    State(state): State<AppState>,
    _principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Page<Finding>>, ApiError> {
    reject_unknown(
        &params,
        &["state", "control", "severity", "record_kind", "record_id"],
    )?;
    let paging = Paging::from_params(&params)?;
    if let Some(state) = params
        .get("state")
        .filter(|s| *s != "open" && *s != "resolved")
    {
        return Err(parameter_error("state", state, "must be open or resolved"));
    }
    let severity = params
        .get("severity")
        .map(|s| {
            Severity::parse(s)
                .ok_or_else(|| parameter_error("severity", s, "must be info, warning or error"))
        })
        .transpose()?;
    let query = FindingQuery {
        after: paging.cursor,
        limit: paging.limit,
        state: params.get("state").cloned(),
        control: params.get("control").cloned(),
        severity,
        record: record_filter(&params)?,
    };
    Ok(Json(
        steward_store::read_async(state.store.clone(), move |tx| tx.findings(&query)).await?,
    ))
}

pub async fn finding(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Finding>, ApiError> {
    let lookup = id.clone();
    let finding =
        steward_store::read_async(state.store.clone(), move |tx| tx.finding(&lookup)).await?;
    finding
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("finding {id} not found")))
}

pub async fn run_controls(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<steward_engine::ControlsReport>, ApiError> {
    principal.require(&["admin", "operations", "finance"], "run the controls")?;
    Ok(Json(state.engine.run_controls().await?))
}

pub async fn dead_letters(
    State(state): State<AppState>,
    _principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Page<Job>>, ApiError> {
    reject_unknown(&params, &["kind"])?;
    let paging = Paging::from_params(&params)?;
    let query = JobQuery {
        after: paging.cursor,
        limit: paging.limit,
        state: Some(JobState::Dead),
        kind: params.get("kind").cloned(),
    };
    Ok(Json(
        steward_store::read_async(state.store.clone(), move |tx| tx.jobs(&query)).await?,
    ))
}

pub async fn dead_letter(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let lookup = id.clone();
    let job = steward_store::read_async(state.store.clone(), move |tx| tx.job(&lookup)).await?;
    match job {
        Some(job) if job.state == JobState::Dead => Ok(Json(job)),
        Some(job) => Err(ApiError::not_found(format!(
            "job {id} is {}, not in the dead-letter queue",
            job.state.as_str()
        ))),
        None => Err(ApiError::not_found(format!("dead letter {id} not found"))),
    }
}

#[derive(Serialize)]
pub struct Replayed {
    pub job: String,
    pub state: &'static str,
}

pub async fn replay(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    principal.require(&["admin", "operations"], "replay dead letters")?;
    let lookup = id.clone();
    let job = steward_store::read_async(state.store.clone(), move |tx| tx.job(&lookup)).await?;
    if job.is_none() {
        return Err(ApiError::not_found(format!("dead letter {id} not found")));
    }
    if state.engine.replay(&id).await? {
        Ok((
            StatusCode::ACCEPTED,
            Json(Replayed {
                job: id,
                state: "pending",
            }),
        ))
    } else {
        Err(ApiError::conflict(format!(
            "job {id} is not in the dead-letter queue; only dead jobs can be replayed"
        )))
    }
}

pub async fn queue(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<steward_store::QueueStats>, ApiError> {
    let now = state.engine.clock().now();
    Ok(Json(
        steward_store::read_async(state.store.clone(), move |tx| tx.queue_stats(now)).await?,
    ))
}

pub async fn tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Page<Token>>, ApiError> {
    principal.require(&["admin"], "list tokens")?;
    let tokens = steward_store::read_async(state.store.clone(), |tx| tx.tokens()).await?;
    Ok(Json(Page {
        items: tokens,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    pub role: String,
    /// The employee the token acts for.
    pub employee: Option<String>,
}

#[derive(Serialize)]
pub struct TokenCreated {
    #[serde(flatten)]
    pub token: Token,
    /// The secret, shown only in this response.
    pub secret: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    principal.require(&["admin"], "create tokens")?;
    let request: TokenRequest = json_body(payload, r#"{"name": "n8n", "role": "integration"}"#)?;
    if let Some(employee) = &request.employee {
        let id = employee.clone();
        let found = steward_store::read_async(state.store.clone(), move |tx| {
            tx.record(Kind::Employee, &id)
        })
        .await?;
        if found.is_none() {
            return Err(parameter_error(
                "employee",
                employee,
                "no employee has this id",
            ));
        }
    }
    let secret = new_secret();
    let row = token_row(
        &request.name,
        &request.role,
        request.employee,
        &secret,
        state.engine.clock().now(),
    )
    .map_err(|message| ApiError::validation(message, Vec::new()))?;
    let stored = row.clone();
    steward_store::write::<_, StoreError, _>(state.store.as_ref(), move |tx| {
        tx.insert_token(&stored)
    })
    .await?;
    tracing::info!(token = %row.name, role = %row.role, by = %principal.name, "token created");
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated { token: row, secret }),
    ))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(&["admin"], "revoke tokens")?;
    if id == principal.token_id {
        return Err(ApiError::conflict(
            "a token cannot revoke itself; use another admin token",
        ));
    }
    let now = state.engine.clock().now();
    let lookup = id.clone();
    let revoked = steward_store::write::<_, StoreError, _>(state.store.as_ref(), move |tx| {
        tx.revoke_token(&lookup, now)
    })
    .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no active token has id {id}")))
    }
}

/// The schema of one record kind, for clients that build forms.
pub async fn schema(
    _principal: Principal,
    Path(collection): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let kind = kind_of(&collection)?;
    Ok(Json(crate::openapi::kind_description(kind)))
}
