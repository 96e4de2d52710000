//! The one-shot commands: rule checks, controls, findings, dead letters and tokens.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use steward_domain::SystemClock;
use steward_engine::{Engine, EngineConfig};
use steward_store::{FindingQuery, JobQuery, JobState, Store, StoreError};
use steward_store_sqlite::{Durability, SqliteOptions, SqliteStore};

use crate::{ExistingStoreArgs, StoreArgs};

/// Opens the database and an engine over it, with the rules stored in it.
/// Checks that `path` is an existing database file, so that a misspelled path fails instead
/// of creating an empty database.
pub fn require_database(path: &std::path::Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "database {} is a folder; pass the database file, such as {}",
            path.display(),
            path.join("steward.db").display()
        );
    }
    if !path.is_file() {
        anyhow::bail!(
            "database {} not found; pass the file that `steward serve`, `steward sync odoo`, \
             `steward import toggl` or `steward generate` wrote, with --database",
            path.display()
        );
    }
    Ok(())
}

pub async fn open_engine(args: &StoreArgs) -> anyhow::Result<Arc<Engine>> {
    open_engine_with(args, EngineConfig::default()).await
}

/// Opens the database and an engine with `config` over it, with the rules stored in it.
pub async fn open_engine_with(
    args: &StoreArgs,
    config: EngineConfig,
) -> anyhow::Result<Arc<Engine>> {
    let durability =
        Durability::parse(&args.durability).context("durability must be full or normal")?;
    let options = SqliteOptions {
        durability,
        ..SqliteOptions::default()
    };
    let store: Arc<dyn Store> = SqliteStore::open(&args.database, options)
        .with_context(|| format!("cannot open the database {}", args.database.display()))?;
    let engine = Engine::new(store, Arc::new(SystemClock), config);
    engine
        .reload_rules()
        .await
        .context("cannot load the stored rules")?;
    engine
        .reload_policies()
        .await
        .context("cannot load the stored approval policies")?;
    engine
        .reload_control_settings()
        .await
        .context("cannot load the stored control settings")?;
    Ok(engine)
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Check every rule file under a folder and report each error with its file, line and
    /// column.
    Check {
        /// Folder of `.yaml` or `.yml` rule files.
        dir: PathBuf,
    },
    /// Replay the recorded events through the rules of a file, with no effects, and report
    /// what they would have done beside what the installed versions did.
    Simulate {
        #[command(flatten)]
        store: ExistingStoreArgs,
        /// A rule file.
        file: PathBuf,
        /// Replay events from this day (YYYY-MM-DD, UTC) or instant (RFC 3339) on.
        #[arg(long)]
        since: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn rules(command: RulesCommand) -> anyhow::Result<ExitCode> {
    match command {
        RulesCommand::Simulate {
            store,
            file,
            since,
            json,
        } => simulate(store, file, since, json).await,
        RulesCommand::Check { dir } => {
            if !dir.is_dir() {
                bail!(
                    "{} is not a folder; pass the folder that holds the rule files",
                    dir.display()
                );
            }
            let approvals = steward_approvals::load_dir(&dir);
            let rules = crate::serve::load_rules(&dir, approvals.as_ref().ok());
            let settings = steward_controls::load_dir(&dir);
            let billing = steward_billing::settings::load_dir(&dir);
            match (rules, approvals, settings, billing) {
                (Ok(rules), Ok(approvals), Ok(settings), Ok(_)) => {
                    println!("{} rules in {} are valid", rules.len(), dir.display());
                    for rule in &rules {
                        println!("  {}: {}", rule.id, rule.trigger.describe());
                    }
                    if !approvals.is_empty() {
                        println!("{} approval policies are valid", approvals.policies.len());
                        for policy in &approvals.policies {
                            println!(
                                "  {}: routes {} by {} rows",
                                policy.id,
                                policy.request_kinds.join(", "),
                                policy.rows.len()
                            );
                        }
                    }
                    if !settings.templates.is_empty() {
                        println!("{} project templates are valid", settings.templates.len());
                        for template in &settings.templates {
                            println!(
                                "  {}: {} tasks, {} milestones, {} roles",
                                template.service_line,
                                template.tasks.len(),
                                template.milestones.len(),
                                template.roles.len()
                            );
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                (rules, approvals, settings, billing) => {
                    let mut diagnostics = rules.err().unwrap_or_default();
                    diagnostics.extend(approvals.err().unwrap_or_default());
                    diagnostics.extend(settings.err().unwrap_or_default());
                    diagnostics.extend(billing.err().unwrap_or_default());
                    diagnostics.sort();
                    for diagnostic in &diagnostics {
                        println!("{diagnostic}");
                    }
                    let count = diagnostics.len();
                    println!("{count} {}", if count == 1 { "error" } else { "errors" });
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

#[derive(Subcommand)]
pub enum ControlsCommand {
    /// Run every control now.
    Run {
        #[command(flatten)]
        store: ExistingStoreArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn controls(command: ControlsCommand) -> anyhow::Result<ExitCode> {
    let ControlsCommand::Run { store, json } = command;
    let engine = open_engine(&store.existing()?).await?;
    let report = engine.run_controls().await?;
    engine.drain().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (control, open) in &report.open {
            println!("{control:<34} {open:>5} open");
        }
        println!(
            "{} new or reopened, {} resolved; list them with `steward findings`",
            report.opened, report.resolved
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct FindingsArgs {
    #[command(flatten)]
    store: ExistingStoreArgs,
    /// `open` or `resolved`.
    #[arg(long, default_value = "open")]
    state: String,
    /// Only findings of this control, such as `daily_hours`.
    #[arg(long)]
    control: Option<String>,
    /// Print JSON instead of one line per finding.
    #[arg(long)]
    json: bool,
}

pub async fn findings(args: FindingsArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(&args.store.existing()?).await?;
    let mut query = FindingQuery {
        state: Some(args.state.clone()),
        control: args.control.clone(),
        limit: steward_store::MAX_PAGE,
        ..Default::default()
    };
    let mut all = Vec::new();
    loop {
        let q = query.clone();
        let page =
            steward_store::read_async(engine.store().clone(), move |tx| tx.findings(&q)).await?;
        all.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.after = Some(cursor),
            None => break,
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for finding in &all {
            println!(
                "{:<7} {:<34} {}",
                finding.severity.as_str(),
                finding.control,
                finding.message
            );
        }
        println!("{} {} findings", all.len(), args.state);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum DeadLetterCommand {
    /// List dead jobs with their last error.
    List {
        #[command(flatten)]
        store: ExistingStoreArgs,
    },
    /// Queue a dead job again with fresh attempts.
    Replay {
        #[command(flatten)]
        store: ExistingStoreArgs,
        /// The job id, as listed.
        id: String,
    },
}

pub async fn dead_letters(command: DeadLetterCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeadLetterCommand::List { store } => {
            let engine = open_engine(&store.existing()?).await?;
            let query = JobQuery {
                state: Some(JobState::Dead),
                limit: steward_store::MAX_PAGE,
                ..Default::default()
            };
            let page = steward_store::read_async(engine.store().clone(), move |tx| tx.jobs(&query))
                .await?;
            for job in &page.items {
                println!(
                    "{}  {}  attempts {}  replays {}  {}",
                    job.id,
                    job.kind,
                    job.attempts,
                    job.replays,
                    job.last_error.as_deref().unwrap_or("")
                );
            }
            println!("{} dead letters", page.items.len());
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Replay { store, id } => {
            let engine = open_engine(&store.existing()?).await?;
            if !engine.replay(&id).await? {
                bail!(
                    "job {id} is not in the dead-letter queue; list them with `steward dead-letters list`"
                );
            }
            let ran = engine.drain().await?;
            let job_id = id.clone();
            let job = steward_store::read_async(engine.store().clone(), move |tx| tx.job(&job_id))
                .await?;
            let state = job.map(|j| j.state.as_str()).unwrap_or("gone");
            println!("replayed {id}: ran {ran} jobs; the job is now {state}");
            Ok(if state == "succeeded" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret once.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// A name that says who or what uses the token.
        name: String,
        /// One of admin, operations, finance, delivery_manager, employee, auditor, integration.
        #[arg(long)]
        role: String,
    },
    /// List tokens, without their secrets.
    List {
        #[command(flatten)]
        store: ExistingStoreArgs,
    },
    /// Revoke a token so that it no longer authenticates.
    Revoke {
        #[command(flatten)]
        store: ExistingStoreArgs,
        /// The token id, as listed.
        id: String,
    },
}

pub async fn tokens(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { store, name, role } => {
            let engine = open_engine(&store).await?;
            let secret = steward_http::auth::new_secret();
            let row =
                steward_http::auth::token_row(&name, &role, None, &secret, chrono::Utc::now())
                    .map_err(anyhow::Error::msg)?;
            steward_store::write::<_, StoreError, _>(engine.store().as_ref(), move |tx| {
                tx.insert_token(&row)
            })
            .await?;
            println!("{secret}");
            eprintln!(
                "created token `{name}` with role {role}; the secret above is not shown again"
            );
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { store, id } => {
            let engine = open_engine(&store.existing()?).await?;
            let token = id.clone();
            let now = chrono::Utc::now();
            let revoked =
                steward_store::write::<_, StoreError, _>(engine.store().as_ref(), move |tx| {
                    tx.revoke_token(&token, now)
                })
                .await?;
            if !revoked {
                bail!("no active token has id {id}; list them with `steward tokens list`");
            }
            println!("revoked token {id}");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { store } => {
            let engine = open_engine(&store.existing()?).await?;
            let tokens =
                steward_store::read_async(engine.store().clone(), |tx| tx.tokens()).await?;
            for token in tokens {
                let status = if token.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}  {:<24} {:<16} {status}",
                    token.id, token.name, token.role
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads `--since` as a day (midnight UTC) or an RFC 3339 instant.
fn parse_since(text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(instant) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&chrono::Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        anyhow::anyhow!("--since `{text}` is not a date (YYYY-MM-DD) or an RFC 3339 instant")
    })?;
    Ok(day.and_time(chrono::NaiveTime::MIN).and_utc())
}

async fn simulate(
    store: ExistingStoreArgs,
    file: PathBuf,
    since: String,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since = parse_since(&since)?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let name = file.display().to_string();
    let rules = match steward_rules::compile_api_text(&text, &format!("file:{name}")) {
        Ok(rules) => rules,
        Err(diagnostics) => {
            for diagnostic in &diagnostics {
                println!(
                    "{name}:{}:{}: {}",
                    diagnostic.line, diagnostic.column, diagnostic.message
                );
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let engine = open_engine(&store.existing()?).await?;
    let report = engine.simulate(rules, since).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "replayed {} events from {} to {}",
        report.events_in_window, report.since, report.until
    );
    for rule in &report.rules {
        println!("\nrule {} ({})", rule.rule_id, rule.trigger);
        if let Some(note) = &rule.note {
            println!("  {note}");
            continue;
        }
        println!(
            "  matched {} events; would run on {}; {} could not be evaluated",
            rule.matched, rule.would_run, rule.errors
        );
        for (action, count) in &rule.actions {
            println!("  {action}: {count}");
        }
        for record in rule.records.iter().take(5) {
            println!(
                "  {} {}: {} runs",
                record.record.kind, record.record.id, record.runs
            );
        }
        match &rule.installed {
            Some(installed) => println!(
                "  installed version {} ran on {} of these events; {} only with this file, {} only with the installed version",
                installed.version,
                installed.ran,
                installed.only_candidate,
                installed.only_installed
            ),
            None => println!("  no installed version to compare with"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
