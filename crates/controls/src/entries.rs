//! Checks on single timesheet entries and expenses: entries Steward would have rejected on
//! write, billable flags that contradict the project or contract line, expense limits by
//! category and country, missing receipts and duplicate receipts.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, RecordRef, Severity};

use crate::settings::ExpenseSettings;
use crate::{
    BILLABLE_MISMATCH, ENTRY_VALIDITY, EXPENSE_DUPLICATE, EXPENSE_LIMIT, EXPENSE_RECEIPT, People,
};

fn name_of(people: &People, id: &str) -> String {
    people
        .get(id)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| format!("employee {id}"))
}

/// A stored timesheet entry that the command path would reject: negative hours, more than
/// 24 hours, or a date after the person's today plus the tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEntry {
    pub id: String,
    pub employee: String,
    pub date: NaiveDate,
    pub hours: Decimal,
}

/// Raises one finding per entry with negative hours, over 24 hours, or dated after `latest`.
/// Such entries come from mirrored systems, which Steward trusts for what they report.
pub fn entry_validity(
    people: &People,
    entries: &[StoredEntry],
    latest: NaiveDate,
) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for entry in entries {
        let name = name_of(people, &entry.employee);
        let hours = entry.hours.normalize();
        let problem = if entry.hours.is_sign_negative() && !entry.hours.is_zero() {
            format!("negative hours ({hours})")
        } else if entry.hours > Decimal::from(24) {
            format!("{hours} hours, more than a day has")
        } else if entry.date > latest {
            format!("a date in the future ({}, later than {latest})", entry.date)
        } else {
            continue;
        };
        findings.push(RaisedFinding {
            key: format!("{ENTRY_VALIDITY}/{}", entry.id),
            control: ENTRY_VALIDITY.into(),
            severity: Severity::Error,
            record: Some(RecordRef::new(Kind::Timesheet, entry.id.clone())),
            message: format!(
                "The timesheet entry of {name} on {} has {problem}; correct it in its source system",
                entry.date
            ),
            evidence: json!({
                "entry": entry.id,
                "employee": entry.employee,
                "employee_name": name,
                "date": entry.date,
                "hours": hours.to_string(),
                "latest_allowed_date": latest,
            }),
        });
    }
    findings
}

/// Open time grouped by project, contract line and billable flag.
#[derive(Clone, Debug, PartialEq)]
pub struct BillableGroup {
    pub project: Option<String>,
    pub contract_line: Option<String>,
    pub billable: bool,
    pub hours: Decimal,
    pub entries: u64,
}

/// What the billable check knows of a project and a contract line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BillingTerms {
    pub project_name: Option<String>,
    /// The project's own flag; `false` marks an internal project.
    pub project_billable: Option<bool>,
    pub line_name: Option<String>,
    pub line_billing_model: Option<String>,
    pub line_unit_price: Option<Decimal>,
}

/// Line billing models that bill time by the hour.
const HOURLY_MODELS: &[&str] = &["time_and_materials", "prepaid_hours"];

/// Compares each group's billable flag with its project and contract line: billable time on
/// an internal project or on a line priced at zero, and non-billable time on a line that
/// bills by the hour.
pub fn billable_mismatch(
    groups: &[BillableGroup],
    terms: &dyn Fn(&BillableGroup) -> BillingTerms,
) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for group in groups.iter().filter(|g| g.entries > 0) {
        let terms = terms(group);
        let project = terms
            .project_name
            .clone()
            .or_else(|| group.project.clone())
            .unwrap_or_else(|| "no project".into());
        let line = terms.line_name.clone().unwrap_or_default();
        let reason = if group.billable {
            if terms.project_billable == Some(false) {
                Some(format!(
                    "are marked billable on {project}, an internal (non-billable) project"
                ))
            } else if group.contract_line.is_some()
                && terms.line_unit_price.is_some_and(|p| p.is_zero())
            {
                Some(format!(
                    "are marked billable on contract line {line}, which is priced at zero"
                ))
            } else {
                None
            }
        } else if group.contract_line.is_some()
            && terms
                .line_billing_model
                .as_deref()
                .is_some_and(|m| HOURLY_MODELS.contains(&m))
            && terms.project_billable != Some(false)
        {
            Some(format!(
                "are marked non-billable on contract line {line}, which bills time by the hour"
            ))
        } else {
            None
        };
        let Some(reason) = reason else {
            continue;
        };
        let hours = group.hours.normalize();
        let scope = group
            .contract_line
            .as_deref()
            .or(group.project.as_deref())
            .unwrap_or("none");
        let record = match (&group.contract_line, &group.project) {
            (Some(line), _) => Some(RecordRef::new(Kind::ContractLine, line.clone())),
            (None, Some(project)) => Some(RecordRef::new(Kind::Project, project.clone())),
            (None, None) => None,
        };
        findings.push(RaisedFinding {
            key: format!("{BILLABLE_MISMATCH}/{scope}/{}", group.billable),
            control: BILLABLE_MISMATCH.into(),
            severity: Severity::Warning,
            record,
            message: format!("{hours} h in {} open entries {reason}", group.entries),
            evidence: json!({
                "project": group.project,
                "project_billable": terms.project_billable,
                "contract_line": group.contract_line,
                "line_billing_model": terms.line_billing_model,
                "line_unit_price": terms.line_unit_price.map(|p| p.normalize().to_string()),
                "entries_billable": group.billable,
                "hours": hours.to_string(),
                "entries": group.entries,
            }),
        });
    }
    findings
}

