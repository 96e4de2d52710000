//! Planning a command: validation against the schema and the state machine, and the event
//! that describes the change. The store applies the plan in the same transaction that appends
//! the event.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::actor::Actor;
use crate::command::CommandContext;
use crate::error::{DomainError, FieldError};
use crate::event::{ATTRIBUTE_PREFIX, Event, EventKind, FieldChange, STATE_FIELD};
use crate::kinds::Kind;
use crate::record::{Record, RecordRef};
use crate::schema::{FieldType, KindSchema};
use crate::value::{self, normalize};

/// A validated change, ready to be stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub record: Record,
    pub event: Event,
    /// Reference fields whose target must exist: (field, kind, id).
    pub references: Vec<(String, Kind, String)>,
}

/// Ids and time for a plan, chosen by the caller so that planning stays pure.
#[derive(Clone, Debug)]
pub struct Stamp {
    pub event_id: String,
    pub correlation: String,
    pub now: DateTime<Utc>,
}

/// Plans the creation of a record.
pub fn plan_create(
    kind: Kind,
    id: String,
    state: Option<&str>,
    fields: &Map<String, Value>,
    attributes: &Map<String, Value>,
    context: &CommandContext,
    stamp: &Stamp,
) -> Result<Planned, DomainError> {
    let schema = kind.schema();
    let mut errors = Vec::new();
    let normalized = normalize_fields(schema, fields, &Map::new(), &mut errors);
    for def in schema.fields.iter().filter(|f| f.required) {
        let reported = errors.iter().any(|e| e.field == def.name);
        if !reported && normalized.get(def.name).is_none_or(Value::is_null) {
            errors.push(FieldError::new(def.name, &Value::Null, "is required"));
        }
    }
    check_kind(kind, &normalized, &context.actor, stamp.now, &mut errors);
    if !errors.is_empty() {
        return Err(DomainError::Validation { kind, errors });
    }

    let state = initial_state(schema, state, &context.actor)?;
    let stored: Map<String, Value> = normalized
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    let attributes: Map<String, Value> = attributes
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    let mut changes = BTreeMap::new();
    changes.insert(
        STATE_FIELD.to_string(),
        change(Value::Null, Value::from(state)),
    );
    for (name, value) in &stored {
        changes.insert(name.clone(), change(Value::Null, value.clone()));
    }
    for (name, value) in &attributes {
        changes.insert(
            format!("{ATTRIBUTE_PREFIX}{name}"),
            change(Value::Null, value.clone()),
        );
    }

    let references = references_of(schema, &stored, None);
    let record = Record {
        id,
        kind,
        state: state.to_string(),
        version: 1,
        created_at: stamp.now,
        updated_at: stamp.now,
        fields: stored,
        attributes,
    };
    let event = record_event(&record, EventKind::Created, changes, context, stamp);
    Ok(Planned {
        record,
        event,
        references,
    })
}

