//! Gathers the inputs of the entry and expense controls: stored entries the command path
//! would reject, open time by project, contract line and billable flag, and every expense
//! still open or approved.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use steward_controls::entries::{
    BillableGroup, BillingTerms, ExpenseItem, StoredEntry, billable_mismatch, entry_validity,
    expense_duplicate, expense_limit, expense_receipt,
};
use steward_controls::settings::FirmSettings;
use steward_controls::{
    BILLABLE_MISMATCH, ENTRY_VALIDITY, EXPENSE_DUPLICATE, EXPENSE_LIMIT, EXPENSE_RECEIPT, People,
};
use steward_domain::Kind;
use steward_domain::finding::RaisedFinding;
use steward_store::{AggregateQuery, ReadTx, RecordQuery, StoreError};

use crate::controls::all_records;

/// Entry and expense states the checks look at: everything not rejected or written off.
const OPEN_STATES: &[&str] = &["draft", "submitted", "approved", "invoiced"];

/// The largest offset from UTC of any time zone, so that a date is in the future for
/// everybody only when it is after today in the zone furthest ahead.
const MAX_ZONE_AHEAD_HOURS: i64 = 14;

/// Runs the entry and expense controls that are switched on.
pub(crate) fn check(
    tx: &dyn ReadTx,
    settings: &FirmSettings,
    people: &People,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, Vec<RaisedFinding>)>, StoreError> {
    let controls = &settings.controls;
    let mut results = Vec::new();

    if controls.is_on(ENTRY_VALIDITY) {
        let today = (now + Duration::hours(MAX_ZONE_AHEAD_HOURS)).date_naive();
        let latest = controls.timesheets.future_tolerance.add_to(today, None);
        let entries = invalid_entries(tx, latest)?;
        results.push((ENTRY_VALIDITY, entry_validity(people, &entries, latest)));
    } else {
        results.push((ENTRY_VALIDITY, Vec::new()));
    }

    if controls.is_on(BILLABLE_MISMATCH) {
        let groups = billable_groups(tx)?;
        let terms = |group: &BillableGroup| billing_terms(tx, group);
        results.push((BILLABLE_MISMATCH, billable_mismatch(&groups, &terms)));
    } else {
        results.push((BILLABLE_MISMATCH, Vec::new()));
    }

    let expenses = if [EXPENSE_LIMIT, EXPENSE_RECEIPT, EXPENSE_DUPLICATE]
        .iter()
        .any(|c| controls.is_on(c))
    {
        expense_items(tx)?
    } else {
        Vec::new()
    };
    let on = |control: &str| controls.is_on(control);
    let expense_settings = &controls.expenses;
    results.push((
        EXPENSE_LIMIT,
        if on(EXPENSE_LIMIT) {
            expense_limit(expense_settings, people, &expenses)
        } else {
            Vec::new()
        },
    ));
    results.push((
        EXPENSE_RECEIPT,
        if on(EXPENSE_RECEIPT) {
            expense_receipt(expense_settings, people, &expenses)
        } else {
            Vec::new()
        },
    ));
    results.push((
        EXPENSE_DUPLICATE,
        if on(EXPENSE_DUPLICATE) {
            expense_duplicate(expense_settings, people, &expenses)
        } else {
            Vec::new()
        },
    ));
    Ok(results)
}

fn records_where(
    tx: &dyn ReadTx,
    field: &str,
    value: &Value,
) -> Result<Vec<steward_domain::Record>, StoreError> {
    all_records(
        tx,
        RecordQuery {
            kind: Some(Kind::Timesheet),
            fields: vec![(field.to_string(), value.clone())],
            ..Default::default()
        },
    )
}

