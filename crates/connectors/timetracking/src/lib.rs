//! Imports of time-tracking exports into timesheet entries.
//!
//! [`import_toggl`] reads a Toggl Track detailed report saved as CSV. Each row becomes a draft
//! timesheet entry per local day, mirrored under a key derived from the row's content, so
//! importing the same file again finds every entry unchanged and appends no event. The people,
//! clients and projects the rows name are looked up among the stored records and created when
//! missing. The returned [`ImportReport`] lists what was written, every rejected row with its
//! reason, overlapping entries and entries split at midnight.

mod decode;
mod entry;
mod export;
mod parse;
mod plan;
mod report;
mod resolve;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono_tz::Tz;
use steward_domain::{Actor, CommandContext};
use steward_engine::{Engine, EngineError, Outcome};
use steward_store::StoreError;

pub use entry::HOURS_SCALE;
pub use report::{
    CreatedClient, CreatedPerson, CreatedProject, ImportReport, Overlap, RejectedRow, RowWarning,
    SplitEntry,
};

use crate::plan::{Expected, ImportPlan, Origin};

/// The external system name on links and on the actor of every change the import makes.
pub const SYSTEM: &str = "toggl";
/// The external model of imported timesheet entries.
pub const TIME_ENTRY_MODEL: &str = "time_entry";

/// How to read a Toggl export.
#[derive(Clone, Debug)]
pub struct TogglOptions {
    /// The time zone of the export's local dates and times: the zone set in the Toggl profile
    /// of the person who exported it.
    pub timezone: Tz,
    /// A label for the report, such as where the file came from; the file name when `None`.
    pub source_name: Option<String>,
    /// Validates the file and reports what an import would do, without writing.
    pub dry_run: bool,
}

impl Default for TogglOptions {
    fn default() -> Self {
        TogglOptions {
            timezone: Tz::UTC,
            source_name: None,
            dry_run: false,
        }
    }
}

/// Errors that stop an import or leave it unfinished.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {reason}", path.display())]
    Io {
        path: PathBuf,
        /// Not a `source`, so that error chains do not print the reason twice.
        reason: std::io::Error,
    },

    #[error("{} is empty; export the Detailed report from Toggl Track as CSV", path.display())]
    Empty { path: PathBuf },

    #[error(
        "{} is not a Toggl Track detailed export: the columns {} are missing (found: {}); \
         export the Detailed report as CSV",
        path.display(), missing.join(", "), found.join(", ")
    )]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        found: Vec<String>,
    },

    #[error("{} is not valid CSV{}: {message}", path.display(),
        line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Csv {
        path: PathBuf,
        line: Option<u64>,
        message: String,
    },

    #[error("cannot read the stored employees, clients and projects: {0}")]
    Store(#[from] StoreError),

    /// Some writes failed after validation passed, such as on a database error. What was
    /// written stays written, and importing the file again completes the rest.
    #[error(
        "{} of the import's writes failed, the first for {}: {}; fix the cause and import the \
         file again, which skips what was written",
        failures.len(), failures[0].what, failures[0].error
    )]
    Write {
        failures: Vec<WriteFailure>,
        report: Box<ImportReport>,
    },

    #[error("the import task failed: {0}")]
    Task(String),
}

/// One write that failed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WriteFailure {
    /// The record it was for, such as `line 7` or `employee harry@tuttle.com`.
    pub what: String,
    pub error: String,
}

/// Builds the context of every command the import issues.
pub(crate) fn context() -> CommandContext {
    CommandContext::new(Actor::integration(SYSTEM))
}

/// Imports a Toggl Track detailed export.
///
/// Rows with an invalid date, time or duration, or that would fail validation, are listed in
/// the report and skipped; the other rows are imported. A file without the columns of a
/// detailed export is rejected whole with [`ImportError::MissingColumns`].
///
/// NOTE: every command is validated before the first write, but the engine commits each
/// command on its own. A database failure in the middle therefore leaves the earlier rows
/// written and returns [`ImportError::Write`]. Importing the file again completes the import
/// without duplicates.
pub async fn import_toggl(
    engine: &Arc<Engine>,
    path: &Path,
    options: TogglOptions,
) -> Result<ImportReport, ImportError> {
    let file = path.to_path_buf();
    let timezone = options.timezone;
    let parsed = tokio::task::spawn_blocking(move || export::read_export(&file, timezone))
        .await
        .map_err(|error| ImportError::Task(error.to_string()))??;

    let report = ImportReport {
        source: options.source_name.clone().unwrap_or_else(|| {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string())
        }),
        timezone: timezone.name().to_string(),
        encoding: parsed.encoding.label().to_string(),
        dry_run: options.dry_run,
        rows_read: parsed.rows_read,
        rejected: parsed.rejected,
        warnings: parsed.warnings,
        ..ImportReport::default()
    };
    let entries = parsed.entries;
    let now = engine.clock().now();
    let plan = steward_store::read_async(Arc::clone(engine.store()), move |tx| {
        plan::plan_import(tx, entries, report, now)
    })
    .await?;

    if options.dry_run {
        return Ok(summarize_expected(plan));
    }
    write(engine, plan).await
}

