//! Timesheet cut-offs: gathers each active person's expected and logged hours for the periods
//! a cut-off looks at, raises `timesheet_incomplete`, and plans the reminder to the person
//! before the cut-off and the escalation to their manager after it.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::json;
use steward_controls::settings::{FirmSettings, weekdays_calendar};
use steward_controls::timesheets::{
    LeaveSpan, PeriodLog, PeriodSpan, cutoff_due, expected_hours, timesheet_incomplete,
};
use steward_controls::{People, TIMESHEET_INCOMPLETE};
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, RecordRef};
use steward_store::{AggregateQuery, FieldRange, ReadTx, StoreError};

use crate::steps::{ControlStep, Notice};

/// Closed periods looked at for findings, the latest included. Only the latest closed period
/// is escalated; older ones were escalated when they closed.
const CLOSED_PERIODS_REVIEWED: usize = 4;

/// The role notified about a person who has no manager, or who is their own manager.
const FALLBACK_ROLE: &str = "operations";

struct Window {
    cutoff: String,
    span: PeriodSpan,
    closed: bool,
    /// The reminder or escalation instant when this window's step is due.
    step_at: Option<DateTime<Utc>>,
}

/// Raises `timesheet_incomplete` and plans the steps due at `now`. An escalation instant
/// before `installed_at` sends nothing.
pub(crate) fn check(
    tx: &dyn ReadTx,
    settings: &FirmSettings,
    people: &People,
    now: DateTime<Utc>,
    installed_at: Option<DateTime<Utc>>,
) -> Result<(Vec<RaisedFinding>, Vec<ControlStep>), StoreError> {
    let timesheets = &settings.controls.timesheets;
    if !settings.controls.is_on(TIMESHEET_INCOMPLETE) {
        return Ok((Vec::new(), Vec::new()));
    }
    let zone = Tz::from_str(&timesheets.timezone).unwrap_or(Tz::UTC);
    let mut windows = Vec::new();
    for cutoff in &timesheets.cutoffs {
        let due = match cutoff_due(cutoff, zone, now) {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(cutoff = %cutoff.name, %error, "a cut-off cannot be evaluated");
                continue;
            }
        };
        if let Some((at, span)) = due.remind {
            windows.push(Window {
                cutoff: cutoff.name.clone(),
                span,
                closed: false,
                step_at: Some(at),
            });
        }
        if let Some((at, mut span)) = due.escalate {
            for index in 0..CLOSED_PERIODS_REVIEWED {
                windows.push(Window {
                    cutoff: cutoff.name.clone(),
                    span,
                    closed: true,
                    step_at: (index == 0 && installed_at.is_none_or(|i| at >= i)).then_some(at),
                });
                span = span.previous();
            }
        }
    }
    if windows.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let first = windows.iter().map(|w| w.span.start).min().expect("windows");
    let last = windows.iter().map(|w| w.span.end).max().expect("windows");

    let active = active_employees(tx)?;
    let leaves = approved_leaves(tx, first, last)?;
    let logged = logged_hours(tx, &timesheets.counted_states, first, last)?;
    let default_calendar = weekdays_calendar();

    let mut logs = Vec::new();
    let mut steps = Vec::new();
    for window in &windows {
        for employee in &active {
            let calendar = people
                .get(employee)
                .and_then(|p| p.calendar.as_ref())
                .unwrap_or(&default_calendar);
            let no_leave = Vec::new();
            let person_leaves = leaves.get(employee).unwrap_or(&no_leave);
            let expected = expected_hours(calendar, person_leaves, &window.span);
            let hours = logged
                .get(employee)
                .map(|days| {
                    days.iter()
                        .filter(|(d, _)| window.span.start <= *d && *d <= window.span.end)
                        .map(|(_, h)| *h)
                        .sum()
                })
                .unwrap_or(Decimal::ZERO);
            let log = PeriodLog {
                employee: employee.clone(),
                cutoff: window.cutoff.clone(),
                span: window.span,
                expected,
                logged: hours,
                closed: window.closed,
            };
            if let Some(at) = window.step_at
                && log.is_incomplete(timesheets.complete_at)
            {
                steps.push(step_for(people, &log, at));
            }
            logs.push(log);
        }
    }
    let findings = timesheet_incomplete(people, &logs, timesheets.complete_at);
    Ok((findings, steps))
}

