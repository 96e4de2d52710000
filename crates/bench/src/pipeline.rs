//! Throughput of the durable pipeline: each event is a new timesheet entry; one rule matches
//! it and its job creates an activity. The figure counts events whose effect has committed.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};
use steward_domain::{Actor, Command, CommandContext, Kind, SystemClock};
use steward_engine::{Engine, EngineConfig};
use steward_store::Store;
use steward_store_sqlite::{Durability, SqliteOptions, SqliteStore};

#[derive(clap::Args)]
pub struct Args {
    /// Events to push through.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Commands submitted before waiting for their commits.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
    durability: String,
    /// Measure plain commands with no rule installed.
    #[arg(long)]
    no_rules: bool,
}

const RULE: &str = "rules:\n  - id: review-entry\n    trigger: { on: create, record: timesheet }\n    condition: record.hours > 0\n    actions:\n      - activity: { title: \"Review {{ record.hours }} h\", role: operations }\n";

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = SqliteOptions {
        durability: Durability::parse(&args.durability).unwrap_or_default(),
        ..SqliteOptions::default()
    };
    let store: Arc<dyn Store> = SqliteStore::open(dir.path().join("bench.db"), options)?;
    let config = EngineConfig {
        controls_on_change: false,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store, Arc::new(SystemClock), config);
    let (rules, diagnostics) =
        steward_rules::compile_sources(&[("bench.yaml".into(), RULE.into())]);
    anyhow::ensure!(diagnostics.is_empty(), "{diagnostics:?}");
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
        .expect("created")
        .id;

    let started = Instant::now();
    let mut submitted = 0;
    while submitted < args.events {
        let count = args.batch.min(args.events - submitted);
        let commands = (0..count)
            .map(|n| {
                let hours = format!("{}.5", n % 8);
                let body = json!({"employee": employee, "date": "2026-12-01", "hours": hours});
                (
                    Command::create(Kind::Timesheet, fields(body)),
                    context.clone(),
                )
            })
            .collect();
        for outcome in engine.execute_all(commands).await {
            outcome?;
        }
        submitted += count;
        engine.drain().await?;
    }
    engine.drain().await?;
    let elapsed = started.elapsed();
    let activities = steward_store::read(engine.store().as_ref(), |tx| {
        tx.count_records(Kind::Activity, None)
    })?;
    let expected = if args.no_rules { 0 } else { args.events };
    anyhow::ensure!(
        activities as usize == expected,
        "{activities} effects for {} events",
        args.events
    );
    let rate = args.events as f64 / elapsed.as_secs_f64();
    println!(
        "{{\"benchmark\": \"pipeline\", \"events\": {}, \"seconds\": {:.3}, \"events_per_second\": {:.0}, \"durability\": \"{}\"}}",
        args.events,
        elapsed.as_secs_f64(),
        rate,
        args.durability
    );
    Ok(())
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}
