//! The queries: [`ReadTx`] and [`WriteTx`] over one SQLite connection.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;
use steward_domain::command::ExternalKey;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Event, Finding, Kind, Record, RecordRef, new_id};
use steward_store::*;

use crate::codec::{self, ts};
use crate::sql_error;

type Fallible<T> = Result<T, StoreError>;

/// A connection inside a transaction that the caller opened.
pub struct Conn<'a> {
    pub conn: &'a Connection,
    writes: std::cell::Cell<u64>,
}

impl<'a> Conn<'a> {
    pub fn new(conn: &'a Connection) -> Self {
        Conn {
            conn,
            writes: std::cell::Cell::new(0),
        }
    }
}

fn page_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE)
}

impl Conn<'_> {
    pub(crate) fn all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl Fn(&Row) -> Fallible<T>,
    ) -> Fallible<Vec<T>> {
        let mut statement = self.conn.prepare_cached(sql).map_err(sql_error)?;
        let mut rows = statement.query(params).map_err(sql_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sql_error)? {
            out.push(map(row)?);
        }
        Ok(out)
    }

    pub(crate) fn one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: fn(&Row) -> Fallible<T>,
    ) -> Fallible<Option<T>> {
        let mut statement = self.conn.prepare_cached(sql).map_err(sql_error)?;
        let mut rows = statement.query(params).map_err(sql_error)?;
        match rows.next().map_err(sql_error)? {
            Some(row) => Ok(Some(map(row)?)),
            None => Ok(None),
        }
    }

    /// Runs a list query that fetched `limit + 1` rows and turns it into a page.
    pub(crate) fn page<T>(
        &self,
        sql: &str,
        values: Vec<SqlValue>,
        limit: usize,
        map: impl Fn(&Row) -> Fallible<T>,
        cursor_of: fn(&T) -> String,
    ) -> Fallible<Page<T>> {
        let mut items = self.all(sql, params_from_iter(values), map)?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor_of)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Runs a query and maps every row; for the subsystem modules.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: fn(&Row) -> Fallible<T>,
    ) -> Fallible<Vec<T>> {
        self.all(sql, params, map)
    }

    /// Runs a writing query that returns rows, counted as a write.
    pub(crate) fn rows_written<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: fn(&Row) -> Fallible<T>,
    ) -> Fallible<Vec<T>> {
        self.writes.set(self.writes.get() + 1);
        self.all(sql, params, map)
    }

    /// Runs a write statement and returns how many rows it changed; for the subsystem modules.
    pub(crate) fn write(&self, sql: &str, params: impl rusqlite::Params) -> Fallible<usize> {
        self.execute(sql, params)
    }

    pub(crate) fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Fallible<usize> {
        self.writes.set(self.writes.get() + 1);
        let mut statement = self.conn.prepare_cached(sql).map_err(sql_error)?;
        statement.execute(params).map_err(sql_error)
    }
}

/// SQL that reads one field of the `fields` column. Field names come from schemas, which use
/// only lower-case letters, digits and underscores; anything else is rejected.
/// Builds the SQL of a record query and its parameters, asking for one row more than
/// `limit` to learn whether another page follows.
pub(crate) fn record_query(query: &RecordQuery, limit: usize) -> Fallible<(String, Vec<SqlValue>)> {
    let columns = if query.only_fields.is_empty() {
        codec::RECORD_COLUMNS.to_string()
    } else {
        let mut columns = vec![codec::PROJECTED_COLUMNS.to_string()];
        for field in &query.only_fields {
            columns.push(field_json(field)?);
        }
        columns.join(", ")
    };
    let mut sql = format!(
        "SELECT {columns} FROM {} WHERE 1 = 1",
        records_source(query)
    );
    let mut values = Vec::new();
    if let Some(kind) = query.kind {
        sql.push_str(" AND kind = ?");
        values.push(text(kind.name()));
    }
    if let Some(after) = &query.after {
        sql.push_str(" AND id > ?");
        values.push(text(after));
    }
    if let Some(state) = &query.state {
        sql.push_str(" AND state = ?");
        values.push(text(state));
    }
    for (field, value) in &query.fields {
        if value.is_null() {
            sql.push_str(&format!(" AND {} IS NULL", field_expression(field)?));
        } else {
            sql.push_str(&format!(" AND {} = ?", field_expression(field)?));
            values.push(json_scalar(value));
        }
    }
    for field in &query.present {
        sql.push_str(&format!(" AND {} IS NOT NULL", field_expression(field)?));
    }
    for (left, right) in &query.equal_fields {
        sql.push_str(&format!(
            " AND {} = {}",
            field_expression(left)?,
            field_expression(right)?
        ));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", limit + 1));
    Ok((sql, values))
}

/// Reference fields with an index of their own (see the migrations), the most selective
/// first.
const INDEXED_FIELDS: &[&str] = &[
    "contract_line",
    "invoice",
    "employee",
    "opportunity",
    "project",
    "contract",
    "client",
];

/// Names the index a record query must use. Without statistics SQLite prefers the
/// `(kind, id)` index, which returns rows in the page's order but reads every record of the
/// kind. A reference such as one contract line's time entries is a few hundred rows of a
/// million, so its own index is the right one whatever the table holds. A project's entries
/// that name no contract line have an index of their own.
fn records_source(query: &RecordQuery) -> String {
    let value_of = |name: &str| {
        query
            .fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value)
    };
    if value_of("contract_line").is_some_and(Value::is_null)
        && value_of("project").is_some_and(|v| !v.is_null())
    {
        return "records INDEXED BY records_unlined_by_project".to_string();
    }
    let indexed = INDEXED_FIELDS.iter().find(|indexed| {
        query
            .fields
            .iter()
            .any(|(field, value)| field == *indexed && !value.is_null())
    });
    match indexed {
        Some(field) => format!("records INDEXED BY records_by_{field}"),
        None => "records".to_string(),
    }
}

