//! `/api/v1/approvals`: requests with their steps, decisions, metrics and the policies in
//! force.
//!
//! A decision is a POST by an authenticated user linked to an employee. GET and HEAD on a
//! decision link only show what would be decided, because mail scanners and link previews
//! follow links.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use steward_approvals::Verdict;
use steward_domain::{CommandContext, Kind, RecordRef};
use steward_engine::approvals::{DecisionRequest, OpenRequest, RequestFilter, RequestView};
use steward_store::Page;

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, json_body, parameter_error};
use crate::paging::{Paging, reject_unknown};

/// Roles that read every request; others see their own and those they decide.
const READ_ALL: &[&str] = &[
    "admin",
    "operations",
    "finance",
    "delivery_manager",
    "auditor",
];

fn links(id: &str) -> Value {
    json!({
        "self": format!("/api/v1/approvals/{id}"),
        "approve": format!("/api/v1/approvals/{id}/approve"),
        "reject": format!("/api/v1/approvals/{id}/reject"),
    })
}

fn view_json(view: &RequestView) -> Value {
    let mut value = serde_json::to_value(view).unwrap_or(Value::Null);
    value["links"] = links(&view.request.id);
    value
}

fn involves(view: &RequestView, employee: &str) -> bool {
    view.request.ref_id("requester") == Some(employee)
        || view.steps.iter().any(|s| {
            s.ref_id("approver") == Some(employee)
                || s.ref_id("delegated_from") == Some(employee)
                || s.get("candidates")
                    .and_then(Value::as_array)
                    .is_some_and(|c| c.iter().any(|v| v.as_str() == Some(employee)))
                || s.get("decisions")
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.iter().any(|v| v["by"].as_str() == Some(employee)))
        })
}

fn check_read(principal: &Principal, view: &RequestView) -> Result<(), ApiError> {
    if READ_ALL.contains(&principal.role.as_str()) {
        return Ok(());
    }
    match principal.employee.as_deref() {
        Some(me) if involves(view, me) => Ok(()),
        _ => Err(ApiError::forbidden(
            "this token may read only requests it made or decides",
        )),
    }
}

