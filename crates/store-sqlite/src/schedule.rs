//! The scheduler's tables on SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use steward_domain::RecordRef;
use steward_store::StoreError;
use steward_store::schedule::{Occurrence, ScheduleRead, ScheduleWrite, Timer};

use crate::codec::{self, ts};
use crate::conn::Conn;
use crate::sql_error;

type Fallible<T> = Result<T, StoreError>;

const TIMER_COLUMNS: &str =
    "rule_id, record_kind, record_id, due_at, rule_version, state, fired_at, event_id";

fn timer(row: &Row) -> Fallible<Timer> {
    let kind: String = row.get("record_kind").map_err(sql_error)?;
    Ok(Timer {
        rule_id: row.get("rule_id").map_err(sql_error)?,
        record: RecordRef::new(
            codec::kind(&kind)?,
            row.get::<_, String>("record_id").map_err(sql_error)?,
        ),
        due_at: codec::parse_ts(&row.get::<_, String>("due_at").map_err(sql_error)?)?,
        rule_version: row.get("rule_version").map_err(sql_error)?,
        state: row.get("state").map_err(sql_error)?,
        fired_at: codec::opt_ts(row.get("fired_at").map_err(sql_error)?)?,
        event_id: row.get("event_id").map_err(sql_error)?,
    })
}

const OCCURRENCE_COLUMNS: &str = "rule_id, scheduled_at, rule_version, state, reason, event_id, run_id, job_id, decided_at, finished_at";

fn occurrence(row: &Row) -> Fallible<Occurrence> {
    Ok(Occurrence {
        rule_id: row.get("rule_id").map_err(sql_error)?,
        scheduled_at: codec::parse_ts(&row.get::<_, String>("scheduled_at").map_err(sql_error)?)?,
        rule_version: row.get("rule_version").map_err(sql_error)?,
        state: row.get("state").map_err(sql_error)?,
        reason: row.get("reason").map_err(sql_error)?,
        event_id: row.get("event_id").map_err(sql_error)?,
        run_id: row.get("run_id").map_err(sql_error)?,
        job_id: row.get("job_id").map_err(sql_error)?,
        decided_at: codec::parse_ts(&row.get::<_, String>("decided_at").map_err(sql_error)?)?,
        finished_at: codec::opt_ts(row.get("finished_at").map_err(sql_error)?)?,
    })
}

impl ScheduleRead for Conn<'_> {
    fn next_timer_due(&self) -> Fallible<Option<DateTime<Utc>>> {
        let due: Option<String> = self
            .conn
            .query_row(
                "SELECT min(due_at) FROM timers WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .map_err(sql_error)?;
        codec::opt_ts(due)
    }

    fn timers_of(&self, record: &RecordRef) -> Fallible<Vec<Timer>> {
        let sql = format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE record_kind = ?1 AND record_id = ?2 ORDER BY due_at"
        );
        self.rows(&sql, params![record.kind.name(), record.id], timer)
    }

    fn backfilled_version(&self, rule_id: &str) -> Fallible<Option<i64>> {
        self.conn
            .query_row(
                "SELECT rule_version FROM timer_backfills WHERE rule_id = ?1",
                params![rule_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_error)
    }

    fn schedule_cursor(&self, rule_id: &str) -> Fallible<Option<DateTime<Utc>>> {
        let until: Option<String> = self
            .conn
            .query_row(
                "SELECT planned_until FROM schedule_cursors WHERE rule_id = ?1",
                params![rule_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_error)?;
        codec::opt_ts(until)
    }

    fn occurrences(&self, rule_id: &str, limit: usize) -> Fallible<Vec<Occurrence>> {
        let sql = format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM schedule_occurrences WHERE rule_id = ?1
             ORDER BY scheduled_at DESC LIMIT ?2"
        );
        self.rows(&sql, params![rule_id, limit as i64], occurrence)
    }

    fn latest_occurrence(&self, rule_id: &str, state: &str) -> Fallible<Option<Occurrence>> {
        let sql = format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM schedule_occurrences WHERE rule_id = ?1 AND state = ?2
             ORDER BY scheduled_at DESC LIMIT 1"
        );
        Ok(self
            .rows(&sql, params![rule_id, state], occurrence)?
            .into_iter()
            .next())
    }
}

