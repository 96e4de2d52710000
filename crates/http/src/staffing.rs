//! Staffing: each person's capacity, booked and free hours week by week, and the ranked
//! candidates for a role.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, parameter_error};
use crate::paging::reject_unknown;

/// Roles that read staffing: everyone but employees, who would see everyone's bookings.
const READERS: &[&str] = &[
    "admin",
    "operations",
    "finance",
    "delivery_manager",
    "auditor",
    "integration",
];

/// Weeks shown when the request does not say.
const DEFAULT_WEEKS: u32 = 4;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/staffing/capacity", get(capacity))
        .route("/staffing/roles/{id}/candidates", get(candidates))
}

fn weeks_of(params: &BTreeMap<String, String>) -> Result<u32, ApiError> {
    let Some(text) = params.get("weeks") else {
        return Ok(DEFAULT_WEEKS);
    };
    let max = steward_engine::staffing::MAX_WEEKS;
    match text.parse::<u32>() {
        Ok(weeks) if (1..=max).contains(&weeks) => Ok(weeks),
        _ => Err(parameter_error(
            "weeks",
            text,
            format!("must be a whole number of weeks from 1 to {max}"),
        )),
    }
}

/// `GET /api/v1/staffing/capacity?from=YYYY-MM-DD&weeks=N`: per person and ISO week, the
/// hours the calendar gives less holidays and leave, the hours allocations book, and the
/// hours left free.
pub async fn capacity(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    principal.require(READERS, "read staffing")?;
    reject_unknown(&params, &["from", "weeks"])?;
    let from = match params.get("from") {
        None => state.engine.clock().now().date_naive(),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            parameter_error(
                "from",
                text,
                "is not a day; write it as YYYY-MM-DD, such as 2026-12-07",
            )
        })?,
    };
    let weeks = weeks_of(&params)?;
    let plans = state.engine.staffing_capacity(from, weeks).await?;
    let people: Vec<Value> = plans
        .iter()
        .map(|plan| {
            let weeks: Vec<Value> = plan
                .weeks
                .iter()
                .map(|week| {
                    let free = (week.capacity - week.booked).max(rust_decimal::Decimal::ZERO);
                    json!({
                        "week": week.week,
                        "monday": week.monday,
                        "capacity": week.capacity.to_string(),
                        "booked": week.booked.to_string(),
                        "free": free.to_string(),
                        "load_percent": week.load.map(|l| l.to_string()),
                        "absences": week.absences,
                        "allocations": week.allocations.iter()
                            .map(|(id, hours)| (id.clone(), json!(hours.to_string())))
                            .collect::<Map<String, Value>>(),
                    })
                })
                .collect();
            json!({"employee": plan.employee, "name": plan.name, "weeks": weeks})
        })
        .collect();
    Ok(Json(json!({
        "from": from - chrono::Duration::days(i64::from(from.weekday().num_days_from_monday())),
        "weeks": weeks,
        "items": people,
        "next_cursor": null,
    })))
}

/// `GET /api/v1/staffing/roles/{id}/candidates`: every active person ranked for the role of
/// allocation `id` by skills, availability, cost and role, with one reason per factor.
pub async fn candidates(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(READERS, "read staffing")?;
    let ranked = state.engine.role_candidates(&id).await?;
    Ok(Json(json!(ranked)))
}

/// Builds the staffing endpoints of the OpenAPI document.
pub fn openapi_paths() -> Map<String, Value> {
    let error = |meaning: &str| json!({"description": meaning, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let hours = json!({"type": "string", "description": "hours as an exact decimal"});
    let week = json!({"type": "object", "properties": {
        "week": {"type": "string", "description": "ISO week, such as 2026-W50"},
        "monday": {"type": "string", "format": "date"},
        "capacity": hours, "booked": hours, "free": hours,
        "load_percent": {"type": ["string", "null"], "description": "booked as a percentage of capacity; null when the week has no capacity"},
        "absences": {"type": "array", "items": {"type": "string"}, "description": "public holidays and leave days"},
        "allocations": {"type": "object", "additionalProperties": hours, "description": "booked hours per allocation id"}}});
    let capacity = json!({"type": "object", "properties": {
        "from": {"type": "string", "format": "date", "description": "the Monday of the first week"},
        "weeks": {"type": "integer"},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "employee": {"type": "string"}, "name": {"type": "string"},
            "weeks": {"type": "array", "items": week}}}},
        "next_cursor": {"type": "null"}}});
    let candidate = json!({"type": "object", "properties": {
        "rank": {"type": "integer"}, "employee": {"type": "string"}, "name": {"type": "string"},
        "role": {"type": ["string", "null"]},
        "score": {"type": "string", "description": "0 to 100: skills weigh 45, availability 35, cost 10, the same role 10"},
        "skills": {"type": "string"}, "missing_skills": {"type": "array", "items": {"type": "string"}},
        "availability": {"type": "string"}, "free_hours": hours, "needed_hours": hours,
        "cost_rate": {"type": ["string", "null"]}, "currency": {"type": ["string", "null"]},
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "one sentence per factor"}}});
    let role = json!({"type": "object", "properties": {
        "allocation": {"type": "string"}, "project": {"type": "string"}, "project_name": {"type": "string"},
        "role": {"type": ["string", "null"]}, "required_skills": {"type": "array", "items": {"type": "string"}},
        "hours_per_week": hours, "start_date": {"type": "string", "format": "date"},
        "end_date": {"type": ["string", "null"], "format": "date"},
        "allocated": {"type": ["string", "null"], "description": "the person allocated now, if any"},
        "candidates": {"type": "array", "items": candidate}}});
    let ok = |schema: Value| json!({"description": "success", "content": {"application/json": {"schema": schema}}});
    let mut paths = Map::new();
    paths.insert("/api/v1/staffing/capacity".into(), json!({
        "get": {"summary": "Capacity, booked and free hours per active person and ISO week, from the calendar less public holidays and approved leave",
                "parameters": [
                    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "a day of the first week; today when unset"},
                    {"name": "weeks", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": steward_engine::staffing::MAX_WEEKS}, "description": "number of weeks, 4 when unset"}],
                "security": [{"bearer": []}],
                "responses": {"200": ok(capacity), "400": error("`from` or `weeks` is not valid"), "401": error("no valid token"), "403": error("the role may not read staffing")}},
    }));
    paths.insert("/api/v1/staffing/roles/{id}/candidates".into(), json!({
        "get": {"summary": "Every active person ranked for the role of an allocation by skills, availability over the role's weeks, cost and role, with the reason for each rank",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "the allocation's id"}],
                "security": [{"bearer": []}],
                "responses": {"200": ok(role), "401": error("no valid token"), "403": error("the role may not read staffing"), "404": error("no such allocation"), "422": error("the allocation lacks a project, hours or a start date")}},
    }));
    paths
}
