//! The `steward` command: configuration and wiring, no business logic.

mod billing;
mod commands;
mod demo;
mod serve;
mod sync;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the write path allocates many small objects per event, and the system allocator
/// spent about a fifth of the instructions of the pipeline benchmark.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option: how many milliseconds freed memory stays with the
/// process before it goes back to the system. The bundled mimalloc does not name its options,
/// so the number is its position in `mi_option_e`.
#[cfg(feature = "mimalloc")]
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Returns freed memory to the system after 10 ms instead of mimalloc's default of a second
/// (ten for whole arenas). A server working through a million time entries frees large
/// blocks in bursts, and held them long enough to stay 40 MiB above what it used.
#[cfg(feature = "mimalloc")]
fn return_freed_memory_promptly() {
    // SAFETY: `mi_option_set` only stores an integer option; it is not thread-safe, so it
    // runs first in `main`, before any other thread starts.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 10) }
}

#[derive(Parser)]
#[command(
    name = "steward",
    version,
    about = "Operations automation for professional-services firms"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    #[command(subcommand)]
    command: Command,
}

/// Where the data lives and how durably it is written.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// SQLite database file; created when missing.
    #[arg(long, env = "STEWARD_DATABASE", default_value = "steward.db")]
    database: PathBuf,

    /// `full` flushes every commit to disk before acknowledging it; `normal` flushes at
    /// checkpoints, so a power loss can lose the last commits.
    #[arg(long, env = "STEWARD_DURABILITY", default_value = "full", value_parser = ["full", "normal"])]
    durability: String,
}

/// The database of a command that only works on a firm already loaded, such as billing.
#[derive(clap::Args, Clone)]
pub struct ExistingStoreArgs {
    /// SQLite database file; it must exist. `steward serve`, `steward sync odoo`, `steward
    /// import toggl` and `steward generate` create it.
    #[arg(long, env = "STEWARD_DATABASE", default_value = "steward.db")]
    database: PathBuf,

    /// `full` flushes every commit to disk before acknowledging it; `normal` flushes at
    /// checkpoints, so a power loss can lose the last commits.
    #[arg(long, env = "STEWARD_DURABILITY", default_value = "full", value_parser = ["full", "normal"])]
    durability: String,
}

impl ExistingStoreArgs {
    /// Returns the store arguments after checking that the database file exists, so that a
    /// misspelled path fails instead of creating an empty database.
    pub fn existing(&self) -> anyhow::Result<StoreArgs> {
        commands::require_database(&self.database)?;
        Ok(StoreArgs {
            database: self.database.clone(),
            durability: self.durability.clone(),
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server and the workers.
    Serve(serve::ServeArgs),
    /// Check automation rule files.
    Rules {
        #[command(subcommand)]
        command: commands::RulesCommand,
    },
    /// Run the controls once and print what they found.
    Controls {
        #[command(subcommand)]
        command: commands::ControlsCommand,
    },
    /// List findings.
    Findings(commands::FindingsArgs),
    /// List or replay jobs that failed every attempt.
    DeadLetters {
        #[command(subcommand)]
        command: commands::DeadLetterCommand,
    },
    /// Create, list or revoke API tokens.
    Tokens {
        #[command(subcommand)]
        command: commands::TokenCommand,
    },
    /// Mirror another system of record into Steward.
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
    /// Serve captured Odoo 17 answers on loopback, to try `steward sync odoo` without Odoo.
    OdooReplay(sync::ReplayArgs),
    /// Import time from a time-tracking export.
    Import {
        #[command(subcommand)]
        command: demo::ImportCommand,
    },
    /// Write a generated, seeded sample firm into the database.
    Generate(demo::GenerateArgs),
    /// Check billing readiness, draft invoices, reconcile a month, compare with Odoo.
    Billing {
        #[command(subcommand)]
        command: billing::BillingCommand,
    },
    /// Manage webhook endpoints, deliveries and their health.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
}

fn main() -> ExitCode {
    #[cfg(feature = "mimalloc")]
    return_freed_memory_promptly();
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Rules { command } => commands::rules(command).await,
            Command::Controls { command } => commands::controls(command).await,
            Command::Findings(args) => commands::findings(args).await,
            Command::DeadLetters { command } => commands::dead_letters(command).await,
            Command::Tokens { command } => commands::tokens(command).await,
            Command::Sync { command } => sync::sync(command).await,
            Command::OdooReplay(args) => sync::replay(args).await,
            Command::Import { command } => demo::import(command).await,
            Command::Generate(args) => demo::generate_command(args).await,
            Command::Webhooks { command } => webhooks::webhooks(command).await,
            Command::Billing { command } => billing::billing(command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
