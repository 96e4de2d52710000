//! Running the starter controls: gather their inputs from one snapshot, compute findings, and
//! store them, resolving those no longer raised.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use steward_controls::{
    ApprovedEntry, Awaiting, Calendar, DayTotal, People, Person, ProjectTime, TimedEntry,
};
use steward_domain::finding::RaisedFinding;
use steward_domain::{Actor, Command, CommandContext, Kind, Record};
use steward_store::{AggregateQuery, ReadTx, RecordQuery, StoreError};

use crate::Engine;
use crate::error::EngineError;
use crate::metric_names;
use crate::pipeline::{Env, UNRESOLVED_REFS, apply};

/// The findings of one run of the controls.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ControlsReport {
    /// Open findings per control after the run.
    pub open: BTreeMap<String, usize>,
    /// Findings that are new or reopened.
    pub opened: usize,
    /// Findings closed because their condition no longer holds.
    pub resolved: u64,
    /// Reminders and escalations sent: timesheet cut-offs and collection stages.
    pub steps: usize,
}

/// Every entry state in which time still counts as logged.
const LOGGED: &[&str] = &["draft", "submitted", "approved", "invoiced"];

impl Engine {
    /// Runs every starter control over the stored data.
    pub async fn run_controls(self: &Arc<Self>) -> Result<ControlsReport, EngineError> {
        let checked_at = self.clock.now();
        let (results, steps) = steward_store::read_async(Arc::clone(&self.store), move |tx| {
            let mut results = gather_and_check(tx)?;
            let (more, steps) = crate::steps::check_time_and_collections(tx, checked_at)?;
            results.extend(more);
            Ok::<_, StoreError>((results, steps))
        })
        .await?;
        let rules = self.rules();
        let approvals = self.approvals();
        let config = self.config.clone();
        let now = self.clock.now();
        let mut report = steward_store::write(self.store.as_ref(), move |tx| {
            let env = Env {
                rules: &rules,
                config: &config,
                approvals: &approvals,
                now,
            };
            let mut report = ControlsReport::default();
            for (control, findings) in &results {
                let keys: Vec<String> = findings.iter().map(|f| f.key.clone()).collect();
                for finding in findings {
                    let (stored, opened) = tx.raise_finding(finding, now)?;
                    if opened {
                        report.opened += 1;
                        metrics::counter!(metric_names::FINDINGS_OPENED,
                            "control" => stored.control.clone(), "severity" => stored.severity.as_str())
                        .increment(1);
                        let data = json!({
                            "finding": stored.id,
                            "control": stored.control,
                            "severity": stored.severity,
                            "message": stored.message,
                        });
                        let command = Command::Emit { name: "finding.opened".into(), record: stored.record.clone(), data };
                        apply(tx, &env, command, CommandContext::new(Actor::system("controls")))?;
                    }
                }
                report.resolved += tx.resolve_findings(control, &keys, now)?;
                report.open.insert(control.to_string(), findings.len());
            }
            report.steps = crate::steps::run_steps(tx, &env, &steps)?;
            Ok::<_, EngineError>(report)
        })
        .await?;
        self.run_delivery_controls(&mut report).await?;
        // `open` is the total after the run, `new` the part of it this run opened, so the
        // line states the same numbers as the report that callers print.
        tracing::info!(
            open = report.open.values().sum::<usize>(),
            new = report.opened,
            resolved = report.resolved,
            "controls ran"
        );
        Ok(report)
    }
}