/// Plans a change to an existing record. Returns `None` when nothing would change, so a
/// repeated command appends no event.
pub fn plan_update(
    current: &Record,
    fields: &Map<String, Value>,
    attributes: &Map<String, Value>,
    state: Option<&str>,
    expected_version: Option<i64>,
    context: &CommandContext,
    stamp: &Stamp,
) -> Result<Option<Planned>, DomainError> {
    let kind = current.kind;
    let schema = kind.schema();
    if let Some(expected) = expected_version.filter(|v| *v != current.version) {
        return Err(DomainError::VersionConflict {
            kind,
            id: current.id.clone(),
            expected,
            actual: current.version,
        });
    }

    let mut errors = Vec::new();
    let normalized = normalize_fields(schema, fields, &current.fields, &mut errors);
    let mut merged = current.fields.clone();
    for (name, value) in &normalized {
        merged.insert(name.clone(), value.clone());
    }
    revalidate_money(schema, fields, &mut merged, &mut errors);
    for def in schema.fields.iter().filter(|f| f.required) {
        let reported = errors.iter().any(|e| e.field == def.name);
        if !reported && merged.get(def.name).is_none_or(Value::is_null) {
            errors.push(FieldError::new(
                def.name,
                &Value::Null,
                "is required and cannot be cleared",
            ));
        }
    }
    check_kind(kind, &merged, &context.actor, stamp.now, &mut errors);
    if !errors.is_empty() {
        return Err(DomainError::Validation { kind, errors });
    }

    let new_state = match state {
        Some(to) if to != current.state => {
            check_transition(schema, current, to, &context.actor)?;
            to.to_string()
        }
        _ => current.state.clone(),
    };

    let mut changes = BTreeMap::new();
    if new_state != current.state {
        changes.insert(
            STATE_FIELD.to_string(),
            change(
                Value::from(current.state.clone()),
                Value::from(new_state.clone()),
            ),
        );
    }
    let merged: Map<String, Value> = merged.into_iter().filter(|(_, v)| !v.is_null()).collect();
    for def in schema.fields {
        let old = current.fields.get(def.name).cloned().unwrap_or(Value::Null);
        let new = merged.get(def.name).cloned().unwrap_or(Value::Null);
        if old != new {
            changes.insert(def.name.to_string(), change(old, new));
        }
    }
    let mut new_attributes = current.attributes.clone();
    for (name, value) in attributes {
        let old = current.attributes.get(name).cloned().unwrap_or(Value::Null);
        if value.is_null() {
            new_attributes.remove(name);
        } else {
            new_attributes.insert(name.clone(), value.clone());
        }
        if old != *value {
            changes.insert(
                format!("{ATTRIBUTE_PREFIX}{name}"),
                change(old, value.clone()),
            );
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let locked = context.actor.kind == crate::actor::ActorKind::User
        && schema.locked_states().contains(&current.state.as_str());
    if locked && changes.keys().any(|name| name != STATE_FIELD) {
        return Err(DomainError::Locked {
            kind,
            id: current.id.clone(),
            state: current.state.clone(),
        });
    }

    let references = references_of(schema, &merged, Some(&current.fields));
    let record = Record {
        id: current.id.clone(),
        kind,
        state: new_state,
        version: current.version + 1,
        created_at: current.created_at,
        updated_at: stamp.now,
        fields: merged,
        attributes: new_attributes,
    };
    let event = record_event(&record, EventKind::Updated, changes, context, stamp);
    Ok(Some(Planned {
        record,
        event,
        references,
    }))
}

/// Plans a business event. Names are dotted lower-case words, such as `invoice.overdue`.
pub fn plan_business_event(
    name: &str,
    record: Option<RecordRef>,
    data: Value,
    context: &CommandContext,
    stamp: &Stamp,
) -> Result<Event, DomainError> {
    if !is_event_name(name) {
        return Err(DomainError::Invalid(format!(
            "`{name}` is not a valid event name; use dotted lower-case words such as \
             `invoice.overdue`"
        )));
    }
    if name.ends_with(".created") || name.ends_with(".updated") {
        return Err(DomainError::Invalid(format!(
            "`{name}` is reserved for record changes; choose another name"
        )));
    }
    Ok(Event {
        seq: 0,
        id: stamp.event_id.clone(),
        kind: EventKind::Business,
        name: name.to_string(),
        record,
        record_version: None,
        changes: BTreeMap::new(),
        data,
        actor: context.actor.clone(),
        cause: context.cause.clone(),
        correlation: stamp.correlation.clone(),
        depth: context.depth,
        occurred_at: stamp.now,
    })
}

pub fn is_event_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 2
        && name.len() <= 100
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

fn change(old: Value, new: Value) -> FieldChange {
    FieldChange { old, new }
}

fn record_event(
    record: &Record,
    kind: EventKind,
    changes: BTreeMap<String, FieldChange>,
    context: &CommandContext,
    stamp: &Stamp,
) -> Event {
    Event {
        seq: 0,
        id: stamp.event_id.clone(),
        kind,
        name: format!("{}.{}", record.kind.name(), kind.as_str()),
        record: Some(record.reference()),
        record_version: Some(record.version),
        changes,
        data: Value::Null,
        actor: context.actor.clone(),
        cause: context.cause.clone(),
        correlation: stamp.correlation.clone(),
        depth: context.depth,
        occurred_at: stamp.now,
    }
}

fn initial_state(
    schema: &KindSchema,
    requested: Option<&str>,
    actor: &Actor,
) -> Result<&'static str, DomainError> {
    let Some(requested) = requested else {
        return Ok(schema.initial[0]);
    };
    let Some(state) = schema.states.iter().find(|s| **s == requested) else {
        return Err(DomainError::UnknownState {
            kind: schema.kind,
            state: requested.to_string(),
            allowed: schema.states.iter().map(|s| s.to_string()).collect(),
        });
    };
    if !actor.is_mirror() && !schema.initial.contains(state) {
        return Err(DomainError::InitialStateNotAllowed {
            kind: schema.kind,
            state: requested.to_string(),
            allowed: schema.initial.iter().map(|s| s.to_string()).collect(),
        });
    }
    Ok(state)
}

fn check_transition(
    schema: &KindSchema,
    current: &Record,
    to: &str,
    actor: &Actor,
) -> Result<(), DomainError> {
    if !schema.has_state(to) {
        return Err(DomainError::UnknownState {
            kind: schema.kind,
            state: to.to_string(),
            allowed: schema.states.iter().map(|s| s.to_string()).collect(),
        });
    }
    // A mirror follows the system of record, which may have moved through states we never saw.
    if actor.is_mirror() || schema.allows(&current.state, to) {
        return Ok(());
    }
    Err(DomainError::TransitionNotAllowed {
        kind: schema.kind,
        id: current.id.clone(),
        from: current.state.clone(),
        to: to.to_string(),
        allowed: schema
            .next_states(&current.state)
            .iter()
            .map(|s| s.to_string())
            .collect(),
    })
}

/// Normalizes the fields of a command, collecting every error instead of stopping at the first.
fn normalize_fields(
    schema: &KindSchema,
    fields: &Map<String, Value>,
    current: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Map<String, Value> {
    let mut normalized = Map::new();
    for (name, value) in fields {
        let Some(def) = schema.field(name) else {
            errors.push(FieldError::new(
                name.as_str(),
                value,
                format!(
                    "is not a field of {}; known fields are {}, and firm-specific values go \
                     under `attributes`",
                    schema.label,
                    schema.field_names().join(", ")
                ),
            ));
            continue;
        };
        let currency = currency_for(def.ty, fields, current);
        match normalize(def, value, currency.as_deref()) {
            Ok(v) => {
                normalized.insert(name.clone(), v);
            }
            Err(message) => errors.push(FieldError::new(name.as_str(), value, message)),
        }
    }
    normalized
}

/// The currency code a money field is in: the one sent with the command, else the stored one.
fn currency_for(
    ty: FieldType,
    fields: &Map<String, Value>,
    current: &Map<String, Value>,
) -> Option<String> {
    let FieldType::Money { currency_field } = ty else {
        return None;
    };
    let value = fields
        .get(currency_field)
        .or_else(|| current.get(currency_field))?;
    value.as_str().map(|s| s.trim().to_ascii_uppercase())
}

/// Checks stored money fields again when their currency changes, so a change from EUR to JPY
/// cannot leave an amount with cents behind.
fn revalidate_money(
    schema: &KindSchema,
    sent: &Map<String, Value>,
    merged: &mut Map<String, Value>,
    errors: &mut Vec<FieldError>,
) {
    for def in schema.fields {
        let FieldType::Money { currency_field } = def.ty else {
            continue;
        };
        if sent.contains_key(def.name) || !sent.contains_key(currency_field) {
            continue;
        }
        let Some(amount) = merged.get(def.name).filter(|v| !v.is_null()).cloned() else {
            continue;
        };
        let currency = merged
            .get(currency_field)
            .and_then(Value::as_str)
            .map(str::to_string);
        match normalize(def, &amount, currency.as_deref()) {
            Ok(v) => {
                merged.insert(def.name.to_string(), v);
            }
            Err(message) => errors.push(FieldError::new(
                def.name,
                &amount,
                format!(
                    "{message}; send a new `{}` with the currency change",
                    def.name
                ),
            )),
        }
    }
}

fn references_of(
    schema: &KindSchema,
    fields: &Map<String, Value>,
    before: Option<&Map<String, Value>>,
) -> Vec<(String, Kind, String)> {
    let mut references = Vec::new();
    for def in schema.fields {
        let value = match fields.get(def.name) {
            Some(v) if before.and_then(|b| b.get(def.name)) != Some(v) => v,
            _ => continue,
        };
        match (def.ty, value) {
            (FieldType::Ref(kind), Value::String(id)) => {
                references.push((def.name.to_string(), kind, id.clone()));
            }
            (FieldType::RefList(kind), Value::Array(ids)) => {
                for id in ids.iter().filter_map(Value::as_str) {
                    references.push((def.name.to_string(), kind, id.to_string()));
                }
            }
            _ => {}
        }
    }
    references
}

/// Rules of one kind that involve several fields.
fn check_kind(
    kind: Kind,
    fields: &Map<String, Value>,
    actor: &Actor,
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) {
    let decimal = |name: &str| fields.get(name).and_then(|v| value::decimal(v).ok());
    let date = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    };
    // No place on earth is more than 14 hours ahead of UTC, so a later date is in the future
    // wherever the person is.
    let latest_local_date = (now + Duration::hours(14)).date_naive();

    for name in ["discount", "tax_rate", "percentage"] {
        if let Some(d) = decimal(name).filter(|d| *d < Decimal::ZERO || *d > Decimal::ONE_HUNDRED) {
            errors.push(FieldError::new(
                name,
                &fields[name],
                format!("{d} is not a percentage between 0 and 100"),
            ));
        }
    }
    for (start, end) in [("start_date", "end_date"), ("period_start", "period_end")] {
        if let (Some(s), Some(e)) = (date(start), date(end))
            && e < s
        {
            errors.push(FieldError::new(
                end,
                &fields[end],
                format!("{e} is before `{start}` {s}; the last day cannot precede the first"),
            ));
        }
    }
    if let Some(subject) = fields.get("subject_kind").and_then(Value::as_str)
        && Kind::parse(subject).is_none()
    {
        errors.push(FieldError::new(
            "subject_kind",
            &fields["subject_kind"],
            format!("`{subject}` is not a record kind"),
        ));
    }

    match kind {
        Kind::Timesheet => {
            if let Some(hours) = decimal("hours") {
                if hours < Decimal::ZERO {
                    errors.push(FieldError::new(
                        "hours",
                        &fields["hours"],
                        format!("{hours} is negative; correct the original entry instead"),
                    ));
                } else if hours > Decimal::from(24) {
                    errors.push(FieldError::new(
                        "hours",
                        &fields["hours"],
                        format!("{hours} hours do not fit in one day; split the entry by day"),
                    ));
                }
            }
            check_interval(fields, errors);
            // Future dates of time are checked in the engine, against the firm's tolerance
            // and the person's own time zone.
        }
        Kind::Expense => {
            if let Some(amount) = decimal("amount").filter(|a| *a < Decimal::ZERO) {
                errors.push(FieldError::new(
                    "amount",
                    &fields["amount"],
                    format!("{amount} is negative; an expense claims a cost paid"),
                ));
            }
            check_not_future(fields, actor, latest_local_date, errors);
        }
        Kind::Allocation => {
            if let Some(h) = decimal("hours_per_week")
                && (h <= Decimal::ZERO || h > Decimal::from(168))
            {
                errors.push(FieldError::new(
                    "hours_per_week",
                    &fields["hours_per_week"],
                    format!("{h} is not between 0 and 168 hours a week"),
                ));
            }
        }
        Kind::WorkCalendar => check_calendar(fields, errors),
        Kind::Contract => check_rate_card(fields, errors),
        _ => {}
    }
}

fn check_interval(fields: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    let instant = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    };
    if let (Some(start), Some(end)) = (instant("started_at"), instant("ended_at"))
        && end < start
    {
        errors.push(FieldError::new(
            "ended_at",
            &fields["ended_at"],
            "is before `started_at`; the entry must end after it starts",
        ));
    }
}

