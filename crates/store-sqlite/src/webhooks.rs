//! The webhook tables on SQLite.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Row, params};
use steward_store::webhooks::*;
use steward_store::{Job, Page, StoreError};

use crate::codec::{self, ts};
use crate::conn::Conn;
use crate::sql_error;

type Fallible<T> = Result<T, StoreError>;

fn col<T: rusqlite::types::FromSql>(row: &Row, name: &str) -> Fallible<T> {
    row.get(name).map_err(sql_error)
}

fn to_json(value: &impl serde::Serialize) -> Fallible<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))
}

/// Maps a uniqueness violation to [`StoreError::Duplicate`] naming `what`.
fn duplicate(error: StoreError, what: impl FnOnce() -> String) -> StoreError {
    match error {
        StoreError::Backend(message) if message.contains("UNIQUE") => {
            StoreError::Duplicate { what: what() }
        }
        other => other,
    }
}

const OUTBOUND_COLUMNS: &str =
    "id, url, sealed_secret, enabled, events, timeout_ms, description, created_at, updated_at";

fn outbound(row: &Row) -> Fallible<OutboundEndpoint> {
    let events: Option<String> = col(row, "events")?;
    let events = match events {
        Some(text) => Some(
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("endpoint events `{text}`: {e}")))?,
        ),
        None => None,
    };
    Ok(OutboundEndpoint {
        id: col(row, "id")?,
        url: col(row, "url")?,
        sealed_secret: col(row, "sealed_secret")?,
        enabled: col(row, "enabled")?,
        events,
        timeout_ms: col::<i64>(row, "timeout_ms")?.max(0) as u64,
        description: col(row, "description")?,
        created_at: codec::parse_ts(&col::<String>(row, "created_at")?)?,
        updated_at: codec::parse_ts(&col::<String>(row, "updated_at")?)?,
    })
}

const DELIVERY_COLUMNS: &str = "id, endpoint, event, job, state, attempts, last_status, last_error, \
     resent_from, created_at, updated_at";

fn delivery(row: &Row) -> Fallible<Delivery> {
    let state: String = col(row, "state")?;
    Ok(Delivery {
        id: col(row, "id")?,
        endpoint: col(row, "endpoint")?,
        event: col(row, "event")?,
        job: col(row, "job")?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown delivery state `{state}`")))?,
        attempts: col(row, "attempts")?,
        last_status: col(row, "last_status")?,
        last_error: col(row, "last_error")?,
        resent_from: col(row, "resent_from")?,
        created_at: codec::parse_ts(&col::<String>(row, "created_at")?)?,
        updated_at: codec::parse_ts(&col::<String>(row, "updated_at")?)?,
    })
}

const ATTEMPT_COLUMNS: &str =
    "id, delivery, endpoint, attempt, status, error, duration_ms, succeeded, at";

fn attempt(row: &Row) -> Fallible<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        id: col(row, "id")?,
        delivery: col(row, "delivery")?,
        endpoint: col(row, "endpoint")?,
        attempt: col(row, "attempt")?,
        status: col(row, "status")?,
        error: col(row, "error")?,
        duration_ms: col::<i64>(row, "duration_ms")?.max(0) as u64,
        succeeded: col(row, "succeeded")?,
        at: codec::parse_ts(&col::<String>(row, "at")?)?,
    })
}

const INBOUND_COLUMNS: &str = "id, sealed_secret, config, enabled, created_at, updated_at";

fn inbound(row: &Row) -> Fallible<InboundEndpoint> {
    Ok(InboundEndpoint {
        id: col(row, "id")?,
        sealed_secret: col(row, "sealed_secret")?,
        config: codec::json(&col::<String>(row, "config")?)?,
        enabled: col(row, "enabled")?,
        created_at: codec::parse_ts(&col::<String>(row, "created_at")?)?,
        updated_at: codec::parse_ts(&col::<String>(row, "updated_at")?)?,
    })
}

const RECEIPT_COLUMNS: &str = "endpoint, key, event, status, body, received_at, expires_at";

fn receipt(row: &Row) -> Fallible<InboundReceipt> {
    Ok(InboundReceipt {
        endpoint: col(row, "endpoint")?,
        key: col(row, "key")?,
        event: col(row, "event")?,
        status: col(row, "status")?,
        body: codec::json(&col::<String>(row, "body")?)?,
        received_at: codec::parse_ts(&col::<String>(row, "received_at")?)?,
        expires_at: codec::parse_ts(&col::<String>(row, "expires_at")?)?,
    })
}