/// Lists requests, oldest first. Filters: `state`, `kind`, `policy`, `approver` (an employee
/// id, or `me`), `requester`.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    reject_unknown(
        &params,
        &["state", "kind", "policy", "approver", "requester"],
    )?;
    let paging = Paging::from_params(&params)?;
    if let Some(state_filter) = params.get("state")
        && !Kind::ApprovalRequest
            .schema()
            .states
            .contains(&state_filter.as_str())
    {
        return Err(parameter_error(
            "state",
            state_filter,
            format!(
                "is not a state of approval requests; use one of {}",
                Kind::ApprovalRequest.schema().states.join(", ")
            ),
        ));
    }
    if let Some(kind) = params.get("kind")
        && !steward_domain::kinds::APPROVAL_KINDS.contains(&kind.as_str())
    {
        return Err(parameter_error(
            "kind",
            kind,
            format!(
                "is not a request kind; use one of {}",
                steward_domain::kinds::APPROVAL_KINDS.join(", ")
            ),
        ));
    }
    let me = |value: &String| -> Result<String, ApiError> {
        if value == "me" {
            principal.employee.clone().ok_or_else(|| {
                parameter_error(
                    "approver",
                    value,
                    "means the token's employee, and this token is linked to none",
                )
            })
        } else {
            Ok(value.clone())
        }
    };
    let mut filter = RequestFilter {
        state: params.get("state").cloned(),
        kind: params.get("kind").cloned(),
        policy: params.get("policy").cloned(),
        approver: params.get("approver").map(me).transpose()?,
        requester: params.get("requester").map(me).transpose()?,
        after: paging.cursor,
        limit: paging.limit,
    };
    if !READ_ALL.contains(&principal.role.as_str()) {
        let Some(employee) = principal.employee.clone() else {
            return Err(ApiError::forbidden(
                "this token is linked to no employee, so it has no requests to list",
            ));
        };
        if filter.approver.as_ref() != Some(&employee) {
            filter.requester = Some(employee);
        }
    }
    let (items, next_cursor) = state.engine.approvals_list(filter).await?;
    Ok(Json(json!({
        "items": items.iter().map(view_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = find(&state, &id).await?;
    check_read(&principal, &view)?;
    Ok(Json(view_json(&view)))
}

async fn find(state: &AppState, id: &str) -> Result<RequestView, ApiError> {
    state
        .engine
        .approval(id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("approval request {id} not found")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenBody {
    pub kind: String,
    #[serde(default)]
    pub subject: Option<SubjectBody>,
    /// Only administrators and integrations name a requester; others ask for themselves.
    #[serde(default)]
    pub requester: Option<String>,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub facts: Map<String, Value>,
    #[serde(default)]
    pub summary: Option<String>,
    /// The billing month (`YYYY-MM`) of a `billing_override`.
    #[serde(default)]
    pub period: Option<String>,
}

/// Opens a request, or returns the open one about the same thing.
pub async fn open(
    State(state): State<AppState>,
    principal: Principal,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_writer()?;
    let body: OpenBody = json_body(
        payload,
        r#"{"kind": "write_off", "subject": {"kind": "timesheet", "id": "<id>"}}"#,
    )?;
    if !steward_domain::kinds::APPROVAL_KINDS.contains(&body.kind.as_str()) {
        return Err(parameter_error(
            "kind",
            &body.kind,
            format!(
                "is not a request kind; use one of {}",
                steward_domain::kinds::APPROVAL_KINDS.join(", ")
            ),
        ));
    }
    let subject = match &body.subject {
        Some(s) => {
            let kind = Kind::parse(&s.kind).ok_or_else(|| {
                parameter_error(
                    "subject.kind",
                    &s.kind,
                    "is not a record kind, such as `invoice`",
                )
            })?;
            Some(RecordRef::new(kind, &s.id))
        }
        None => None,
    };
    let requester = match (&body.requester, principal.role.as_str()) {
        (Some(r), "admin" | "integration") => Some(r.clone()),
        (Some(_), role) => {
            return Err(ApiError::forbidden(format!(
                "the role `{role}` asks for itself; leave `requester` out"
            )));
        }
        (None, _) => principal.employee.clone(),
    };
    let amount = match &body.amount {
        Some(text) => Some(text.parse::<Decimal>().map_err(|_| {
            parameter_error(
                "amount",
                text,
                "is not a decimal amount such as \"1250.00\"",
            )
        })?),
        None => None,
    };
    let spec = OpenRequest {
        kind: body.kind,
        subject,
        requester,
        amount,
        currency: body.currency,
        facts: body.facts,
        summary: body.summary,
        period: body.period,
    };
    let opened = state
        .engine
        .open_approval(spec, CommandContext::new(principal.actor()))
        .await?;
    let view = find(&state, &opened.request.id).await?;
    let status = if opened.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view_json(&view))))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    #[serde(default)]
    pub comment: Option<String>,
    /// The step to decide, when the decider may decide more than one.
    #[serde(default)]
    pub step: Option<String>,
}

/// GET and HEAD show the request and the decision the link stands for; POST decides.
pub async fn decision(
    State(state): State<AppState>,
    principal: Principal,
    method: Method,
    Path((id, verdict)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let verdict = match verdict.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        other => {
            return Err(ApiError::not_found(format!(
                "no decision `{other}`; use /approve or /reject"
            )));
        }
    };
    if method != Method::POST {
        let view = find(&state, &id).await?;
        check_read(&principal, &view)?;
        let preview = json!({
            "request": view_json(&view),
            "decision": verdict.as_str(),
            "how": "nothing was decided; POST to this address with the bearer token of a permitted approver, optionally with {\"comment\": \"...\"}",
        });
        return Ok(Json(preview).into_response());
    }
    principal.require_writer()?;
    let Some(decider) = principal.employee.clone() else {
        return Err(ApiError::forbidden(
            "decisions are made by people; this token is linked to no employee, so ask an administrator to link it",
        ));
    };
    let body: DecisionBody = if body.is_empty() {
        DecisionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid(format!(
                "the body is not valid: {}; send {{\"comment\": \"...\"}} or nothing",
                crate::error::without_type_names(&e.to_string())
            ))
        })?
    };
    if body
        .comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > 2000)
    {
        return Err(parameter_error(
            "comment",
            "…",
            "is longer than 2000 characters",
        ));
    }
    let decided = state
        .engine
        .decide_approval(
            DecisionRequest {
                request: id.clone(),
                step: body.step,
                decider,
                verdict,
                comment: body.comment,
            },
            CommandContext::new(principal.actor()),
        )
        .await?;
    tracing::info!(request = %id, step = %decided.step.id, verdict = verdict.as_str(), by = %principal.name, "approval decided");
    let view = find(&state, &id).await?;
    Ok(Json(json!({
        "request": view_json(&view),
        "decision": decided.decision,
    }))
    .into_response())
}

