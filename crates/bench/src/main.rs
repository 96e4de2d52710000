//! Benchmarks that need a whole engine: the durable pipeline on SQLite.

mod pipeline;

use clap::{Parser, Subcommand};

/// mimalloc: the write path allocates many small objects per event, and the system allocator
/// spent about a fifth of the instructions of the pipeline benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "steward-bench", about = "Steward's end-to-end benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Events in, rules matched, jobs run, effects committed, on a SQLite file.
    Pipeline(pipeline::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Pipeline(args) => pipeline::run(args).await,
        }
    })
}
