//! Billing readiness, invoice drafts, the reconciliation report and the firm's KPIs.
//!
//! Invoices and their lines, with each line's `sources`, are records: `GET /api/v1/invoices`
//! and `GET /api/v1/invoice-lines?invoice=<id>`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use steward_domain::{DomainError, FieldError, Kind};
use steward_engine::EngineError;
use steward_engine::billing::{BillingPeriod, Selection};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, json_body, parameter_error};
use crate::paging::{DEFAULT_LIMIT, reject_unknown};

/// Roles that read billing: everyone but employees.
const READERS: &[&str] = &[
    "admin",
    "operations",
    "finance",
    "delivery_manager",
    "auditor",
    "integration",
];
/// Roles that write drafts.
const DRAFTERS: &[&str] = &["admin", "operations", "finance"];

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/billing-readiness", get(readiness))
        .route("/billing-drafts", post(draft))
        .route("/reconciliation", get(reconciliation))
        .route("/kpis", get(kpis))
}

fn period_of(params: &BTreeMap<String, String>) -> Result<BillingPeriod, ApiError> {
    let text = params.get("period").ok_or_else(|| {
        parameter_error(
            "period",
            "",
            "is required; give the month as YYYY-MM, such as 2026-11",
        )
    })?;
    BillingPeriod::parse(text).map_err(|_| {
        parameter_error(
            "period",
            text,
            "is not a month; write it as YYYY-MM, such as 2026-11",
        )
    })
}

/// Reads `limit` and an offset `cursor`, as the billing lists page over computed rows.
fn offset_paging(params: &BTreeMap<String, String>) -> Result<(usize, usize), ApiError> {
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=steward_store::MAX_PAGE).contains(&n) => n,
            _ => {
                let message = format!(
                    "must be a whole number from 1 to {}",
                    steward_store::MAX_PAGE
                );
                return Err(parameter_error("limit", text, message));
            }
        },
    };
    let offset = match params.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => cursor.parse::<usize>().map_err(|_| {
            parameter_error(
                "cursor",
                cursor,
                "is not a cursor this list returned; pass the `next_cursor` of the previous page",
            )
        })?,
    };
    Ok((offset, limit))
}

/// Converts a billing error into the API's error. When `contract` names no contract, the
/// message points to where contract ids and references are listed.
fn billing_error(contract: Option<&str>) -> impl FnOnce(EngineError) -> ApiError + '_ {
    move |error| match (&error, contract) {
        (
            EngineError::Domain(DomainError::NotFound {
                kind: Kind::Contract,
                id,
            }),
            Some(key),
        ) if id == key => {
            let fix = "pass a contract id or its reference (such as an Odoo sale order number), \
                       as GET /api/v1/contracts returns them";
            ApiError {
                details: vec![FieldError::new(
                    "contract",
                    &json!(key),
                    format!("is neither a contract id nor a reference; {fix}"),
                )],
                ..ApiError::not_found(format!("no contract has the id or reference {key}; {fix}"))
            }
        }
        _ => error.into(),
    }
}

/// Cuts one page out of `rows` and returns it with the cursor of the next page.
fn page(rows: Vec<Value>, offset: usize, limit: usize) -> (Vec<Value>, Option<String>) {
    let total = rows.len();
    let items: Vec<Value> = rows.into_iter().skip(offset).take(limit).collect();
    let next = (offset + limit < total).then(|| (offset + limit).to_string());
    (items, next)
}

/// `GET /api/v1/billing-readiness?period=YYYY-MM[&contract=<id>]`
pub async fn readiness(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    principal.require(READERS, "read billing readiness")?;
    reject_unknown(&params, &["period", "contract"])?;
    let (offset, limit) = offset_paging(&params)?;
    let contract = params.get("contract");
    let selection = Selection {
        period: period_of(&params)?,
        contract: contract.cloned(),
    };
    let report = state
        .engine
        .billing_readiness(selection)
        .await
        .map_err(billing_error(contract.map(String::as_str)))?;
    let rows: Vec<Value> = report.iter().map(|r| json!(r)).collect();
    let (items, next_cursor) = page(rows, offset, limit);
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    pub period: String,
    #[serde(default)]
    pub contract: Option<String>,
}

/// `POST /api/v1/billing-drafts` with `{"period": "YYYY-MM", "contract": "<id or reference>"}`.
pub async fn draft(
    State(state): State<AppState>,
    principal: Principal,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require(DRAFTERS, "draft invoices")?;
    let body: DraftBody = json_body(payload, r#"{"period": "2026-11"}"#)?;
    let period = BillingPeriod::parse(&body.period).map_err(|_| {
        parameter_error(
            "period",
            &body.period,
            "is not a month; write it as YYYY-MM, such as 2026-11",
        )
    })?;
    let selection = Selection {
        period,
        contract: body.contract.clone(),
    };
    let context = steward_domain::CommandContext::new(principal.actor());
    let report = state
        .engine
        .draft_invoices(selection, context)
        .await
        .map_err(billing_error(body.contract.as_deref()))?;
    let status = if report.created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(report))))
}