type ControlResults = Vec<(&'static str, Vec<RaisedFinding>)>;

fn gather_and_check(tx: &dyn ReadTx) -> Result<ControlResults, StoreError> {
    let people = load_people(tx)?;
    let mut results = Vec::new();

    let days = day_totals(tx, &people)?;
    results.push((
        steward_controls::DAILY_HOURS,
        steward_controls::daily_hours(&people, &days),
    ));

    let awaiting = awaiting_approval(tx)?;
    results.push((
        steward_controls::APPROVER_MISSING,
        steward_controls::approver_missing(&people, &awaiting),
    ));

    let approved = approved_entries(tx)?;
    results.push((
        steward_controls::SELF_APPROVAL,
        steward_controls::self_approval(&people, &approved),
    ));

    let groups = project_time(tx)?;
    let lookup = |id: &str| {
        tx.record(Kind::Project, id)
            .ok()
            .flatten()
            .map(|p| (p.state.clone(), p.title()))
    };
    results.push((
        steward_controls::PROJECT_TIME,
        steward_controls::time_on_closed_or_missing_project(&groups, &lookup),
    ));

    let timed = timed_entries(tx)?;
    results.push((
        steward_controls::OVERLAPPING_ENTRIES,
        steward_controls::overlapping_entries(&people, timed),
    ));
    Ok(results)
}

pub(crate) fn load_people(tx: &dyn ReadTx) -> Result<People, StoreError> {
    let mut calendars = HashMap::new();
    tx.scan_records(Kind::WorkCalendar, &mut |record| {
        calendars.insert(record.id.clone(), Calendar::from_record(&record));
        Ok(true)
    })?;
    let mut people = People::new();
    tx.scan_records(Kind::Employee, &mut |record| {
        let calendar = record
            .ref_id("calendar")
            .and_then(|id| calendars.get(id))
            .cloned();
        people.insert(
            record.id.clone(),
            Person {
                id: record.id.clone(),
                name: record.title(),
                manager: record.ref_id("manager").map(str::to_string),
                calendar,
            },
        );
        Ok(true)
    })?;
    Ok(people)
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

fn day_totals(tx: &dyn ReadTx, people: &People) -> Result<Vec<DayTotal>, StoreError> {
    // Only days above the smallest limit anybody has can raise a finding.
    let smallest_limit = people
        .values()
        .filter_map(|p| p.calendar.as_ref())
        .flat_map(|c| {
            c.week
                .iter()
                .copied()
                .filter(|h| !h.is_zero())
                .chain([c.hours_per_day])
        })
        .min()
        .unwrap_or(Decimal::from(8));
    let rows = tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Timesheet),
        group_by: vec!["employee".into(), "date".into()],
        sum: Some("hours".into()),
        states: LOGGED.iter().map(|s| s.to_string()).collect(),
        min_sum: Some(smallest_limit),
        range: None,
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let employee = text(&row.keys[0])?;
            let date = NaiveDate::parse_from_str(row.keys[1].as_str()?, "%Y-%m-%d").ok()?;
            Some(DayTotal {
                employee,
                date,
                hours: row.sum,
                entries: row.count,
            })
        })
        .collect())
}

fn awaiting_approval(tx: &dyn ReadTx) -> Result<Vec<Awaiting>, StoreError> {
    let submitted = vec!["submitted".to_string()];
    let mut awaiting = Vec::new();
    for row in tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Timesheet),
        group_by: vec!["employee".into()],
        sum: Some("hours".into()),
        states: submitted.clone(),
        min_sum: None,
        range: None,
    })? {
        let Some(employee) = text(&row.keys[0]) else {
            continue;
        };
        awaiting.push(Awaiting {
            employee,
            kind: Kind::Timesheet,
            count: row.count,
            hours: row.sum,
            amounts: BTreeMap::new(),
        });
    }
    let mut expenses: BTreeMap<String, Awaiting> = BTreeMap::new();
    for row in tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Expense),
        group_by: vec!["employee".into(), "currency".into()],
        sum: Some("amount".into()),
        states: submitted,
        min_sum: None,
        range: None,
    })? {
        let (Some(employee), Some(currency)) = (text(&row.keys[0]), text(&row.keys[1])) else {
            continue;
        };
        let entry = expenses
            .entry(employee.clone())
            .or_insert_with(|| Awaiting {
                employee,
                kind: Kind::Expense,
                count: 0,
                hours: Decimal::ZERO,
                amounts: BTreeMap::new(),
            });
        entry.count += row.count;
        *entry.amounts.entry(currency).or_default() += row.sum;
    }
    awaiting.extend(expenses.into_values());
    Ok(awaiting)
}

