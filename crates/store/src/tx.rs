use chrono::{DateTime, Utc};
use steward_domain::command::ExternalKey;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Event, Finding, Kind, Record, RecordRef};

use crate::error::StoreError;
use crate::rows::*;

/// Reads that every backend offers, inside a transaction or a snapshot.
pub trait ReadTx {
    /// The scheduler's tables.
    fn schedule(&self) -> &dyn crate::schedule::ScheduleRead;
    /// The webhook tables.
    fn webhooks(&self) -> &dyn crate::webhooks::WebhookRead;

    fn record(&self, kind: Kind, id: &str) -> Result<Option<Record>, StoreError>;
    fn record_exists(&self, kind: Kind, id: &str) -> Result<bool, StoreError>;
    fn records(&self, query: &RecordQuery) -> Result<Page<Record>, StoreError>;
    fn count_records(&self, kind: Kind, state: Option<&str>) -> Result<u64, StoreError>;
    /// Groups, counts and sums records; sums are exact decimals.
    fn aggregate(&self, query: &AggregateQuery) -> Result<Vec<AggregateRow>, StoreError>;
    /// Calls `visit` for every record of `kind` in id order; `visit` returns false to stop.
    fn scan_records(
        &self,
        kind: Kind,
        visit: &mut dyn FnMut(Record) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    fn event(&self, id: &str) -> Result<Option<Event>, StoreError>;
    fn events(&self, query: &EventQuery) -> Result<Page<Event>, StoreError>;
    fn count_events(&self) -> Result<u64, StoreError>;
    /// Returns the sequence number of the newest event, or `None` before the first. Records change
    /// only together with an event, so two transactions that see the same newest event see
    /// the same records.
    fn last_event_seq(&self) -> Result<Option<i64>, StoreError>;

    fn external_link(&self, key: &ExternalKey) -> Result<Option<ExternalLink>, StoreError>;
    fn external_links_of(&self, record: &RecordRef) -> Result<Vec<ExternalLink>, StoreError>;
    fn sync_cursor(&self, system: &str, model: &str) -> Result<Option<String>, StoreError>;

    /// Every version of every rule, oldest first.
    fn rule_versions(&self) -> Result<Vec<RuleVersion>, StoreError>;
    /// Every version of every approval policy, oldest first.
    fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError>;
    /// The newest version of the billing settings, if any were installed.
    fn billing_settings(&self) -> Result<Option<BillingSettingsVersion>, StoreError>;
    /// The newest version of the control settings, if any were installed.
    fn control_settings(&self) -> Result<Option<ControlSettingsVersion>, StoreError>;

    fn run(&self, id: &str) -> Result<Option<Run>, StoreError>;
    /// Counts stored rule runs by rule and status: (rule id, status, count).
    fn run_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError>;
    fn runs(&self, query: &RunQuery) -> Result<Page<Run>, StoreError>;

    fn job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    fn jobs(&self, query: &JobQuery) -> Result<Page<Job>, StoreError>;
    fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError>;
    /// The earliest instant a job needs a worker: the `run_at` of a pending or waiting job, or
    /// the lease end of a running one. An idle worker reads it instead of claiming on every
    /// wake-up.
    fn next_job_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    fn finding(&self, id: &str) -> Result<Option<Finding>, StoreError>;
    fn findings(&self, query: &FindingQuery) -> Result<Page<Finding>, StoreError>;

    fn token_by_hash(&self, hash: &str) -> Result<Option<Token>, StoreError>;
    fn tokens(&self) -> Result<Vec<Token>, StoreError>;
}

/// Writes, inside one transaction.
pub trait WriteTx: ReadTx {
    fn schedule_mut(&mut self) -> &mut dyn crate::schedule::ScheduleWrite;
    fn webhooks_mut(&mut self) -> &mut dyn crate::webhooks::WebhookWrite;

    /// Counts the writes made through this transaction so far; the writer uses it to tell a
    /// closure that failed before writing from one that failed halfway.
    fn write_count(&self) -> u64;

    /// Runs `f` inside a savepoint: when `f` returns false its writes are undone, and the
    /// earlier writes of the transaction stay. Returns what `f` returned.
    fn nested(&mut self, f: &mut dyn FnMut(&mut dyn WriteTx) -> bool) -> Result<bool, StoreError>;

