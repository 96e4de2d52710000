//! Storage of the scheduler: timers of time triggers and occurrences of schedules.

use crate::error::StoreError;

/// Scheduler reads, reached through [`crate::ReadTx::schedule`].
pub trait ScheduleRead {
    /// Placeholder so the trait is not empty while the scheduler storage is built.
    fn schedule_tables_ready(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// Scheduler writes, reached through [`crate::WriteTx::schedule_mut`].
pub trait ScheduleWrite: ScheduleRead {}