fn check_not_future(
    fields: &Map<String, Value>,
    actor: &Actor,
    latest_local_date: NaiveDate,
    errors: &mut Vec<FieldError>,
) {
    // Mirrors keep what the system of record holds, planned time included.
    if actor.is_mirror() {
        return;
    }
    let Some(value) = fields.get("date") else {
        return;
    };
    let Some(day) = value
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    else {
        return;
    };
    if day > latest_local_date {
        errors.push(FieldError::new(
            "date",
            value,
            format!("{day} is in the future; record work and costs once they happened"),
        ));
    }
}

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn check_calendar(fields: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    if let Some(week) = fields.get("week_hours").filter(|v| !v.is_null()) {
        match week.as_object() {
            None => errors.push(FieldError::new(
                "week_hours",
                week,
                "expected an object such as {\"mon\": \"8\", \"sat\": \"0\"}",
            )),
            Some(days) => {
                for (day, hours) in days {
                    let valid_day = WEEKDAYS.contains(&day.as_str());
                    let valid_hours = value::decimal(hours)
                        .is_ok_and(|h| h >= Decimal::ZERO && h <= Decimal::from(24));
                    if !valid_day || !valid_hours {
                        errors.push(FieldError::new(
                            format!("week_hours.{day}"),
                            hours,
                            "expected a weekday (mon to sun) with 0 to 24 hours",
                        ));
                    }
                }
            }
        }
    }
    if let Some(holidays) = fields.get("holidays").filter(|v| !v.is_null()) {
        let valid = holidays.as_array().is_some_and(|items| {
            items.iter().all(|item| {
                item.get("date")
                    .and_then(Value::as_str)
                    .is_some_and(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
            })
        });
        if !valid {
            errors.push(FieldError::new(
                "holidays",
                holidays,
                "expected a list such as [{\"date\": \"2026-12-25\", \"name\": \"Christmas\"}]",
            ));
        }
    }
}

fn check_rate_card(fields: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    let Some(card) = fields.get("rate_card").filter(|v| !v.is_null()) else {
        return;
    };
    let valid = card.as_object().is_some_and(|sections| {
        sections.iter().all(|(section, rates)| {
            (section == "roles" || section == "people")
                && rates.as_object().is_some_and(|rates| {
                    rates
                        .values()
                        .all(|r| value::decimal(r).is_ok_and(|d| d >= Decimal::ZERO))
                })
        })
    });
    if !valid {
        errors.push(FieldError::new(
            "rate_card",
            card,
            "expected {\"roles\": {\"Consultant\": \"120\"}, \"people\": {\"<employee id>\": \
             \"150\"}} with non-negative rates",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::new_id;
    use serde_json::json;

    fn stamp() -> Stamp {
        Stamp {
            event_id: new_id(),
            correlation: new_id(),
            now: "2026-12-04T12:00:00Z".parse().unwrap(),
        }
    }

    fn user() -> CommandContext {
        CommandContext::new(Actor::user("alice"))
    }

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn timesheet(extra: Value) -> Result<Planned, DomainError> {
        let mut f = fields(json!({"employee": new_id(), "date": "2026-12-03", "hours": "7.5"}));
        f.extend(fields(extra));
        plan_create(
            Kind::Timesheet,
            new_id(),
            None,
            &f,
            &Map::new(),
            &user(),
            &stamp(),
        )
    }

    #[test]
    fn create_records_every_field_in_the_event() {
        let planned = timesheet(json!({})).unwrap();
        assert_eq!(planned.record.state, "draft");
        assert_eq!(planned.event.name, "timesheet.created");
        assert_eq!(planned.event.changes["hours"].new, json!("7.5"));
        assert_eq!(planned.event.changes["state"].new, json!("draft"));
        assert_eq!(planned.references.len(), 1);
    }

    #[test]
    fn create_names_each_invalid_value() {
        let error =
            timesheet(json!({"hours": "25", "billable": "yes", "colour": "red"})).unwrap_err();
        let DomainError::Validation { errors, .. } = error else {
            panic!("{error:?}")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["billable", "colour", "hours"]);
        assert!(errors[2].message.contains("25 hours do not fit in one day"));
        assert_eq!(errors[1].value, json!("red"));
    }

    #[test]
    fn create_rejects_negative_and_overlong_time() {
        assert!(timesheet(json!({"hours": "-1"})).is_err());
        assert!(timesheet(json!({"hours": "25"})).is_err());
    }

    #[test]
    fn users_cannot_create_decided_records() {
        let f = fields(json!({"employee": new_id(), "date": "2026-12-03", "hours": "1"}));
        let error = plan_create(
            Kind::Timesheet,
            new_id(),
            Some("approved"),
            &f,
            &Map::new(),
            &user(),
            &stamp(),
        )
        .unwrap_err();
        assert!(matches!(error, DomainError::InitialStateNotAllowed { .. }));
        let mirror = CommandContext::new(Actor::integration("odoo"));
        let planned = plan_create(
            Kind::Timesheet,
            new_id(),
            Some("approved"),
            &f,
            &Map::new(),
            &mirror,
            &stamp(),
        );
        assert_eq!(planned.unwrap().record.state, "approved");
    }

    #[test]
    fn update_without_change_plans_nothing() {
        let planned = timesheet(json!({})).unwrap();
        let same = fields(json!({"hours": 7.5}));
        let outcome = plan_update(
            &planned.record,
            &same,
            &Map::new(),
            None,
            None,
            &user(),
            &stamp(),
        )
        .unwrap();
        assert!(outcome.is_none());
    }

    #[test]
    fn update_lists_old_and_new_values() {
        let planned = timesheet(json!({})).unwrap();
        let change = fields(json!({"hours": "8"}));
        let updated = plan_update(
            &planned.record,
            &change,
            &Map::new(),
            Some("submitted"),
            Some(1),
            &user(),
            &stamp(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(updated.record.version, 2);
        assert_eq!(
            updated.event.changes["hours"],
            FieldChange {
                old: json!("7.5"),
                new: json!("8")
            }
        );
        assert_eq!(updated.event.entered_state(), Some("submitted"));
    }

    #[test]
    fn update_checks_version_and_transitions() {
        let planned = timesheet(json!({})).unwrap();
        let none = Map::new();
        let stale = plan_update(
            &planned.record,
            &none,
            &none,
            Some("submitted"),
            Some(7),
            &user(),
            &stamp(),
        );
        assert!(matches!(stale, Err(DomainError::VersionConflict { .. })));
        let skip = plan_update(
            &planned.record,
            &none,
            &none,
            Some("invoiced"),
            None,
            &user(),
            &stamp(),
        );
        let Err(DomainError::TransitionNotAllowed { allowed, .. }) = skip else {
            panic!("{skip:?}")
        };
        assert_eq!(allowed, vec!["submitted"]);
    }

    #[test]
    fn approved_entries_are_locked_for_people() {
        let mirror = CommandContext::new(Actor::integration("odoo"));
        let f = fields(json!({"employee": new_id(), "date": "2026-12-01", "hours": "3"}));
        let planned = plan_create(
            Kind::Timesheet,
            new_id(),
            Some("approved"),
            &f,
            &Map::new(),
            &mirror,
            &stamp(),
        )
        .unwrap();
        let change = fields(json!({"hours": "9"}));
        let error = plan_update(
            &planned.record,
            &change,
            &Map::new(),
            None,
            None,
            &user(),
            &stamp(),
        )
        .unwrap_err();
        assert!(matches!(error, DomainError::Locked { .. }), "{error:?}");
        let same = fields(json!({"hours": "3"}));
        assert!(
            plan_update(
                &planned.record,
                &same,
                &Map::new(),
                None,
                None,
                &user(),
                &stamp()
            )
            .is_ok()
        );
        assert!(
            plan_update(
                &planned.record,
                &change,
                &Map::new(),
                None,
                None,
                &mirror,
                &stamp()
            )
            .is_ok()
        );
    }

    #[test]
    fn currency_change_revalidates_amounts() {
        let f = fields(
            json!({"employee": new_id(), "date": "2026-12-01", "category": "Meals",
            "currency": "EUR", "amount": "12.50"}),
        );
        let planned = plan_create(
            Kind::Expense,
            new_id(),
            None,
            &f,
            &Map::new(),
            &user(),
            &stamp(),
        )
        .unwrap();
        let to_yen = fields(json!({"currency": "JPY"}));
        let error = plan_update(
            &planned.record,
            &to_yen,
            &Map::new(),
            None,
            None,
            &user(),
            &stamp(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("amount"), "{error}");
    }

    #[test]
    fn business_event_names_are_checked() {
        let ok = plan_business_event("invoice.overdue", None, Value::Null, &user(), &stamp());
        assert!(ok.is_ok());
        for bad in ["overdue", "Invoice.Overdue", "timesheet.created", "a..b"] {
            assert!(
                plan_business_event(bad, None, Value::Null, &user(), &stamp()).is_err(),
                "{bad}"
            );
        }
    }
}