fn field_expression(field: &str) -> Fallible<String> {
    Ok(format!("json_extract(fields, '$.{}')", field_name(field)?))
}

/// SQL for a field's value as JSON text, the form the covering indexes hold.
fn field_json(field: &str) -> Fallible<String> {
    Ok(format!("fields -> '$.{}'", field_name(field)?))
}

fn field_name(field: &str) -> Fallible<&str> {
    if field.is_empty()
        || !field
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Backend(format!(
            "`{field}` is not a field name"
        )));
    }
    Ok(field)
}

/// SQL for a group key: a field, or a path under the record's attributes.
fn group_expression(path: &str) -> Fallible<String> {
    match path.strip_prefix("attributes.") {
        Some(rest)
            if !rest.is_empty()
                && rest.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'
                }) =>
        {
            Ok(format!("json_extract(attributes, '$.{rest}')"))
        }
        Some(_) => Err(StoreError::Backend(format!(
            "`{path}` is not an attribute path"
        ))),
        None => field_expression(path),
    }
}

fn sql_to_json(value: rusqlite::types::ValueRef) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::String(String::from_utf8_lossy(t).into_owned())
        }
    }
}

/// The SQL value that `json_extract` yields for a stored JSON scalar.
fn json_scalar(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_string())
}

impl ReadTx for Conn<'_> {
    fn schedule(&self) -> &dyn steward_store::schedule::ScheduleRead {
        self
    }

    fn webhooks(&self) -> &dyn steward_store::webhooks::WebhookRead {
        self
    }

    fn record_exists(&self, kind: Kind, id: &str) -> Fallible<bool> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT 1 FROM records WHERE kind = ?1 AND id = ?2")
            .map_err(sql_error)?;
        statement
            .exists(params![kind.name(), id])
            .map_err(sql_error)
    }

    fn record(&self, kind: Kind, id: &str) -> Fallible<Option<Record>> {
        let sql = format!(
            "SELECT {} FROM records WHERE kind = ?1 AND id = ?2",
            codec::RECORD_COLUMNS
        );
        self.one(&sql, params![kind.name(), id], codec::record)
    }

    fn records(&self, query: &RecordQuery) -> Fallible<Page<Record>> {
        let limit = page_limit(query.limit);
        let (sql, values) = record_query(query, limit)?;
        if query.only_fields.is_empty() {
            return self.page(&sql, values, limit, codec::record, |r| r.id.clone());
        }
        let only = query.only_fields.as_slice();
        self.page(
            &sql,
            values,
            limit,
            |row| codec::projected(row, only),
            |r| r.id.clone(),
        )
    }

    fn count_records(&self, kind: Kind, state: Option<&str>) -> Fallible<u64> {
        let count: i64 = match state {
            Some(state) => self.conn.query_row(
                "SELECT count(*) FROM records WHERE kind = ?1 AND state = ?2",
                params![kind.name(), state],
                |r| r.get(0),
            ),
            None => self.conn.query_row(
                "SELECT count(*) FROM records WHERE kind = ?1",
                params![kind.name()],
                |r| r.get(0),
            ),
        }
        .map_err(sql_error)?;
        Ok(count as u64)
    }

    fn aggregate(&self, query: &AggregateQuery) -> Fallible<Vec<AggregateRow>> {
        let keys = query
            .group_by
            .iter()
            .map(|path| group_expression(path))
            .collect::<Fallible<Vec<_>>>()?;
        let sum = match &query.sum {
            Some(field) => format!("decimal_sum({})", field_expression(field)?),
            None => "'0'".to_string(),
        };
        let mut select = keys.clone();
        select.push("count(*)".into());
        select.push(sum);
        let mut sql = format!("SELECT {} FROM records WHERE 1 = 1", select.join(", "));
        let mut values = Vec::new();
        if let Some(kind) = query.kind {
            sql.push_str(" AND kind = ?");
            values.push(text(kind.name()));
        }
        if !query.states.is_empty() {
            let marks = vec!["?"; query.states.len()].join(", ");
            sql.push_str(&format!(" AND state IN ({marks})"));
            values.extend(query.states.iter().map(|s| text(s)));
        }
        if let Some(range) = &query.range {
            let field = field_expression(&range.field)?;
            if let Some(from) = &range.from {
                sql.push_str(&format!(" AND {field} >= ?"));
                values.push(text(from));
            }
            if let Some(to) = &range.to {
                sql.push_str(&format!(" AND {field} <= ?"));
                values.push(text(to));
            }
        }
        if !keys.is_empty() {
            sql.push_str(&format!(" GROUP BY {}", keys.join(", ")));
        }
        if let (Some(min), Some(field)) = (query.min_sum, &query.sum) {
            // A coarse floating-point filter keeps the result small; the exact comparison
            // below decides.
            sql.push_str(&format!(
                " HAVING sum(CAST({} AS REAL)) > ?",
                field_expression(field)?
            ));
            let min: f64 = min.to_string().parse().unwrap_or(0.0);
            values.push(SqlValue::Real(min - 0.001));
        }
        let group_count = keys.len();
        let mut statement = self.conn.prepare_cached(&sql).map_err(sql_error)?;
        let mut rows = statement
            .query(params_from_iter(values))
            .map_err(sql_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sql_error)? {
            let mut group = Vec::with_capacity(group_count);
            for index in 0..group_count {
                group.push(sql_to_json(row.get_ref(index).map_err(sql_error)?));
            }
            let count: i64 = row.get(group_count).map_err(sql_error)?;
            let total: String = row.get(group_count + 1).map_err(sql_error)?;
            let sum = total
                .parse::<rust_decimal::Decimal>()
                .map_err(|e| StoreError::Corrupt(format!("decimal sum `{total}`: {e}")))?;
            if query.min_sum.is_some_and(|min| sum <= min) {
                continue;
            }
            out.push(AggregateRow {
                keys: group,
                count: count as u64,
                sum,
            });
        }
        Ok(out)
    }

    fn scan_records(
        &self,
        kind: Kind,
        visit: &mut dyn FnMut(Record) -> Fallible<bool>,
    ) -> Fallible<()> {
        let sql = format!(
            "SELECT {} FROM records WHERE kind = ?1 ORDER BY id",
            codec::RECORD_COLUMNS
        );
        let mut statement = self.conn.prepare_cached(&sql).map_err(sql_error)?;
        let mut rows = statement.query(params![kind.name()]).map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            if !visit(codec::record(row)?)? {
                break;
            }
        }
        Ok(())
    }

    fn event(&self, id: &str) -> Fallible<Option<Event>> {
        let sql = format!("SELECT {} FROM events WHERE id = ?1", codec::EVENT_COLUMNS);
        self.one(&sql, params![id], codec::event)
    }

    fn events(&self, query: &EventQuery) -> Fallible<Page<Event>> {
        let limit = page_limit(query.limit);
        let mut sql = format!("SELECT {} FROM events WHERE 1 = 1", codec::EVENT_COLUMNS);
        let mut values = Vec::new();
        if let Some(after) = query.after_seq {
            sql.push_str(" AND seq > ?");
            values.push(SqlValue::Integer(after));
        }
        if let Some(record) = &query.record {
            sql.push_str(" AND record_kind = ? AND record_id = ?");
            values.push(text(record.kind.name()));
            values.push(text(&record.id));
        }
        if let Some(name) = &query.name {
            sql.push_str(" AND name = ?");
            values.push(text(name));
        }
        if let Some(correlation) = &query.correlation {
            sql.push_str(" AND correlation = ?");
            values.push(text(correlation));
        }
        if let Some(since) = query.since {
            // A ULID starts with its millisecond timestamp in Crockford base32, so the
            // smallest id of that millisecond bounds the range through the id index.
            sql.push_str(" AND id >= ?");
            let floor = ulid::Ulid::from_parts(since.timestamp_millis().max(0) as u64, 0);
            values.push(text(&floor.to_string()));
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT {}", limit + 1));
        self.page(&sql, values, limit, codec::event, |e| e.seq.to_string())
    }

    fn count_events(&self) -> Fallible<u64> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .map_err(sql_error)?;
        Ok(count as u64)
    }

    fn last_event_seq(&self) -> Fallible<Option<i64>> {
        self.conn
            .query_row("SELECT max(seq) FROM events", [], |r| r.get(0))
            .map_err(sql_error)
    }

    fn external_link(&self, key: &ExternalKey) -> Fallible<Option<ExternalLink>> {
        self.one(
            "SELECT system, model, external_id, record_kind, record_id, source_version \
             FROM external_links WHERE system = ?1 AND model = ?2 AND external_id = ?3",
            params![key.system, key.model, key.id],
            link,
        )
    }

    fn external_links_of(&self, record: &RecordRef) -> Fallible<Vec<ExternalLink>> {
        self.all(
            "SELECT system, model, external_id, record_kind, record_id, source_version \
             FROM external_links WHERE record_kind = ?1 AND record_id = ?2",
            params![record.kind.name(), record.id],
            link,
        )
    }

    fn sync_cursor(&self, system: &str, model: &str) -> Fallible<Option<String>> {
        self.conn
            .query_row(
                "SELECT cursor FROM sync_cursors WHERE system = ?1 AND model = ?2",
                params![system, model],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_error)
    }

    fn rule_versions(&self) -> Fallible<Vec<RuleVersion>> {
        self.all(
            "SELECT rule_id, version, hash, definition, origin, enabled, created_at, retired_at \
             FROM rule_versions ORDER BY rule_id, version",
            [],
            |row| {
                let col = |name: &str| row.get::<_, Option<String>>(name).map_err(sql_error);
                Ok(RuleVersion {
                    rule_id: row.get("rule_id").map_err(sql_error)?,
                    version: row.get("version").map_err(sql_error)?,
                    hash: row.get("hash").map_err(sql_error)?,
                    definition: codec::json(&col("definition")?.unwrap_or_default())?,
                    origin: row.get("origin").map_err(sql_error)?,
                    enabled: row.get("enabled").map_err(sql_error)?,
                    created_at: codec::parse_ts(&col("created_at")?.unwrap_or_default())?,
                    retired_at: codec::opt_ts(col("retired_at")?)?,
                })
            },
        )
    }

    fn policy_versions(&self) -> Fallible<Vec<PolicyVersion>> {
        self.all(
            "SELECT policy_id, version, hash, definition, origin, created_at \
             FROM approval_policy_versions ORDER BY policy_id, version",
            [],
            |row| {
                let col = |name: &str| row.get::<_, Option<String>>(name).map_err(sql_error);
                Ok(PolicyVersion {
                    policy_id: row.get("policy_id").map_err(sql_error)?,
                    version: row.get("version").map_err(sql_error)?,
                    hash: row.get("hash").map_err(sql_error)?,
                    definition: codec::json(&col("definition")?.unwrap_or_default())?,
                    origin: row.get("origin").map_err(sql_error)?,
                    created_at: codec::parse_ts(&col("created_at")?.unwrap_or_default())?,
                })
            },
        )
    }

    fn billing_settings(&self) -> Fallible<Option<BillingSettingsVersion>> {
        self.one(
            "SELECT version, hash, definition, origin, created_at \
             FROM billing_settings_versions ORDER BY version DESC LIMIT 1",
            [],
            |row| {
                let col = |name: &str| row.get::<_, Option<String>>(name).map_err(sql_error);
                Ok(BillingSettingsVersion {
                    version: row.get("version").map_err(sql_error)?,
                    hash: row.get("hash").map_err(sql_error)?,
                    definition: codec::json(&col("definition")?.unwrap_or_default())?,
                    origin: col("origin")?,
                    created_at: codec::parse_ts(&col("created_at")?.unwrap_or_default())?,
                })
            },
        )
    }

    fn run_counts(&self) -> Fallible<Vec<(String, String, u64)>> {
        self.all(
            "SELECT rule_id, status, count(*) FROM runs GROUP BY rule_id, status ORDER BY 1, 2",
            [],
            |row| {
                let count: i64 = row.get(2).map_err(sql_error)?;
                Ok((
                    row.get(0).map_err(sql_error)?,
                    row.get(1).map_err(sql_error)?,
                    count as u64,
                ))
            },
        )
    }

    fn control_settings(&self) -> Fallible<Option<ControlSettingsVersion>> {
        self.one(
            "SELECT version, hash, definition, origin, created_at \
             FROM control_settings_versions ORDER BY version DESC LIMIT 1",
            [],
            |row| {
                let col = |name: &str| row.get::<_, Option<String>>(name).map_err(sql_error);
                Ok(ControlSettingsVersion {
                    version: row.get("version").map_err(sql_error)?,
                    hash: row.get("hash").map_err(sql_error)?,
                    definition: codec::json(&col("definition")?.unwrap_or_default())?,
                    origin: col("origin")?,
                    created_at: codec::parse_ts(&col("created_at")?.unwrap_or_default())?,
                })
            },
        )
    }

    fn run(&self, id: &str) -> Fallible<Option<Run>> {
        let sql = format!("SELECT {} FROM runs WHERE id = ?1", codec::RUN_COLUMNS);
        self.one(&sql, params![id], codec::run)
    }

    fn runs(&self, query: &RunQuery) -> Fallible<Page<Run>> {
        let limit = page_limit(query.limit);
        let mut sql = format!("SELECT {} FROM runs WHERE 1 = 1", codec::RUN_COLUMNS);
        let mut values = Vec::new();
        if let Some(after) = &query.after {
            sql.push_str(" AND id > ?");
            values.push(text(after));
        }
        if let Some(rule) = &query.rule_id {
            sql.push_str(" AND rule_id = ?");
            values.push(text(rule));
        }
        if let Some(event) = &query.event_id {
            sql.push_str(" AND event_id = ?");
            values.push(text(event));
        }
        if let Some(record) = &query.record {
            sql.push_str(" AND record_kind = ? AND record_id = ?");
            values.push(text(record.kind.name()));
            values.push(text(&record.id));
        }
        if let Some(status) = query.status {
            sql.push_str(" AND status = ?");
            values.push(text(status.as_str()));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", limit + 1));
        self.page(&sql, values, limit, codec::run, |r| r.id.clone())
    }

    fn job(&self, id: &str) -> Fallible<Option<Job>> {
        let sql = format!("SELECT {} FROM jobs WHERE id = ?1", codec::JOB_COLUMNS);
        self.one(&sql, params![id], codec::job)
    }

    fn jobs(&self, query: &JobQuery) -> Fallible<Page<Job>> {
        let limit = page_limit(query.limit);
        let mut sql = format!("SELECT {} FROM jobs WHERE 1 = 1", codec::JOB_COLUMNS);
        let mut values = Vec::new();
        if let Some(after) = &query.after {
            sql.push_str(" AND id > ?");
            values.push(text(after));
        }
        if let Some(state) = query.state {
            sql.push_str(" AND state = ?");
            values.push(text(state.as_str()));
        }
        if let Some(kind) = &query.kind {
            sql.push_str(" AND kind = ?");
            values.push(text(kind));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", limit + 1));
        self.page(&sql, values, limit, codec::job, |j| j.id.clone())
    }

    fn queue_stats(&self, now: DateTime<Utc>) -> Fallible<QueueStats> {
        let mut stats = QueueStats::default();
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT state, count(*) FROM jobs WHERE state != 'succeeded' GROUP BY state",
            )
            .map_err(sql_error)?;
        let mut rows = statement.query([]).map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let state: String = row.get(0).map_err(sql_error)?;
            let count: i64 = row.get(1).map_err(sql_error)?;
            match state.as_str() {
                "pending" => stats.pending = count as u64,
                "running" => stats.running = count as u64,
                "waiting" => stats.waiting = count as u64,
                "dead" => stats.dead = count as u64,
                _ => {}
            }
        }
        let oldest: Option<String> = self
            .conn
            .query_row(
                "SELECT min(run_at) FROM jobs WHERE state = 'pending' AND run_at <= ?1",
                params![ts(now)],
                |r| r.get(0),
            )
            .map_err(sql_error)?;
        if let Some(oldest) = oldest {
            let age = now - codec::parse_ts(&oldest)?;
            stats.oldest_due_seconds = Some(age.num_milliseconds() as f64 / 1000.0);
        }
        Ok(stats)
    }

    fn next_job_due(&self) -> Fallible<Option<DateTime<Utc>>> {
        // Served by the jobs_due index: one seek per state. A running job counts from the end
        // of its lease, when a worker must take it over.
        let earliest: Option<String> = self
            .conn
            .query_row(
                "SELECT min(run_at) FROM (
                     SELECT min(run_at) AS run_at FROM jobs WHERE state = 'pending'
                     UNION ALL
                     SELECT min(run_at) FROM jobs WHERE state = 'waiting'
                     UNION ALL
                     SELECT min(lease_until) FROM jobs WHERE state = 'running')",
                [],
                |r| r.get(0),
            )
            .map_err(sql_error)?;
        earliest.as_deref().map(codec::parse_ts).transpose()
    }

    fn finding(&self, id: &str) -> Fallible<Option<Finding>> {
        let sql = format!(
            "SELECT {} FROM findings WHERE id = ?1",
            codec::FINDING_COLUMNS
        );
        self.one(&sql, params![id], codec::finding)
    }

    fn findings(&self, query: &FindingQuery) -> Fallible<Page<Finding>> {
        let limit = page_limit(query.limit);
        let mut sql = format!(
            "SELECT {} FROM findings WHERE 1 = 1",
            codec::FINDING_COLUMNS
        );
        let mut values = Vec::new();
        if let Some(after) = &query.after {
            sql.push_str(" AND id > ?");
            values.push(text(after));
        }
        if let Some(state) = &query.state {
            sql.push_str(" AND state = ?");
            values.push(text(state));
        }
        if let Some(control) = &query.control {
            sql.push_str(" AND control = ?");
            values.push(text(control));
        }
        if let Some(severity) = query.severity {
            sql.push_str(" AND severity = ?");
            values.push(text(severity.as_str()));
        }
        if let Some(record) = &query.record {
            sql.push_str(" AND record_kind = ? AND record_id = ?");
            values.push(text(record.kind.name()));
            values.push(text(&record.id));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", limit + 1));
        self.page(&sql, values, limit, codec::finding, |f| f.id.clone())
    }

    fn token_by_hash(&self, hash: &str) -> Fallible<Option<Token>> {
        let sql = format!(
            "SELECT {} FROM tokens WHERE hash = ?1",
            codec::TOKEN_COLUMNS
        );
        self.one(&sql, params![hash], codec::token)
    }

    fn tokens(&self) -> Fallible<Vec<Token>> {
        let sql = format!("SELECT {} FROM tokens ORDER BY name", codec::TOKEN_COLUMNS);
        self.all(&sql, [], codec::token)
    }
}

