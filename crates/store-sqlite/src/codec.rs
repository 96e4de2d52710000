//! Conversion between rows and store types.

use chrono::{DateTime, Utc};
use rusqlite::Row;
use serde_json::{Map, Value};
use steward_domain::{
    Actor, ActorKind, Event, EventKind, Finding, Kind, Record, RecordRef, Severity,
};
use steward_store::{Job, JobState, Run, RunStatus, StoreError, Token};

/// Instants are stored with a fixed width so that text order is time order.
pub fn ts(instant: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    // Written digit by digit: `format!` with padding cost more than the insert it feeds.
    fn push(out: &mut String, value: u32, width: usize) {
        let mut digits = [b'0'; 10];
        let mut rest = value;
        for slot in digits[..width].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.push_str(std::str::from_utf8(&digits[..width]).unwrap_or("0"));
    }
    let mut out = String::with_capacity(27);
    push(&mut out, instant.year().clamp(0, 9999) as u32, 4);
    out.push('-');
    push(&mut out, instant.month(), 2);
    out.push('-');
    push(&mut out, instant.day(), 2);
    out.push('T');
    push(&mut out, instant.hour(), 2);
    out.push(':');
    push(&mut out, instant.minute(), 2);
    out.push(':');
    push(&mut out, instant.second(), 2);
    out.push('.');
    push(&mut out, instant.timestamp_subsec_micros().min(999_999), 6);
    out.push('Z');
    out
}