/// Finds entries with negative hours, over 24 hours or dated after `latest`. The distinct
/// dates and hour values are few, so the store groups by them and only the entries with a
/// suspect value are read.
fn invalid_entries(tx: &dyn ReadTx, latest: NaiveDate) -> Result<Vec<StoredEntry>, StoreError> {
    let states: Vec<String> = OPEN_STATES.iter().map(|s| s.to_string()).collect();
    let distinct = |field: &str| {
        tx.aggregate(&AggregateQuery {
            kind: Some(Kind::Timesheet),
            group_by: vec![field.into()],
            sum: None,
            states: states.clone(),
            min_sum: None,
            range: None,
        })
    };
    let mut suspects = Vec::new();
    for row in distinct("hours")? {
        let hours = row.keys[0].as_str().and_then(|h| h.parse::<Decimal>().ok());
        if hours.is_some_and(|h| h < Decimal::ZERO || h > Decimal::from(24)) {
            suspects.extend(records_where(tx, "hours", &row.keys[0])?);
        }
    }
    for row in distinct("date")? {
        let date = row.keys[0]
            .as_str()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        if date.is_some_and(|d| d > latest) {
            suspects.extend(records_where(tx, "date", &row.keys[0])?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    Ok(suspects
        .into_iter()
        .filter(|r| OPEN_STATES.contains(&r.state.as_str()))
        .filter(|r| seen.insert(r.id.clone()))
        .filter_map(|record| {
            Some(StoredEntry {
                id: record.id.clone(),
                employee: record.ref_id("employee")?.to_string(),
                date: record.date("date")?,
                hours: record.decimal("hours")?,
            })
        })
        .collect())
}

fn billable_groups(tx: &dyn ReadTx) -> Result<Vec<BillableGroup>, StoreError> {
    let rows = tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Timesheet),
        group_by: vec!["project".into(), "contract_line".into(), "billable".into()],
        sum: Some("hours".into()),
        states: vec!["draft".into(), "submitted".into(), "approved".into()],
        min_sum: None,
        range: None,
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(BillableGroup {
                project: row.keys[0].as_str().map(str::to_string),
                contract_line: row.keys[1].as_str().map(str::to_string),
                billable: crate::controls::stored_flag(&row.keys[2])?,
                hours: row.sum,
                entries: row.count,
            })
        })
        .collect())
}

fn billing_terms(tx: &dyn ReadTx, group: &BillableGroup) -> BillingTerms {
    let project = group
        .project
        .as_deref()
        .and_then(|id| tx.record(Kind::Project, id).ok().flatten());
    let line = group
        .contract_line
        .as_deref()
        .and_then(|id| tx.record(Kind::ContractLine, id).ok().flatten());
    BillingTerms {
        project_name: project.as_ref().map(|p| p.title()),
        project_billable: project.as_ref().and_then(|p| p.bool("billable")),
        line_name: line.as_ref().map(|l| l.title()),
        line_billing_model: line
            .as_ref()
            .and_then(|l| l.text("billing_model").map(str::to_string)),
        line_unit_price: line.as_ref().and_then(|l| l.decimal("unit_price")),
    }
}

fn expense_items(tx: &dyn ReadTx) -> Result<Vec<ExpenseItem>, StoreError> {
    let mut countries: HashMap<String, String> = HashMap::new();
    tx.scan_records(Kind::Employee, &mut |record| {
        if let Some(country) = record.text("country") {
            countries.insert(record.id.clone(), country.to_string());
        }
        Ok(true)
    })?;
    let mut items = Vec::new();
    tx.scan_records(Kind::Expense, &mut |record| {
        if !OPEN_STATES.contains(&record.state.as_str()) {
            return Ok(true);
        }
        let (Some(employee), Some(date), Some(amount)) = (
            record.ref_id("employee"),
            record.date("date"),
            record.decimal("amount"),
        ) else {
            return Ok(true);
        };
        let text = |field: &str| {
            record
                .text(field)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        items.push(ExpenseItem {
            id: record.id.clone(),
            employee: employee.to_string(),
            date,
            category: text("category").unwrap_or_default(),
            currency: text("currency").unwrap_or_default(),
            amount,
            country: text("country").or_else(|| countries.get(employee).cloned()),
            receipt: text("receipt"),
            vendor: text("vendor"),
        });
        Ok(true)
    })?;
    Ok(items)
}
