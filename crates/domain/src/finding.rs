//! Findings: open exceptions raised by controls, each with its evidence.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::RecordRef;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// An exception a control raised. `key` identifies the condition, so raising the same
/// condition again updates the finding instead of adding a second one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub key: String,
    pub control: String,
    pub severity: Severity,
    /// The record the finding is about, such as the employee whose day is too long.
    pub record: Option<RecordRef>,
    pub message: String,
    pub evidence: Value,
    /// `open` or `resolved`.
    pub state: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A finding as a control produces it, before the store gives it an id and dates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RaisedFinding {
    pub key: String,
    pub control: String,
    pub severity: Severity,
    pub record: Option<RecordRef>,
    pub message: String,
    pub evidence: Value,
}
