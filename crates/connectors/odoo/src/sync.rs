//! The sync: read Odoo completely first, map every row, write through the engine in batches,
//! resend the records whose references pointed at records written later, and store the
//! `write_date` cursors.
//!
//! Reading everything before writing anything means an Odoo error or a malformed response
//! leaves the store untouched. A row that fails mapping or validation is reported and the
//! other rows are written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;
use steward_domain::{Actor, Command, CommandContext};
use steward_engine::pipeline::UNRESOLVED_REFS;
use steward_engine::{Engine, EngineError, Outcome};
use steward_store::{StoreError, WriteTx};

use crate::client::{OdooClient, Row};
use crate::config::OdooConfig;
use crate::error::OdooError;
use crate::fetch::{Fetcher, Snapshot};
use crate::mapping::{self, Lookups, MapResult, SYSTEM};
use crate::models::{
    ACCOUNT_MOVE, ACCOUNT_MOVE_LINE, CALENDAR, HR_EMPLOYEE, HR_EXPENSE, HR_LEAVE, MILESTONE,
    MODELS, PRODUCT, PROJECT, RES_PARTNER, SALE_ORDER, SALE_ORDER_LINE, TASK, TIMESHEET,
};
use crate::progress::Progress;
use crate::report::{ModelReport, RowFailure, SyncReport};

/// Models in the order their records are written: referenced records first where the data
/// allows. Contract lines and tasks refer to each other, so one side waits for the second pass.
const WRITE_ORDER: &[&str] = &[
    CALENDAR,
    HR_EMPLOYEE,
    RES_PARTNER,
    PRODUCT,
    SALE_ORDER,
    PROJECT,
    SALE_ORDER_LINE,
    MILESTONE,
    TASK,
    HR_LEAVE,
    ACCOUNT_MOVE,
    TIMESHEET,
    HR_EXPENSE,
    ACCOUNT_MOVE_LINE,
];

/// Failures logged one by one per model; the rest are only counted in the report.
const LOGGED_FAILURES: usize = 20;

/// Settings of one sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    /// Ignore the stored cursors and read every record.
    pub full: bool,
    /// Show progress lines on stderr when it is a terminal.
    pub progress: bool,
    /// Commands sent to the engine at once; the store commits each batch in few transactions.
    pub batch_size: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            full: false,
            progress: true,
            batch_size: 250,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Odoo(#[from] OdooError),

    #[error("the Odoo sync cannot use the Steward store: {0}; check the database file and retry")]
    Store(String),
}

impl From<StoreError> for SyncError {
    fn from(error: StoreError) -> Self {
        SyncError::Store(error.to_string())
    }
}

/// Syncs the Odoo server of `config` into the engine's store.
pub async fn sync(
    engine: &Arc<Engine>,
    config: &OdooConfig,
    options: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let client = OdooClient::new(config.clone())?;
    sync_with_client(engine, &client, options).await
}

/// One record to write and where it came from.
struct Job {
    model: &'static str,
    id: i64,
    write_date: Option<String>,
    kind: Option<String>,
    command: Command,
    status: Option<Status>,
    failure: Option<RowFailure>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Created,
    Updated,
    Unchanged,
    Failed,
}

/// Syncs with an existing client.
pub async fn sync_with_client(
    engine: &Arc<Engine>,
    client: &OdooClient,
    options: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let started_at = engine.clock().now();
    client.authenticate().await?;
    let cursors = if options.full {
        BTreeMap::new()
    } else {
        load_cursors(engine).await?
    };
    let progress = Progress::new(options.progress);
    let fetcher = Fetcher {
        client,
        progress: &progress,
    };
    let Snapshot {
        rows,
        to_map,
        latest,
        read,
    } = fetcher.snapshot(&cursors).await?;
    let lookups = Lookups::new(rows);
    let mut tally = Tally::new(&cursors, &read);

    let mut jobs = tally.plan(&to_map, &lookups, &progress);
    let first: Vec<usize> = (0..jobs.len()).collect();
    let again = write(engine, &mut jobs, &first, options.batch_size).await?;
    if !again.is_empty() {
        tracing::info!(
            records = again.len(),
            "resending records with unresolved references"
        );
        write(engine, &mut jobs, &again, options.batch_size).await?;
    }
    tally.count(&jobs);

    let new_cursors = next_cursors(&latest, &tally.failed_dates);
    store_cursors(engine, &new_cursors).await?;
    let models = tally.finish(&new_cursors, &progress);
    progress.finish();

    let report = SyncReport {
        started_at,
        finished_at: engine.clock().now(),
        incremental: cursors.values().any(Option::is_some),
        models,
    };
    tracing::info!(
        created = report.created(),
        updated = report.updated(),
        failed = report.failures().count(),
        incremental = report.incremental,
        "Odoo sync finished"
    );
    Ok(report)
}

/// The per-model reports being filled, and the `write_date` of every row that failed.
struct Tally {
    reports: BTreeMap<&'static str, ModelReport>,
    failed_dates: BTreeMap<&'static str, Vec<String>>,
}

