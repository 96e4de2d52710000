use steward_domain::DomainError;
use steward_store::StoreError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The command is invalid; retrying it unchanged fails the same way.
    #[error(transparent)]
    Domain(#[from] DomainError),

    #[error(transparent)]
    Store(#[from] StoreError),

    /// A rule could not be registered or run.
    #[error("{0}")]
    Rule(String),

    /// A call to another system failed; `transient` says whether a retry may succeed.
    #[error("{message}")]
    External { message: String, transient: bool },
}

impl EngineError {
    /// True when a later attempt may succeed: a conflict or a database problem, not an
    /// invalid command.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Store(
                StoreError::Backend(_) | StoreError::Conflict { .. } | StoreError::Closed,
            ) => true,
            EngineError::External { transient, .. } => *transient,
            _ => false,
        }
    }
}
