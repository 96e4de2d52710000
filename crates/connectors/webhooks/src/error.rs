//! Errors of the webhook management API and of the service's set-up.

use serde_json::Value;
use steward_domain::FieldError;
use steward_engine::EngineError;
use steward_store::StoreError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    /// One or more values of a request are invalid; each detail names the field, its value
    /// and the fix.
    #[error("{message}")]
    Invalid {
        message: String,
        details: Vec<FieldError>,
    },

    #[error("{0}")]
    NotFound(String),

    /// The request contradicts the current state, such as resending to a disabled endpoint.
    #[error("{0}")]
    Conflict(String),

    /// The secret key or a sealed secret cannot be used.
    #[error("{0}")]
    Secret(String),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl WebhookError {
    /// Builds an error about one field, with the value it had.
    pub fn field(field: &str, value: &Value, message: impl Into<String>) -> Self {
        let detail = FieldError::new(field, value, message);
        let shown = match value {
            Value::Null => String::new(),
            Value::String(text) => format!(" `{}`", text.chars().take(200).collect::<String>()),
            other => format!(
                " {}",
                other.to_string().chars().take(200).collect::<String>()
            ),
        };
        WebhookError::Invalid {
            message: format!("invalid {}{shown}: {}", detail.field, detail.message),
            details: vec![detail],
        }
    }

    /// Builds an error listing several invalid fields.
    pub fn fields(details: Vec<FieldError>) -> Self {
        let message = details
            .iter()
            .map(|d| format!("{}: {}", d.field, d.message))
            .collect::<Vec<_>>()
            .join("; ");
        WebhookError::Invalid {
            message: format!("invalid webhook endpoint: {message}"),
            details,
        }
    }
}