/// Fills the counts of a dry run from what each entry is expected to do.
fn summarize_expected(plan: ImportPlan) -> ImportReport {
    let mut report = plan.report;
    count_rows(&mut report, &plan.expected);
    report
}

fn count_rows(report: &mut ImportReport, results: &[Vec<Expected>]) {
    for parts in results {
        for result in parts {
            match result {
                Expected::Create => report.entries_created += 1,
                Expected::Update => report.entries_updated += 1,
                Expected::Unchanged => report.entries_unchanged += 1,
            }
        }
        if parts.iter().all(|r| *r == Expected::Unchanged) {
            report.rows_unchanged += 1;
        } else {
            report.rows_imported += 1;
        }
    }
}

/// Runs the planned commands and reports their outcomes.
async fn write(engine: &Arc<Engine>, plan: ImportPlan) -> Result<ImportReport, ImportError> {
    let ImportPlan {
        commands,
        origins,
        entries,
        mut expected,
        mut report,
    } = plan;
    let outcomes = engine
        .execute_all(commands.into_iter().map(|c| (c, context())).collect())
        .await;

    let mut failures = Vec::new();
    let mut created_ids = CreatedIds::default();
    for (origin, outcome) in origins.iter().zip(outcomes) {
        match outcome {
            Ok(outcome) => match *origin {
                Origin::Part { entry, part } => {
                    expected[entry][part] = classify(&outcome);
                }
                Origin::Client(_) => created_ids.clients.push(created_id(&outcome)),
                Origin::Person(_) => created_ids.people.push(created_id(&outcome)),
                Origin::Project(_) => created_ids.projects.push(created_id(&outcome)),
            },
            Err(error) => {
                failures.push(describe_failure(*origin, &entries, &report, &error));
                match *origin {
                    // A failed part counts as unchanged: nothing was written for it.
                    Origin::Part { entry, part } => expected[entry][part] = Expected::Unchanged,
                    Origin::Client(_) => created_ids.clients.push(None),
                    Origin::Person(_) => created_ids.people.push(None),
                    Origin::Project(_) => created_ids.projects.push(None),
                }
            }
        }
    }
    created_ids.apply(&mut report);
    count_rows(&mut report, &expected);
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(ImportError::Write {
            failures,
            report: Box::new(report),
        })
    }
}

fn classify(outcome: &Outcome) -> Expected {
    match (&outcome.event, outcome.created) {
        (_, true) => Expected::Create,
        (Some(_), false) => Expected::Update,
        (None, false) => Expected::Unchanged,
    }
}

fn created_id(outcome: &Outcome) -> Option<String> {
    outcome
        .record
        .as_ref()
        .filter(|_| outcome.created)
        .map(|r| r.id.clone())
}

/// Ids of the records the import created, in the order of the report's lists.
#[derive(Default)]
struct CreatedIds {
    people: Vec<Option<String>>,
    clients: Vec<Option<String>>,
    projects: Vec<Option<String>>,
}

impl CreatedIds {
    /// Sets the ids on the report and drops records that turned out to exist already.
    fn apply(self, report: &mut ImportReport) {
        fn keep<T>(items: &mut Vec<T>, ids: Vec<Option<String>>, set: impl Fn(&mut T, String)) {
            let mut kept = Vec::new();
            for (mut item, id) in items.drain(..).zip(ids) {
                if let Some(id) = id {
                    set(&mut item, id);
                    kept.push(item);
                }
            }
            *items = kept;
        }
        keep(&mut report.people_created, self.people, |p, id| {
            p.id = Some(id)
        });
        keep(&mut report.clients_created, self.clients, |c, id| {
            c.id = Some(id)
        });
        keep(&mut report.projects_created, self.projects, |p, id| {
            p.id = Some(id)
        });
    }
}

fn describe_failure(
    origin: Origin,
    entries: &[entry::Entry],
    report: &ImportReport,
    error: &EngineError,
) -> WriteFailure {
    let what = match origin {
        Origin::Part { entry, part } => {
            let entry = &entries[entry];
            format!("line {} ({})", entry.row.line, entry.parts[part].date)
        }
        Origin::Client(index) => format!("client {}", report.clients_created[index].name),
        Origin::Person(index) => format!("employee {}", report.people_created[index].name),
        Origin::Project(index) => format!("project {}", report.projects_created[index].name),
    };
    WriteFailure {
        what,
        error: error.to_string(),
    }
}
