//! Storage of the scheduler: timers of time triggers and occurrences of schedules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_domain::RecordRef;

use crate::error::StoreError;

/// One due instant of a time trigger for one record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub rule_id: String,
    pub record: RecordRef,
    pub due_at: DateTime<Utc>,
    pub rule_version: i64,
    /// `pending`, `fired`, `cancelled` or `skipped`.
    pub state: String,
    pub fired_at: Option<DateTime<Utc>>,
    pub event_id: Option<String>,
}

/// One instant of a schedule and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Occurrence {
    pub rule_id: String,
    pub scheduled_at: DateTime<Utc>,
    pub rule_version: i64,
    /// `started`, `finished`, `skipped`, `missed` or `buffered`.
    pub state: String,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub run_id: Option<String>,
    pub job_id: Option<String>,
    pub decided_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Scheduler reads, reached through [`crate::ReadTx::schedule`].
pub trait ScheduleRead {
    /// The earliest due instant of a pending timer.
    fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Every timer of one record, oldest due first.
    fn timers_of(&self, record: &RecordRef) -> Result<Vec<Timer>, StoreError>;
    /// The rule version whose existing records have timers.
    fn backfilled_version(&self, rule_id: &str) -> Result<Option<i64>, StoreError>;
    fn schedule_cursor(&self, rule_id: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The occurrences of a schedule, newest first.
    fn occurrences(&self, rule_id: &str, limit: usize) -> Result<Vec<Occurrence>, StoreError>;
    /// The newest occurrence of a schedule in `state`.
    fn latest_occurrence(
        &self,
        rule_id: &str,
        state: &str,
    ) -> Result<Option<Occurrence>, StoreError>;
}

/// Scheduler writes, reached through [`crate::WriteTx::schedule_mut`].
pub trait ScheduleWrite: ScheduleRead {
    /// Makes `due_at` the one pending instant of `rule_id` for `record`: other pending
    /// instants are cancelled, and `None` cancels them all. An instant that already fired
    /// stays fired. An instant before `not_before` is stored as skipped.
    fn set_timer(
        &mut self,
        rule_id: &str,
        rule_version: i64,
        record: &RecordRef,
        due_at: Option<DateTime<Utc>>,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// Marks up to `limit` pending timers due by `now` as fired and returns them.
    fn claim_due_timers(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Timer>, StoreError>;
    /// Records the event a fired timer appended.
    fn record_timer_event(&mut self, timer: &Timer, event_id: &str) -> Result<(), StoreError>;
    fn set_backfilled_version(&mut self, rule_id: &str, version: i64) -> Result<(), StoreError>;
    fn set_schedule_cursor(
        &mut self,
        rule_id: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Inserts an occurrence unless the instant exists; returns whether it was inserted.
    fn insert_occurrence(&mut self, occurrence: &Occurrence) -> Result<bool, StoreError>;
    /// Replaces the state and links of an existing occurrence.
    fn update_occurrence(&mut self, occurrence: &Occurrence) -> Result<(), StoreError>;
}
