//! A seeded sample firm: calendars, people, clients, contracts, projects, time, expenses and
//! leaves, with planted exceptions that the starter controls must find.
//!
//! [`generate`] writes the firm through the engine's command path in batches, as the
//! integration actor `generator`, so every record has its event. The same [`FirmConfig`]
//! always gives the same firm. Time and expenses are generated day by day and written as
//! they are made, so memory does not grow with the length of the period.

mod activity;
mod calendar;
mod config;
mod firm;
mod names;
mod records;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde::Serialize;
use steward_domain::{Kind, RecordRef};
use steward_engine::{Engine, EngineError};

pub use calendar::{TIMEZONE, belgian_holidays, easter};
pub use config::{DEMO_END, DEMO_WORKING_DAYS, FirmConfig, MIN_PEOPLE, MIN_WORKING_DAYS};
pub use writer::{BATCH_SIZE, actor};

/// Errors that stop generation.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid firm configuration: {0}")]
    InvalidConfig(String),

    /// A generated record failed; records written before it stay written.
    #[error("writing {kind} {id} failed: {error}")]
    Write {
        kind: Kind,
        id: String,
        error: Box<EngineError>,
    },
}

/// A record the generator made wrong on purpose, and the control that finds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlantedException {
    /// The starter control that raises a finding for it, such as `daily_hours`.
    pub control: &'static str,
    pub description: String,
    /// The records to look at; the finding names one of them.
    pub records: Vec<RecordRef>,
}

/// Counts, totals and planted exceptions of one [`generate`] run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenerateReport {
    pub seed: u64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Monday to Friday in the period, public holidays included.
    pub working_days: usize,
    /// Records written per kind, by kind name.
    pub records: BTreeMap<&'static str, u64>,
    /// Hours of every timesheet entry written.
    pub timesheet_hours: Decimal,
    /// Commands sent to the engine, one per record.
    pub commands: u64,
    /// Wall-clock time of the run, in seconds.
    pub elapsed_seconds: f64,
    pub planted: Vec<PlantedException>,
}

impl GenerateReport {
    /// Returns the number of records of `kind` written.
    pub fn count(&self, kind: Kind) -> u64 {
        self.records.get(kind.name()).copied().unwrap_or(0)
    }
}

fn progress_bar(days: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(days as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} days, {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message("generating time and expenses");
    bar
}

/// Generates the firm described by `config` and writes it through `engine`.
///
/// A progress bar on standard error counts the days written; it is hidden when standard
/// error is not a terminal.
pub async fn generate(
    engine: &Arc<Engine>,
    config: FirmConfig,
) -> Result<GenerateReport, GenerateError> {
    config.check()?;
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut plan = firm::plan(&config, &mut rng);

    let mut writer = writer::Writer::new(engine);
    records::write_firm(&mut plan, &config, &mut writer, &mut rng).await?;
    let days = config.working_days();
    let progress = progress_bar(days.len());
    let totals = activity::write_days(&plan, &config, &mut writer, &progress).await;
    progress.finish_and_clear();
    let totals = totals?;
    writer.flush().await?;

    Ok(GenerateReport {
        seed: config.seed,
        start: config.start,
        end: config.end,
        working_days: days.len(),
        records: writer.counts.iter().map(|(k, v)| (k.name(), *v)).collect(),
        timesheet_hours: totals.hours,
        commands: writer.commands,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        planted: describe_plants(&plan, &totals.planted),
    })
}

fn describe_plants(firm: &firm::Firm, ids: &activity::PlantedIds) -> Vec<PlantedException> {
    let plants = &firm.plants;
    let person = |index: usize| &firm.people[index];
    let employee = |index: usize| RecordRef::new(Kind::Employee, person(index).id.clone());
    let timesheets = |ids: &[String]| -> Vec<RecordRef> {
        ids.iter()
            .map(|id| RecordRef::new(Kind::Timesheet, id.clone()))
            .collect()
    };
    let expenses = |ids: &[String]| -> Vec<RecordRef> {
        ids.iter()
            .map(|id| RecordRef::new(Kind::Expense, id.clone()))
            .collect()
    };
    let with = |first: RecordRef, rest: Vec<RecordRef>| {
        let mut all = vec![first];
        all.extend(rest);
        all
    };
    let closed = &firm.projects[plants.closed_project];

    vec![
        PlantedException {
            control: "daily_hours",
            description: format!(
                "{} logged 26 hours on {} in two entries of 13 hours",
                person(plants.long_day.0).name,
                plants.long_day.1
            ),
            records: with(employee(plants.long_day.0), timesheets(&ids.long_day)),
        },
        PlantedException {
            control: "daily_hours",
            description: format!(
                "{} logged 14 hours on {}, over the 8 hours of their calendar",
                person(plants.over_calendar.0).name,
                plants.over_calendar.1
            ),
            records: with(
                employee(plants.over_calendar.0),
                timesheets(&ids.over_calendar),
            ),
        },
        PlantedException {
            control: "approver_missing",
            description: format!(
                "{}, the managing partner, has no manager and has submitted expenses",
                person(0).name
            ),
            records: with(employee(0), expenses(&ids.partner_expenses)),
        },
        PlantedException {
            control: "approver_missing",
            description: format!(
                "{} is their own manager and has submitted time",
                person(plants.own_manager).name
            ),
            records: vec![employee(plants.own_manager)],
        },
        PlantedException {
            control: "self_approval",
            description: format!(
                "{} submitted and approved their own expense of {}",
                person(plants.self_approver.0).name,
                plants.self_approver.1
            ),
            records: expenses(&ids.self_approved_expense),
        },
        PlantedException {
            control: "time_on_closed_or_missing_project",
            description: format!(
                "{} logged time on {}, closed on {}",
                person(plants.closed_person).name,
                closed.name,
                closed.end
            ),
            records: with(
                RecordRef::new(Kind::Project, closed.id.clone()),
                timesheets(&ids.closed_project),
            ),
        },
        PlantedException {
            control: "overlapping_entries",
            description: format!(
                "{} has two timer entries on {} that overlap by 30 minutes",
                person(plants.overlap.0).name,
                plants.overlap.1
            ),
            records: timesheets(&ids.overlap),
        },
    ]
}