/// Withdraws a pending request: its requester, or an administrator.
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require_writer()?;
    let view = find(&state, &id).await?;
    let own = principal.employee.is_some()
        && view.request.ref_id("requester") == principal.employee.as_deref();
    if !own && principal.role != "admin" {
        return Err(ApiError::forbidden(
            "only the requester or an administrator withdraws a request",
        ));
    }
    state
        .engine
        .cancel_approval(id.clone(), CommandContext::new(principal.actor()))
        .await?;
    Ok(Json(view_json(&find(&state, &id).await?)))
}

/// Backlog and turnaround per policy, step and approver; approvers are shown by name.
pub async fn metrics(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let metrics = state.engine.approval_metrics().await?;
    let ids: Vec<String> = metrics.by_approver.keys().cloned().collect();
    let names: HashMap<String, String> =
        steward_store::read_async(state.store.clone(), move |tx| {
            let mut names = HashMap::new();
            for id in ids {
                if let Some(employee) = tx.record(Kind::Employee, &id)? {
                    names.insert(
                        id,
                        employee.text("name").unwrap_or(&employee.id).to_string(),
                    );
                }
            }
            Ok(names)
        })
        .await?;
    let mut value = serde_json::to_value(&metrics).unwrap_or(Value::Null);
    if let Some(by_approver) = value.get_mut("by_approver").and_then(Value::as_object_mut) {
        for (id, group) in by_approver.iter_mut() {
            group["name"] = json!(names.get(id).cloned().unwrap_or_else(|| id.clone()));
        }
    }
    value["measured_at"] = json!(state.engine.clock().now());
    Ok(Json(value))
}

