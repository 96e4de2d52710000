//! `steward generate` and the sample firm of `steward serve --demo`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use steward_engine::Engine;
use steward_generator::{FirmConfig, GenerateReport};

use crate::StoreArgs;
use crate::commands::open_engine;

/// Generates the demo firm and prints where its planted exceptions are.
pub async fn generate(engine: &Arc<Engine>) -> anyhow::Result<()> {
    let report = steward_generator::generate(engine, FirmConfig::demo())
        .await
        .context("generating the demo firm failed")?;
    print_summary(&report);
    Ok(())
}

fn print_summary(report: &GenerateReport) {
    let total: u64 = report.records.values().sum();
    eprintln!(
        "generated {total} records for {} to {} (seed {}) in {:.1} s",
        report.start, report.end, report.seed, report.elapsed_seconds
    );
    for planted in &report.planted {
        let ids: Vec<String> = planted
            .records
            .iter()
            .map(|r| format!("{} {}", r.kind, r.id))
            .collect();
        eprintln!(
            "  planted for {}: {} ({})",
            planted.control,
            planted.description,
            ids.join(", ")
        );
    }
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The seed; the same seed gives the same firm. Defaults to the preset's own seed.
    #[arg(long)]
    seed: Option<u64>,
    /// People in the firm; leave out for the demo firm.
    #[arg(long)]
    people: Option<usize>,
    /// Working days (Monday to Friday) of time to generate, ending where the demo period
    /// ends; used with --people.
    #[arg(long, default_value_t = 260)]
    days: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn generate_command(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(&args.store).await?;
    let people = steward_store::read_async(engine.store().clone(), |tx| {
        tx.count_records(steward_domain::Kind::Employee, None)
    })
    .await?;
    if people > 0 {
        anyhow::bail!(
            "{} already holds {people} employees, and a second firm would mix with them; pass another --database",
            args.store.database.display()
        );
    }
    let mut config = match args.people {
        Some(people) => FirmConfig::benchmark(people, args.days),
        None => FirmConfig::demo(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let report = steward_generator::generate(&engine, config)
        .await
        .context("generating the firm failed")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
        for (kind, count) in &report.records {
            println!("{kind:<18} {count:>10}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand)]
pub enum ImportCommand {
    /// Import a Toggl Track detailed export (CSV) as draft timesheet entries.
    Toggl(TogglArgs),
}

#[derive(clap::Args)]
pub struct TogglArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The CSV file, as exported by Toggl Track's detailed report.
    file: PathBuf,
    /// The time zone the export's times are in, such as Europe/Lisbon.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// Check the file and report what would change, without writing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn import(command: ImportCommand) -> anyhow::Result<ExitCode> {
    let ImportCommand::Toggl(args) = command;
    let timezone: chrono_tz::Tz = args.timezone.parse().map_err(|_| {
        anyhow::anyhow!(
            "`{}` is not an IANA time zone such as Europe/Brussels",
            args.timezone
        )
    })?;
    let engine = open_engine(&args.store).await?;
    let options = steward_timetracking::TogglOptions {
        timezone,
        dry_run: args.dry_run,
        ..Default::default()
    };
    let report = steward_timetracking::import_toggl(&engine, &args.file, options)
        .await
        .with_context(|| format!("importing {} failed", args.file.display()))?;
    engine.drain().await?;
    if !args.dry_run {
        engine.run_controls().await?;
        engine.drain().await?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} rows read, {} imported, {} unchanged, {} rejected; {} entries created, {} updated",
            report.source,
            report.rows_read,
            report.rows_imported,
            report.rows_unchanged,
            report.rows_rejected,
            report.entries_created,
            report.entries_updated
        );
        for row in &report.rejected {
            let column = row.column.as_deref().unwrap_or("row");
            println!(
                "  line {} {column} `{}`: {}",
                row.line, row.value, row.reason
            );
        }
        for overlap in &report.overlaps {
            println!(
                "  overlap: {} at lines {} and {} by {} s",
                overlap.person, overlap.first_line, overlap.second_line, overlap.seconds
            );
        }
        for warning in &report.warnings {
            println!(
                "  warning, line {} {} `{}`: {}",
                warning.line, warning.column, warning.value, warning.message
            );
        }
        for split in &report.split_entries {
            let days: Vec<String> = split.days.iter().map(ToString::to_string).collect();
            println!(
                "  line {} crosses midnight and was split over {}",
                split.line,
                days.join(", ")
            );
        }
        for person in &report.people_created {
            println!("  new employee: {}", person.name);
        }
        for client in &report.clients_created {
            println!("  new client: {}", client.name);
        }
        for project in &report.projects_created {
            println!("  new project: {}", project.name);
        }
        if report.rows_rejected > 0 {
            println!(
                "{} rows were rejected and the others imported; fix those rows and import the file again",
                report.rows_rejected
            );
        }
    }
    Ok(if report.rows_rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
