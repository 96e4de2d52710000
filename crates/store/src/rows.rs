//! Rows the store keeps beside records and events, and the queries over them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_domain::{Kind, RecordRef, Severity};

/// Largest page any list returns.
pub const MAX_PAGE: usize = 1000;

/// One page of a list and the cursor of the next page, if there is one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Records of one kind in id order, optionally filtered.
#[derive(Clone, Debug, Default)]
pub struct RecordQuery {
    pub kind: Option<Kind>,
    pub after: Option<String>,
    pub limit: usize,
    pub state: Option<String>,
    /// Equality filters on fields; the value is compared in its stored JSON form, and null
    /// matches an unset field.
    pub fields: Vec<(String, Value)>,
    /// Fields that must be set.
    pub present: Vec<String>,
    /// Pairs of fields that must hold the same value.
    pub equal_fields: Vec<(String, String)>,
    /// When not empty, only these fields are read into each record, and neither the other
    /// fields nor the attributes: a projection for readers that need a few fields of many
    /// records, such as billing over a year of time entries. A backend may serve a
    /// projection of [`TIME_ENTRY_FIELDS`] by contract line or project from an index alone.
    pub only_fields: Vec<String>,
}

/// The fields of a time entry that billing reads. Backends index this projection, so keep
/// it and their indexes in step.
pub const TIME_ENTRY_FIELDS: &[&str] = &[
    "employee",
    "date",
    "hours",
    "project",
    "contract_line",
    "billable",
    "role",
    "invoice",
];

/// Counts and exact decimal sums of records of one kind, grouped by fields.
#[derive(Clone, Debug, Default)]
pub struct AggregateQuery {
    pub kind: Option<Kind>,
    /// Field names, or `attributes.<path>` for values under the record's attributes.
    pub group_by: Vec<String>,
    /// A decimal or money field to sum.
    pub sum: Option<String>,
    /// Only records in one of these states; all states when empty.
    pub states: Vec<String>,
    /// Only groups whose sum is above this value.
    pub min_sum: Option<rust_decimal::Decimal>,
    /// Only records whose field lies within these bounds.
    pub range: Option<FieldRange>,
}

/// Inclusive bounds on one text field, compared as text, the order of ISO dates and times.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldRange {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AggregateRow {
    /// The group's values, in `group_by` order; null for unset fields.
    pub keys: Vec<Value>,
    pub count: u64,
    pub sum: rust_decimal::Decimal,
}

#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    /// Events with a sequence number above this one.
    pub after_seq: Option<i64>,
    pub limit: usize,
    pub record: Option<RecordRef>,
    pub name: Option<String>,
    pub correlation: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// A record mirrored from another system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalLink {
    pub system: String,
    pub model: String,
    pub external_id: String,
    pub record: RecordRef,
    /// The source's own version marker, such as Odoo's `write_date`.
    pub source_version: Option<String>,
}

/// One stored version of a rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleVersion {
    pub rule_id: String,
    pub version: i64,
    /// SHA-256 of the rule's canonical form; a new version is stored only when it changes.
    pub hash: String,
    /// The rule as JSON in its canonical form.
    pub definition: Value,
    /// `file:<path>` or `api`.
    pub origin: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    /// Set when the rule was removed from its files or deleted through the API.
    pub retired_at: Option<DateTime<Utc>>,
}

/// One version of an approval policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub policy_id: String,
    pub version: i64,
    /// SHA-256 of the policy's canonical form; a new version is stored only when it changes.
    pub hash: String,
    /// The policy as JSON in its canonical form.
    pub definition: Value,
    /// `file:<path>`.
    pub origin: String,
    pub created_at: DateTime<Utc>,
}

/// One version of the firm's billing settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BillingSettingsVersion {
    /// 1 for the first settings installed, one more for each change.
    pub version: i64,
    /// SHA-256 of the canonical definition; a new version is stored only when it changes.
    pub hash: String,
    /// The settings as canonical JSON.
    pub definition: Value,
    /// The rules-folder file that contained the settings, if any.
    pub origin: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One version of the firm's control settings and project templates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlSettingsVersion {
    /// 1 for the first settings installed, one more for each change.
    pub version: i64,
    /// SHA-256 of the canonical definition; a new version is stored only when it changes.
    pub hash: String,
    /// The settings as canonical JSON.
    pub definition: Value,
    /// The rules folder the settings were installed from, if any.
    pub origin: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The trigger matched and the condition was false.
    Skipped,
    /// The condition or an action's values could not be evaluated; the error is stored.
    EvaluationError,
    /// The condition held and a job will run the actions.
    Queued,
    Succeeded,
    /// An attempt failed and another is scheduled.
    Retrying,
    /// Every attempt failed; the job is in the dead-letter queue.
    Dead,
    /// The rule chain reached the depth limit, so the actions did not run.
    DepthLimited,
    /// The actions paused at a wait step.
    Waiting,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Skipped => "skipped",
            RunStatus::EvaluationError => "evaluation_error",
            RunStatus::Queued => "queued",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Retrying => "retrying",
            RunStatus::Dead => "dead",
            RunStatus::DepthLimited => "depth_limited",
            RunStatus::Waiting => "waiting",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "skipped" => RunStatus::Skipped,
            "evaluation_error" => RunStatus::EvaluationError,
            "queued" => RunStatus::Queued,
            "succeeded" => RunStatus::Succeeded,
            "retrying" => RunStatus::Retrying,
            "dead" => RunStatus::Dead,
            "depth_limited" => RunStatus::DepthLimited,
            "waiting" => RunStatus::Waiting,
            _ => return None,
        })
    }
}

/// The explanation of one rule meeting one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub rule_id: String,
    pub rule_version: i64,
    pub event_id: String,
    pub record: Option<RecordRef>,
    pub status: RunStatus,
    /// The trigger that matched, in words.
    pub trigger: String,
    pub condition: Option<String>,
    /// The values the condition read, by path.
    pub inputs: Value,
    /// The condition's value, or null when there is none.
    pub result: Value,
    /// Each action with its resolved parameters and, once run, its outcome.
    pub actions: Value,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    pub after: Option<String>,
    pub limit: usize,
    pub rule_id: Option<String>,
    pub event_id: Option<String>,
    pub record: Option<RecordRef>,
    pub status: Option<RunStatus>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    /// Paused until an awaited event arrives or its timeout passes.
    Waiting,
    Succeeded,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Waiting => "waiting",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "waiting" => JobState::Waiting,
            "succeeded" => JobState::Succeeded,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

/// A durable unit of work. `key` is unique, so enqueuing the same work twice keeps one job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub key: String,
    /// What the job does, such as `rule_actions`; the engine dispatches on it.
    pub kind: String,
    pub run_id: Option<String>,
    pub payload: Value,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// How many times an operator replayed the job from the dead-letter queue.
    pub replays: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default)]
pub struct JobQuery {
    pub after: Option<String>,
    pub limit: usize,
    pub state: Option<JobState>,
    pub kind: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct FindingQuery {
    pub after: Option<String>,
    pub limit: usize,
    pub state: Option<String>,
    pub control: Option<String>,
    pub severity: Option<Severity>,
    pub record: Option<RecordRef>,
}

/// An API token. Only the SHA-256 of the secret is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub hash: String,
    /// The employee the token acts for, if any.
    pub employee: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Counts used by health checks and metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub pending: u64,
    pub running: u64,
    pub waiting: u64,
    pub dead: u64,
    /// Age in seconds of the oldest pending job that is due.
    pub oldest_due_seconds: Option<f64>,
}