/// `GET /api/v1/reconciliation?period=YYYY-MM[&contract=<id>]`: one item per entry, with
/// the totals by status beside the page.
pub async fn reconciliation(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    principal.require(READERS, "read the reconciliation")?;
    reject_unknown(&params, &["period", "contract"])?;
    let (offset, limit) = offset_paging(&params)?;
    let contract = params.get("contract");
    let selection = Selection {
        period: period_of(&params)?,
        contract: contract.cloned(),
    };
    let report = state
        .engine
        .billing_reconciliation(selection)
        .await
        .map_err(billing_error(contract.map(String::as_str)))?;
    let mut rows = Vec::new();
    for contract in &report.contracts {
        for entry in &contract.entries {
            let mut row = json!(entry);
            row["contract"] = json!(contract.contract);
            row["reference"] = json!(contract.reference);
            rows.push(row);
        }
    }
    let (items, next_cursor) = page(rows, offset, limit);
    Ok(Json(json!({
        "items": items,
        "next_cursor": next_cursor,
        "period": report.period,
        "statuses": report.statuses,
        "reconciled": report.reconciled,
    })))
}

/// `GET /api/v1/kpis?period=YYYY-MM`
pub async fn kpis(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    principal.require(READERS, "read the KPIs")?;
    reject_unknown(&params, &["period"])?;
    let period = period_of(&params)?;
    Ok(Json(json!(state.engine.billing_kpis(period).await?)))
}

/// The KPI formulas, as the OpenAPI description gives them.
pub const KPI_FORMULAS: &str = "All KPIs are for the calendar month `period`. \
utilization = billable_hours / capacity_hours, where billable_hours sums time entries dated in \
the month that are not rejected and are billable (or name a contract line when the flag is \
unset), and capacity_hours sums, over active employees, the hours their work calendar \
schedules on each day of the month (8 h Monday to Friday without a calendar; public holidays \
excluded, leaves not deducted). \
realization = invoiced_hours / billable_hours over billable time entries of active or closed \
contracts dated in the month, invoiced_hours being what released or paid invoices billed of \
them net of credit notes. \
billing_delay.mean_days = sum(hours × (issue_date − date)) / sum(hours) over those entries \
billed by a released or paid invoice, using each entry's first such invoice. \
unbilled.ready_amount = untaxed amount, by currency, of the invoices the ready items would \
make now (what a draft would bill); unbilled.hours = hours of billable time entries up to the \
month's end, approved or not (not rejected), still to bill (delivered − invoiced + credited). \
approval_backlog = pending approval requests now, by kind, and the age in days of the oldest \
(now − waiting_since). \
won_to_kickoff.median_days = median of kickoff_at − won_at in days over projects with a \
kickoff_at whose opportunity has a won_at; null when none has both. \
margin_by_project: revenue = subtotals of released or paid invoice lines on the project's \
contract lines (credit notes negative), or on its contract when that has one project; cost = \
hours of its time entries not rejected × the employee's cost_rate; margin = revenue − cost; \
margin_ratio = margin / revenue; margin is null when revenue and cost are in different \
currencies. A ratio is null when its denominator is zero.";

