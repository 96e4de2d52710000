//! Checks on timesheet entries in the command path, before the first write: no date beyond
//! the person's local today plus the firm's tolerance, no day over 24 hours for one person,
//! and timed entries cut at the person's local midnight.
//!
//! People and rules are held to these checks. Connectors mirroring another system of record
//! (actor kind `integration`) are not, because Steward cannot correct the source; the
//! `entry_validity` and `daily_hours` controls raise findings on what they store instead.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use steward_controls::settings::{DaySpan, FirmSettings};
use steward_domain::localday::{self, DayPart};
use steward_domain::plan::Planned;
use steward_domain::{
    ActorKind, Command, CommandContext, DomainError, FieldError, Kind, Record, new_id,
};
use steward_store::{ReadTx, RecordQuery, StoreError, WriteTx};

use crate::error::EngineError;
use crate::pipeline::{Env, Outcome, apply};

/// Entry states whose hours no longer count towards a day.
const NOT_COUNTED: &[&str] = &["rejected", "written_off"];

/// Fields whose change makes an update go through the checks again.
const CHECKED_FIELDS: &[&str] = &["employee", "date", "hours", "started_at", "ended_at"];

fn checked_actor(context: &CommandContext) -> bool {
    matches!(context.actor.kind, ActorKind::User | ActorKind::Rule)
}

fn invalid(field: &str, value: &Value, message: String) -> EngineError {
    DomainError::field(Kind::Timesheet, FieldError::new(field, value, message)).into()
}

/// The time zone of a person's working day: their own, else their work calendar's, else UTC.
pub fn person_zone(tx: &dyn ReadTx, employee: &Record) -> Result<Tz, StoreError> {
    let own = employee.text("timezone").and_then(|z| Tz::from_str(z).ok());
    if let Some(zone) = own {
        return Ok(zone);
    }
    let calendar = match employee.ref_id("calendar") {
        Some(id) => tx.record(Kind::WorkCalendar, id)?,
        None => None,
    };
    Ok(calendar
        .and_then(|c| c.text("timezone").and_then(|z| Tz::from_str(z).ok()))
        .unwrap_or(Tz::UTC))
}

/// The tolerance of future dates, from the newest installed control settings. The parsed
/// settings are kept per version, so most writes read one row and parse nothing.
fn future_tolerance(tx: &dyn ReadTx) -> Result<DaySpan, StoreError> {
    static CACHE: Mutex<Option<(i64, Arc<FirmSettings>)>> = Mutex::new(None);
    let Some(stored) = tx.control_settings()? else {
        return Ok(FirmSettings::default().controls.timesheets.future_tolerance);
    };
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let settings = match &*cache {
        Some((version, settings)) if *version == stored.version => Arc::clone(settings),
        _ => {
            let settings: FirmSettings =
                serde_json::from_value(stored.definition).unwrap_or_default();
            let settings = Arc::new(settings);
            *cache = Some((stored.version, Arc::clone(&settings)));
            settings
        }
    };
    Ok(settings.controls.timesheets.future_tolerance)
}

fn parse_instant(
    fields: &Map<String, Value>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, EngineError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|t| Some(t.with_timezone(&Utc)))
            .ok_or_else(|| {
                invalid(
                    name,
                    value,
                    "is not a date and time; write RFC 3339 with an offset, such as 2026-12-03T22:30:00+01:00".into(),
                )
            }),
    }
}

fn parse_hours(value: &Value) -> Option<Decimal> {
    match value {
        Value::String(text) => Decimal::from_str(text.trim()).ok(),
        Value::Number(number) => Decimal::from_str(&number.to_string()).ok(),
        _ => None,
    }
}

/// Cuts a new timed entry at the person's local midnight. Returns the fields of each part
/// when the entry crosses one, and `None` when it stays whole or is not timed.
fn split_fields(
    tx: &dyn ReadTx,
    fields: &Map<String, Value>,
) -> Result<Option<Vec<(DayPart, Map<String, Value>)>>, EngineError> {
    let (Some(start), Some(end)) = (
        parse_instant(fields, "started_at")?,
        parse_instant(fields, "ended_at")?,
    ) else {
        return Ok(None);
    };
    if end <= start {
        return Ok(None);
    }
    let Some(employee_id) = fields.get("employee").and_then(Value::as_str) else {
        return Ok(None);
    };
    let Some(employee) = tx.record(Kind::Employee, employee_id)? else {
        return Ok(None);
    };
    let zone = person_zone(tx, &employee)?;
    let elapsed = Decimal::from((end - start).num_seconds()) / Decimal::from(3600);
    let hours = fields
        .get("hours")
        .and_then(parse_hours)
        .unwrap_or_else(|| localday::round_hours(elapsed));
    let parts = localday::split_by_local_day(zone, start, end, hours);
    if parts.len() < 2 {
        return Ok(None);
    }
    Ok(Some(
        parts
            .into_iter()
            .map(|part| {
                let mut part_fields = fields.clone();
                part_fields.insert("date".into(), json!(part.date));
                part_fields.insert("hours".into(), json!(part.hours.to_string()));
                part_fields.insert("started_at".into(), json!(part.start));
                part_fields.insert("ended_at".into(), json!(part.end));
                (part, part_fields)
            })
            .collect(),
    ))
}