/// Lists the policies in force with their versions, and the authority.
pub async fn policies(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Page<Value>>, ApiError> {
    let approvals = state.engine.approvals();
    let items = approvals
        .config
        .policies
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "version": p.version,
                "request_kinds": p.request_kinds,
                "hit": p.hit,
                "origin": p.origin,
                "rows": p.rows.iter().map(|r| json!({
                    "number": r.number,
                    "when": r.describe(),
                    "order": r.order,
                    "steps": r.steps,
                })).collect::<Vec<_>>(),
                "definition": p.definition,
                "authority": approvals.config.authority,
            })
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Builds the approval endpoints of the OpenAPI document.
pub fn openapi_paths() -> Map<String, Value> {
    let error = |code: u16, meaning: &str| {
        (
            code.to_string(),
            json!({"description": meaning, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        )
    };
    let request = json!({"type": "object", "description": "An approval request with its steps and its decision links", "properties": {
        "id": {"type": "string"}, "state": {"type": "string", "enum": Kind::ApprovalRequest.schema().states},
        "fields": {"type": "object", "description": "request_kind, subject, requester, amount, policy and its version, facts, routing"},
        "steps": {"type": "array", "items": {"type": "object", "description": "an approval step: approver or candidates, stage, deadline, decisions, delegation, escalation"}},
        "links": {"type": "object", "properties": {"approve": {"type": "string"}, "reject": {"type": "string"}}}}});
    let page = json!({"type": "object", "properties": {"items": {"type": "array", "items": request}, "next_cursor": {"type": ["string", "null"]}}});
    let open_body = json!({"type": "object", "required": ["kind"], "properties": {
        "kind": {"type": "string", "enum": steward_domain::kinds::APPROVAL_KINDS},
        "subject": {"type": "object", "properties": {"kind": {"type": "string"}, "id": {"type": "string"}}},
        "requester": {"type": "string", "description": "administrators and integrations only"},
        "amount": {"type": "string"}, "currency": {"type": "string"},
        "facts": {"type": "object", "description": "values for the policy's decision table"},
        "summary": {"type": "string"},
        "period": {"type": "string", "description": "billing month (YYYY-MM) whose blockers a billing_override lifts; required for that kind only"}}});
    let decision_body = json!({"type": "object", "properties": {"comment": {"type": "string", "maxLength": 2000}, "step": {"type": "string"}}});
    let ok = |schema: &Value| json!({"description": "success", "content": {"application/json": {"schema": schema}}});
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let decision = json!({"name": "decision", "in": "path", "required": true, "schema": {"type": "string", "enum": ["approve", "reject"]}});
    let filters: Vec<Value> = [
        "state",
        "kind",
        "policy",
        "approver",
        "requester",
        "cursor",
        "limit",
    ]
    .iter()
    .map(|name| json!({"name": name, "in": "query", "schema": {"type": "string"}}))
    .collect();
    let mut paths = Map::new();
    let responses = |status: &str, schema: &Value, errors: &[(u16, &str)]| {
        let mut map = Map::new();
        map.insert(status.to_string(), ok(schema));
        for (code, meaning) in errors {
            let (k, v) = error(*code, meaning);
            map.insert(k, v);
        }
        Value::Object(map)
    };
    paths.insert("/api/v1/approvals".into(), json!({
        "get": {"summary": "List approval requests, oldest first, filtered by state, kind, policy, approver or requester", "parameters": filters, "security": [{"bearer": []}],
                "responses": responses("200", &page, &[(400, "a filter's value is not valid")])},
        "post": {"summary": "Open an approval request, routed by the policy for its kind; an open request about the same thing is returned instead", "security": [{"bearer": []}],
                 "requestBody": {"required": true, "content": {"application/json": {"schema": open_body}}},
                 "responses": responses("201", &request, &[(400, "the body is not valid"), (403, "the role may not open requests"), (404, "the subject does not exist")])},
    }));
    paths.insert("/api/v1/approvals/metrics".into(), json!({
        "get": {"summary": "Backlog (open requests by age) and turnaround (median and 90th percentile hours) per policy, step and approver", "security": [{"bearer": []}],
                "responses": responses("200", &json!({"type": "object"}), &[])},
    }));
    paths.insert("/api/v1/approvals/policies".into(), json!({
        "get": {"summary": "The approval policies in force with their versions, and the authority", "security": [{"bearer": []}],
                "responses": responses("200", &json!({"type": "object"}), &[])},
    }));
    paths.insert("/api/v1/approvals/{id}".into(), json!({
        "get": {"summary": "Read a request with its steps", "parameters": [id], "security": [{"bearer": []}],
                "responses": responses("200", &request, &[(404, "no such request")])},
    }));
    paths.insert("/api/v1/approvals/{id}/cancel".into(), json!({
        "post": {"summary": "Withdraw a pending request (its requester or an administrator)", "parameters": [id], "security": [{"bearer": []}],
                 "responses": responses("200", &request, &[(403, "not the requester"), (409, "the request is already decided")])},
    }));
    paths.insert("/api/v1/approvals/{id}/{decision}".into(), json!({
        "get": {"summary": "Show what the decision link decides; changes nothing, so mail scanners and previews are harmless", "parameters": [id, decision], "security": [{"bearer": []}],
                "responses": responses("200", &json!({"type": "object"}), &[(404, "no such request")])},
        "post": {"summary": "Decide: the first decision wins, and a later one gets 409 and changes nothing", "parameters": [id, decision], "security": [{"bearer": []}],
                 "requestBody": {"required": false, "content": {"application/json": {"schema": decision_body}}},
                 "responses": responses("200", &json!({"type": "object"}), &[(403, "the caller may not decide this step"), (404, "no such request"), (409, "already decided")])},
    }));
    paths
}