/// Builds the OpenAPI paths of the billing endpoints.
pub fn openapi_paths() -> Map<String, Value> {
    let error = |meaning: &str| json!({"description": meaning, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let query = |name: &str, required: bool, description: &str| json!({"name": name, "in": "query", "required": required, "schema": {"type": "string"}, "description": description});
    let period = query("period", true, "billing month, YYYY-MM");
    let contract = query(
        "contract",
        false,
        "one contract, by id or reference (such as an Odoo sale order number); every active \
         or closed contract when unset",
    );
    let cursor = query("cursor", false, "the `next_cursor` of the previous page");
    let limit = json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": steward_store::MAX_PAGE, "default": DEFAULT_LIMIT}});
    let issue = json!({"type": "object", "properties": {
        "code": {"type": "string", "description": "stable code such as not_approved, not_accepted, missing_rate, cap_exceeded, purchase_order_exceeded, purchase_order_expired, purchase_order_missing, below_minimum_amount, tax_unavailable, nothing_to_bill, invalid_terms, draft_pending, before_contract_start"},
        "records": {"type": "array", "items": {"type": "object", "properties": {"kind": {"type": "string"}, "id": {"type": "string"}}}},
        "message": {"type": "string"}, "fix": {"type": "string"}}});
    let readiness = json!({"type": "object", "properties": {
        "contract": {"type": "string"}, "name": {"type": ["string", "null"]}, "reference": {"type": ["string", "null"]},
        "client": {"type": ["string", "null"]}, "currency": {"type": "string"}, "period": {"type": "string"},
        "ready": {"type": "boolean"},
        "blockers": {"type": "array", "items": issue},
        "warnings": {"type": "array", "items": issue, "description": "blockers lifted by an approved billing_override request for this contract and month"},
        "override_request": {"type": ["string", "null"]},
        "draft_invoice": {"type": ["string", "null"], "description": "the draft already written for this month"},
        "untaxed": {}, "tax": {}, "total": {}, "lines": {"type": "integer"}}});
    let ok = |schema: Value| json!({"description": "success", "content": {"application/json": {"schema": schema}}});
    let page_of = |item: Value, extra: Value| {
        let mut schema = json!({"type": "object", "properties": {"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}}, "required": ["items", "next_cursor"]});
        if let Some(extra) = extra.as_object() {
            for (name, value) in extra {
                schema["properties"][name] = value.clone();
            }
        }
        schema
    };
    let security = json!([{"bearer": []}]);
    let mut paths = Map::new();
    paths.insert("/api/v1/billing-readiness".into(), json!({"get": {
        "summary": "Readiness of each contract for a month, with every blocker, its records and its fix",
        "security": security,
        "parameters": [period, contract, cursor, limit],
        "responses": {"200": ok(page_of(readiness.clone(), json!({}))), "400": error("`invalid_request`: a parameter is invalid"), "404": error("`not_found`: the contract does not exist"), "403": error("`forbidden`: employees do not read billing"), "422": error("`validation_failed`: the contract is not active or closed")}}}));
    paths.insert("/api/v1/billing-drafts".into(), json!({"post": {
        "summary": "Write draft invoices for the ready contracts of a month. A draft already written for the month is returned, not written again; a contract with a draft of another month waits until it is released or cancelled",
        "security": security,
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["period"], "properties": {"period": {"type": "string"}, "contract": {"type": "string"}}}}}},
        "responses": {
            "201": ok(json!({"type": "object", "description": "created, existing and blocked counts and one outcome per contract: created or existing (invoice, amounts, rounding, override_request, warnings) or blocked (the readiness)"})),
            "200": ok(json!({"type": "object", "description": "as 201, when nothing new was drafted"})),
            "400": error("`invalid_request`: the body or the period is invalid"), "403": error("`forbidden`: the role may not draft"), "404": error("`not_found`: the contract does not exist")}}}));
    let entry = json!({"type": "object", "properties": {
        "contract": {"type": "string"}, "reference": {"type": ["string", "null"], "description": "the contract's number in the source system, such as an Odoo sale order number"},
        "source": {"type": "object"}, "date": {"type": ["string", "null"]},
        "delivered": {"type": "string"}, "invoiced": {"type": "string"}, "credited": {"type": "string"}, "unbilled": {"type": "string"},
        "status": {"type": "string", "enum": ["invoiced", "not_billable", "not_due", "not_approved", "not_accepted", "in_draft", "unpriced", "over_cap", "blocked", "credited_not_rebilled", "ready_to_bill", "invoiced_twice", "over_credited", "invoiced_not_billable"]},
        "reason": {"type": "string"}, "invoices": {"type": "array"}, "credit_notes": {"type": "array"}, "drafts": {"type": "array"}}});
    paths.insert("/api/v1/reconciliation".into(), json!({"get": {
        "summary": "Every billable item of a month: invoiced exactly once, or listed with the reason it is not",
        "security": security,
        "parameters": [period, contract, cursor, limit],
        "responses": {"200": ok(page_of(entry, json!({"period": {"type": "string"}, "statuses": {"type": "object"}, "reconciled": {"type": "boolean"}}))), "400": error("`invalid_request`: a parameter is invalid"), "403": error("`forbidden`: employees do not read billing"), "404": error("`not_found`: the contract does not exist")}}}));
    paths.insert("/api/v1/kpis".into(), json!({"get": {
        "summary": "Utilization, realization, billing delay, unbilled work, approval backlog, won-to-kickoff time and margin by project",
        "description": KPI_FORMULAS,
        "security": security,
        "parameters": [period],
        "responses": {"200": ok(json!({"type": "object", "properties": {
            "period": {"type": "string"}, "utilization": {"type": "object"}, "realization": {"type": "object"},
            "billing_delay": {"type": "object"}, "unbilled": {"type": "object"}, "approval_backlog": {"type": "object"},
            "won_to_kickoff": {"type": "object"}, "margin_by_project": {"type": "array"}}})),
            "400": error("`invalid_request`: the period is missing or invalid"), "403": error("`forbidden`: employees do not read KPIs")}}}));
    paths
}
