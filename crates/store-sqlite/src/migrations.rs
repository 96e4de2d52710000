//! Schema migrations, applied in order; `PRAGMA user_version` holds how many have run.

use rusqlite::Connection;

use crate::sql_error;
use steward_store::StoreError;

/// Each entry is one migration, applied in order. Never edit a released entry: add a file.
const MIGRATIONS: &[&str] = &[
    include_str!("../sql/0001_core.sql"),
    include_str!("../sql/0002_scheduler.sql"),
    include_str!("../sql/0003_webhooks.sql"),
    include_str!("../sql/0004_approvals.sql"),
    include_str!("../sql/0005_billing.sql"),
    include_str!("../sql/0006_controls.sql"),
    include_str!("../sql/0007_billing_time.sql"),
    include_str!("../sql/0008_entries_by_day.sql"),
];

/// Brings the database to the newest schema, one transaction per migration.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql_error)?;
    let current = usize::try_from(current).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current}, newer than this build's {}; run a newer \
             steward",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(sql_error)?;
        tx.execute_batch(sql).map_err(sql_error)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)
            .map_err(sql_error)?;
        tx.commit().map_err(sql_error)?;
    }
    Ok(())
}

pub fn latest_version() -> usize {
    MIGRATIONS.len()
}