/// An expense as the expense checks see it.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpenseItem {
    pub id: String,
    pub employee: String,
    pub date: NaiveDate,
    pub category: String,
    pub currency: String,
    pub amount: Decimal,
    /// Where the cost was incurred: the expense's country, else the employee's.
    pub country: Option<String>,
    /// Reference or checksum of the receipt; `None` when no receipt is attached.
    pub receipt: Option<String>,
    pub vendor: Option<String>,
}

fn expense_evidence(item: &ExpenseItem, name: &str) -> serde_json::Value {
    json!({
        "expense": item.id,
        "employee": item.employee,
        "employee_name": name,
        "date": item.date,
        "category": item.category,
        "amount": item.amount.normalize().to_string(),
        "currency": item.currency,
        "country": item.country,
        "receipt": item.receipt,
        "vendor": item.vendor,
    })
}

/// Raises a finding for each expense above the limit of its category in its country.
pub fn expense_limit(
    settings: &ExpenseSettings,
    people: &People,
    expenses: &[ExpenseItem],
) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for item in expenses {
        let Some(limit) = settings.limit_for(&item.category, item.country.as_deref()) else {
            continue;
        };
        let Some(maximum) = limit.limits.get(&item.currency) else {
            continue;
        };
        if item.amount <= *maximum {
            continue;
        }
        let name = name_of(people, &item.employee);
        let place = match &limit.country {
            Some(country) => format!(" in {country}"),
            None => String::new(),
        };
        let mut evidence = expense_evidence(item, &name);
        evidence["limit"] = json!(maximum.normalize().to_string());
        evidence["limit_country"] = json!(limit.country);
        findings.push(RaisedFinding {
            key: format!("{EXPENSE_LIMIT}/{}", item.id),
            control: EXPENSE_LIMIT.into(),
            severity: Severity::Warning,
            record: Some(RecordRef::new(Kind::Expense, item.id.clone())),
            message: format!(
                "{name} claimed {} {} for {} on {}, over the limit of {} {}{place}",
                item.amount.normalize(),
                item.currency,
                item.category,
                item.date,
                maximum.normalize(),
                item.currency
            ),
            evidence,
        });
    }
    findings
}

/// Raises a finding for each expense above the receipt threshold of its currency that has
/// no receipt.
pub fn expense_receipt(
    settings: &ExpenseSettings,
    people: &People,
    expenses: &[ExpenseItem],
) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for item in expenses.iter().filter(|e| e.receipt.is_none()) {
        let Some(threshold) = settings.receipt_above.get(&item.currency) else {
            continue;
        };
        if item.amount <= *threshold {
            continue;
        }
        let name = name_of(people, &item.employee);
        let mut evidence = expense_evidence(item, &name);
        evidence["receipt_above"] = json!(threshold.normalize().to_string());
        findings.push(RaisedFinding {
            key: format!("{EXPENSE_RECEIPT}/{}", item.id),
            control: EXPENSE_RECEIPT.into(),
            severity: Severity::Warning,
            record: Some(RecordRef::new(Kind::Expense, item.id.clone())),
            message: format!(
                "{name}'s {} expense of {} {} on {} has no receipt; receipts are required above {} {}",
                item.category,
                item.amount.normalize(),
                item.currency,
                item.date,
                threshold.normalize(),
                item.currency
            ),
            evidence,
        });
    }
    findings
}

/// Raises one finding per group of expenses that share a receipt reference, or that have the
/// same employee, amount, currency, date and vendor: the same cost claimed twice.
pub fn expense_duplicate(
    settings: &ExpenseSettings,
    people: &People,
    expenses: &[ExpenseItem],
) -> Vec<RaisedFinding> {
    if !settings.duplicates {
        return Vec::new();
    }
    let mut groups: BTreeMap<String, Vec<&ExpenseItem>> = BTreeMap::new();
    for item in expenses {
        if let Some(receipt) = &item.receipt {
            groups
                .entry(format!("receipt/{}", receipt.trim().to_lowercase()))
                .or_default()
                .push(item);
        }
        if let Some(vendor) = item.vendor.as_deref().filter(|v| !v.trim().is_empty()) {
            let key = format!(
                "claim/{}/{}/{}/{}/{}",
                item.employee,
                item.date,
                item.currency,
                item.amount.normalize(),
                vendor.trim().to_lowercase()
            );
            groups.entry(key).or_default().push(item);
        }
    }
    let mut findings = Vec::new();
    for (key, items) in groups.into_iter().filter(|(_, items)| items.len() > 1) {
        let first = items[0];
        let ids: Vec<&str> = items.iter().map(|e| e.id.as_str()).collect();
        let names: Vec<String> = items.iter().map(|e| name_of(people, &e.employee)).collect();
        let basis = if key.starts_with("receipt/") {
            format!("share receipt {}", first.receipt.as_deref().unwrap_or(""))
        } else {
            format!(
                "have the same person, amount, date and vendor ({})",
                first.vendor.as_deref().unwrap_or("")
            )
        };
        findings.push(RaisedFinding {
            key: format!("{EXPENSE_DUPLICATE}/{key}"),
            control: EXPENSE_DUPLICATE.into(),
            severity: Severity::Warning,
            record: Some(RecordRef::new(Kind::Expense, first.id.clone())),
            message: format!(
                "{} expenses of {} {} {basis}, so the same cost may be claimed twice",
                items.len(),
                first.amount.normalize(),
                first.currency
            ),
            evidence: json!({
                "expenses": ids,
                "employees": names,
                "basis": if key.starts_with("receipt/") { "receipt" } else { "employee_amount_date_vendor" },
                "receipt": first.receipt,
                "vendor": first.vendor,
                "date": first.date,
                "amount": first.amount.normalize().to_string(),
                "currency": first.currency,
            }),
        });
    }
    findings
}
