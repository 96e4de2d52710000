//! `steward-bench`: runs one benchmark and prints its result as one JSON line.

use clap::{Parser, Subcommand};
use steward_bench::{billing, fsync, pipeline};

/// mimalloc: the write path allocates many small objects per event, and the system allocator
/// spent about a fifth of the instructions of the pipeline benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option, set as the `steward` binary sets it, so that the
/// benchmarks measure the allocator as the server runs it.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[derive(Parser)]
#[command(name = "steward-bench", about = "Steward's end-to-end benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Events in, rules matched, jobs run, effects committed, on a SQLite file: throughput,
    /// or latency at a fixed rate with `--rate`.
    Pipeline(pipeline::Args),
    /// Time `fdatasync` of a 4 KiB block, the flush behind every durable commit.
    Fsync(fsync::Args),
    /// Billing readiness and invoice drafts for every contract of a generated firm.
    Billing(billing::Args),
}

fn main() -> anyhow::Result<()> {
    // SAFETY: `mi_option_set` only stores an integer option; it is not thread-safe, so it
    // runs first, before any other thread starts.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 10) };
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let line = runtime.block_on(async {
        match cli.command {
            Command::Pipeline(args) => match args.rate {
                Some(rate) => serde_json::to_string(&pipeline::paced(&args, rate).await?),
                None => serde_json::to_string(&pipeline::throughput(&args).await?),
            }
            .map_err(anyhow::Error::from),
            Command::Fsync(args) => Ok(serde_json::to_string(&fsync::run(&args)?)?),
            Command::Billing(args) => Ok(serde_json::to_string(&billing::run(&args).await?)?),
        }
    })?;
    println!("{line}");
    Ok(())
}