const REJECTION_COLUMNS: &str =
    "id, endpoint, reason, message, status, body_sha256, body_bytes, received_at";

fn rejection(row: &Row) -> Fallible<InboundRejection> {
    Ok(InboundRejection {
        id: col(row, "id")?,
        endpoint: col(row, "endpoint")?,
        reason: col(row, "reason")?,
        message: col(row, "message")?,
        status: col(row, "status")?,
        body_sha256: col(row, "body_sha256")?,
        body_bytes: col::<i64>(row, "body_bytes")?.max(0) as u64,
        received_at: codec::parse_ts(&col::<String>(row, "received_at")?)?,
    })
}

fn page_limit(limit: usize) -> usize {
    limit.clamp(1, steward_store::MAX_PAGE)
}

impl Conn<'_> {
    fn count(&self, sql: &str, params: impl rusqlite::Params) -> Fallible<u64> {
        let count: i64 = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_row(params, |r| r.get(0)))
            .map_err(sql_error)?;
        Ok(count.max(0) as u64)
    }

    fn instant(&self, sql: &str, params: impl rusqlite::Params) -> Fallible<Option<DateTime<Utc>>> {
        let text: Option<String> = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_row(params, |r| r.get(0)))
            .map_err(sql_error)?;
        codec::opt_ts(text)
    }

    /// The median of the attempt durations of `endpoint` since `since`: the middle value, or
    /// the mean of the two middle values of an even count.
    fn median_latency(&self, endpoint: &str, since: &str, count: u64) -> Fallible<Option<f64>> {
        if count == 0 {
            return Ok(None);
        }
        let take = 2 - (count % 2);
        let skip = (count - 1) / 2;
        let middle: Vec<i64> = {
            let mut statement = self
                .conn
                .prepare_cached(
                    "SELECT duration_ms FROM webhook_attempts WHERE endpoint = ?1 AND at >= ?2
                     ORDER BY duration_ms LIMIT ?3 OFFSET ?4",
                )
                .map_err(sql_error)?;
            let rows = statement
                .query_map(params![endpoint, since, take as i64, skip as i64], |r| {
                    r.get(0)
                })
                .map_err(sql_error)?;
            rows.collect::<Result<_, _>>().map_err(sql_error)?
        };
        if middle.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            middle.iter().map(|d| *d as f64).sum::<f64>() / middle.len() as f64,
        ))
    }
}