impl Tally {
    fn new(
        cursors: &BTreeMap<&'static str, Option<String>>,
        read: &BTreeMap<&'static str, usize>,
    ) -> Tally {
        let reports = MODELS
            .iter()
            .map(|m| {
                let report = ModelReport {
                    model: m.name.to_string(),
                    since: cursors.get(m.name).cloned().flatten(),
                    read: read.get(m.name).copied().unwrap_or_default(),
                    ..ModelReport::default()
                };
                (m.name, report)
            })
            .collect();
        Tally {
            reports,
            failed_dates: BTreeMap::new(),
        }
    }

    fn report(&mut self, model: &'static str) -> &mut ModelReport {
        self.reports
            .get_mut(model)
            .expect("every written model is read")
    }

    fn fail(&mut self, model: &'static str, write_date: Option<String>, failure: RowFailure) {
        self.failed_dates
            .entry(model)
            .or_default()
            .extend(write_date);
        self.report(model).failed.push(failure);
    }

    /// Maps every row to mirror, in write order, into the jobs to send. Rows that map to
    /// nothing are counted as skipped, and rows that cannot be mapped as failed.
    fn plan(
        &mut self,
        to_map: &BTreeMap<&'static str, BTreeSet<i64>>,
        lookups: &Lookups,
        progress: &Progress,
    ) -> Vec<Job> {
        let mut jobs = Vec::new();
        for model in WRITE_ORDER {
            for id in to_map.get(model).into_iter().flatten() {
                let Some(row) = lookups.row(model, *id) else {
                    continue;
                };
                let write_date = row
                    .get("write_date")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match map_row(model, row, lookups) {
                    Ok(commands) if commands.is_empty() => self.report(model).skipped += 1,
                    Ok(commands) => jobs.extend(commands.into_iter().map(|command| Job {
                        model,
                        id: *id,
                        write_date: write_date.clone(),
                        kind: command.kind().map(|k| k.name().to_string()),
                        command,
                        status: None,
                        failure: None,
                    })),
                    Err(error) => {
                        let failure = RowFailure {
                            model: model.to_string(),
                            id: *id,
                            kind: None,
                            error,
                        };
                        self.fail(model, write_date, failure);
                    }
                }
            }
            progress.message(model, "writing".to_string());
        }
        jobs
    }

    /// Counts the outcome of every job in its model's report.
    fn count(&mut self, jobs: &[Job]) {
        for job in jobs {
            match job.status {
                Some(Status::Created) => self.report(job.model).created += 1,
                Some(Status::Updated) => self.report(job.model).updated += 1,
                Some(Status::Unchanged) => self.report(job.model).unchanged += 1,
                Some(Status::Failed) | None => {
                    if let Some(failure) = job.failure.clone() {
                        self.fail(job.model, job.write_date.clone(), failure);
                    }
                }
            }
        }
    }

    /// Sets each model's cursor, logs its counts, and returns the reports in read order.
    fn finish(
        mut self,
        cursors: &BTreeMap<&'static str, String>,
        progress: &Progress,
    ) -> Vec<ModelReport> {
        for (model, report) in &mut self.reports {
            report.cursor = cursors.get(model).cloned().or_else(|| report.since.clone());
            log_model(report);
            progress.message(
                model,
                format!(
                    "{} created, {} updated, {} unchanged, {} failed",
                    report.created,
                    report.updated,
                    report.unchanged,
                    report.failed.len()
                ),
            );
        }
        MODELS
            .iter()
            .filter_map(|m| self.reports.remove(m.name))
            .collect()
    }
}

fn map_row(model: &str, row: &Row, lookups: &Lookups) -> MapResult {
    use mapping::{invoices, partners, people, projects, sales, time};
    match model {
        CALENDAR => people::calendar(row, lookups),
        HR_EMPLOYEE => people::employee(row, lookups),
        HR_LEAVE => people::leave(row),
        RES_PARTNER => partners::partner(row, lookups),
        PRODUCT => sales::service(row),
        SALE_ORDER => sales::order(row, lookups),
        SALE_ORDER_LINE => sales::order_line(row, lookups),
        PROJECT => projects::project(row, lookups),
        MILESTONE => projects::milestone(row),
        TASK => projects::task(row, lookups),
        TIMESHEET => time::timesheet(row),
        HR_EXPENSE => time::expense(row),
        ACCOUNT_MOVE => invoices::invoice(row),
        ACCOUNT_MOVE_LINE => invoices::invoice_line(row),
        other => Err(format!("{other} has no mapping to a Steward record")),
    }
}

fn has_unresolved(outcome: &Outcome) -> bool {
    outcome.record.as_ref().is_some_and(|r| {
        r.attributes
            .get(UNRESOLVED_REFS)
            .is_some_and(|v| !v.is_null())
    })
}