/// Returns a stored boolean flag as an aggregate returns it: SQLite gives a JSON boolean as
/// the integer 1 or 0.
pub(crate) fn stored_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

/// Reads every record a query matches, page by page.
pub(crate) fn all_records(tx: &dyn ReadTx, query: RecordQuery) -> Result<Vec<Record>, StoreError> {
    let mut records = Vec::new();
    each_record(tx, query, &mut |record| records.push(record))?;
    Ok(records)
}

/// Hands every record a query matches to `visit`, one page at a time, so that memory contains
/// one page of records, not all of them.
pub(crate) fn each_record(
    tx: &dyn ReadTx,
    mut query: RecordQuery,
    visit: &mut dyn FnMut(Record),
) -> Result<(), StoreError> {
    query.limit = steward_store::MAX_PAGE;
    loop {
        let page = tx.records(&query)?;
        page.items.into_iter().for_each(&mut *visit);
        match page.next_cursor {
            Some(cursor) => query.after = Some(cursor),
            None => return Ok(()),
        }
    }
}

fn approved_entries(tx: &dyn ReadTx) -> Result<Vec<ApprovedEntry>, StoreError> {
    let mut entries = Vec::new();
    for kind in [Kind::Timesheet, Kind::Expense] {
        for state in ["approved", "invoiced"] {
            let by_submitter = RecordQuery {
                kind: Some(kind),
                state: Some(state.into()),
                equal_fields: vec![("approved_by".into(), "submitted_by".into())],
                ..Default::default()
            };
            let by_owner = RecordQuery {
                kind: Some(kind),
                state: Some(state.into()),
                fields: vec![("submitted_by".into(), Value::Null)],
                equal_fields: vec![("approved_by".into(), "employee".into())],
                ..Default::default()
            };
            for record in all_records(tx, by_submitter)?
                .into_iter()
                .chain(all_records(tx, by_owner)?)
            {
                let (Some(employee), Some(approver)) =
                    (record.ref_id("employee"), record.ref_id("approved_by"))
                else {
                    continue;
                };
                entries.push(ApprovedEntry {
                    record: record.reference(),
                    employee: employee.to_string(),
                    submitted_by: record.ref_id("submitted_by").map(str::to_string),
                    approved_by: approver.to_string(),
                    date: record.date("date"),
                });
            }
        }
    }
    Ok(entries)
}

fn project_time(tx: &dyn ReadTx) -> Result<Vec<ProjectTime>, StoreError> {
    let rows = tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Timesheet),
        group_by: vec![
            "project".into(),
            format!("attributes.{UNRESOLVED_REFS}.project"),
        ],
        sum: Some("hours".into()),
        states: vec!["draft".into(), "submitted".into(), "approved".into()],
        min_sum: None,
        range: None,
    })?;
    Ok(rows
        .into_iter()
        .map(|row| ProjectTime {
            project: text(&row.keys[0]),
            unresolved: text(&row.keys[1]),
            hours: row.sum,
            entries: row.count,
        })
        .collect())
}

fn timed_entries(tx: &dyn ReadTx) -> Result<Vec<TimedEntry>, StoreError> {
    // Only the fields the check reads: a firm that times its work has hundreds of thousands
    // of timed entries, and whole records of them would not fit a small server's memory.
    let query = RecordQuery {
        kind: Some(Kind::Timesheet),
        present: vec!["started_at".into(), "ended_at".into()],
        only_fields: vec!["employee".into(), "started_at".into(), "ended_at".into()],
        ..Default::default()
    };
    let mut entries = Vec::new();
    each_record(tx, query, &mut |record| {
        if record.state == "rejected" {
            return;
        }
        let (Some(start), Some(end), Some(employee)) = (
            record.datetime("started_at"),
            record.datetime("ended_at"),
            record.ref_id("employee"),
        ) else {
            return;
        };
        entries.push(TimedEntry {
            employee: employee.to_string(),
            id: record.id.clone(),
            start,
            end,
        });
    })?;
    Ok(entries)
}