impl WebhookRead for Conn<'_> {
    fn outbound_endpoint(&self, id: &str) -> Fallible<Option<OutboundEndpoint>> {
        let sql = format!("SELECT {OUTBOUND_COLUMNS} FROM webhook_endpoints WHERE id = ?1");
        self.one(&sql, params![id], outbound)
    }

    fn outbound_endpoints(&self) -> Fallible<Vec<OutboundEndpoint>> {
        let sql = format!("SELECT {OUTBOUND_COLUMNS} FROM webhook_endpoints ORDER BY id");
        self.all(&sql, [], outbound)
    }

    fn delivery(&self, id: &str) -> Fallible<Option<Delivery>> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1");
        self.one(&sql, params![id], delivery)
    }

    fn deliveries(&self, query: &DeliveryQuery) -> Fallible<Page<Delivery>> {
        let limit = page_limit(query.limit);
        let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE 1 = 1");
        let mut values = Vec::new();
        if let Some(before) = &query.before {
            sql.push_str(" AND id < ?");
            values.push(SqlValue::Text(before.clone()));
        }
        if let Some(endpoint) = &query.endpoint {
            sql.push_str(" AND endpoint = ?");
            values.push(SqlValue::Text(endpoint.clone()));
        }
        if let Some(state) = query.state {
            sql.push_str(" AND state = ?");
            values.push(SqlValue::Text(state.as_str().into()));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        self.page(&sql, values, limit, delivery, |d| d.id.clone())
    }

    fn delivery_attempts(&self, delivery: &str) -> Fallible<Vec<DeliveryAttempt>> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE delivery = ?1 ORDER BY attempt"
        );
        self.all(&sql, params![delivery], attempt)
    }

    fn delivery_job(&self, delivery: &str) -> Fallible<Option<Job>> {
        let sql = format!("SELECT {} FROM jobs WHERE key = ?1", codec::JOB_COLUMNS);
        self.one(&sql, params![format!("webhook/{delivery}")], codec::job)
    }

    fn outbound_health(&self, endpoint: &str, since: DateTime<Utc>) -> Fallible<OutboundHealth> {
        let since = ts(since);
        let (deliveries, attempts, failed) = self
            .conn
            .prepare_cached(
                "SELECT count(DISTINCT delivery), count(*), coalesce(sum(1 - succeeded), 0)
                 FROM webhook_attempts WHERE endpoint = ?1 AND at >= ?2",
            )
            .and_then(|mut statement| {
                statement.query_row(params![endpoint, since], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
            })
            .map_err(sql_error)?;
        let last_success_at = self.instant(
            "SELECT max(at) FROM webhook_attempts WHERE endpoint = ?1 AND succeeded = 1",
            params![endpoint],
        )?;
        let consecutive_failures = self.count(
            "SELECT count(*) FROM webhook_attempts
             WHERE endpoint = ?1 AND succeeded = 0 AND at > coalesce(?2, '')",
            params![endpoint, last_success_at.map(ts)],
        )?;
        let last_failure: Option<(String, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT at, error FROM webhook_attempts WHERE endpoint = ?1 AND succeeded = 0
                 ORDER BY at DESC LIMIT 1",
            )
            .and_then(|mut statement| {
                let mut rows = statement.query(params![endpoint])?;
                match rows.next()? {
                    Some(row) => Ok(Some((row.get(0)?, row.get(1)?))),
                    None => Ok(None),
                }
            })
            .map_err(sql_error)?;
        let (last_failure_at, last_error) = match last_failure {
            Some((at, error)) => (Some(codec::parse_ts(&at)?), error),
            None => (None, None),
        };
        let attempts = attempts.max(0) as u64;
        Ok(OutboundHealth {
            deliveries: deliveries.max(0) as u64,
            attempts,
            failed_attempts: failed.max(0) as u64,
            consecutive_failures,
            last_success_at,
            last_failure_at,
            last_error,
            median_latency_ms: self.median_latency(endpoint, &since, attempts)?,
        })
    }

    fn inbound_endpoint(&self, id: &str) -> Fallible<Option<InboundEndpoint>> {
        let sql = format!("SELECT {INBOUND_COLUMNS} FROM inbound_endpoints WHERE id = ?1");
        self.one(&sql, params![id], inbound)
    }

    fn inbound_endpoints(&self) -> Fallible<Vec<InboundEndpoint>> {
        let sql = format!("SELECT {INBOUND_COLUMNS} FROM inbound_endpoints ORDER BY id");
        self.all(&sql, [], inbound)
    }

    fn inbound_receipt(
        &self,
        endpoint: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Fallible<Option<InboundReceipt>> {
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM inbound_receipts
             WHERE endpoint = ?1 AND key = ?2 AND expires_at > ?3"
        );
        self.one(&sql, params![endpoint, key, ts(now)], receipt)
    }

    fn inbound_rejections(&self, query: &RejectionQuery) -> Fallible<Page<InboundRejection>> {
        let limit = page_limit(query.limit);
        let mut sql = format!("SELECT {REJECTION_COLUMNS} FROM inbound_rejections WHERE 1 = 1");
        let mut values = Vec::new();
        if let Some(before) = &query.before {
            sql.push_str(" AND id < ?");
            values.push(SqlValue::Text(before.clone()));
        }
        if let Some(endpoint) = &query.endpoint {
            sql.push_str(" AND endpoint = ?");
            values.push(SqlValue::Text(endpoint.clone()));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        self.page(&sql, values, limit, rejection, |r| r.id.clone())
    }

    fn inbound_health(&self, endpoint: &str, since: DateTime<Utc>) -> Fallible<InboundHealth> {
        let since = ts(since);
        let accepted = self.count(
            "SELECT count(*) FROM inbound_receipts WHERE endpoint = ?1 AND received_at >= ?2",
            params![endpoint, since],
        )?;
        let rejected = self.count(
            "SELECT count(*) FROM inbound_rejections WHERE endpoint = ?1 AND received_at >= ?2",
            params![endpoint, since],
        )?;
        let last_accepted_at = self.instant(
            "SELECT max(received_at) FROM inbound_receipts WHERE endpoint = ?1",
            params![endpoint],
        )?;
        let last: Option<(String, String)> = self
            .conn
            .prepare_cached(
                "SELECT received_at, reason FROM inbound_rejections WHERE endpoint = ?1
                 ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut statement| {
                let mut rows = statement.query(params![endpoint])?;
                match rows.next()? {
                    Some(row) => Ok(Some((row.get(0)?, row.get(1)?))),
                    None => Ok(None),
                }
            })
            .map_err(sql_error)?;
        let (last_rejected_at, last_rejection) = match last {
            Some((at, reason)) => (Some(codec::parse_ts(&at)?), Some(reason)),
            None => (None, None),
        };
        Ok(InboundHealth {
            accepted,
            rejected,
            last_accepted_at,
            last_rejected_at,
            last_rejection,
        })
    }
}

impl WebhookWrite for Conn<'_> {
    fn insert_outbound_endpoint(&mut self, endpoint: &OutboundEndpoint) -> Fallible<()> {
        self.execute(
            "INSERT INTO webhook_endpoints (id, url, sealed_secret, enabled, events, timeout_ms,
                 description, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                endpoint.id,
                endpoint.url,
                endpoint.sealed_secret,
                endpoint.enabled,
                endpoint.events.as_ref().map(to_json).transpose()?,
                endpoint.timeout_ms as i64,
                endpoint.description,
                ts(endpoint.created_at),
                ts(endpoint.updated_at),
            ],
        )
        .map_err(|e| duplicate(e, || format!("an outbound endpoint `{}`", endpoint.id)))?;
        Ok(())
    }

    fn update_outbound_endpoint(&mut self, endpoint: &OutboundEndpoint) -> Fallible<bool> {
        let updated = self.execute(
            "UPDATE webhook_endpoints SET url = ?2, sealed_secret = ?3, enabled = ?4, events = ?5,
                 timeout_ms = ?6, description = ?7, updated_at = ?8
             WHERE id = ?1",
            params![
                endpoint.id,
                endpoint.url,
                endpoint.sealed_secret,
                endpoint.enabled,
                endpoint.events.as_ref().map(to_json).transpose()?,
                endpoint.timeout_ms as i64,
                endpoint.description,
                ts(endpoint.updated_at),
            ],
        )?;
        Ok(updated == 1)
    }

    fn delete_outbound_endpoint(&mut self, id: &str) -> Fallible<bool> {
        let deleted = self.execute("DELETE FROM webhook_endpoints WHERE id = ?1", params![id])?;
        Ok(deleted == 1)
    }

    fn record_delivery_attempt(
        &mut self,
        delivery: &Delivery,
        attempt: &DeliveryAttempt,
    ) -> Fallible<u32> {
        let number: i64 = self
            .conn
            .prepare_cached(
                "SELECT coalesce(max(attempt), 0) + 1 FROM webhook_attempts WHERE delivery = ?1",
            )
            .and_then(|mut statement| statement.query_row(params![delivery.id], |r| r.get(0)))
            .map_err(sql_error)?;
        self.execute(
            "INSERT INTO webhook_attempts (id, delivery, endpoint, attempt, status, error,
                 duration_ms, succeeded, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                attempt.id,
                delivery.id,
                attempt.endpoint,
                number,
                attempt.status,
                attempt.error,
                attempt.duration_ms as i64,
                attempt.succeeded,
                ts(attempt.at),
            ],
        )?;
        self.execute(
            "INSERT INTO webhook_deliveries (id, endpoint, event, job, state, attempts, last_status,
                 last_error, resent_from, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
                 last_status = excluded.last_status, last_error = excluded.last_error,
                 job = excluded.job, updated_at = excluded.updated_at",
            params![
                delivery.id,
                delivery.endpoint,
                delivery.event,
                delivery.job,
                delivery.state.as_str(),
                number,
                attempt.status,
                attempt.error,
                delivery.resent_from,
                ts(delivery.created_at),
                ts(attempt.at),
            ],
        )?;
        Ok(number as u32)
    }

    fn record_delivery(&mut self, delivery: &Delivery) -> Fallible<()> {
        self.execute(
            "INSERT INTO webhook_deliveries (id, endpoint, event, job, state, attempts, last_status,
                 last_error, resent_from, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                 last_error = excluded.last_error, updated_at = excluded.updated_at",
            params![
                delivery.id,
                delivery.endpoint,
                delivery.event,
                delivery.job,
                delivery.state.as_str(),
                delivery.attempts,
                delivery.last_status,
                delivery.last_error,
                delivery.resent_from,
                ts(delivery.created_at),
                ts(delivery.updated_at),
            ],
        )?;
        Ok(())
    }

    fn insert_inbound_endpoint(&mut self, endpoint: &InboundEndpoint) -> Fallible<()> {
        self.execute(
            "INSERT INTO inbound_endpoints (id, sealed_secret, config, enabled, created_at,
                 updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                endpoint.id,
                endpoint.sealed_secret,
                to_json(&endpoint.config)?,
                endpoint.enabled,
                ts(endpoint.created_at),
                ts(endpoint.updated_at),
            ],
        )
        .map_err(|e| duplicate(e, || format!("an inbound endpoint `{}`", endpoint.id)))?;
        Ok(())
    }

    fn update_inbound_endpoint(&mut self, endpoint: &InboundEndpoint) -> Fallible<bool> {
        let updated = self.execute(
            "UPDATE inbound_endpoints SET sealed_secret = ?2, config = ?3, enabled = ?4,
                 updated_at = ?5
             WHERE id = ?1",
            params![
                endpoint.id,
                endpoint.sealed_secret,
                to_json(&endpoint.config)?,
                endpoint.enabled,
                ts(endpoint.updated_at),
            ],
        )?;
        Ok(updated == 1)
    }

    fn delete_inbound_endpoint(&mut self, id: &str) -> Fallible<bool> {
        let deleted = self.execute("DELETE FROM inbound_endpoints WHERE id = ?1", params![id])?;
        self.execute(
            "DELETE FROM inbound_receipts WHERE endpoint = ?1",
            params![id],
        )?;
        Ok(deleted == 1)
    }

    fn insert_inbound_receipt(&mut self, receipt: &InboundReceipt) -> Fallible<bool> {
        let stored = self.execute(
            "INSERT INTO inbound_receipts (endpoint, key, event, status, body, received_at,
                 expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (endpoint, key) DO UPDATE SET event = excluded.event,
                 status = excluded.status, body = excluded.body,
                 received_at = excluded.received_at, expires_at = excluded.expires_at
             WHERE inbound_receipts.expires_at <= excluded.received_at",
            params![
                receipt.endpoint,
                receipt.key,
                receipt.event,
                receipt.status,
                to_json(&receipt.body)?,
                ts(receipt.received_at),
                ts(receipt.expires_at),
            ],
        )?;
        Ok(stored == 1)
    }

    fn insert_inbound_rejection(&mut self, rejection: &InboundRejection) -> Fallible<()> {
        self.execute(
            "INSERT INTO inbound_rejections (id, endpoint, reason, message, status, body_sha256,
                 body_bytes, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                rejection.id,
                rejection.endpoint,
                rejection.reason,
                rejection.message,
                rejection.status,
                rejection.body_sha256,
                rejection.body_bytes as i64,
                ts(rejection.received_at),
            ],
        )?;
        Ok(())
    }

    fn purge_webhook_history(
        &mut self,
        now: DateTime<Utc>,
        history_before: DateTime<Utc>,
    ) -> Fallible<Purged> {
        let before = ts(history_before);
        let receipts = self.execute(
            "DELETE FROM inbound_receipts WHERE expires_at <= ?1",
            params![ts(now)],
        )?;
        let rejections = self.execute(
            "DELETE FROM inbound_rejections WHERE received_at < ?1",
            params![before],
        )?;
        let attempts = self.execute(
            "DELETE FROM webhook_attempts WHERE at < ?1
               AND delivery IN (SELECT id FROM webhook_deliveries
                                WHERE state != 'retrying' AND updated_at < ?1)",
            params![before],
        )?;
        let deliveries = self.execute(
            "DELETE FROM webhook_deliveries WHERE state != 'retrying' AND updated_at < ?1",
            params![before],
        )?;
        Ok(Purged {
            receipts: receipts as u64,
            rejections: rejections as u64,
            attempts: attempts as u64,
            deliveries: deliveries as u64,
        })
    }
}