impl ScheduleWrite for Conn<'_> {
    fn set_timer(
        &mut self,
        rule_id: &str,
        rule_version: i64,
        record: &RecordRef,
        due_at: Option<DateTime<Utc>>,
        not_before: Option<DateTime<Utc>>,
    ) -> Fallible<()> {
        let due = due_at.map(ts);
        self.write(
            "UPDATE timers SET state = 'cancelled'
             WHERE rule_id = ?1 AND record_kind = ?2 AND record_id = ?3 AND state = 'pending'
               AND (?4 IS NULL OR due_at != ?4)",
            params![rule_id, record.kind.name(), record.id, due],
        )?;
        let Some(due_at) = due_at else { return Ok(()) };
        let state = if not_before.is_some_and(|limit| due_at < limit) {
            "skipped"
        } else {
            "pending"
        };
        // An instant cancelled earlier becomes pending again when the date comes back to it.
        self.write(
            "INSERT INTO timers (rule_id, record_kind, record_id, due_at, rule_version, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (rule_id, record_kind, record_id, due_at) DO UPDATE
                 SET state = excluded.state, rule_version = excluded.rule_version
                 WHERE timers.state = 'cancelled'",
            params![
                rule_id,
                record.kind.name(),
                record.id,
                ts(due_at),
                rule_version,
                state
            ],
        )?;
        Ok(())
    }

    fn claim_due_timers(&mut self, now: DateTime<Utc>, limit: usize) -> Fallible<Vec<Timer>> {
        let sql = format!(
            "UPDATE timers SET state = 'fired', fired_at = ?1
             WHERE (rule_id, record_kind, record_id, due_at) IN (
                 SELECT rule_id, record_kind, record_id, due_at FROM timers
                 WHERE state = 'pending' AND due_at <= ?1 ORDER BY due_at LIMIT ?2)
             RETURNING {TIMER_COLUMNS}"
        );
        let mut timers = self.rows_written(&sql, params![ts(now), limit as i64], timer)?;
        timers.sort_by(|a, b| {
            (a.due_at, &a.rule_id, &a.record).cmp(&(b.due_at, &b.rule_id, &b.record))
        });
        Ok(timers)
    }

    fn record_timer_event(&mut self, timer: &Timer, event_id: &str) -> Fallible<()> {
        self.write(
            "UPDATE timers SET event_id = ?5
             WHERE rule_id = ?1 AND record_kind = ?2 AND record_id = ?3 AND due_at = ?4",
            params![
                timer.rule_id,
                timer.record.kind.name(),
                timer.record.id,
                ts(timer.due_at),
                event_id
            ],
        )?;
        Ok(())
    }

    fn set_backfilled_version(&mut self, rule_id: &str, version: i64) -> Fallible<()> {
        self.write(
            "INSERT INTO timer_backfills (rule_id, rule_version) VALUES (?1, ?2)
             ON CONFLICT (rule_id) DO UPDATE SET rule_version = excluded.rule_version",
            params![rule_id, version],
        )?;
        Ok(())
    }

    fn set_schedule_cursor(&mut self, rule_id: &str, until: DateTime<Utc>) -> Fallible<()> {
        self.write(
            "INSERT INTO schedule_cursors (rule_id, planned_until) VALUES (?1, ?2)
             ON CONFLICT (rule_id) DO UPDATE SET planned_until = max(planned_until, excluded.planned_until)",
            params![rule_id, ts(until)],
        )?;
        Ok(())
    }

    fn insert_occurrence(&mut self, o: &Occurrence) -> Fallible<bool> {
        let inserted = self.write(
            "INSERT INTO schedule_occurrences (rule_id, scheduled_at, rule_version, state, reason,
                 event_id, run_id, job_id, decided_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (rule_id, scheduled_at) DO NOTHING",
            params![
                o.rule_id,
                ts(o.scheduled_at),
                o.rule_version,
                o.state,
                o.reason,
                o.event_id,
                o.run_id,
                o.job_id,
                ts(o.decided_at),
                o.finished_at.map(ts)
            ],
        )?;
        Ok(inserted == 1)
    }

    fn update_occurrence(&mut self, o: &Occurrence) -> Fallible<()> {
        self.write(
            "UPDATE schedule_occurrences SET rule_version = ?3, state = ?4, reason = ?5, event_id = ?6,
                 run_id = ?7, job_id = ?8, finished_at = ?9
             WHERE rule_id = ?1 AND scheduled_at = ?2",
            params![
                o.rule_id,
                ts(o.scheduled_at),
                o.rule_version,
                o.state,
                o.reason,
                o.event_id,
                o.run_id,
                o.job_id,
                o.finished_at.map(ts)
            ],
        )?;
        Ok(())
    }
}