fn link(row: &Row) -> Fallible<ExternalLink> {
    let kind: String = row.get("record_kind").map_err(sql_error)?;
    Ok(ExternalLink {
        system: row.get("system").map_err(sql_error)?,
        model: row.get("model").map_err(sql_error)?,
        external_id: row.get("external_id").map_err(sql_error)?,
        record: RecordRef::new(
            codec::kind(&kind)?,
            row.get::<_, String>("record_id").map_err(sql_error)?,
        ),
        source_version: row.get("source_version").map_err(sql_error)?,
    })
}

fn to_json(value: &impl serde::Serialize) -> Fallible<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))
}

impl WriteTx for Conn<'_> {
    fn schedule_mut(&mut self) -> &mut dyn steward_store::schedule::ScheduleWrite {
        self
    }

    fn webhooks_mut(&mut self) -> &mut dyn steward_store::webhooks::WebhookWrite {
        self
    }

    fn write_count(&self) -> u64 {
        self.writes.get()
    }

    fn nested(&mut self, f: &mut dyn FnMut(&mut dyn WriteTx) -> bool) -> Fallible<bool> {
        crate::run_cached(self.conn, "SAVEPOINT nested")?;
        let keep = f(self);
        if keep {
            crate::run_cached(self.conn, "RELEASE nested")?;
        } else {
            crate::run_cached(self.conn, "ROLLBACK TO nested")?;
            crate::run_cached(self.conn, "RELEASE nested")?;
        }
        Ok(keep)
    }

    fn insert_record(&mut self, record: &Record) -> Fallible<()> {
        let inserted = self.execute(
            "INSERT INTO records (kind, id, state, version, fields, attributes, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (kind, id) DO NOTHING",
            params![
                record.kind.name(),
                record.id,
                record.state,
                record.version,
                to_json(&record.fields)?,
                to_json(&record.attributes)?,
                ts(record.created_at),
                ts(record.updated_at),
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Duplicate {
                what: format!("{} {}", record.kind, record.id),
            });
        }
        Ok(())
    }

    fn update_record(&mut self, record: &Record) -> Fallible<()> {
        let updated = self.execute(
            "UPDATE records SET state = ?3, version = ?4, fields = ?5, attributes = ?6, updated_at = ?7
             WHERE kind = ?1 AND id = ?2 AND version = ?4 - 1",
            params![
                record.kind.name(),
                record.id,
                record.state,
                record.version,
                to_json(&record.fields)?,
                to_json(&record.attributes)?,
                ts(record.updated_at),
            ],
        )?;
        if updated == 0 {
            return Err(StoreError::Conflict {
                what: format!("{} {}", record.kind, record.id),
            });
        }
        Ok(())
    }

    fn append_event(&mut self, event: &Event) -> Fallible<i64> {
        self.execute(
            "INSERT INTO events (id, kind, name, record_kind, record_id, record_version, changes,
                 data, actor_kind, actor_id, cause, correlation, depth, occurred_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                event.id,
                event.kind.as_str(),
                event.name,
                event.record.as_ref().map(|r| r.kind.name()),
                event.record.as_ref().map(|r| r.id.as_str()),
                event.record_version,
                to_json(&event.changes)?,
                to_json(&event.data)?,
                event.actor.kind.as_str(),
                event.actor.id,
                event.cause,
                event.correlation,
                event.depth,
                ts(event.occurred_at),
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn link_external(&mut self, link: &ExternalLink) -> Fallible<()> {
        self.execute(
            "INSERT INTO external_links (system, model, external_id, record_kind, record_id, source_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (system, model, external_id) DO UPDATE SET
                 record_kind = excluded.record_kind, record_id = excluded.record_id,
                 source_version = excluded.source_version",
            params![
                link.system,
                link.model,
                link.external_id,
                link.record.kind.name(),
                link.record.id,
                link.source_version
            ],
        )?;
        Ok(())
    }

    fn set_sync_cursor(&mut self, system: &str, model: &str, cursor: &str) -> Fallible<()> {
        self.execute(
            "INSERT INTO sync_cursors (system, model, cursor) VALUES (?1, ?2, ?3)
             ON CONFLICT (system, model) DO UPDATE SET cursor = excluded.cursor",
            params![system, model, cursor],
        )?;
        Ok(())
    }

    fn insert_rule_version(&mut self, version: &RuleVersion) -> Fallible<()> {
        self.execute(
            "INSERT INTO rule_versions (rule_id, version, hash, definition, origin, enabled, created_at, retired_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                version.rule_id,
                version.version,
                version.hash,
                to_json(&version.definition)?,
                version.origin,
                version.enabled,
                ts(version.created_at),
                version.retired_at.map(ts),
            ],
        )
        .map_err(|e| match e {
            StoreError::Backend(m) if m.contains("UNIQUE") => StoreError::Duplicate {
                what: format!("version {} of rule {}", version.version, version.rule_id),
            },
            other => other,
        })?;
        Ok(())
    }

    fn insert_policy_version(&mut self, version: &PolicyVersion) -> Fallible<()> {
        self.execute(
            "INSERT INTO approval_policy_versions (policy_id, version, hash, definition, origin, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                version.policy_id,
                version.version,
                version.hash,
                to_json(&version.definition)?,
                version.origin,
                ts(version.created_at),
            ],
        )
        .map_err(|e| match e {
            StoreError::Backend(m) if m.contains("UNIQUE") => StoreError::Duplicate {
                what: format!("version {} of policy {}", version.version, version.policy_id),
            },
            other => other,
        })?;
        Ok(())
    }

    fn insert_billing_settings(&mut self, version: &BillingSettingsVersion) -> Fallible<()> {
        self.execute(
            "INSERT INTO billing_settings_versions (version, hash, definition, origin, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                version.version,
                version.hash,
                to_json(&version.definition)?,
                version.origin,
                ts(version.created_at),
            ],
        )
        .map_err(|e| match e {
            StoreError::Backend(m) if m.contains("UNIQUE") => StoreError::Duplicate {
                what: format!("version {} of the billing settings", version.version),
            },
            other => other,
        })?;
        Ok(())
    }

    fn insert_control_settings(&mut self, version: &ControlSettingsVersion) -> Fallible<()> {
        self.execute(
            "INSERT INTO control_settings_versions (version, hash, definition, origin, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                version.version,
                version.hash,
                to_json(&version.definition)?,
                version.origin,
                ts(version.created_at),
            ],
        )
        .map_err(|e| match e {
            StoreError::Backend(m) if m.contains("UNIQUE") => StoreError::Duplicate {
                what: format!("version {} of the control settings", version.version),
            },
            other => other,
        })?;
        Ok(())
    }

    fn retire_rule(&mut self, rule_id: &str, at: DateTime<Utc>) -> Fallible<()> {
        self.execute(
            "UPDATE rule_versions SET retired_at = ?2 WHERE rule_id = ?1 AND retired_at IS NULL",
            params![rule_id, ts(at)],
        )?;
        Ok(())
    }

    fn insert_run(&mut self, run: &Run) -> Fallible<()> {
        self.execute(
            "INSERT INTO runs (id, rule_id, rule_version, event_id, record_kind, record_id, status,
                 trigger, condition, inputs, result, actions, error, created_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                run.id,
                run.rule_id,
                run.rule_version,
                run.event_id,
                run.record.as_ref().map(|r| r.kind.name()),
                run.record.as_ref().map(|r| r.id.as_str()),
                run.status.as_str(),
                run.trigger,
                run.condition,
                to_json(&run.inputs)?,
                to_json(&run.result)?,
                to_json(&run.actions)?,
                run.error,
                ts(run.created_at),
                run.finished_at.map(ts),
            ],
        )?;
        Ok(())
    }

    fn finish_run(
        &mut self,
        id: &str,
        status: RunStatus,
        actions: &Value,
        error: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> Fallible<()> {
        self.execute(
            "UPDATE runs SET status = ?2, actions = ?3, error = ?4, finished_at = ?5 WHERE id = ?1",
            params![id, status.as_str(), to_json(actions)?, error, at.map(ts)],
        )?;
        Ok(())
    }

    fn insert_job(&mut self, job: &Job) -> Fallible<bool> {
        let inserted = self.execute(
            "INSERT INTO jobs (id, key, kind, run_id, payload, state, attempts, max_attempts, run_at,
                 lease_until, last_error, replays, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (key) DO NOTHING",
            params![
                job.id,
                job.key,
                job.kind,
                job.run_id,
                to_json(&job.payload)?,
                job.state.as_str(),
                job.attempts,
                job.max_attempts,
                ts(job.run_at),
                job.lease_until.map(ts),
                job.last_error,
                job.replays,
                ts(job.created_at),
                ts(job.updated_at),
            ],
        )?;
        Ok(inserted == 1)
    }

    fn claim_jobs(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Fallible<Vec<Job>> {
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?1, updated_at = ?2,
                 wait_key = NULL
             WHERE id IN (SELECT id FROM jobs WHERE state IN ('pending', 'waiting') AND run_at <= ?2
                          ORDER BY run_at, id LIMIT ?3)
             RETURNING {}",
            codec::JOB_COLUMNS
        );
        let mut jobs = self.all(
            &sql,
            params![ts(lease_until), ts(now), limit as i64],
            codec::job,
        )?;
        jobs.sort_by(|a, b| (a.run_at, &a.id).cmp(&(b.run_at, &b.id)));
        Ok(jobs)
    }

    fn complete_job(&mut self, id: &str, attempt: u32, at: DateTime<Utc>) -> Fallible<bool> {
        let updated = self.execute(
            "UPDATE jobs SET state = 'succeeded', lease_until = NULL, updated_at = ?3
             WHERE id = ?1 AND state = 'running' AND attempts = ?2",
            params![id, attempt, ts(at)],
        )?;
        Ok(updated == 1)
    }

    fn extend_lease(
        &mut self,
        id: &str,
        attempt: u32,
        lease_until: DateTime<Utc>,
    ) -> Fallible<bool> {
        let updated = self.execute(
            "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND state = 'running' AND attempts = ?2",
            params![id, attempt, ts(lease_until)],
        )?;
        Ok(updated == 1)
    }

    fn fail_job(
        &mut self,
        id: &str,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Fallible<bool> {
        let updated = match retry_at {
            Some(retry_at) => self.execute(
                "UPDATE jobs SET state = 'pending', run_at = ?3, lease_until = NULL, last_error = ?4,
                     updated_at = ?5 WHERE id = ?1 AND state = 'running' AND attempts = ?2",
                params![id, attempt, ts(retry_at), error, ts(at)],
            ),
            None => self.execute(
                "UPDATE jobs SET state = 'dead', lease_until = NULL, last_error = ?3, updated_at = ?4
                 WHERE id = ?1 AND state = 'running' AND attempts = ?2",
                params![id, attempt, error, ts(at)],
            ),
        }?;
        Ok(updated == 1)
    }

    fn park_job(
        &mut self,
        id: &str,
        attempt: u32,
        payload: &Value,
        state: JobState,
        run_at: DateTime<Utc>,
        wait_key: Option<&str>,
        at: DateTime<Utc>,
    ) -> Fallible<bool> {
        let updated = self.execute(
            "UPDATE jobs SET state = ?3, payload = ?4, run_at = ?5, wait_key = ?6, attempts = 0,
                 lease_until = NULL, updated_at = ?7
             WHERE id = ?1 AND state = 'running' AND attempts = ?2",
            params![
                id,
                attempt,
                state.as_str(),
                to_json(payload)?,
                ts(run_at),
                wait_key,
                ts(at)
            ],
        )?;
        Ok(updated == 1)
    }

    fn save_job_progress(&mut self, id: &str, attempt: u32, payload: &Value) -> Fallible<bool> {
        let updated = self.execute(
            "UPDATE jobs SET payload = ?3 WHERE id = ?1 AND state = 'running' AND attempts = ?2",
            params![id, attempt, to_json(payload)?],
        )?;
        Ok(updated == 1)
    }

    fn resume_waiting(
        &mut self,
        wait_keys: &[String],
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Fallible<u64> {
        // Every append calls this, and almost never finds a waiting job, so look first with
        // the partial index and write only on a hit.
        let mut woke = 0;
        for key in wait_keys {
            let mut probe = self
                .conn
                .prepare_cached("SELECT 1 FROM jobs WHERE wait_key = ?1 AND state = 'waiting'")
                .map_err(sql_error)?;
            if !probe.exists(params![key]).map_err(sql_error)? {
                continue;
            }
            woke += self.execute(
                "UPDATE jobs SET state = 'pending', run_at = ?3, wait_key = NULL, updated_at = ?3,
                     payload = json_set(payload, '$.awaited', ?2)
                 WHERE wait_key = ?1 AND state = 'waiting'",
                params![key, event_id, ts(now)],
            )?;
        }
        Ok(woke as u64)
    }

    fn replay_job(&mut self, id: &str, at: DateTime<Utc>) -> Fallible<bool> {
        let updated = self.execute(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?2, replays = replays + 1,
                 updated_at = ?2 WHERE id = ?1 AND state = 'dead'",
            params![id, ts(at)],
        )?;
        Ok(updated == 1)
    }

    fn release_expired_leases(&mut self, now: DateTime<Utc>) -> Fallible<u64> {
        let released = self.execute(
            "UPDATE jobs SET state = 'pending', lease_until = NULL, updated_at = ?1
             WHERE state = 'running' AND lease_until < ?1",
            params![ts(now)],
        )?;
        Ok(released as u64)
    }

    fn raise_finding(
        &mut self,
        finding: &RaisedFinding,
        at: DateTime<Utc>,
    ) -> Fallible<(Finding, bool)> {
        let previous_state: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM findings WHERE key = ?1",
                params![finding.key],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_error)?;
        let sql = format!(
            "INSERT INTO findings (id, key, control, severity, record_kind, record_id, message,
                 evidence, state, first_seen, last_seen, resolved_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', ?9, ?9, NULL)
             ON CONFLICT (key) DO UPDATE SET severity = excluded.severity,
                 record_kind = excluded.record_kind, record_id = excluded.record_id,
                 message = excluded.message, evidence = excluded.evidence, state = 'open',
                 last_seen = excluded.last_seen, resolved_at = NULL
             RETURNING {}",
            codec::FINDING_COLUMNS
        );
        let stored = self
            .one(
                &sql,
                params![
                    new_id(),
                    finding.key,
                    finding.control,
                    finding.severity.as_str(),
                    finding.record.as_ref().map(|r| r.kind.name()),
                    finding.record.as_ref().map(|r| r.id.as_str()),
                    finding.message,
                    to_json(&finding.evidence)?,
                    ts(at),
                ],
                codec::finding,
            )?
            .ok_or_else(|| StoreError::Backend("finding upsert returned no row".into()))?;
        let opened = previous_state.as_deref() != Some("open");
        Ok((stored, opened))
    }

    fn resolve_findings(
        &mut self,
        control: &str,
        still_open: &[String],
        at: DateTime<Utc>,
    ) -> Fallible<u64> {
        let resolved = self.execute(
            "UPDATE findings SET state = 'resolved', resolved_at = ?3
             WHERE control = ?1 AND state = 'open'
               AND key NOT IN (SELECT value FROM json_each(?2))",
            params![control, to_json(&still_open)?, ts(at)],
        )?;
        Ok(resolved as u64)
    }

    fn insert_token(&mut self, token: &Token) -> Fallible<()> {
        self.execute(
            "INSERT INTO tokens (id, name, role, hash, employee, created_at, last_used_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                token.id,
                token.name,
                token.role,
                token.hash,
                token.employee,
                ts(token.created_at),
                token.last_used_at.map(ts),
                token.revoked_at.map(ts),
            ],
        )
        .map_err(|e| match e {
            StoreError::Backend(m) if m.contains("UNIQUE") => {
                StoreError::Duplicate { what: format!("a token named `{}`", token.name) }
            }
            other => other,
        })?;
        Ok(())
    }

    fn touch_token(&mut self, id: &str, at: DateTime<Utc>) -> Fallible<()> {
        self.execute(
            "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
            params![id, ts(at)],
        )?;
        Ok(())
    }

    fn revoke_token(&mut self, id: &str, at: DateTime<Utc>) -> Fallible<bool> {
        let updated = self.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, ts(at)],
        )?;
        Ok(updated == 1)
    }
}
