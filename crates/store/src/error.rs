#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error; the message is the backend's own.
    #[error("database error: {0}")]
    Backend(String),

    /// A stored value could not be read back, which points at a bug or manual editing.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),

    /// A write found the row changed since it was read.
    #[error("{what} was changed concurrently; retry the operation")]
    Conflict { what: String },

    /// The value violates a uniqueness rule, such as a second token with the same name.
    #[error("{what} already exists")]
    Duplicate { what: String },

    /// The writer has shut down, so the write was not applied.
    #[error("the store is closed")]
    Closed,
}
