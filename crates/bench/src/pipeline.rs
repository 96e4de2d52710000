//! The durable pipeline on a SQLite file: each event is a new timesheet entry, one rule
//! matches it and its action creates an activity. Two modes:
//!
//! - throughput: submits events in batches as fast as the store commits them and counts
//!   events whose effect has committed;
//! - paced: submits events at a fixed rate and measures, for each one, the time from its
//!   scheduled submission to the commit of the transaction that holds its event and the
//!   rule's effect.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value, json};
use steward_domain::{Actor, Command, CommandContext, Kind, SystemClock};
use steward_engine::{Engine, EngineConfig};
use steward_store::Store;
use steward_store_sqlite::{Durability, SqliteOptions, SqliteStore};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Events to push through in throughput mode.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Commands submitted before waiting for their commits, in throughput mode.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// `full` flushes every commit to disk before acknowledging it; `normal` flushes at WAL
    /// checkpoints only.
    #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
    pub durability: String,
    /// Measure plain commands with no rule installed.
    #[arg(long)]
    pub no_rules: bool,
    /// Submit this many events per second and report event-to-effect latency percentiles
    /// instead of throughput.
    #[arg(long)]
    pub rate: Option<u32>,
    /// How long the paced mode submits events, in seconds.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// Folder for the database file; a new temporary folder when absent.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            events: 20_000,
            batch: 1000,
            durability: "full".into(),
            no_rules: false,
            rate: None,
            seconds: 20.0,
            dir: None,
        }
    }
}

/// The rule whose effect each event waits for.
const RULE: &str = "rules:\n  - id: review-entry\n    trigger: { on: create, record: timesheet }\n    condition: record.hours > 0\n    actions:\n      - activity: { title: \"Review {{ record.hours }} h\", role: operations }\n";

/// The result of a throughput run.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    pub benchmark: &'static str,
    pub events: usize,
    /// Effects (activities) committed; equals `events` unless rules are off.
    pub effects: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    pub durability: String,
}

/// The result of a paced run. Latencies are in milliseconds, measured from each event's
/// scheduled submission, so a late submission counts against the figure.
#[derive(Clone, Debug, Serialize)]
pub struct Paced {
    pub benchmark: &'static str,
    pub rate: u32,
    pub events: usize,
    pub effects: u64,
    /// Events submitted per second, as achieved.
    pub submitted_per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Transactions committed while the run submitted events.
    pub commits: u64,
    pub durability: String,
}

/// An engine over a new database with the benchmark's rule and one employee.
struct Setup {
    engine: Arc<Engine>,
    employee: String,
    context: CommandContext,
    // Removed with the run's database when the run ends.
    _dir: Option<tempfile::TempDir>,
}

async fn setup(args: &Args) -> anyhow::Result<Setup> {
    let durability = Durability::parse(&args.durability).ok_or_else(|| {
        anyhow::anyhow!(
            "durability `{}` is invalid; use full or normal",
            args.durability
        )
    })?;
    let (dir, path) = match &args.dir {
        Some(dir) => {
            let temp = tempfile::tempdir_in(dir)?;
            let path = temp.path().join("bench.db");
            (Some(temp), path)
        }
        None => {
            let temp = tempfile::tempdir()?;
            let path = temp.path().join("bench.db");
            (Some(temp), path)
        }
    };
    let options = SqliteOptions {
        durability,
        ..SqliteOptions::default()
    };
    let store: Arc<dyn Store> = SqliteStore::open(&path, options)?;
    let config = EngineConfig {
        controls_on_change: false,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store, Arc::new(SystemClock), config);
    let (rules, diagnostics) =
        steward_rules::compile_sources(&[("bench.yaml".into(), RULE.into())]);
    anyhow::ensure!(
        diagnostics.is_empty(),
        "the benchmark rule does not compile: {diagnostics:?}"
    );
    if !args.no_rules {
        engine.install_file_rules(rules).await?;
    }
    let context = CommandContext::new(Actor::user("bench"));
    let employee = engine
        .execute(
            Command::create(Kind::Employee, fields(json!({"name": "Bench"}))),
            context.clone(),
        )
        .await?
        .record
        .ok_or_else(|| anyhow::anyhow!("creating the employee returned no record"))?
        .id;
    Ok(Setup {
        engine,
        employee,
        context,
        _dir: dir,
    })
}

