//! Billing readiness and invoice drafts over a generated firm: every contract's gate for one
//! month, then the drafts of the ready ones, timed end to end on a SQLite file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use steward_domain::{Actor, CommandContext, Kind, SystemClock};
use steward_engine::billing::{BillingPeriod, Selection};
use steward_engine::{Engine, EngineConfig};
use steward_generator::FirmConfig;
use steward_store::Store;
use steward_store_sqlite::{Durability, SqliteOptions, SqliteStore};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Employees of the generated firm, one contract each.
    #[arg(long, default_value_t = 2000)]
    pub people: usize,
    /// Working days of logged time; 2,000 people over 260 days log about a million entries.
    #[arg(long, default_value_t = 260)]
    pub days: usize,
    /// Database to use. A new one is generated into a temporary folder when unset; a file
    /// that already holds a generated firm is reused as it is.
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// Billing month, YYYY-MM.
    #[arg(long, default_value = "2026-11")]
    pub period: String,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            people: 2000,
            days: 260,
            database: None,
            period: "2026-11".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub timesheets: u64,
    pub contracts: u64,
    /// Seconds spent generating the firm; 0 when an existing database was reused.
    pub generate_seconds: f64,
    pub readiness_seconds: f64,
    pub ready: usize,
    pub blocked: usize,
    pub draft_seconds: f64,
    pub drafted: usize,
    /// Drafts of the month written by an earlier run on the same database, returned as they
    /// were.
    pub existing_drafts: usize,
    /// Readiness and drafts together, the figure compared with the 5-second target.
    pub total_seconds: f64,
    /// Peak resident memory of this process (`VmHWM`), in MiB.
    pub peak_rss_mib: Option<f64>,
}

/// Reads a `kB` line such as `VmHWM` from `/proc/self/status`, in MiB.
pub fn memory_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let folder = tempfile::tempdir()?;
    let path = args
        .database
        .clone()
        .unwrap_or_else(|| folder.path().join("bench.db"));
    let options = SqliteOptions {
        durability: Durability::Normal,
        ..SqliteOptions::default()
    };
    let store: Arc<dyn Store> = SqliteStore::open(&path, options)?;
    let engine = Engine::new(store, Arc::new(SystemClock), EngineConfig::default());
    let period = BillingPeriod::parse(&args.period)?;

    let count = |kind| {
        let store = Arc::clone(engine.store());
        async move { steward_store::read_async(store, move |tx| tx.count_records(kind, None)).await }
    };
    let mut generate_seconds = 0.0;
    if count(Kind::Employee).await? == 0 {
        let started = Instant::now();
        steward_generator::generate(&engine, FirmConfig::benchmark(args.people, args.days)).await?;
        generate_seconds = started.elapsed().as_secs_f64();
    }

    let started = Instant::now();
    let selection = Selection {
        period,
        contract: None,
    };
    let readiness = engine.billing_readiness(selection.clone()).await?;
    let readiness_seconds = started.elapsed().as_secs_f64();
    let ready = readiness.iter().filter(|c| c.ready).count();

    let drafting = Instant::now();
    let context = CommandContext::new(Actor::system("bench"));
    let drafts = engine.draft_invoices(selection, context).await?;
    let draft_seconds = drafting.elapsed().as_secs_f64();

    Ok(Report {
        timesheets: count(Kind::Timesheet).await?,
        contracts: count(Kind::Contract).await?,
        generate_seconds,
        readiness_seconds,
        ready,
        blocked: readiness.len() - ready,
        draft_seconds,
        drafted: drafts.created,
        existing_drafts: drafts.existing,
        total_seconds: readiness_seconds + draft_seconds,
        peak_rss_mib: memory_mib("VmHWM:"),
    })
}