/// Sends the commands of `indices` in batches and records each outcome. Returns the jobs whose
/// record still has unresolved references.
async fn write(
    engine: &Arc<Engine>,
    jobs: &mut [Job],
    indices: &[usize],
    batch_size: usize,
) -> Result<Vec<usize>, SyncError> {
    let context = CommandContext::new(Actor::integration(SYSTEM));
    let mut unresolved = Vec::new();
    for batch in indices.chunks(batch_size.max(1)) {
        let commands = batch
            .iter()
            .map(|i| (jobs[*i].command.clone(), context.clone()))
            .collect();
        let outcomes = engine.execute_all(commands).await;
        for (index, outcome) in batch.iter().zip(outcomes) {
            let job = &mut jobs[*index];
            match outcome {
                Ok(outcome) => {
                    if has_unresolved(&outcome) {
                        unresolved.push(*index);
                    }
                    let status = match (job.status, outcome.created, outcome.event.is_some()) {
                        (_, true, _) => Status::Created,
                        (Some(Status::Created), _, _) => Status::Created,
                        (_, false, true) => Status::Updated,
                        (Some(Status::Updated), _, false) => Status::Updated,
                        _ => Status::Unchanged,
                    };
                    job.status = Some(status);
                    job.failure = None;
                }
                // The database itself failed, so later rows would fail the same way.
                Err(EngineError::Store(
                    error @ (StoreError::Backend(_) | StoreError::Closed | StoreError::Corrupt(_)),
                )) => return Err(error.into()),
                Err(error) => {
                    job.status = Some(Status::Failed);
                    job.failure = Some(RowFailure {
                        model: job.model.to_string(),
                        id: job.id,
                        kind: job.kind.clone(),
                        error: error.to_string(),
                    });
                }
            }
        }
    }
    Ok(unresolved)
}

/// Computes the cursor of each model read: its latest `write_date`, or the earliest `write_date` of a
/// row that failed, so that row is read again next time.
fn next_cursors(
    latest: &BTreeMap<&'static str, String>,
    failed: &BTreeMap<&'static str, Vec<String>>,
) -> BTreeMap<&'static str, String> {
    latest
        .iter()
        .map(|(model, latest)| {
            let earliest_failure = failed.get(model).and_then(|dates| dates.iter().min());
            let cursor = match earliest_failure {
                Some(failure) if failure < latest => failure.clone(),
                _ => latest.clone(),
            };
            (*model, cursor)
        })
        .collect()
}

async fn load_cursors(
    engine: &Arc<Engine>,
) -> Result<BTreeMap<&'static str, Option<String>>, SyncError> {
    let store = Arc::clone(engine.store());
    let cursors = steward_store::read_async(store, |tx| {
        let mut cursors = BTreeMap::new();
        for model in MODELS {
            cursors.insert(model.name, tx.sync_cursor(SYSTEM, model.name)?);
        }
        Ok(cursors)
    })
    .await?;
    for (model, cursor) in &cursors {
        if let Some(cursor) = cursor
            && crate::convert::parse_odoo_datetime(cursor).is_none()
        {
            return Err(SyncError::Store(format!(
                "the stored Odoo cursor of {model} is `{cursor}`, not a write_date \
                 YYYY-MM-DD HH:MM:SS; run a full sync to replace it"
            )));
        }
    }
    Ok(cursors)
}

async fn store_cursors(
    engine: &Arc<Engine>,
    cursors: &BTreeMap<&'static str, String>,
) -> Result<(), SyncError> {
    if cursors.is_empty() {
        return Ok(());
    }
    let cursors = cursors.clone();
    steward_store::write::<_, StoreError, _>(
        engine.store().as_ref(),
        move |tx: &mut dyn WriteTx| {
            for (model, cursor) in &cursors {
                tx.set_sync_cursor(SYSTEM, model, cursor)?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(())
}

fn log_model(report: &ModelReport) {
    tracing::info!(
        model = %report.model,
        read = report.read,
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        skipped = report.skipped,
        failed = report.failed.len(),
        cursor = report.cursor.as_deref().unwrap_or(""),
        "Odoo model synced"
    );
    for failure in report.failed.iter().take(LOGGED_FAILURES) {
        tracing::warn!(
            model = %failure.model,
            id = failure.id,
            kind = failure.kind.as_deref().unwrap_or(""),
            error = %failure.error,
            "Odoo record not synced"
        );
    }
    if report.failed.len() > LOGGED_FAILURES {
        tracing::warn!(
            model = %report.model,
            more = report.failed.len() - LOGGED_FAILURES,
            "more Odoo records not synced; see the sync report"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails to compile when the sync cannot run on another task, as a server spawns it.
    #[allow(dead_code)]
    fn sync_future_is_send(engine: Arc<Engine>, config: OdooConfig) {
        fn is_send<T: Send>(_: &T) {}
        let options = SyncOptions::default();
        let future = sync(&engine, &config, &options);
        is_send(&future);
    }

    #[test]
    fn failed_rows_hold_the_cursor_back() {
        let latest = BTreeMap::from([
            (TIMESHEET, "2026-12-04 15:24:14".to_string()),
            (TASK, "2026-12-04 15:24:14".to_string()),
        ]);
        let failed = BTreeMap::from([(TIMESHEET, vec!["2026-12-04 15:23:59".to_string()])]);
        let cursors = next_cursors(&latest, &failed);
        assert_eq!(cursors[TIMESHEET], "2026-12-04 15:23:59");
        assert_eq!(cursors[TASK], "2026-12-04 15:24:14");
    }
}
