//! Errors of command validation. Each names the value that failed and how to fix it.

use serde::Serialize;
use serde_json::Value;

use crate::kinds::Kind;

/// One invalid field of a command.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    /// The value as it was sent, or null when the field was missing.
    pub value: Value,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, value: &Value, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            value: value.clone(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid {kind}: {}", join(errors))]
    Validation { kind: Kind, errors: Vec<FieldError> },

    #[error(
        "{kind} {id} cannot move from `{from}` to `{to}`; allowed next states: {}",
        list_or_none(allowed)
    )]
    TransitionNotAllowed {
        kind: Kind,
        id: String,
        from: String,
        to: String,
        allowed: Vec<String>,
    },

    #[error("`{state}` is not a state of {kind}; states are: {}", allowed.join(", "))]
    UnknownState {
        kind: Kind,
        state: String,
        allowed: Vec<String>,
    },

    #[error(
        "a new {kind} cannot start in state `{state}`; create it in {} and move it through its \
         transitions",
        allowed.join(" or ")
    )]
    InitialStateNotAllowed {
        kind: Kind,
        state: String,
        allowed: Vec<String>,
    },

    #[error("{kind} {id} not found")]
    NotFound { kind: Kind, id: String },

    #[error(
        "{kind} {id} is at version {actual}, not {expected}; read it again and reapply the change"
    )]
    VersionConflict {
        kind: Kind,
        id: String,
        expected: i64,
        actual: i64,
    },

    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: Kind, id: String },

    #[error(
        "{kind} {id} is {state}, so its fields can no longer change; move it to another state \
         first if your process allows it"
    )]
    Locked {
        kind: Kind,
        id: String,
        state: String,
    },

    #[error("{0}")]
    Invalid(String),

    /// The change needs an approved request first.
    #[error(
        "{kind} {id} can move to `{to}` only through an approved `{request_kind}` request; \
         open one with POST /api/v1/approvals and wait for its decision"
    )]
    ApprovalRequired {
        kind: Kind,
        id: String,
        to: String,
        request_kind: String,
    },

    /// The actor may not do this, whatever the data.
    #[error("{0}")]
    Forbidden(String),

    /// The change was overtaken by another, such as a second decision on a decided step.
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    pub fn field(kind: Kind, error: FieldError) -> Self {
        DomainError::Validation {
            kind,
            errors: vec![error],
        }
    }
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn list_or_none(states: &[String]) -> String {
    if states.is_empty() {
        "none".to_string()
    } else {
        states.join(", ")
    }
}