/// The command of event number `n`: a new timesheet entry of 0.5 to 7.5 hours. Three entries
/// share a day, counting back from 2026-12-01, so no day reaches the 24 hours that the command
/// path allows one person.
fn timesheet(employee: &str, n: usize) -> Command {
    let hours = format!("{}.5", n % 8);
    let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("a valid date")
        - chrono::Days::new((n / 3) as u64);
    let body = json!({"employee": employee, "date": date.to_string(), "hours": hours});
    Command::create(Kind::Timesheet, fields(body))
}

/// Counts the effects committed, and checks that every event has one.
fn check_effects(setup: &Setup, args: &Args, events: usize) -> anyhow::Result<u64> {
    let activities = steward_store::read(setup.engine.store().as_ref(), |tx| {
        tx.count_records(Kind::Activity, None)
    })?;
    let timesheets = steward_store::read(setup.engine.store().as_ref(), |tx| {
        tx.count_records(Kind::Timesheet, None)
    })?;
    anyhow::ensure!(
        timesheets as usize == events,
        "{timesheets} timesheet entries committed for {events} events"
    );
    let expected = if args.no_rules { 0 } else { events };
    anyhow::ensure!(
        activities as usize == expected,
        "{activities} effects committed for {events} events"
    );
    Ok(activities)
}

/// Pushes `args.events` events through in batches and measures events per second.
pub async fn throughput(args: &Args) -> anyhow::Result<Throughput> {
    let setup = setup(args).await?;
    let engine = &setup.engine;
    let started = Instant::now();
    let mut submitted = 0;
    while submitted < args.events {
        let count = args.batch.max(1).min(args.events - submitted);
        let commands = (submitted..submitted + count)
            .map(|n| (timesheet(&setup.employee, n), setup.context.clone()))
            .collect();
        for outcome in engine.execute_all(commands).await {
            outcome?;
        }
        submitted += count;
        // Runs any action that did not run inline, so every effect is counted.
        engine.drain().await?;
    }
    let elapsed = started.elapsed();
    let effects = check_effects(&setup, args, args.events)?;
    Ok(Throughput {
        benchmark: "pipeline",
        events: args.events,
        effects,
        seconds: elapsed.as_secs_f64(),
        events_per_second: args.events as f64 / elapsed.as_secs_f64(),
        durability: args.durability.clone(),
    })
}

/// Submits events at `rate` per second for `args.seconds` and measures event-to-effect
/// latency. Each event's effect must commit in its event's transaction (rule actions run
/// inline); an event whose action was deferred to a worker fails the run.
pub async fn paced(args: &Args, rate: u32) -> anyhow::Result<Paced> {
    anyhow::ensure!(rate > 0, "--rate must be at least 1 event per second");
    anyhow::ensure!(
        args.seconds > 0.0,
        "--seconds must be more than 0, such as 20"
    );
    let setup = setup(args).await?;
    let engine = &setup.engine;
    let events = ((f64::from(rate) * args.seconds).round() as usize).max(1);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let commits_before = *engine.store().commits().borrow();

    let started = Instant::now();
    let mut waiting = Vec::with_capacity(events);
    for n in 0..events {
        let scheduled = started + interval.mul_f64(n as f64);
        if scheduled > Instant::now() {
            tokio::time::sleep_until(scheduled.into()).await;
        }
        let committed = engine.submit(timesheet(&setup.employee, n), setup.context.clone());
        waiting.push(tokio::spawn(async move {
            let outcome = committed.await?;
            anyhow::ensure!(
                outcome.jobs == 0,
                "event {n} left {} action(s) to a worker, so its effect did not commit with it",
                outcome.jobs
            );
            Ok(scheduled.elapsed())
        }));
    }
    let submitting = started.elapsed();
    let mut latencies = Vec::with_capacity(events);
    for task in waiting {
        latencies.push(task.await??);
    }
    let commits = *engine.store().commits().borrow() - commits_before;
    let effects = check_effects(&setup, args, events)?;
    latencies.sort_unstable();
    Ok(Paced {
        benchmark: "pipeline_paced",
        rate,
        events,
        effects,
        submitted_per_second: events as f64 / submitting.as_secs_f64().max(1e-9),
        p50_ms: percentile_ms(&latencies, 50.0),
        p95_ms: percentile_ms(&latencies, 95.0),
        p99_ms: percentile_ms(&latencies, 99.0),
        max_ms: percentile_ms(&latencies, 100.0),
        commits,
        durability: args.durability.clone(),
    })
}

/// The nearest-rank percentile of sorted latencies, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], percent: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}