/// Creates a timed entry that crosses the person's local midnight as one entry per local
/// day, all or none. The first part keeps the requested id; each part records the whole
/// entry it came from under `attributes.split`. Returns `None` when no cut is needed.
pub(crate) fn create_split(
    tx: &mut dyn WriteTx,
    env: &Env,
    id: &Option<String>,
    state: &Option<String>,
    fields: &Map<String, Value>,
    attributes: &Map<String, Value>,
    context: &CommandContext,
) -> Result<Option<Outcome>, EngineError> {
    if !checked_actor(context) {
        return Ok(None);
    }
    let Some(parts) = split_fields(tx, fields)? else {
        return Ok(None);
    };
    let ids: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(index, _)| match (index, id) {
            (0, Some(id)) => id.clone(),
            _ => new_id(),
        })
        .collect();
    let whole = json!({
        "started_at": fields.get("started_at"),
        "ended_at": fields.get("ended_at"),
        "entries": ids,
    });
    let mut result: Option<Result<Outcome, EngineError>> = None;
    tx.nested(&mut |tx| {
        let mut first: Option<Outcome> = None;
        for (index, (_, part_fields)) in parts.iter().enumerate() {
            let mut part_attributes = attributes.clone();
            let mut split = whole.clone();
            split["part"] = json!(index + 1);
            part_attributes.insert("split".into(), split);
            let command = Command::Create {
                kind: Kind::Timesheet,
                id: Some(ids[index].clone()),
                state: state.clone(),
                fields: part_fields.clone(),
                attributes: part_attributes,
            };
            match apply(tx, env, command, context.clone()) {
                Ok(outcome) => match &mut first {
                    None => first = Some(outcome),
                    Some(first) => first.jobs += outcome.jobs,
                },
                Err(error) => {
                    result = Some(Err(error));
                    return false;
                }
            }
        }
        result = first.map(Ok);
        true
    })?;
    result.transpose()
}

fn other_hours_on_day(
    tx: &dyn ReadTx,
    employee: &str,
    date: NaiveDate,
    except: &str,
) -> Result<(Decimal, usize), StoreError> {
    let query = RecordQuery {
        kind: Some(Kind::Timesheet),
        fields: vec![
            ("employee".into(), json!(employee)),
            ("date".into(), json!(date)),
        ],
        ..Default::default()
    };
    let mut total = Decimal::ZERO;
    let mut count = 0;
    for record in crate::controls::all_records(tx, query)? {
        if record.id == except || NOT_COUNTED.contains(&record.state.as_str()) {
            continue;
        }
        total += record.decimal("hours").unwrap_or_default();
        count += 1;
    }
    Ok((total, count))
}

/// Rejects an entry that a person or rule writes with a date beyond the person's local
/// today plus the tolerance, a start and end on another local day than its
/// date, or a day total over 24 hours.
pub(crate) fn check_entry(
    tx: &mut dyn WriteTx,
    env: &Env,
    planned: &Planned,
    created: bool,
) -> Result<(), EngineError> {
    let record = &planned.record;
    if record.kind != Kind::Timesheet
        || !matches!(planned.event.actor.kind, ActorKind::User | ActorKind::Rule)
        || NOT_COUNTED.contains(&record.state.as_str())
    {
        return Ok(());
    }
    let changed = created
        || CHECKED_FIELDS
            .iter()
            .any(|f| planned.event.changes.contains_key(*f));
    if !changed {
        return Ok(());
    }
    // Negative hours, more than 24 in one entry and an end before the start are rejected
    // by the domain for every actor.
    let hours = record.decimal("hours").unwrap_or_default();
    let (Some(employee_id), Some(date)) = (record.ref_id("employee"), record.date("date")) else {
        return Ok(());
    };
    let Some(employee) = tx.record(Kind::Employee, employee_id)? else {
        return Ok(());
    };
    let zone = person_zone(tx, &employee)?;
    let today = env.now.with_timezone(&zone).date_naive();
    let tolerance = future_tolerance(tx)?;
    let latest = tolerance.add_to(today, None);
    if date > latest {
        return Err(invalid(
            "date",
            &json!(date),
            format!(
                "{date} is in the future: it is {today} in {zone} for {}, and entries may be dated at most {tolerance} ahead (until {latest}); log the time on the day it was worked",
                employee.title()
            ),
        ));
    }
    if let (Some(start), Some(end)) = (record.datetime("started_at"), record.datetime("ended_at"))
        && start <= end
    {
        let parts = localday::split_by_local_day(zone, start, end, hours);
        if parts.len() > 1 {
            return Err(invalid(
                "ended_at",
                &json!(end),
                format!(
                    "the entry crosses midnight in {zone}, the time zone of {}; change it into one entry per local day, or create it anew and Steward splits it",
                    employee.title()
                ),
            ));
        }
        if parts[0].date != date {
            return Err(invalid(
                "date",
                &json!(date),
                format!(
                    "the entry starts on {} in {zone}, the time zone of {}, not on {date}; set `date` to {}",
                    parts[0].date,
                    employee.title(),
                    parts[0].date
                ),
            ));
        }
    }
    let (others, count) = other_hours_on_day(tx, employee_id, date, &record.id)?;
    let total = others + hours;
    if total > Decimal::from(24) {
        let entries = if count == 1 { "entry" } else { "entries" };
        return Err(invalid(
            "hours",
            &json!(hours.normalize().to_string()),
            format!(
                "{} would log {} hours on {date} ({} hours already in {count} other {entries}), more than the 24 hours of a day; correct the hours or the other entries",
                employee.title(),
                total.normalize(),
                others.normalize()
            ),
        ));
    }
    Ok(())
}
