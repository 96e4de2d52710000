//! What a sync read and wrote, per Odoo model.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The outcome of one sync.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncReport {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// True when at least one model was read from a stored `write_date` cursor.
    pub incremental: bool,
    /// One entry per Odoo model, in the order the sync reads them.
    pub models: Vec<ModelReport>,
}

/// Counts for one Odoo model. `created`, `updated` and `unchanged` count Steward records, so a
/// sale order that becomes an opportunity and a contract counts twice.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelReport {
    pub model: String,
    /// The `write_date` cursor the read started from; absent on a full read.
    pub since: Option<String>,
    /// Rows read from Odoo, including rows read only to look values up.
    pub read: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rows that map to no record of their own: goods lines, employees' work contacts, and
    /// leaves of a whole company or department.
    pub skipped: usize,
    pub failed: Vec<RowFailure>,
    /// The cursor stored for the next sync.
    pub cursor: Option<String>,
}

/// A row that could not be mirrored; the other rows were written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowFailure {
    pub model: String,
    pub id: i64,
    /// The Steward kind it was mapped to, when mapping got that far.
    pub kind: Option<String>,
    pub error: String,
}

impl SyncReport {
    pub fn model(&self, name: &str) -> Option<&ModelReport> {
        self.models.iter().find(|m| m.model == name)
    }

    pub fn created(&self) -> usize {
        self.models.iter().map(|m| m.created).sum()
    }

    pub fn updated(&self) -> usize {
        self.models.iter().map(|m| m.updated).sum()
    }

    pub fn failures(&self) -> impl Iterator<Item = &RowFailure> {
        self.models.iter().flat_map(|m| m.failed.iter())
    }
}