fn step_for(people: &People, log: &PeriodLog, at: DateTime<Utc>) -> ControlStep {
    let person = people.get(&log.employee);
    let name = person
        .map(|p| p.name.clone())
        .unwrap_or_else(|| format!("employee {}", log.employee));
    let expected = log.expected.hours.normalize();
    let logged = log.logged.normalize();
    let period = format!(
        "{} ({} to {})",
        log.span.label(),
        log.span.start,
        log.span.end
    );
    let data = json!({
        "employee": log.employee,
        "employee_name": name,
        "cutoff": log.cutoff,
        "period": log.span.label(),
        "from": log.span.start,
        "to": log.span.end,
        "expected_hours": expected.to_string(),
        "logged_hours": logged.to_string(),
        "due_at": at,
    });
    let record = RecordRef::new(Kind::Employee, log.employee.clone());
    if !log.closed {
        return ControlStep {
            key: format!("{}/remind", log.key()),
            control: TIMESHEET_INCOMPLETE,
            event: "timesheet.reminder".into(),
            record,
            notices: vec![Notice {
                recipient: Some(log.employee.clone()),
                role: None,
                message: format!(
                    "Your timesheet for {period} has {logged} of {expected} expected hours; complete it before the {} cut-off",
                    log.cutoff
                ),
            }],
            data,
        };
    }
    let manager = person
        .and_then(|p| p.manager.clone())
        .filter(|m| *m != log.employee);
    let message = format!(
        "{name}'s timesheet for {period} is incomplete after the {} cut-off: {logged} of {expected} expected hours",
        log.cutoff
    );
    let notice = match manager {
        Some(manager) => Notice {
            recipient: Some(manager),
            role: None,
            message,
        },
        None => Notice {
            recipient: None,
            role: Some(FALLBACK_ROLE.into()),
            message: format!("{message}; {name} has no manager to escalate to"),
        },
    };
    ControlStep {
        key: format!("{}/escalate", log.key()),
        control: TIMESHEET_INCOMPLETE,
        event: "timesheet.escalated".into(),
        record,
        notices: vec![notice],
        data,
    }
}

fn active_employees(tx: &dyn ReadTx) -> Result<Vec<String>, StoreError> {
    let mut active = Vec::new();
    tx.scan_records(Kind::Employee, &mut |record| {
        if record.state == "active" {
            active.push(record.id.clone());
        }
        Ok(true)
    })?;
    Ok(active)
}

fn approved_leaves(
    tx: &dyn ReadTx,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<HashMap<String, Vec<LeaveSpan>>, StoreError> {
    let mut leaves: HashMap<String, Vec<LeaveSpan>> = HashMap::new();
    tx.scan_records(Kind::Leave, &mut |record| {
        if record.state != "approved" {
            return Ok(true);
        }
        let (Some(employee), Some(start), Some(end)) = (
            record.ref_id("employee"),
            record.date("start_date"),
            record.date("end_date"),
        ) else {
            return Ok(true);
        };
        if end >= first && start <= last {
            leaves
                .entry(employee.to_string())
                .or_default()
                .push(LeaveSpan {
                    start,
                    end,
                    hours: record.decimal("hours"),
                });
        }
        Ok(true)
    })?;
    Ok(leaves)
}

/// Hours per person and day between `first` and `last`.
fn logged_hours(
    tx: &dyn ReadTx,
    states: &[String],
    first: NaiveDate,
    last: NaiveDate,
) -> Result<HashMap<String, Vec<(NaiveDate, Decimal)>>, StoreError> {
    let rows = tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Timesheet),
        group_by: vec!["employee".into(), "date".into()],
        sum: Some("hours".into()),
        states: states.to_vec(),
        min_sum: None,
        range: Some(FieldRange {
            field: "date".into(),
            from: Some(first.to_string()),
            to: Some(last.to_string()),
        }),
    })?;
    let mut logged: HashMap<String, Vec<(NaiveDate, Decimal)>> = HashMap::new();
    for row in rows {
        let (Some(employee), Some(date)) = (
            row.keys[0].as_str(),
            row.keys[1]
                .as_str()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
        ) else {
            continue;
        };
        if first <= date && date <= last {
            logged
                .entry(employee.to_string())
                .or_default()
                .push((date, row.sum));
        }
    }
    Ok(logged)
}