pub fn parse_ts(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{text}`: {e}")))
}

pub fn opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.as_deref().map(parse_ts).transpose()
}

pub fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("JSON column: {e}")))
}

pub fn json_map(text: &str) -> Result<Map<String, Value>, StoreError> {
    match json(text)? {
        Value::Object(map) => Ok(map),
        other => Err(StoreError::Corrupt(format!(
            "expected a JSON object, found {other}"
        ))),
    }
}

pub fn kind(name: &str) -> Result<Kind, StoreError> {
    Kind::parse(name).ok_or_else(|| StoreError::Corrupt(format!("unknown record kind `{name}`")))
}

fn reference(
    kind_name: Option<String>,
    id: Option<String>,
) -> Result<Option<RecordRef>, StoreError> {
    match (kind_name, id) {
        (Some(k), Some(id)) => Ok(Some(RecordRef::new(kind(&k)?, id))),
        _ => Ok(None),
    }
}

type Fallible<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_a_fixed_width() {
        let instant = "2026-03-05T04:03:02.000007Z".parse().unwrap();
        assert_eq!(super::ts(instant), "2026-03-05T04:03:02.000007Z");
        let whole = "2026-12-31T23:59:59Z".parse().unwrap();
        assert_eq!(super::ts(whole), "2026-12-31T23:59:59.000000Z");
    }

    #[test]
    fn values_read_as_their_json() {
        use serde_json::json;
        for (text, value) in [
            (r#""e-1""#, json!("e-1")),
            (r#""7.5""#, json!("7.5")),
            (r#""say \"hi\"""#, json!("say \"hi\"")),
            (r#""caf\u00e9""#, json!("café")),
            ("true", json!(true)),
            ("12", json!(12)),
            ("null", json!(null)),
            (r#"{"a": [1]}"#, json!({"a": [1]})),
        ] {
            assert_eq!(super::json_value(text).unwrap(), value, "{text}");
        }
        assert!(super::json_value(r#""open"#).is_err());
    }
}

/// Reads a column, turning a SQLite error into a store error.
fn col<T: rusqlite::types::FromSql>(row: &Row, name: &str) -> Fallible<T> {
    row.get(name).map_err(crate::sql_error)
}

pub const RECORD_COLUMNS: &str =
    "kind, id, state, version, fields, attributes, created_at, updated_at";

pub fn record(row: &Row) -> Fallible<Record> {
    Ok(Record {
        kind: kind(&col::<String>(row, "kind")?)?,
        id: col(row, "id")?,
        state: col(row, "state")?,
        version: col(row, "version")?,
        fields: json_map(&col::<String>(row, "fields")?)?,
        attributes: json_map(&col::<String>(row, "attributes")?)?,
        created_at: parse_ts(&col::<String>(row, "created_at")?)?,
        updated_at: parse_ts(&col::<String>(row, "updated_at")?)?,
    })
}

/// Columns of a projection, before one column per field.
pub const PROJECTED_COLUMNS: &str = "kind, id, state, version, created_at, updated_at";

/// Decodes a row of a projection: [`PROJECTED_COLUMNS`], then the JSON text of each field
/// of `only`, NULL for a field the record does not set. Attributes are not read.
pub fn projected(row: &Row, only: &[String]) -> Fallible<Record> {
    let text = |at: usize| -> Fallible<&str> {
        row.get_ref(at)
            .map_err(crate::sql_error)?
            .as_str()
            .map_err(|e| StoreError::Corrupt(format!("record column {at}: {e}")))
    };
    let mut fields = Map::new();
    for (at, name) in only.iter().enumerate() {
        let value = row.get_ref(6 + at).map_err(crate::sql_error)?;
        if let Some(json) = value
            .as_str_or_null()
            .map_err(|e| StoreError::Corrupt(format!("field `{name}`: {e}")))?
        {
            fields.insert(name.clone(), json_value(json)?);
        }
    }
    Ok(Record {
        kind: kind(text(0)?)?,
        id: text(1)?.to_string(),
        state: text(2)?.to_string(),
        version: row.get(3).map_err(crate::sql_error)?,
        created_at: parse_ts(text(4)?)?,
        updated_at: parse_ts(text(5)?)?,
        fields,
        attributes: Map::new(),
    })
}

/// Parses the JSON text of one value. Most values are plain strings, read without the
/// parser.
pub fn json_value(text: &str) -> Result<Value, StoreError> {
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && !inner.contains(['"', '\\'])
    {
        return Ok(Value::String(inner.to_string()));
    }
    json(text)
}

pub const EVENT_COLUMNS: &str = "seq, id, kind, name, record_kind, record_id, record_version, \
    changes, data, actor_kind, actor_id, cause, correlation, depth, occurred_at";

pub fn event(row: &Row) -> Fallible<Event> {
    let kind_text: String = col(row, "kind")?;
    let actor_kind: String = col(row, "actor_kind")?;
    let changes = serde_json::from_str(&col::<String>(row, "changes")?)
        .map_err(|e| StoreError::Corrupt(format!("event changes: {e}")))?;
    Ok(Event {
        seq: col(row, "seq")?,
        id: col(row, "id")?,
        kind: EventKind::parse(&kind_text)
            .ok_or_else(|| StoreError::Corrupt(format!("event kind `{kind_text}`")))?,
        name: col(row, "name")?,
        record: reference(col(row, "record_kind")?, col(row, "record_id")?)?,
        record_version: col(row, "record_version")?,
        changes,
        data: json(&col::<String>(row, "data")?)?,
        actor: Actor {
            kind: ActorKind::parse(&actor_kind)
                .ok_or_else(|| StoreError::Corrupt(format!("actor kind `{actor_kind}`")))?,
            id: col(row, "actor_id")?,
        },
        cause: col(row, "cause")?,
        correlation: col(row, "correlation")?,
        depth: col(row, "depth")?,
        occurred_at: parse_ts(&col::<String>(row, "occurred_at")?)?,
    })
}

pub const RUN_COLUMNS: &str = "id, rule_id, rule_version, event_id, record_kind, record_id, \
    status, trigger, condition, inputs, result, actions, error, created_at, finished_at";

pub fn run(row: &Row) -> Fallible<Run> {
    let status: String = col(row, "status")?;
    Ok(Run {
        id: col(row, "id")?,
        rule_id: col(row, "rule_id")?,
        rule_version: col(row, "rule_version")?,
        event_id: col(row, "event_id")?,
        record: reference(col(row, "record_kind")?, col(row, "record_id")?)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status `{status}`")))?,
        trigger: col(row, "trigger")?,
        condition: col(row, "condition")?,
        inputs: json(&col::<String>(row, "inputs")?)?,
        result: json(&col::<String>(row, "result")?)?,
        actions: json(&col::<String>(row, "actions")?)?,
        error: col(row, "error")?,
        created_at: parse_ts(&col::<String>(row, "created_at")?)?,
        finished_at: opt_ts(col(row, "finished_at")?)?,
    })
}

pub const JOB_COLUMNS: &str = "id, key, kind, run_id, payload, state, attempts, max_attempts, \
    run_at, lease_until, last_error, replays, created_at, updated_at";

pub fn job(row: &Row) -> Fallible<Job> {
    let state: String = col(row, "state")?;
    Ok(Job {
        id: col(row, "id")?,
        key: col(row, "key")?,
        kind: col(row, "kind")?,
        run_id: col(row, "run_id")?,
        payload: json(&col::<String>(row, "payload")?)?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("job state `{state}`")))?,
        attempts: col(row, "attempts")?,
        max_attempts: col(row, "max_attempts")?,
        run_at: parse_ts(&col::<String>(row, "run_at")?)?,
        lease_until: opt_ts(col(row, "lease_until")?)?,
        last_error: col(row, "last_error")?,
        replays: col(row, "replays")?,
        created_at: parse_ts(&col::<String>(row, "created_at")?)?,
        updated_at: parse_ts(&col::<String>(row, "updated_at")?)?,
    })
}

pub const FINDING_COLUMNS: &str = "id, key, control, severity, record_kind, record_id, message, \
    evidence, state, first_seen, last_seen, resolved_at";

pub fn finding(row: &Row) -> Fallible<Finding> {
    let severity: String = col(row, "severity")?;
    Ok(Finding {
        id: col(row, "id")?,
        key: col(row, "key")?,
        control: col(row, "control")?,
        severity: Severity::parse(&severity)
            .ok_or_else(|| StoreError::Corrupt(format!("severity `{severity}`")))?,
        record: reference(col(row, "record_kind")?, col(row, "record_id")?)?,
        message: col(row, "message")?,
        evidence: json(&col::<String>(row, "evidence")?)?,
        state: col(row, "state")?,
        first_seen: parse_ts(&col::<String>(row, "first_seen")?)?,
        last_seen: parse_ts(&col::<String>(row, "last_seen")?)?,
        resolved_at: opt_ts(col(row, "resolved_at")?)?,
    })
}

pub const TOKEN_COLUMNS: &str =
    "id, name, role, hash, employee, created_at, last_used_at, revoked_at";

pub fn token(row: &Row) -> Fallible<Token> {
    Ok(Token {
        id: col(row, "id")?,
        name: col(row, "name")?,
        role: col(row, "role")?,
        hash: col(row, "hash")?,
        employee: col(row, "employee")?,
        created_at: parse_ts(&col::<String>(row, "created_at")?)?,
        last_used_at: opt_ts(col(row, "last_used_at")?)?,
        revoked_at: opt_ts(col(row, "revoked_at")?)?,
    })
}