    fn insert_record(&mut self, record: &Record) -> Result<(), StoreError>;
    /// Replaces a record whose stored version is `record.version - 1`.
    fn update_record(&mut self, record: &Record) -> Result<(), StoreError>;

    /// Appends an event and returns its sequence number.
    fn append_event(&mut self, event: &Event) -> Result<i64, StoreError>;

    fn link_external(&mut self, link: &ExternalLink) -> Result<(), StoreError>;
    fn set_sync_cursor(
        &mut self,
        system: &str,
        model: &str,
        cursor: &str,
    ) -> Result<(), StoreError>;

    fn insert_rule_version(&mut self, version: &RuleVersion) -> Result<(), StoreError>;
    fn insert_policy_version(&mut self, version: &PolicyVersion) -> Result<(), StoreError>;
    /// Stores a new version of the billing settings; a version number already stored is a
    /// [`StoreError::Duplicate`].
    fn insert_billing_settings(
        &mut self,
        version: &BillingSettingsVersion,
    ) -> Result<(), StoreError>;
    /// Stores a new version of the control settings; a version number already stored is a
    /// [`StoreError::Duplicate`].
    fn insert_control_settings(
        &mut self,
        version: &ControlSettingsVersion,
    ) -> Result<(), StoreError>;
    fn retire_rule(&mut self, rule_id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    fn insert_run(&mut self, run: &Run) -> Result<(), StoreError>;
    fn finish_run(
        &mut self,
        id: &str,
        status: RunStatus,
        actions: &serde_json::Value,
        error: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;

    /// Inserts a job unless one with the same key exists; returns whether it was inserted.
    fn insert_job(&mut self, job: &Job) -> Result<bool, StoreError>;
    /// Marks up to `limit` due pending jobs as running until `lease_until` and returns them.
    fn claim_jobs(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError>;
    /// Marks a job done, but only while it is still running under the claim that made
    /// `attempt` (its attempt count), so a worker whose lease was taken over cannot finish
    /// it. Returns false when the claim is no longer current.
    fn complete_job(
        &mut self,
        id: &str,
        attempt: u32,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Extends the lease of a job still running under the claim that made `attempt`, so
    /// that no other worker takes over a job that runs longer than one lease. Returns false
    /// when the claim is no longer current.
    fn extend_lease(
        &mut self,
        id: &str,
        attempt: u32,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records a failed attempt: retried at `retry_at`, or dead when `retry_at` is `None`.
    /// Fenced by `attempt` like [`WriteTx::complete_job`].
    fn fail_job(
        &mut self,
        id: &str,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Saves a running job's progress and pauses it: `Pending` until `run_at`, or `Waiting`
    /// for an event with `wait_key` until `run_at` (its timeout). Fenced by `attempt` like
    /// [`WriteTx::complete_job`]; the attempt count starts again at 0.
    fn park_job(
        &mut self,
        id: &str,
        attempt: u32,
        payload: &serde_json::Value,
        state: JobState,
        run_at: DateTime<Utc>,
        wait_key: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Saves a running job's progress without ending its claim. Fenced by `attempt`.
    fn save_job_progress(
        &mut self,
        id: &str,
        attempt: u32,
        payload: &serde_json::Value,
    ) -> Result<bool, StoreError>;
    /// Wakes the jobs waiting for one of `wait_keys`, recording `event_id` in their payload
    /// as `awaited`. Returns how many woke.
    fn resume_waiting(
        &mut self,
        wait_keys: &[String],
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Moves a dead job back to pending with fresh attempts; false if it is not dead.
    fn replay_job(&mut self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Returns running jobs whose lease has expired to pending; returns how many.
    fn release_expired_leases(&mut self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Inserts or refreshes the finding with the same key and reopens it if it was resolved.
    /// Returns the finding and whether it is new or reopened.
    fn raise_finding(
        &mut self,
        finding: &RaisedFinding,
        at: DateTime<Utc>,
    ) -> Result<(Finding, bool), StoreError>;
    /// Resolves the open findings of `control` whose keys are not in `still_open`.
    fn resolve_findings(
        &mut self,
        control: &str,
        still_open: &[String],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    fn insert_token(&mut self, token: &Token) -> Result<(), StoreError>;
    fn touch_token(&mut self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    fn revoke_token(&mut self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
}
