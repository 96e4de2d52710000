//! Generates a firm into a SQLite file and prints the report as JSON, for measuring runs.
//!
//! ```text
//! cargo run --release -p steward-generator --example generate -- PEOPLE WORKING_DAYS DATABASE
//! ```

use std::sync::Arc;

use steward_domain::SystemClock;
use steward_engine::{Engine, EngineConfig};
use steward_generator::{FirmConfig, generate};
use steward_store::Store;
use steward_store_sqlite::{SqliteOptions, SqliteStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [people, days, database] = args.as_slice() else {
        return Err("usage: generate PEOPLE WORKING_DAYS DATABASE".into());
    };
    let config = FirmConfig::benchmark(people.parse()?, days.parse()?);
    let store: Arc<dyn Store> = SqliteStore::open(database, SqliteOptions::default())?;
    let engine = Engine::new(store, Arc::new(SystemClock), EngineConfig::default());
    let report = generate(&engine, config).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
