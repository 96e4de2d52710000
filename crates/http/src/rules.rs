//! `/api/v1/rules`: rule versions, installing and checking rules, retiring them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use steward_domain::FieldError;
use steward_rules::Diagnostic;
use steward_store::{Page, RuleVersion};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

/// The newest version of a rule and whether it runs.
#[derive(Serialize)]
pub struct RuleState {
    #[serde(flatten)]
    pub latest: RuleVersion,
    /// True when the newest version is enabled and not retired.
    pub active: bool,
}

async fn versions(state: &AppState) -> Result<Vec<RuleVersion>, ApiError> {
    Ok(steward_store::read_async(state.store.clone(), |tx| tx.rule_versions()).await?)
}

pub async fn list(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Page<RuleState>>, ApiError> {
    let mut latest: BTreeMap<String, RuleVersion> = BTreeMap::new();
    for version in versions(&state).await? {
        latest.insert(version.rule_id.clone(), version);
    }
    let items = latest
        .into_values()
        .map(|v| RuleState {
            active: v.enabled && v.retired_at.is_none(),
            latest: v,
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

pub async fn history(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Page<RuleVersion>>, ApiError> {
    let items: Vec<RuleVersion> = versions(&state)
        .await?
        .into_iter()
        .filter(|v| v.rule_id == id)
        .collect();
    if items.is_empty() {
        return Err(ApiError::not_found(format!("rule {id} not found")));
    }
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

fn diagnostics_error(diagnostics: Vec<Diagnostic>) -> ApiError {
    let details: Vec<FieldError> = diagnostics
        .iter()
        .map(|d| FieldError {
            field: "rule".into(),
            value: serde_json::json!({"line": d.line, "column": d.column}),
            message: d.message.clone(),
        })
        .collect();
    let summary = diagnostics
        .first()
        .map(|d| format!("line {} column {}: {}", d.line, d.column, d.message))
        .unwrap_or_default();
    ApiError::validation(format!("the rule is invalid: {summary}"), details)
}

/// Installs a rule sent as JSON or YAML; a changed definition becomes a new version.
pub async fn install(
    State(state): State<AppState>,
    principal: Principal,
    body: String,
) -> Result<(StatusCode, Json<Vec<steward_engine::RuleChange>>), ApiError> {
    principal.require(&["admin", "operations"], "change rules")?;
    let rules = steward_rules::compile_api_text(&body, "api").map_err(diagnostics_error)?;
    let mut changes = Vec::new();
    for rule in rules {
        let change = state.engine.install_rule(rule).await?;
        tracing::info!(rule = %change.rule_id, version = change.version, change = change.change, by = %principal.name, "rule installed");
        changes.push(change);
    }
    let status = if changes.iter().all(|c| c.change == "unchanged") {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(changes)))
}

#[derive(Serialize)]
pub struct CheckResult {
    pub valid: bool,
    pub diagnostics: Vec<CheckDiagnostic>,
}

#[derive(Serialize)]
pub struct CheckDiagnostic {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Checks a rule without installing it.
pub async fn check(_principal: Principal, body: String) -> Json<CheckResult> {
    let diagnostics = match steward_rules::compile_api_text(&body, "api") {
        Ok(_) => Vec::new(),
        Err(found) => found
            .into_iter()
            .map(|d| CheckDiagnostic {
                line: d.line,
                column: d.column,
                message: d.message,
            })
            .collect(),
    };
    Json(CheckResult {
        valid: diagnostics.is_empty(),
        diagnostics,
    })
}

pub async fn retire(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(&["admin", "operations"], "change rules")?;
    if state.engine.retire_rule(&id).await? {
        tracing::info!(rule = %id, by = %principal.name, "rule retired");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no active rule has id {id}")))
    }
}

#[derive(serde::Deserialize)]
pub struct SimulateParams {
    /// RFC 3339 instant or YYYY-MM-DD day from which to replay.
    pub since: String,
}

/// Replays the recorded events through a rule, or a file of rules, with no effects.
pub async fn simulate(
    State(state): State<AppState>,
    principal: Principal,
    axum::extract::Query(params): axum::extract::Query<SimulateParams>,
    body: String,
) -> Result<Json<steward_engine::simulate::SimulationReport>, ApiError> {
    principal.require(&["admin", "operations", "auditor"], "simulate rules")?;
    let since = match chrono::DateTime::parse_from_rfc3339(&params.since) {
        Ok(instant) => instant.with_timezone(&chrono::Utc),
        Err(_) => chrono::NaiveDate::parse_from_str(&params.since, "%Y-%m-%d")
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
            .map_err(|_| {
                crate::error::parameter_error(
                    "since",
                    &params.since,
                    "must be a date (YYYY-MM-DD) or an RFC 3339 instant",
                )
            })?,
    };
    let rules = steward_rules::compile_api_text(&body, "api").map_err(diagnostics_error)?;
    Ok(Json(state.engine.simulate(rules, since).await?))
}
